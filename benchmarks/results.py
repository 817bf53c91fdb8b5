"""``benchmarks/RESULTS.md``, generated: each benchmark run with ``--write-results`` replaces its own section
with what it printed, headed by the command, the date, the machine and whether other processes shared the
cores (the load average before and after, judged by :func:`benchmarks.measure.busy`). Sections another run
wrote stay as they are, so one file gathers the latest figures of every benchmark; ``make bench-results``
rewrites them all with short runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import measure

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# Section name -> title, in the file's order.
SECTIONS = {
    "engine": "Engine: throughput, memory, the remedies, the stabilisers, the post's runs",
    "adam": "Adam's passes",
    "evaluator": "Evaluator",
    "runner": "Runner: tracking overhead and sweep throughput",
    "regenerate": "Analysis: regenerating a 50-run study",
}
HEADER = """# Benchmark results

Generated; do not edit by hand. Each benchmark run with `--write-results` replaces its own section below with
the figures it printed, headed by the command, the date, the machine and the load (other processes on the
cores make every figure lower: such a run is marked **contended**; compare ratios within one section, not
figures across sections or machines). `make bench-results` rewrites every section but the runner's (about 8
minutes: `python -m benchmarks.runner --write-results`) with short runs. What each benchmark measures and how
to read it: [docs/BENCHMARKS.md](../docs/BENCHMARKS.md).
"""
_SECTION = re.compile(r"<!-- section: (\w+) -->\n.*?<!-- end: \1 -->\n", re.S)


class _Tee(io.TextIOBase):
    """Writes to ``out`` and keeps a copy."""

    def __init__(self, out: io.TextIOBase) -> None:
        self.out, self.copy = out, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


def section(name: str, command: str, text: str, loads: Sequence[float | None], own: int = 1) -> str:
    """The Markdown of one section: title, command, date, machine, load (contended or not), the figures."""
    import numpy as np

    before, after = (f"{x:.2f}" if x is not None else "unknown" for x in loads)
    why = measure.busy(loads, own)
    verdict = f"**contended** ({why}; the run itself adds up to {own})" if why else "not contended"
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!-- section: {name} -->\n## {SECTIONS[name]}\n\n"
        f"`{command}`, {date}; {measure.machine()}, NumPy {np.__version__}; 1-min load average {before} "
        f"before, {after} after: {verdict}.\n\n```text\n{text.rstrip()}\n```\n<!-- end: {name} -->\n"
    )


def write(name: str, markdown: str, path: Path | None = None) -> None:
    """Replaces (or adds) section ``name`` of ``path`` (:data:`RESULTS`); the sections stay in
    :data:`SECTIONS`' order."""
    path = path or RESULTS
    found = {m.group(1): m.group(0) for m in _SECTION.finditer(path.read_text())} if path.exists() else {}
    found[name] = markdown
    body = "\n".join(found[k] for k in SECTIONS if k in found)
    path.write_text(f"{HEADER}\n{body}")


def add_flag(parser: argparse.ArgumentParser) -> None:
    """``--write-results``, as every benchmark that writes a section takes it (see :func:`recording`)."""
    parser.add_argument(
        "--write-results", action="store_true", help="also write the printed figures to benchmarks/RESULTS.md"
    )


@contextlib.contextmanager
def recording(name: str, enabled: bool, argv: Sequence[str] | None, own: int = 1) -> Iterator[None]:
    """Everything printed inside, also written as section ``name`` of RESULTS.md when ``enabled`` (the run's
    ``--write-results``) and the block ends without an error. The command is ``gansweep-bench`` for the
    engine, else ``python -m benchmarks.<name>``, with ``argv`` (default: this process's arguments)."""
    if not enabled:
        yield
        return
    tee, before = _Tee(sys.stdout), measure.load_average()
    with contextlib.redirect_stdout(tee):
        yield
    prog = "gansweep-bench" if name == "engine" else f"python -m benchmarks.{name}"
    command = " ".join([prog, shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    write(name, section(name, command, tee.copy.getvalue(), [before, measure.load_average()], own))
    print(f"wrote section {name!r} of {RESULTS}")
