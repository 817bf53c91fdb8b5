"""The tests' fault injection (tests/faults/sitecustomize.py): its rules, its wrap of the loop's step (the
loop's one seam, ``gansweep.run.loop.train_step``) in a real run, and its install in a process started with
:func:`conftest.fault_env`. The sweeps that use it are in test_runner_launchers.py, test_search.py and the
SLURM test."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import FAULTS, RESUMABLE, ROOT, _env, fault_env
from hydra import compose
from omegaconf import OmegaConf

from gansweep.run import contract, loop
from gansweep.run.logger import NullLogger

_spec = importlib.util.spec_from_file_location("fault_hook", FAULTS / "sitecustomize.py")
faults = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(faults)  # GANSWEEP_TEST_FAULT unset here: nothing is installed


def test_rules_parse_and_the_first_that_holds_wins() -> None:
    rules = faults.parse("seed=0@4:raise; seed=1@5:nan;7:raise")
    assert rules == [("seed=0", 4, "raise"), ("seed=1", 5, "nan"), (None, 7, "raise")]
    assert faults.fault_of(rules, ["train.iterations=12", "seed=1"]) == ("seed=1", 5, "nan")
    assert faults.fault_of(rules, ["seed=2"]) == (None, 7, "raise")
    assert faults.fault_of(rules[:2], ["seed=2"]) is None
    for bad in ("seed=0@x:raise", "4:diverge", "4"):
        with pytest.raises(ValueError, match="GANSWEEP_TEST_FAULT"):
            faults.parse(bad)


@pytest.fixture
def cfg(hydra_conf) -> dict:
    return OmegaConf.to_container(compose("config", overrides=list(RESUMABLE)), resolve=True)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_the_wrapped_step_raises_or_diverges_a_real_run(cfg, tmp_path, monkeypatch) -> None:
    step = loop.train_step
    monkeypatch.setattr(loop, "train_step", faults.wrap(step, faults.parse("seed=1@2:raise;3:nan")))
    diverged = loop.train(cfg, logger=NullLogger(), workdir=tmp_path / "d")  # no Hydra job: only 3:nan holds
    assert diverged.status == contract.DIVERGED and diverged.iteration == 4, diverged
    monkeypatch.setattr(loop, "train_step", faults.wrap(step, faults.parse("2:raise")))
    with pytest.raises(RuntimeError, match="injected fault at iteration 2"):
        loop.train(cfg, logger=NullLogger(), workdir=tmp_path / "r")
    monkeypatch.setattr(loop, "train_step", faults.wrap(step, faults.parse("99:raise")))
    assert loop.train(cfg, logger=NullLogger(), workdir=tmp_path / "f").status == contract.FINISHED


def test_a_process_started_with_fault_env_wraps_the_step_once_it_imports_the_loop() -> None:
    code = (
        "import sys; assert 'gansweep' not in sys.modules;"  # nothing of gansweep imported at start-up
        "import gansweep.run.loop as L; print(L.train_step.__name__, L.train_step.__wrapped__.__module__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(fault_env("seed=0@4:raise")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["faulty_step", "gansweep.run.loop"]
    plain = subprocess.run(
        [sys.executable, "-c", "import gansweep.run.loop as L; print(L.train_step.__name__)"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.stdout.split() == ["train_step"], plain.stderr[-3000:]
