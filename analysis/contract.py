"""Names from the runner -> analysis contract (docs/ARCHITECTURE.md, "What a run logs to MLflow"), plus the
column names the analysis adds. The one place a renamed tag or metric has to be changed."""

from __future__ import annotations

TAG_ROLE = "gansweep.role"
ROLE_PARENT = "parent"
ROLE_CHILD = "child"
TAG_STUDY = "gansweep.study"
TAG_LABEL = "gansweep.config_label"
TAG_SEED = "gansweep.seed"
TAG_MODEL = "gansweep.model"
TAG_RECIPE = "gansweep.recipe"
TAG_DIVERGED = "gansweep.diverged"
TAG_ERROR = "gansweep.error"
TAG_PARENT_RUN = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"

TRAINING_CURVES = ("loss_d", "loss_g", "d_real", "d_fake")
MODES = "eval/modes_covered"
KL_TO_UNIFORM = "eval/kl_to_uniform"
FD = "eval/fd"
NDB = "eval/ndb_k"
PRECISION = "eval/precision"
RECALL = "eval/recall"
STACKED_MODES = "eval/stacked_modes_covered"
DIVERSITY = "eval/diversity_ratio"
CONTRAST = "eval/contrast"
STRETCHED_MODES = "eval_stretched/modes_covered"
CLASS_SHARES = tuple(f"eval/class_share_{digit}" for digit in range(10))
N_DIGITS = 10
N_STACKED_MODES = 1000

# Metric histories read per run (when the run logged the key): curves, collapse onset, headline figures.
HISTORY_KEYS = (*TRAINING_CURVES, MODES, STACKED_MODES, KL_TO_UNIFORM, FD, PRECISION, RECALL, DIVERSITY)
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
)

SAMPLES_ARTIFACT = "samples_final.png"
# The same samples with each image's contrast stretched (as matplotlib's imshow, and the post, showed them).
STRETCHED_SAMPLES_ARTIFACT = "samples_final_stretched.png"
# Artifact folder of the parent run that receives the regenerated report.
REPORT_ARTIFACT_PATH = "analysis"

# Columns the analysis adds to the run table.
COLLAPSE_STEP = "collapse_step"
COLLAPSED = "collapsed"
# Default collapse threshold: at most this many digits covered from some eval point on. The one definition
# of collapse is analysis.stats.collapse_onset; every report states this threshold.
DEFAULT_COLLAPSE_MODES = 3

# The range each figure can take: confidence intervals are clipped to it (and the report says so).
RANGES: dict[str, tuple[float, float]] = {
    MODES: (0.0, float(N_DIGITS)),
    STRETCHED_MODES: (0.0, float(N_DIGITS)),
    STACKED_MODES: (0.0, float(N_STACKED_MODES)),
    KL_TO_UNIFORM: (0.0, float("inf")),
    FD: (0.0, float("inf")),
    NDB: (0.0, 1.0),
    PRECISION: (0.0, 1.0),
    RECALL: (0.0, 1.0),
    DIVERSITY: (0.0, float("inf")),
    CONTRAST: (0.0, 1.0),
    **{share: (0.0, 1.0) for share in CLASS_SHARES},
}
# Fewer completed seeds than this: the report gives no interval (it would say nothing).
MIN_N_FOR_CI = 3
# Figures a contrast table compares (those a study logged), the first one carries the verdict.
CONTRAST_METRICS = (MODES, STRETCHED_MODES, PRECISION, RECALL, FD, CONTRAST)


def short_name(metric: str) -> str:
    """A figure's name for a table column or panel title: ``eval/recall`` -> ``recall``,
    ``eval_stretched/modes_covered`` -> ``stretched modes``."""
    return metric.replace(STRETCHED_MODES, "stretched modes").removeprefix("eval/")


def metric_column(key: str) -> str:
    """Column of the run table holding the final value of metric ``key`` (mlflow.search_runs naming)."""
    return f"metrics.{key}"


def param_column(key: str) -> str:
    """Column of the run table holding param ``key`` cast to its type (mlflow.search_runs naming)."""
    return f"params.{key}"
