"""The search's settings without running anything: Hydra's sweep syntax to Optuna distributions, the refusals
that name the key, and a job's result to the trial's outcome."""

from __future__ import annotations

import optuna
import pytest

from gansweep.run import contract
from gansweep.search.space import parse_space
from gansweep.search.study import SearchError, check_settings, default_storage, public_storage, trial_outcome

D = optuna.distributions


def test_sweep_syntax_maps_to_optuna_distributions() -> None:
    space = parse_space(
        {
            "optimizer.lr": "tag(log, interval(1e-5, 1e-3))",
            "optimizer.beta1": "interval(0.0, 0.9)",
            "train.batch_size": "choice(32, 64, 128)",
            "model.generator.hidden": "choice([128,256],[256,512])",
            "model.z_dim": "range(50, 201, 50)",
            "seed": "1",
        },
        ["train.iterations=300", "model.z_dim=int(interval(10, 20))"],
    )
    d = space.distributions
    assert d["optimizer.lr"] == D.FloatDistribution(1e-5, 1e-3, log=True)
    assert d["optimizer.beta1"] == D.FloatDistribution(0.0, 0.9)
    assert d["train.batch_size"] == D.CategoricalDistribution([32, 64, 128])
    assert d["model.generator.hidden"] == D.CategoricalDistribution(["[128,256]", "[256,512]"])
    assert d["model.z_dim"] == D.IntDistribution(10, 20)  # the command line wins
    assert set(space.fixed) == {"seed=1", "train.iterations=300"}
    overrides = space.overrides(
        {
            "optimizer.lr": 2e-4,
            "optimizer.beta1": 0.5,
            "train.batch_size": 64,
            "model.generator.hidden": "[256,512]",
            "model.z_dim": 12,
        }
    )
    assert "model.generator.hidden=[256,512]" in overrides and "optimizer.lr=0.0002" in overrides
    low, high = space.corners()
    assert "train.batch_size=32" in low and "train.batch_size=128" in high
    assert parse_space({"k": "range(1, 10, 4)"}, []).distributions["k"] == D.IntDistribution(1, 9, step=4)
    log_int = parse_space({"k": "tag(log, int(interval(16, 256)))"}, []).distributions["k"]
    assert log_int == D.IntDistribution(16, 256, log=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("interval(1e-3, 1e-5)", "empty or reversed"),
        ("interval(0.1, 0.1)", "empty or reversed"),
        ("tag(log, interval(0, 1))", "low end > 0"),
        ("range(5, 1)", "empty or reversed"),
        ("choice()", "offers nothing|choice"),
    ],
)
def test_bad_spaces_are_refused_naming_the_key(value: str, message: str) -> None:
    with pytest.raises(SearchError, match=rf"hydra.sweeper.params.optimizer.lr.*({message})|{message}"):
        parse_space({"optimizer.lr": value}, [])


def _settings(**kw):
    base = dict(
        objectives=["eval/fd"],
        directions=["minimize"],
        sampler={"name": "tpe"},
        pruner={"name": "none"},
        n_trials=4,
        n_jobs=None,
    )
    return {**base, **kw}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"n_trials": 0}, "hydra.sweeper.n_trials"),
        ({"n_trials": -3}, "hydra.sweeper.n_trials"),
        ({"n_jobs": 0}, "hydra.sweeper.n_jobs"),
        ({"objectives": []}, "hydra.sweeper.objective"),
        ({"directions": ["down"]}, "hydra.sweeper.direction"),
        ({"directions": ["minimize", "maximize"]}, "hydra.sweeper.direction"),
        ({"sampler": {"name": "grid"}}, "hydra.sweeper.sampler.name"),
        (
            {
                "objectives": ["eval/fd", "eval/modes_covered"],
                "directions": ["minimize", "maximize"],
                "sampler": {"name": "cmaes"},
            },
            "hydra.sweeper.sampler.name=cmaes",
        ),
        (
            {
                "objectives": ["eval/fd", "eval/modes_covered"],
                "directions": ["minimize", "maximize"],
                "pruner": {"name": "median"},
            },
            "hydra.sweeper.pruner.name=median",
        ),
        ({"pruner": {"name": "hyperband"}}, "hydra.sweeper.pruner.name"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(change: dict, key: str) -> None:
    with pytest.raises(SearchError, match=key.replace(".", r"\.")):
        check_settings(**_settings(**change))


def test_several_objectives_take_tpe_random_and_nsgaii() -> None:
    for name in ("tpe", "random", "nsgaii"):
        check_settings(
            **_settings(
                objectives=["eval/fd", "eval/modes_covered"],
                directions=["minimize", "maximize"],
                sampler={"name": name},
            )
        )


def test_a_trial_scores_only_a_finished_run_with_finite_objectives() -> None:
    objectives = ["eval/fd", "eval/modes_covered"]
    done = {"status": contract.FINISHED, "final": {"eval/fd": 12.5, "eval/modes_covered": 10.0}}
    assert trial_outcome(done, objectives).state == "COMPLETE"
    assert trial_outcome(done, objectives).values == (12.5, 10.0)
    nan = {"status": contract.FINISHED, "final": {"eval/fd": float("nan"), "eval/modes_covered": 3.0}}
    assert trial_outcome(nan, objectives).state == "FAIL"
    assert (
        "eval/modes_covered"
        in trial_outcome({"status": contract.FINISHED, "final": {"eval/fd": 1.0}}, objectives).reason
    )
    diverged = trial_outcome({"status": contract.DIVERGED, "detail": "non-finite loss"}, objectives)
    assert diverged.state == "FAIL"
    assert trial_outcome({"status": contract.FAILED, "error": "boom"}, objectives).reason == "FAILED: boom"
    killed = trial_outcome({"status": contract.KILLED, "detail": "stopped by a signal"}, objectives)
    assert killed.state == "FAIL" and killed.interrupted
    assert trial_outcome({"status": contract.PRUNED}, objectives).state == "PRUNED"
    assert trial_outcome(None, objectives).state == "FAIL"


def test_the_storage_sits_beside_the_mlflow_store_and_hides_passwords() -> None:
    assert default_storage("sqlite:////data/x/mlruns.db") == "sqlite:////data/x/optuna.db"
    assert public_storage("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
