"""``gansweep-bench``: the benchmarks of the checkout this package runs from.

The benchmarks live in ``benchmarks/`` at the checkout's root, outside the installed package. This entry point
puts that root (:func:`gansweep.paths.project_root`) on ``sys.path`` and runs ``benchmarks.engine``'s
``main`` with the command line; ``gansweep-evaluator bench`` and ``gansweep-analyze --bench`` reach their
benchmarks through :func:`load` too. Nothing else in the package imports ``benchmarks``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from gansweep import paths


def load(name: str) -> ModuleType:
    """The module ``benchmarks.<name>`` of the checkout; SystemExit with a clear message outside one."""
    root = paths.project_root()
    if not (root / "benchmarks" / "__init__.py").is_file():
        raise SystemExit(
            f"gansweep-bench: no benchmarks/ folder under {root}. The benchmarks ship with a checkout of "
            "gansweep, not with the installed package: run from a checkout (pip install -e .) or set "
            "GANSWEEP_ROOT to one."
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"benchmarks.{name}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gansweep-bench``: ``benchmarks.engine``'s main (its flags: ``gansweep-bench -h``)."""
    return load("engine").main(argv)


if __name__ == "__main__":
    sys.exit(main())
