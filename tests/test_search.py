"""The Optuna sweeper for real: tiny searches into temporary MLflow stores and Optuna storages, read back from
both. Trials and child runs, continuing a study, pruning, failure, refusals, and a launcher killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from conftest import STOPPABLE, TINY_EVAL, TINY_TRAIN, Store, fault_env, run_train, start_train, sweep_into

from analysis.search import search_report
from gansweep.search.study import ATTR_INTERRUPTED, ATTR_RETRY_OF, ATTR_RUN_ID

pytestmark = pytest.mark.slow
S = optuna.trial.TrialState
TINY = (*TINY_TRAIN, "eval=off")  # the default config (failed1, post recipe) cut to seconds


@pytest.fixture(autouse=True)
def _isolated_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    yield
    mlflow.set_tracking_uri(None)


def search_into(
    tmp: Path, *overrides: str, experiment: str = "smoke", env: dict[str, str] | None = None
) -> Store:
    return sweep_into(tmp, "hydra/sweeper=optuna", *overrides, experiment=experiment, env=env)


def study_of(store: Store, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{store.root / 'optuna.db'}")


def runs_of(store: Store) -> list:
    return mlflow.MlflowClient(store.tracking_uri).search_runs(
        [mlflow.MlflowClient(store.tracking_uri).get_experiment_by_name(store.experiment).experiment_id],
        max_results=1000,
    )


def children(store: Store) -> list:
    return [r for r in runs_of(store) if r.data.tags.get("gansweep.role") == "child"]


def parents(store: Store) -> list:
    return [r for r in runs_of(store) if r.data.tags.get("gansweep.role") == "parent"]


def test_a_search_makes_one_child_per_trial_and_the_same_command_continues_it(tmp_path: Path) -> None:
    """The issue's command: 4 Optuna trials, 4 MLflow children of one parent; again with n_trials=6: 6."""
    args = ("experiment=smoke", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    store = search_into(tmp_path, *args, "hydra.sweeper.n_trials=4")
    assert store.proc.returncode == 0, store.proc.stderr[-4000:]
    study = study_of(store, "smoke")
    trials = study.get_trials()
    assert [t.state for t in trials] == [S.COMPLETE] * 4
    kids = children(store)
    assert len(kids) == 4 and len(parents(store)) == 1
    parent = parents(store)[0]
    assert parent.info.status == "FINISHED"
    assert {k.data.tags["mlflow.parentRunId"] for k in kids} == {parent.info.run_id}
    by_trial = {int(k.data.tags["gansweep.trial"]): k for k in kids}
    assert set(by_trial) == {0, 1, 2, 3}
    for t in trials:
        run = by_trial[t.number]
        assert run.info.status == "FINISHED" and run.data.tags["gansweep.trial_state"] == "COMPLETE"
        assert t.user_attrs[ATTR_RUN_ID] == run.info.run_id
        assert run.data.params["model.name"] == t.params["model"]
        assert t.values[0] == pytest.approx(run.data.metrics["eval/fd"])  # the run's final eval/fd
        assert sorted(t.intermediate_values) == [0, 15, 30]  # every eval point
    assert parent.data.tags["gansweep.optuna_study"] == "smoke"
    assert parent.data.tags["gansweep.objectives"] == "eval/fd:minimize"
    best = [int(n) for n in parent.data.tags["gansweep.best_trials"].split(",")]
    assert best == [t.number for t in study.best_trials]
    assert f"gansweep.best_trial.{best[0]}" in parent.data.tags
    client = mlflow.MlflowClient(store.tracking_uri)
    table = client.download_artifacts(parent.info.run_id, "search/trials.csv", str(tmp_path))
    assert len(Path(table).read_text().splitlines()) == 5

    again = search_into(tmp_path, *args, "hydra.sweeper.n_trials=6")
    assert again.proc.returncode == 0, again.proc.stderr[-4000:]
    assert "4 of 6 trials done" in again.proc.stderr
    assert [t.state for t in study_of(store, "smoke").get_trials()] == [S.COMPLETE] * 6
    assert len(children(store)) == 6 and len(parents(store)) == 2
    assert {k.data.tags["gansweep.trial"] for k in children(store)} == {str(n) for n in range(6)}

    report = search_report(store.tracking_uri, "smoke", tmp_path / "report")
    names = {f.name for f in report.files}
    assert {"trials.csv", "history.png", "report.md"} <= names, report.messages
    assert "importance_0.png" in names or report.messages  # fANOVA needs params that differ
    text = (tmp_path / "report" / "search" / "report.md").read_text()
    assert "6 trials (6 complete)" in text and "## Best trial" in text
    uploaded = client.list_artifacts(report.parent, "analysis/search")
    assert "analysis/search/history.png" in {a.path for a in uploaded}


def test_several_objectives_give_a_pareto_front_on_the_parent_run_and_in_the_analysis(tmp_path: Path) -> None:
    store = search_into(
        tmp_path,
        "study=pareto",
        *TINY_TRAIN,
        *TINY_EVAL,
        "hydra.sweeper.objective=[eval/fd,eval/modes_covered]",
        "hydra.sweeper.direction=[minimize,maximize]",
        "hydra.sweeper.sampler.name=nsgaii",
        "hydra.sweeper.sampler.seed=0",
        "optimizer.lr=tag(log,interval(0.00001,0.001))",
        "hydra.sweeper.n_trials=3",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        experiment="pareto",
    )
    assert store.proc.returncode == 0, store.proc.stderr[-4000:]
    study = study_of(store, "pareto")
    assert [t.state for t in study.get_trials()] == [S.COMPLETE] * 3
    front = sorted(t.number for t in study.best_trials)
    parent = parents(store)[0]
    assert parent.data.tags["gansweep.best_trials"] == ",".join(map(str, front))
    assert parent.data.tags["gansweep.objectives"] == "eval/fd:minimize eval/modes_covered:maximize"
    report = search_report(store.tracking_uri, "pareto", tmp_path / "report", upload=False)
    assert {"pareto.png", "history.png"} <= {f.name for f in report.files}
    assert "## Pareto front" in (tmp_path / "report" / "search" / "report.md").read_text()


def test_a_search_stopped_with_sigterm_leaves_nothing_running_and_continues(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = (
        "-m",
        "hydra/sweeper=optuna",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"tracking.uri={uri}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        "study=stopped",
        *STOPPABLE,
        "hydra.sweeper.objective=[loss_g]",
        "seed=choice(0,1)",
        "hydra.sweeper.sampler.name=random",
        "hydra.sweeper.n_trials=2",
    )
    proc = start_train(*args, "train.iterations=100000", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def both_running() -> bool:
        try:
            trials = optuna.load_study(study_name="stopped", storage=storage).get_trials()
        except Exception:
            return False
        return len(trials) == 2 and all(ATTR_RUN_ID in t.user_attrs for t in trials)

    try:
        _wait_for(both_running, 240, "both trials' runs to start")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    trials = optuna.load_study(study_name="stopped", storage=storage).get_trials()
    assert [t.state for t in trials] == [S.FAIL, S.FAIL]
    assert all(t.user_attrs.get(ATTR_INTERRUPTED) for t in trials)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("stopped").experiment_id
    assert {r.info.status for r in client.search_runs([exp])} == {"KILLED"}

    again = run_train(*args, "train.iterations=20")
    assert again.returncode == 0, again.stderr[-4000:]
    trials = optuna.load_study(study_name="stopped", storage=storage).get_trials()
    assert [t.state for t in trials] == [S.FAIL, S.FAIL, S.COMPLETE, S.COMPLETE]
    assert {t.user_attrs[ATTR_RETRY_OF] for t in trials[2:]} == {0, 1}
    assert "RUNNING" not in {r.info.status for r in client.search_runs([exp])}


def test_hydra_lists_the_sweeper_plugin() -> None:
    proc = run_train("--info", "plugins")
    assert proc.returncode == 0 and "OptunaSweeper" in proc.stdout


def test_a_pruned_trial_ends_killed_with_the_tag_and_the_search_goes_on(tmp_path: Path) -> None:
    """Objective lr (logged every 5 iterations, so which trial is worse is known): a first trial at
    lr ~1e-4 completes; trials at ~1e-3 are worse than that median at their first report and are pruned."""
    common = (
        "study=prune",
        *TINY,
        "hydra.sweeper.objective=[lr]",
        "hydra.sweeper.pruner.name=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
    )
    first = search_into(
        tmp_path,
        *common,
        "optimizer.lr=interval(0.0001,0.00011)",
        "hydra.sweeper.n_trials=1",
        experiment="prune",
    )
    assert first.proc.returncode == 0, first.proc.stderr[-4000:]
    second = search_into(
        tmp_path,
        *common,
        "optimizer.lr=interval(0.001,0.0011)",
        "hydra.sweeper.n_trials=3",
        experiment="prune",
    )
    assert second.proc.returncode == 0, second.proc.stderr[-4000:]  # pruning is no failure
    trials = study_of(second, "prune").get_trials()
    assert [t.state for t in trials] == [S.COMPLETE, S.PRUNED, S.PRUNED]
    assert list(trials[1].intermediate_values) == [5]  # pruned at its first report
    pruned = [k for k in children(second) if k.data.tags["gansweep.trial"] in ("1", "2")]
    assert len(pruned) == 2
    for run in pruned:
        tags = run.data.tags
        assert run.info.status == "KILLED"
        assert tags["gansweep.pruned"] == "true" and tags["gansweep.trial_state"] == "PRUNED"
        assert "pruner" in tags["gansweep.error"]
        assert int(tags["gansweep.iterations_done"]) < 30
    assert [p.info.status for p in parents(second)] == ["FINISHED", "FINISHED"]
    assert "sweep done: 2 pruned" in second.proc.stderr


def test_a_failed_or_diverged_trial_is_a_fail_never_a_score(tmp_path: Path) -> None:
    store = search_into(
        tmp_path,
        "study=faults",
        *TINY,
        "hydra.sweeper.objective=[loss_g]",
        "seed=choice(0,1)",  # at iteration 7 seed 0 raises and seed 1 turns NaN
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.name=random",
        "hydra.sweeper.sampler.seed=3",
        experiment="faults",
        env=fault_env("seed=0@7:raise;seed=1@7:nan"),
    )
    assert store.proc.returncode == 1  # a failed job fails the command, as in a grid
    trials = study_of(store, "faults").get_trials()
    assert [t.state for t in trials] == [S.FAIL, S.FAIL]
    assert all(t.values is None for t in trials)
    for run in children(store):
        assert run.info.status == "FAILED" and run.data.tags["gansweep.trial_state"] == "FAIL"
    assert "trial 0: FAIL" in store.proc.stderr and "trial 1: FAIL" in store.proc.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("hydra.sweeper.objective=[eval/fid]",), "hydra.sweeper.objective: 'eval/fid'"),
        (("optimizer.lr=interval(0.001,0.0001)",), "hydra.sweeper.params.optimizer.lr"),
        (
            (
                "hydra.sweeper.objective=[eval/fd,eval/modes_covered]",
                "hydra.sweeper.direction=[minimize,maximize]",
                "hydra.sweeper.sampler.name=cmaes",
            ),
            "hydra.sweeper.sampler.name=cmaes",
        ),
        (("hydra.sweeper.n_trials=0",), "hydra.sweeper.n_trials=0"),
        (("train.batch_size=choice(0,64)",), "batch_size"),
    ],
)
def test_bad_input_is_refused_before_anything_starts(tmp_path: Path, overrides, message) -> None:
    store = search_into(tmp_path, "study=refused", "optimizer.lr=interval(0.0001,0.001)", *TINY, *overrides)
    assert store.proc.returncode == 2, store.proc.stderr[-3000:]
    assert message in store.proc.stderr
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "optuna.db").exists()


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_a_search_killed_with_sigkill_leaves_nothing_running_after_the_next_invocation(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    args = (
        "-m",
        "hydra/sweeper=optuna",
        f"tracking.uri={uri}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        "study=killed",
        "train.iterations=100000",
        *STOPPABLE,
        "hydra.sweeper.objective=[loss_g]",
        "seed=choice(0)",
        "hydra.sweeper.n_trials=1",
    )
    proc = start_train(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"

    def trial_running() -> bool:
        try:
            trials = optuna.load_study(study_name="killed", storage=storage).get_trials()
        except Exception:
            return False
        return bool(trials) and ATTR_RUN_ID in trials[0].user_attrs

    try:
        _wait_for(trial_running, 240, "the trial's run to start")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    study = optuna.load_study(study_name="killed", storage=storage)
    assert [t.state for t in study.get_trials()] == [S.RUNNING]

    again = run_train(*[a for a in args if not a.startswith("train.iterations")], "train.iterations=20")
    assert again.returncode == 0, again.stderr[-4000:]
    trials = optuna.load_study(study_name="killed", storage=storage).get_trials()
    assert [t.state for t in trials] == [S.FAIL, S.COMPLETE]
    assert trials[0].user_attrs[ATTR_INTERRUPTED] and trials[1].user_attrs[ATTR_RETRY_OF] == 0
    assert trials[1].params == trials[0].params
    client = mlflow.MlflowClient(uri)
    all_runs = client.search_runs([client.get_experiment_by_name("killed").experiment_id])
    assert "RUNNING" not in {r.info.status for r in all_runs}
    killed = [r for r in all_runs if r.data.tags.get("gansweep.trial") == "0"]
    assert len(killed) == 1 and killed[0].info.status == "KILLED"
    assert killed[0].data.tags["gansweep.trial_state"] == "FAIL" and "gansweep.stale" in killed[0].data.tags
