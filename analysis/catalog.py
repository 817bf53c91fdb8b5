"""The analysis's catalog: which figures it reads of a run and shows, in which order, and the columns it adds
to the run table. The names a run writes (tags, metric keys, artifacts) are the run contract's,
:mod:`gansweep.run.contract`, which the analysis imports as it is; what each figure is (range, better
direction, minimum meaningful difference, words, caption) is the figure registry's,
:mod:`gansweep.figures`."""

from __future__ import annotations

from gansweep import figures
from gansweep.run import contract

# Metric histories read per run (when the run logged the key): curves, collapse onset, headline figures.
HISTORY_KEYS = (
    *contract.TRAINING_CURVES,
    contract.MODES,
    contract.STACKED_MODES,
    contract.STACKED_KL,
    contract.KL_TO_UNIFORM,
    contract.FD,
    contract.PRECISION,
    contract.RECALL,
    contract.DIVERSITY,
    contract.CONTRAST,
)
# Figures shown in the headline table, in this order (those a study logged).
HEADLINE = (
    contract.MODES,
    contract.KL_TO_UNIFORM,
    contract.FD,
    contract.NDB,
    contract.PRECISION,
    contract.RECALL,
    contract.DIVERSITY,
    contract.CONTRAST,
    contract.STRETCHED_MODES,
    contract.STACKED_MODES,
    contract.STACKED_KL,
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
CONTRAST_METRICS = (
    contract.MODES,
    contract.STRETCHED_MODES,
    contract.PRECISION,
    contract.RECALL,
    contract.FD,
    contract.CONTRAST,
)


def short_name(metric: str) -> str:
    """A figure's name for a table column or panel title (the registry's ``short``): ``eval/recall`` ->
    ``recall``, ``eval_stretched/modes_covered`` -> ``stretched digits``; a key the registry does not hold
    loses its ``eval/`` prefix."""
    found = figures.by_key(metric)
    return found.short if found else metric.removeprefix(contract.EVAL_PREFIX)


def figure(metric: str) -> figures.Figure:
    """The registry record of metric key ``metric``."""
    return figures.figure(metric)


def figure_key(name: str) -> str:
    """A figure named in a study file (``stacked_modes_covered``, ``eval/stacked_modes_covered``,
    ``imprint/corr_41``) as the metric key a run logs; ValueError for a figure the registry does not hold."""
    prefixes = (contract.EVAL_PREFIX, contract.STRETCHED_PREFIX, figures.IMPRINT_PREFIX)
    key = name if name.startswith(prefixes) else contract.EVAL_PREFIX + name
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
