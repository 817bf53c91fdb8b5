"""The run contract is one module both sides import, and its names match what the writers produce."""

from __future__ import annotations

import ast

import optuna
from conftest import ROOT

from analysis import catalog
from gansweep.metrics.evaluator import METRIC_GROUPS, STACKED_FIGURES, groups_table
from gansweep.run import contract


def _modules(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return found | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_the_contract_needs_only_the_standard_library() -> None:
    """The contract imports only the figure registry (for the metric-key prefixes), and the registry only
    the standard library, so either side imports them without the other's dependencies."""
    assert _modules("gansweep/run/contract.py") <= {"__future__", "gansweep.figures"}
    assert _modules("gansweep/figures.py") <= {"__future__", "math", "dataclasses"}


def test_the_analysis_spells_the_run_names_only_through_the_contract() -> None:
    """No analysis module restates a name a run writes: no tag, metric key or run status as a string literal
    (generic words the contract also uses, such as the ``config`` folder, and Optuna's trial states, which a
    search's tables name, are left out), and the analysis catalog defines none of the contract's names."""
    optuna_states = {state.name for state in optuna.trial.TrialState}
    distinctive = {
        value: name
        for name, value in vars(contract).items()
        if name.isupper()
        and isinstance(value, str)
        and ("." in value or "/" in value or value.isupper())
        and value not in optuna_states
    }
    found = []
    for path in sorted((ROOT / "analysis").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in distinctive:
                found.append(f"{path.name}:{node.lineno} {node.value!r} (contract.{distinctive[node.value]})")
    assert not found, found
    assert not {n for n in vars(catalog) if n.isupper()} & {n for n in vars(contract) if n.isupper()}


def test_every_eval_metric_of_the_contract_is_a_figure_of_the_evaluator() -> None:
    figures = {f for figs in METRIC_GROUPS.values() for f in figs} | set(STACKED_FIGURES)
    names = [
        contract.MODES,
        contract.KL_TO_UNIFORM,
        contract.FD,
        contract.NDB,
        contract.PRECISION,
        contract.RECALL,
        contract.STACKED_MODES,
        contract.DIVERSITY,
    ]
    for key in [*names, contract.CONTRAST, *contract.CLASS_SHARES]:
        assert key.startswith(contract.EVAL_PREFIX) and key.removeprefix(contract.EVAL_PREFIX) in figures, key
    assert contract.STRETCHED_MODES.removeprefix(contract.STRETCHED_PREFIX) in METRIC_GROUPS["modes"]


def test_the_docs_show_the_metric_groups_as_declared() -> None:
    assert groups_table() in (ROOT / "docs" / "ARCHITECTURE.md").read_text()


def test_the_raw_g_figures_are_figures_of_the_evaluator() -> None:
    figures = {f for figs in METRIC_GROUPS.values() for f in figs}
    assert set(contract.RAW_FIGURES) <= figures
    assert set(contract.RAW_STACKED_FIGURES) <= figures | set(STACKED_FIGURES)
    for key in (contract.RAW_MODES, contract.RAW_FD):
        assert key.removeprefix(contract.EVAL_RAW_PREFIX) in contract.RAW_FIGURES
