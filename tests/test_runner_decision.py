"""The run decision (fresh | resume | skip) as a pure function of the store's state, and the package's
import graph: no cycle."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from gansweep.run import contract
from gansweep.runner.decision import Decision, JobRefused, StoredRun, StoreState, decide

HASH = "abc123"
KILLED = StoredRun("r-killed", contract.KILLED, HASH, has_checkpoint=True)
FAILED_NO_CKPT = StoredRun("r-failed", contract.FAILED, HASH, has_checkpoint=False)
FINISHED = StoredRun("r-done", contract.FINISHED, HASH)


def state(**kw) -> StoreState:
    return StoreState("study", HASH, **kw)


def test_no_run_yet_trains_fresh() -> None:
    assert decide(state()) == Decision("fresh")


def test_a_finished_config_is_skipped_unless_forced() -> None:
    assert decide(state(finished=FINISHED)) == Decision("skip", "r-done")
    assert decide(state(finished=FINISHED, force=True)) == Decision("fresh")


def test_resume_auto_continues_the_newest_stopped_run_with_a_checkpoint() -> None:
    assert decide(state(resume="auto", latest=KILLED, finished=FINISHED)) == Decision("resume", "r-killed")


@pytest.mark.parametrize(
    ("latest", "why"),
    [
        (None, "no killed or failed run of this config in 'study'"),
        (FINISHED, "r-done, is FINISHED"),
        (FAILED_NO_CKPT, "r-failed, has no checkpoint"),
    ],
)
def test_resume_auto_with_nothing_to_continue(latest: StoredRun | None, why: str) -> None:
    with pytest.raises(JobRefused, match=why):  # a single run is refused, naming why
        decide(state(resume="auto", latest=latest))
    # in a sweep the job goes on as without resume: skipped when FINISHED, else fresh; the note says why
    finished = latest if latest is FINISHED else None
    got = decide(state(resume="auto", latest=latest, finished=finished, in_sweep=True))
    assert got.action == ("skip" if finished else "fresh") and why in got.note


def test_resume_by_id() -> None:
    assert decide(state(resume="r-killed", named=KILLED)) == Decision("resume", "r-killed")
    with pytest.raises(JobRefused, match="no such run in experiment 'study'"):
        decide(state(resume="r-x"))
    with pytest.raises(JobRefused, match="the run is FINISHED"):
        decide(state(resume="r-done", named=FINISHED, in_sweep=True))
    with pytest.raises(JobRefused, match="another config"):
        decide(state(resume="r-other", named=StoredRun("r-other", contract.KILLED, "other", True)))


def test_a_diverged_run_is_recorded_failed_and_other_outcomes_keep_their_name() -> None:
    assert contract.recorded_status(contract.DIVERGED) == contract.FAILED
    for status in (contract.FINISHED, contract.KILLED, contract.FAILED, contract.SKIPPED):
        assert contract.recorded_status(status) == status


def _imports(path: Path, modules: set[str] = frozenset()) -> set[str]:
    """The gansweep modules ``path`` imports (at any depth of the file): ``from pkg import sub`` imports the
    module ``pkg.sub`` when it is one of ``modules``, else ``pkg``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names}
            names = (subs & modules) or {node.module}
        elif isinstance(node, ast.Import):
            names = {a.name for a in node.names}
        else:
            continue
        found |= {n for n in names if n.startswith("gansweep")}
    return found


def _graph() -> dict[str, set[str]]:
    files = {}
    for f in (ROOT / "gansweep").rglob("*.py"):
        parts = f.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    names = set(files)
    return {m: {i for i in _imports(f, names) if i in names and i != m} for m, f in files.items()}


def test_the_package_has_no_import_cycle() -> None:
    graph, done, path = _graph(), set(), []

    def visit(module: str) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        path.append(module)
        for dep in sorted(graph[module]):
            visit(dep)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_engine_needs_only_numpy() -> None:
    """gansweep.engine imports NumPy, the standard library, itself and gansweep.errors, nothing else."""
    allowed = {"numpy", "gansweep.engine", "gansweep.errors"}
    for f in sorted((ROOT / "gansweep" / "engine").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ok = top in sys.stdlib_module_names or any(
                    name == a or name.startswith(a + ".") for a in allowed
                )
                assert ok, f"{f.relative_to(ROOT)} imports {name}"
