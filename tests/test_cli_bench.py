"""gansweep.cli.bench (``gansweep-bench``): runs the checkout's benchmarks, refuses outside a checkout;
the package and the analysis never import benchmarks/ (only this entry point does, lazily)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_gansweep_bench_refuses_outside_a_checkout(tmp_path: Path) -> None:
    env = {"GANSWEEP_ROOT": str(tmp_path), "PATH": str(BIN)}
    proc = subprocess.run(
        [str(BIN / "gansweep-bench")], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 1
    assert f"no benchmarks/ folder under {tmp_path}" in proc.stderr and "GANSWEEP_ROOT" in proc.stderr


def test_gansweep_bench_loads_the_checkouts_benchmarks() -> None:
    from gansweep.cli import bench

    assert Path(bench.load("engine").__file__) == ROOT / "benchmarks" / "engine.py"


def test_only_the_entry_point_imports_benchmarks() -> None:
    """Dependencies run one way: benchmarks/ imports gansweep and analysis, never the reverse."""
    importers = []
    for path in sorted([*(ROOT / "gansweep").rglob("*.py"), *(ROOT / "analysis").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "benchmarks" or n.startswith("benchmarks.") for n in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert importers == []  # gansweep/cli/bench.py imports by name (importlib), inside load()
