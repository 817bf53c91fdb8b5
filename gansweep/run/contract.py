"""The run contract: every name a run writes to MLflow and the analysis reads back (tags, statuses, metric
keys, artifacts). The one place to rename one; the writers (``gansweep.run``, ``gansweep.runner`` and its
``tracking``, ``gansweep.search``) and ``analysis/`` import it. Standard library only, so either side can
import it without the other's dependencies. docs/ARCHITECTURE.md, "What a run logs to MLflow", describes
each name.
"""

from __future__ import annotations

from gansweep.figures import EVAL_PREFIX, IMPRINT_PREFIX, STRETCHED_PREFIX

# --------------------------------------------------------------------------------------------------- tags
# Set on every run (parent, child or single) by gansweep.
TAG_ROLE = "gansweep.role"
ROLE_PARENT = "parent"  # a sweep's run, holding the study's report
ROLE_CHILD = "child"  # one job of a sweep
ROLE_SINGLE = "single"  # a job run on its own
TAG_STUDY = "gansweep.study"
TAG_OVERRIDES = "gansweep.overrides"
TAG_GIT_COMMIT = "gansweep.git_commit"
TAG_HOST = "gansweep.host"  # with TAG_PID: which process owns a RUNNING run (stale-run detection)
TAG_PID = "gansweep.pid"

# Set on a job's run: what it trains.
TAG_MODEL = "gansweep.model"
TAG_RECIPE = "gansweep.recipe"
TAG_POST = "gansweep.post"
TAG_ABLATION = "gansweep.ablation"
TAG_LOSS = "gansweep.loss"
TAG_SCHEDULE = "gansweep.schedule"
TAG_SEED = "gansweep.seed"
TAG_CONFIG_HASH = "gansweep.config_hash"  # config.config_hash: finds a config's earlier runs (skip, resume)
TAG_LABEL = "gansweep.config_label"  # the job's overrides without seed and control keys
TAG_VERSIONS = "gansweep.versions"
TAG_BLAS_THREADS = "gansweep.blas_threads"

# Set when a run ends or is closed by someone else.
TAG_ITERATIONS_DONE = "gansweep.iterations_done"
TAG_DIVERGED = "gansweep.diverged"  # "true" on a run stopped on a non-finite loss (its status: FAILED)
TAG_ERROR = "gansweep.error"
TAG_STALE = "gansweep.stale"  # closed KILLED because its process was gone
TAG_RESUMED = "gansweep.resumed"
# A resume clears the tags a run's end set, keeping each as ``gansweep.previous_<name>``.
CLEARED_ON_RESUME = (TAG_ERROR, TAG_DIVERGED, TAG_STALE)
TAG_PREVIOUS_PARENT = "gansweep.previous_parent"
# On a sweep's parent run: ``gansweep.jobs_<status>``, how many jobs ended so.
JOBS_TAG_PREFIX = "gansweep.jobs_"

# A hyperparameter search (hydra/sweeper=optuna). On each trial's run: its number in the Optuna study and the
# state Optuna recorded (COMPLETE | PRUNED | FAIL); a pruned run (status KILLED) also gets TAG_PRUNED "true".
TAG_TRIAL = "gansweep.trial"
TAG_TRIAL_STATE = "gansweep.trial_state"
TAG_PRUNED = "gansweep.pruned"
# On the search's parent run: the Optuna study (name, storage URL without password), what it optimises
# ("eval/fd:minimize eval/modes_covered:maximize"), the best trial's or the Pareto front's numbers, and per
# best trial its values and params (TAG_BEST_PREFIX + number). The full tables: artifacts under SEARCH_DIR.
TAG_OPTUNA_STUDY = "gansweep.optuna_study"
TAG_OPTUNA_STORAGE = "gansweep.optuna_storage"
TAG_OBJECTIVES = "gansweep.objectives"
TAG_BEST_TRIALS = "gansweep.best_trials"
TAG_BEST_PREFIX = "gansweep.best_trial."
SEARCH_DIR = "search"  # trials.csv, best_trials.csv

# MLflow's own tags.
TAG_PARENT_RUN = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"


def previous_tag(tag: str) -> str:
    """Where a resume keeps ``tag``'s old value: ``gansweep.error`` -> ``gansweep.previous_error``."""
    return tag.replace("gansweep.", "gansweep.previous_", 1)


# ----------------------------------------------------------------------------------------------- statuses
# How a training loop can end (gansweep.run.loop.Result.status), and the MLflow status each is recorded as: a
# diverged run ends FAILED with TAG_DIVERGED "true". Job outcomes of the runner that are no loop's end
# (SKIPPED, FAILED) keep their names.
FINISHED, KILLED, FAILED, DIVERGED, SKIPPED = "FINISHED", "KILLED", "FAILED", "DIVERGED", "SKIPPED"
# A search's trial stopped by its pruner: the run is KILLED (with TAG_PRUNED), and the sweep goes on.
PRUNED = "PRUNED"
_RECORDED_AS = {DIVERGED: FAILED, PRUNED: KILLED}


def recorded_status(status: str) -> str:
    """The MLflow run status (and the sweep summary's count) of a job that ended with ``status``."""
    return _RECORDED_AS.get(status, status)


# ---------------------------------------------------------------------------------------------- metrics
# Training curves, averaged over each log window (plus ``lr`` and ``img_per_s``).
TRAINING_CURVES = ("loss_d", "loss_g", "d_real", "d_fake")
GRAD_NORMS = ("grad_norm_d", "grad_norm_g")
# D's mean logit on the real and on the fake batch of each D step, before its update (window means, beside
# d_real / d_fake, D's mean outputs): their difference is D's logit margin.
D_LOGITS = ("d_real_logit", "d_fake_logit")
# Runs whose reals are in 0-255 (data.scale raw255): D's mean output, before its update, on the same real
# batch rescaled to [0, 1] (window mean). Near d_real: D reads the digits; near d_fake: D separates by
# magnitude alone.
D_REAL_UNIT = "d_real_unit"
# train.imprint_steps' figures (IMPRINT_PREFIX + iteration): gansweep.figures.imprint_figure.


def imprint_key(step: int) -> str:
    """The metric of ``train.imprint_steps`` entry ``step``: ``imprint/corr_<step>``."""
    return f"{IMPRINT_PREFIX}{int(step)}"


# Evaluator figures are logged as EVAL_PREFIX + figure name; those of the contrast-stretched samples as
# STRETCHED_PREFIX + figure name (defined with the figures, gansweep.figures).
# With model.g_ema (G's weight average) on, the eval figures come from the averaged G; the trained G's main
# figures at the same eval point and noise are logged as EVAL_RAW_PREFIX + figure name: modes_covered,
# kl_to_uniform and fd (Stacked MNIST: stacked_modes_covered, stacked_kl_to_uniform and fd).
EVAL_RAW_PREFIX = "eval_raw/"
RAW_FIGURES = ("modes_covered", "kl_to_uniform", "fd")
RAW_STACKED_FIGURES = ("stacked_modes_covered", "stacked_kl_to_uniform", "fd")
RAW_MODES = EVAL_RAW_PREFIX + "modes_covered"
RAW_FD = EVAL_RAW_PREFIX + "fd"
# Logged instead of the figures at an eval point where G's samples are not finite.
NONFINITE = EVAL_PREFIX + "nonfinite_fraction"
MODES = EVAL_PREFIX + "modes_covered"
KL_TO_UNIFORM = EVAL_PREFIX + "kl_to_uniform"
FD = EVAL_PREFIX + "fd"
NDB = EVAL_PREFIX + "ndb_k"
PRECISION = EVAL_PREFIX + "precision"
RECALL = EVAL_PREFIX + "recall"
STACKED_MODES = EVAL_PREFIX + "stacked_modes_covered"
STACKED_KL = EVAL_PREFIX + "stacked_kl_to_uniform"
DIVERSITY = EVAL_PREFIX + "diversity_ratio"
CONTRAST = EVAL_PREFIX + "contrast"
STRETCHED_MODES = STRETCHED_PREFIX + "modes_covered"
N_DIGITS = 10
N_STACKED_MODES = 1000
CLASS_SHARES = tuple(f"{EVAL_PREFIX}class_share_{digit}" for digit in range(N_DIGITS))

# ---------------------------------------------------------------------------------------------- artifacts
CHECKPOINT_FILE = "last.npz"
CHECKPOINT_DIR = "checkpoint"  # artifact folder of CHECKPOINT_FILE
CHECKPOINT_ARTIFACT = f"{CHECKPOINT_DIR}/{CHECKPOINT_FILE}"
SAMPLES_ARTIFACT = "samples_final.png"
# The same samples with each image's contrast stretched (as matplotlib's imshow, and the post, showed them).
STRETCHED_SAMPLES_ARTIFACT = "samples_final_stretched.png"
PROGRESS_ARTIFACT = "progress.gif"
CONFIG_DIR = "config"  # the resolved config (resolved.yaml)
HYDRA_DIR = "hydra"  # Hydra's own files of the job
# Image keys: the fixed-noise grid every train.sample_every iterations, the post's fresh-noise grids.
SAMPLES_IMAGE = "samples"
FRESH_GRID_IMAGE = "samples_fresh"
# Artifact folder of the parent run that receives the regenerated report.
REPORT_ARTIFACT_PATH = "analysis"
