"""What the analysis reads of a run and adds to it. The names a run writes (tags, metric keys, artifacts) come
from the run contract, :mod:`gansweep.contract`, the one place to rename one; re-exported here so the
analysis spells them ``contract.<NAME>``. What each figure is (range, better direction, minimum meaningful
difference, words, caption) is the figure registry's, :mod:`gansweep.figures`. Defined here: which figures the
analysis reads and shows, and the column names it adds."""

from __future__ import annotations

from gansweep import figures
from gansweep.contract import (
    CLASS_SHARES,
    CONTRAST,
    D_LOGITS,
    D_REAL_UNIT,
    DIVERSITY,
    EVAL_PREFIX,
    FD,
    KL_TO_UNIFORM,
    MODES,
    N_DIGITS,
    N_STACKED_MODES,
    NDB,
    PRECISION,
    RECALL,
    REPORT_ARTIFACT_PATH,
    ROLE_CHILD,
    ROLE_PARENT,
    SAMPLES_ARTIFACT,
    STACKED_KL,
    STACKED_MODES,
    STRETCHED_MODES,
    STRETCHED_PREFIX,
    STRETCHED_SAMPLES_ARTIFACT,
    TAG_BLAS_THREADS,
    TAG_CONFIG_HASH,
    TAG_DIVERGED,
    TAG_ERROR,
    TAG_GIT_COMMIT,
    TAG_HOST,
    TAG_LABEL,
    TAG_LOSS,
    TAG_MODEL,
    TAG_OBJECTIVES,
    TAG_OPTUNA_STORAGE,
    TAG_OPTUNA_STUDY,
    TAG_OVERRIDES,
    TAG_PARENT_RUN,
    TAG_RECIPE,
    TAG_ROLE,
    TAG_RUN_NAME,
    TAG_SCHEDULE,
    TAG_SEED,
    TAG_STUDY,
    TAG_VERSIONS,
    TRAINING_CURVES,
)

# Metric histories read per run (when the run logged the key): curves, collapse onset, headline figures.
HISTORY_KEYS = (
    *TRAINING_CURVES,
    MODES,
    STACKED_MODES,
    STACKED_KL,
    KL_TO_UNIFORM,
    FD,
    PRECISION,
    RECALL,
    DIVERSITY,
    CONTRAST,
)
# Figures shown in the headline table, in this order (those a study logged).
HEADLINE = (
    MODES,
    KL_TO_UNIFORM,
    FD,
    NDB,
    PRECISION,
    RECALL,
    DIVERSITY,
    CONTRAST,
    STRETCHED_MODES,
    STACKED_MODES,
    STACKED_KL,
)

# Columns the analysis adds to the run table.
COLLAPSE_STEP = "collapse_step"
COLLAPSED = "collapsed"
MAX_MODES = "max_modes"
D_SEPARATES_STEP = "d_separates_step"  # the first logged iteration with D(x) > analysis.stats.D_SEPARATES
LOGIT_MARGIN = "logit_margin"  # D's final mean logit on reals minus that on fakes
NEVER_LEARNED = "never_learned"
OUTCOME = "outcome"
# Default collapse threshold: at most this many digits covered from some eval point on. The one definition
# of collapse is analysis.stats.collapse_onset; every report states this threshold.
DEFAULT_COLLAPSE_MODES = 3

# The range each figure can take (the figure registry, gansweep.figures): intervals are clipped to it.
RANGES: dict[str, tuple[float, float]] = {key: (f.low, f.high) for key, f in figures.BY_KEY.items()}
# Figures a contrast table compares (those a study logged), the first one carries the verdict; a contrast of a
# study's report block may list its own (``metrics:``, any figure of RANGES).
CONTRAST_METRICS = (MODES, STRETCHED_MODES, PRECISION, RECALL, FD, CONTRAST)


def short_name(metric: str) -> str:
    """A figure's name for a table column or panel title (the registry's ``short``): ``eval/recall`` ->
    ``recall``, ``eval_stretched/modes_covered`` -> ``stretched digits``; a key the registry does not hold
    loses its ``eval/`` prefix."""
    found = figures.by_key(metric)
    return found.short if found else metric.removeprefix(EVAL_PREFIX)


def figure(metric: str) -> figures.Figure:
    """The registry record of metric key ``metric``."""
    return figures.figure(metric)


def figure_key(name: str) -> str:
    """A figure named in a study file (``stacked_modes_covered``, ``eval/stacked_modes_covered``,
    ``imprint/corr_41``) as the metric key a run logs; ValueError for a figure the registry does not hold."""
    prefixes = (EVAL_PREFIX, STRETCHED_PREFIX, figures.IMPRINT_PREFIX)
    key = name if name.startswith(prefixes) else EVAL_PREFIX + name
    if figures.by_key(key) is None:
        known = ", ".join(sorted(short_name(k) for k in figures.BY_KEY))
        raise ValueError(f"unknown figure {name!r}; known: {known}, {figures.IMPRINT_PREFIX}<iteration>")
    return key


def metric_column(key: str) -> str:
    """Column of the run table holding the final value of metric ``key`` (mlflow.search_runs naming)."""
    return f"metrics.{key}"


def param_column(key: str) -> str:
    """Column of the run table holding param ``key`` cast to its type (mlflow.search_runs naming)."""
    return f"params.{key}"


__all__ = [
    "CLASS_SHARES",
    "CONTRAST",
    "DIVERSITY",
    "D_LOGITS",
    "D_REAL_UNIT",
    "EVAL_PREFIX",
    "FD",
    "KL_TO_UNIFORM",
    "MODES",
    "NDB",
    "N_DIGITS",
    "N_STACKED_MODES",
    "PRECISION",
    "RECALL",
    "REPORT_ARTIFACT_PATH",
    "ROLE_CHILD",
    "ROLE_PARENT",
    "SAMPLES_ARTIFACT",
    "STACKED_KL",
    "STACKED_MODES",
    "STRETCHED_MODES",
    "STRETCHED_PREFIX",
    "STRETCHED_SAMPLES_ARTIFACT",
    "TAG_BLAS_THREADS",
    "TAG_CONFIG_HASH",
    "TAG_DIVERGED",
    "TAG_ERROR",
    "TAG_GIT_COMMIT",
    "TAG_HOST",
    "TAG_LABEL",
    "TAG_LOSS",
    "TAG_MODEL",
    "TAG_OBJECTIVES",
    "TAG_OPTUNA_STORAGE",
    "TAG_OPTUNA_STUDY",
    "TAG_OVERRIDES",
    "TAG_PARENT_RUN",
    "TAG_RECIPE",
    "TAG_ROLE",
    "TAG_RUN_NAME",
    "TAG_SCHEDULE",
    "TAG_SEED",
    "TAG_STUDY",
    "TAG_VERSIONS",
    "TRAINING_CURVES",
]
