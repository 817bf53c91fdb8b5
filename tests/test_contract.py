"""The run contract is one module both sides import, and its names match what the writers produce."""

from __future__ import annotations

import ast

from conftest import ROOT

from analysis import contract as analysis_contract
from gansweep import contract as K
from gansweep.metrics.evaluator import METRIC_GROUPS, STACKED_FIGURES, groups_table


def _modules(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return found | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_the_contract_needs_only_the_standard_library() -> None:
    """The contract imports only the figure registry (for the metric-key prefixes), and the registry only
    the standard library, so either side imports them without the other's dependencies."""
    assert _modules("gansweep/contract.py") <= {"__future__", "gansweep.figures"}
    assert _modules("gansweep/figures.py") <= {"__future__", "math", "dataclasses"}


def test_the_analysis_reads_the_names_the_writers_write() -> None:
    for name in ("TAG_ROLE", "TAG_LABEL", "TAG_SEED", "TAG_DIVERGED", "MODES", "SAMPLES_ARTIFACT"):
        assert getattr(analysis_contract, name) is getattr(K, name)


def test_every_eval_metric_of_the_contract_is_a_figure_of_the_evaluator() -> None:
    figures = {f for figs in METRIC_GROUPS.values() for f in figs} | set(STACKED_FIGURES)
    names = [K.MODES, K.KL_TO_UNIFORM, K.FD, K.NDB, K.PRECISION, K.RECALL, K.STACKED_MODES, K.DIVERSITY]
    for key in [*names, K.CONTRAST, *K.CLASS_SHARES]:
        assert key.startswith(K.EVAL_PREFIX) and key.removeprefix(K.EVAL_PREFIX) in figures, key
    assert K.STRETCHED_MODES.removeprefix(K.STRETCHED_PREFIX) in METRIC_GROUPS["modes"]


def test_the_docs_show_the_metric_groups_as_declared() -> None:
    assert groups_table() in (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def test_the_raw_g_figures_are_figures_of_the_evaluator() -> None:
    figures = {f for figs in METRIC_GROUPS.values() for f in figs}
    assert set(K.RAW_FIGURES) <= figures
    assert set(K.RAW_STACKED_FIGURES) <= figures | set(STACKED_FIGURES)
    for key in (K.RAW_MODES, K.RAW_FD):
        assert key.removeprefix(K.EVAL_RAW_PREFIX) in K.RAW_FIGURES
