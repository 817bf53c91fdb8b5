"""Faults injected into training jobs from outside the product, for the failure-handling tests.

A test starts ``gansweep-train`` with this folder first on ``PYTHONPATH`` and ``GANSWEEP_TEST_FAULT`` set
(``conftest.fault_env`` builds both). Python imports this module at start-up in every process that
environment reaches (the launching process, joblib's workers, submitit's SLURM jobs: sbatch exports the
submitting environment). When ``gansweep.run.loop`` is imported, its ``train_step`` (the step the loop looks
up at every iteration) is wrapped so that a job faults at the iteration its rule names.

``GANSWEEP_TEST_FAULT`` is a ``;``-separated list of rules ``[<override>@]<iteration>:<kind>``:

* ``<override>``: the rule holds for a job whose Hydra overrides include it as written (``seed=1``); a rule
  without one holds for every job. The first rule that holds wins.
* ``<iteration>``: the iteration (from 0) before whose step the fault strikes.
* ``<kind>``: ``raise`` (the step raises ``RuntimeError("injected fault at iteration <i> ...")``) or ``nan``
  (G's first weight turns NaN, so that step's losses are non-finite and the run diverges).

Example: ``seed=0@4:raise;seed=1@4:nan`` faults the seed-0 job by raising and diverges the seed-1 job, both
at iteration 4, and leaves the others alone.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

ENV = "GANSWEEP_TEST_FAULT"
LOOP = "gansweep.run.loop"
KINDS = ("raise", "nan")


class Rule(NamedTuple):
    override: str | None
    iteration: int
    kind: str


def parse(spec: str) -> list[Rule]:
    """The rules of a ``GANSWEEP_TEST_FAULT`` value; a malformed one raises ``ValueError``."""
    rules = []
    for text in filter(None, (part.strip() for part in spec.split(";"))):
        override, _, fault = text.rpartition("@")
        at, _, kind = fault.partition(":")
        if not at.isdigit() or kind not in KINDS:
            raise ValueError(f"{ENV}: {text!r} is not [<override>@]<iteration>:{'|'.join(KINDS)}")
        rules.append(Rule(override or None, int(at), kind))
    return rules


def job_overrides() -> list[str]:
    """The running Hydra job's overrides (``hydra.overrides.task``), or none outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def fault_of(rules: Sequence[Rule], overrides: Sequence[str]) -> Rule | None:
    """The first rule that holds for a job with ``overrides``, or None."""
    return next((r for r in rules if r.override is None or r.override in overrides), None)


def wrap(step: Callable[..., Any], rules: Sequence[Rule]) -> Callable[..., Any]:
    """``step`` (the loop's ``train_step``) with the faults of ``rules`` injected before it runs."""

    def faulty_step(setup: Any, scale: str, batch: int, it: int, **kw: Any) -> Any:
        if any(r.iteration == it for r in rules):
            rule = fault_of(rules, job_overrides())
            if rule is not None and rule.iteration == it:
                if rule.kind == "raise":
                    raise RuntimeError(f"injected fault at iteration {it} ({ENV})")
                next(iter(setup.gan.G.params.values()))[...] = float("nan")
        return step(setup, scale, batch, it, **kw)

    faulty_step.__wrapped__ = step  # type: ignore[attr-defined]
    return faulty_step


class _WrapOnImport(importlib.abc.MetaPathFinder):
    """Finds ``gansweep.run.loop`` through the other finders and wraps its ``train_step`` once it has run
    (so nothing of gansweep is imported before the process itself imports it)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != LOOP:
            return None
        sys.meta_path.remove(self)  # once: the module is imported once per process
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        run_module = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run_module(module)
            module.train_step = wrap(module.train_step, self.rules)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get(ENV):
    sys.meta_path.insert(0, _WrapOnImport(parse(os.environ[ENV])))
