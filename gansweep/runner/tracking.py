"""Everything gansweep says to MLflow. The only module that imports mlflow.

Uses the :class:`mlflow.MlflowClient` API with explicit run ids throughout (never the fluent active-run state,
which a set ``MLFLOW_RUN_ID`` would hijack, mlflow#15713). Sweeps create the store, the experiment and the
parent run once, in the launching process (:func:`prepare_sweep`), and hand the ids to the workers, because
workers creating a fresh sqlite DB at once race into migration errors.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from gansweep import paths
from gansweep.run import contract
from gansweep.runner import processes  # liveness and SIGTERM: stdlib only, imports nothing of gansweep

MAX_PARAM_LEN = 500  # MLflow rejects longer param values
_PARAMS_PER_BATCH = 100
_METRIC_FLUSH_SECONDS = 5.0
_METRIC_FLUSH_COUNT = 900
# MLflow draws a progress bar for every artifact download (a resumed run fetches its one checkpoint);
# those bars only clutter a sweep's log. A user's own setting is kept.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class TrackingError(RuntimeError):
    """The tracking store cannot be used (unreachable server, bad URI); raised before any run starts."""


@dataclass(frozen=True)
class Target:
    """Where runs go: a tracking URI, an experiment (name and id), and the sweep's parent run if any."""

    uri: str
    experiment: str
    experiment_id: str = ""
    parent_run_id: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Target:
        return cls(**json.loads(text))


def _mlflow():
    import mlflow

    return mlflow


def client(uri: str):
    """An MlflowClient bound to ``uri``."""
    return _mlflow().MlflowClient(tracking_uri=uri)


def resolve_uri(uri: str | None) -> str:
    """``None`` -> the embedded default store (absolute sqlite path under the project)."""
    return uri or paths.default_tracking_uri()


def default_artifact_location(uri: str, experiment: str) -> str | None:
    """For a sqlite store, artifacts live beside the DB in ``mlartifacts/<experiment>``; servers decide."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    db = Path(uri[len("sqlite:///") :])
    return (db.parent / "mlartifacts" / experiment).as_uri()


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the URI, when the store cannot be used: an HTTP server that does not answer
    /health, or a sqlite path whose folder cannot be created. Other schemes are left to MLflow."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
                if resp.status != 200:
                    raise TrackingError(
                        f"MLflow tracking server {uri} answered /health with HTTP {resp.status}"
                    )
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError(
                f"MLflow tracking server {uri} is not reachable ({getattr(exc, 'reason', exc)}). Start it "
                "(e.g. `make ui`) or use the embedded store: tracking=sqlite."
            ) from None
    elif parsed.scheme == "sqlite":
        if not uri.startswith("sqlite:////"):
            raise TrackingError(
                f"tracking.uri={uri!r}: use an absolute sqlite path, sqlite:////abs/path/mlruns.db"
            )
        try:
            Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"tracking.uri={uri!r}: cannot create its folder ({exc})") from None
    elif parsed.scheme in ("", "file"):
        raise TrackingError(
            f"tracking.uri={uri!r}: MLflow 3 refuses the file store; "
            "use sqlite:////abs/path/mlruns.db or a server"
        )


def ensure_experiment(uri: str, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created (with an absolute artifact location) when missing.
    Creating the client's store also creates and migrates a fresh sqlite DB."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    try:
        return c.create_experiment(
            name, artifact_location=artifact_location or default_artifact_location(uri, name)
        )
    except Exception:
        exp = c.get_experiment_by_name(name)  # another process created it between the two calls
        if exp is None:
            raise
        return exp.experiment_id


def close_stale_runs(uri: str, experiment_id: str) -> list[str]:
    """Mark KILLED every RUNNING run of the experiment whose process, on this host, is gone (a ``kill -9``
    or a crash). Runs of live processes and of other hosts are left alone. Returns the ids closed."""
    c = client(uri)
    closed = []
    for run in c.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=5000
    ):
        tags = run.data.tags
        pid = tags.get(contract.TAG_PID)
        # a run without a pid (or with one that is no number) is left alone, as one of another host is
        if not pid or not pid.isdigit() or processes.alive(pid, tags.get(contract.TAG_HOST)):
            continue
        c.set_tag(run.info.run_id, contract.TAG_STALE, "process gone; closed by a later invocation")
        c.set_terminated(run.info.run_id, status=contract.KILLED)
        closed.append(run.info.run_id)
    return closed


def close_children(target: Target, grace: float = 30.0) -> list[str]:
    """After an interrupted sweep: end the sweep's children still RUNNING as KILLED. Workers of this host that
    still live get SIGTERM (they checkpoint and close their own runs) and up to ``grace`` seconds; runs whose
    process is gone, or still there after the grace, are closed here. Runs on other hosts are left alone.
    Returns the ids closed here."""
    c = client(target.uri)
    host, me = socket.gethostname(), str(os.getpid())
    query = f"tags.`{contract.TAG_PARENT_RUN}` = '{target.parent_run_id}' and attributes.status = 'RUNNING'"

    def running() -> list[Any]:
        found = c.search_runs([target.experiment_id], filter_string=query, max_results=5000)
        return [run for run in found if run.data.tags.get(contract.TAG_HOST) == host]

    def live_workers() -> list[int]:
        pids = (run.data.tags.get(contract.TAG_PID, "") for run in running())
        return [int(pid) for pid in pids if pid != me and processes.alive(pid)]

    processes.terminate(live_workers, grace)
    closed = []
    for run in running():
        c.set_tag(run.info.run_id, contract.TAG_STALE, "the sweep was interrupted; closed by its launcher")
        c.set_terminated(run.info.run_id, status=contract.KILLED)
        closed.append(run.info.run_id)
    return closed


def _process_tags() -> dict[str, str]:
    return {contract.TAG_HOST: socket.gethostname(), contract.TAG_PID: str(os.getpid())}


def git_commit() -> str:
    """The project's HEAD commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    root = paths.project_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> str:
    """Versions of Python and the stack, as one compact string."""
    pkgs = ("gansweep", "numpy", "hydra-core", "mlflow", "pandas", "matplotlib")
    found = []
    for p in pkgs:
        try:
            found.append(f"{p}={metadata.version(p)}")
        except metadata.PackageNotFoundError:
            continue
    return " ".join([f"python={platform.python_version()}", *found])


def prepare_sweep(
    uri: str, experiment: str, study: str, overrides: Iterable[str], artifact_location: str | None = None
) -> Target:
    """In the launching process: create the store and experiment (with ``artifact_location`` when it is
    new), close stale runs, start the parent run."""
    check_reachable(uri)
    exp_id = ensure_experiment(uri, experiment, artifact_location)
    close_stale_runs(uri, exp_id)
    tags = {
        contract.TAG_ROLE: contract.ROLE_PARENT,
        contract.TAG_STUDY: study,
        contract.TAG_OVERRIDES: " ".join(overrides)[:5000],
        contract.TAG_GIT_COMMIT: git_commit(),
        **_process_tags(),
    }
    run = client(uri).create_run(
        exp_id, tags=tags, run_name=f"{study}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    return Target(uri, experiment, exp_id, run.info.run_id)


def finish_sweep(target: Target, statuses: Mapping[str, int]) -> bool:
    """Close the parent run: FAILED when any job failed or was killed (a search's pruned trials are not),
    else FINISHED; counts as tags.

    When every job was skipped (all already FINISHED), the parent run holds nothing: it is deleted (MLflow
    keeps it restorable), so re-running a study does not pile up empty parents. Returns whether it was."""
    c = client(target.uri)
    for status, n in statuses.items():
        c.set_tag(target.parent_run_id, f"{contract.JOBS_TAG_PREFIX}{status.lower()}", str(n))
    bad = any(
        n for s, n in statuses.items() if s not in (contract.FINISHED, contract.SKIPPED, contract.PRUNED)
    )
    c.set_terminated(target.parent_run_id, status=contract.FAILED if bad else contract.FINISHED)
    if statuses and set(statuses) == {contract.SKIPPED}:
        c.delete_run(target.parent_run_id)
        return True
    return False


def find_run(target: Target, config_hash: str, statuses: tuple[str, ...]) -> Any | None:
    """The newest run of the experiment with this config hash and one of ``statuses``, or None."""
    found = []
    same_hash = f"tags.`{contract.TAG_CONFIG_HASH}` = '{config_hash}'"
    for status in statuses:  # MLflow's filter grammar has no IN for attributes.status
        found += client(target.uri).search_runs(
            [target.experiment_id],
            filter_string=f"{same_hash} and attributes.status = '{status}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    return max(found, key=lambda r: r.info.start_time) if found else None


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= MAX_PARAM_LEN else text[: MAX_PARAM_LEN - 3] + "..."


def start_child(target: Target, name: str, tags: Mapping[str, str], params: Iterable[tuple[str, Any]]) -> str:
    """Create a run (a child of the sweep's parent when there is one), with tags and dotted params."""
    mlflow = _mlflow()
    role = contract.ROLE_CHILD if target.parent_run_id else contract.ROLE_SINGLE
    all_tags = {**tags, **_process_tags(), contract.TAG_ROLE: role}
    if target.parent_run_id:
        all_tags[contract.TAG_PARENT_RUN] = target.parent_run_id
    c = client(target.uri)
    run_id = c.create_run(target.experiment_id, tags=all_tags, run_name=name).info.run_id
    items = [mlflow.entities.Param(k, _param_value(v)) for k, v in params]
    for i in range(0, len(items), _PARAMS_PER_BATCH):
        c.log_batch(run_id, params=items[i : i + _PARAMS_PER_BATCH])
    return run_id


def has_checkpoint(uri: str, run_id: str) -> bool:
    """Whether the run holds ``checkpoint/last.npz`` (a run killed before its first checkpoint does not)."""
    artifacts = client(uri).list_artifacts(run_id, contract.CHECKPOINT_DIR)
    return any(a.path == contract.CHECKPOINT_ARTIFACT for a in artifacts)


def get_run(uri: str, run_id: str) -> Any | None:
    """The run with this id, or None when the store has none."""
    try:
        return client(uri).get_run(run_id)
    except _mlflow().exceptions.MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def reopen(target: Target, run_id: str) -> None:
    """Set a killed or failed run RUNNING again (a resume), owned by this process. The tags its end set
    (``gansweep.error``, ``gansweep.diverged``, ``gansweep.stale``) are cleared, each kept as
    ``gansweep.previous_<name>``. Resumed inside a sweep, the run moves to that sweep's parent run (the old
    parent is kept as ``gansweep.previous_parent``), so the sweep that finishes it lists it."""
    c = client(target.uri)
    tags = c.get_run(run_id).data.tags
    for tag in contract.CLEARED_ON_RESUME:
        if tag in tags:
            c.set_tag(run_id, contract.previous_tag(tag), tags[tag])
            c.delete_tag(run_id, tag)
    old_parent = tags.get(contract.TAG_PARENT_RUN)
    if target.parent_run_id and old_parent != target.parent_run_id:
        if old_parent:
            c.set_tag(run_id, contract.TAG_PREVIOUS_PARENT, old_parent)
        c.set_tag(run_id, contract.TAG_PARENT_RUN, target.parent_run_id)
        c.set_tag(run_id, contract.TAG_ROLE, contract.ROLE_CHILD)
    c.update_run(run_id, status="RUNNING")
    for k, v in _process_tags().items():
        c.set_tag(run_id, k, v)
    c.set_tag(run_id, contract.TAG_RESUMED, "true")


def end_run(uri: str, run_id: str, status: str, tags: Mapping[str, str] | None = None) -> None:
    """Record the final tags and terminate the run with ``status`` (FINISHED | FAILED | KILLED)."""
    c = client(uri)
    for k, v in (tags or {}).items():
        c.set_tag(run_id, k, str(v)[:5000])
    c.set_terminated(run_id, status=status)


def set_tags(uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    """Set tags on a run (values cut to MLflow's 5,000 characters)."""
    c = client(uri)
    for k, v in tags.items():
        c.set_tag(run_id, k, str(v)[:5000])


def log_texts(uri: str, run_id: str, files: Mapping[str, str], artifact_path: str) -> None:
    """Log each ``{file name: text}`` as an artifact of the run under ``artifact_path``."""
    c = client(uri)
    for name, text in files.items():
        c.log_text(run_id, text, f"{artifact_path}/{name}")


def download_checkpoint(uri: str, run_id: str, dst: Path) -> Path | None:
    """The run's ``checkpoint/last.npz`` downloaded into ``dst``, or None when it has none."""
    dst.mkdir(parents=True, exist_ok=True)
    try:
        return Path(client(uri).download_artifacts(run_id, contract.CHECKPOINT_ARTIFACT, str(dst)))
    except Exception:
        return None


class MlflowRunLogger:
    """The training loop's logger for one MLflow run. Metrics are buffered and sent with ``log_batch``
    every few seconds (so a batch-1 run does not pay a database write per log line); images and files
    go straight to the run's artifacts. Call :meth:`flush` before ending the run."""

    def __init__(self, uri: str, run_id: str):
        self.uri, self.run_id = uri, run_id
        self.client = client(uri)
        self._metric = _mlflow().entities.Metric
        self._buffer: list[Any] = []
        self._last_flush = time.monotonic()

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        ts = int(time.time() * 1000)
        self._buffer.extend(self._metric(k, float(v), ts, step) for k, v in metrics.items())
        if (
            len(self._buffer) >= _METRIC_FLUSH_COUNT
            or time.monotonic() - self._last_flush > _METRIC_FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        while self._buffer:
            chunk, self._buffer = self._buffer[:_METRIC_FLUSH_COUNT], self._buffer[_METRIC_FLUSH_COUNT:]
            self.client.log_batch(self.run_id, metrics=chunk)
        self._last_flush = time.monotonic()

    def log_image(self, mosaic: np.ndarray, key: str, step: int) -> None:
        self.client.log_image(self.run_id, mosaic, key=key, step=step)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)
