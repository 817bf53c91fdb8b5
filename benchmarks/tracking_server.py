"""The runner benchmark's tracking overhead, through a tracking server next to its sqlite store.

    .venv/bin/python -m benchmarks.tracking_server --tracking-uri http://127.0.0.1:PORT [--repeats 3]

Part 1 of ``python -m benchmarks.runner`` (one job of the failed_architectures study, failed1, at the
study's iterations and logging cadence, tracking off and on in interleaved pairs; recipe post at B = 1 and
modern at B = 64), run twice by the very same function: once as it is, into its temporary sqlite store, and
once with every tracking call it makes sent to ``--tracking-uri`` instead (experiment ``bench``). The two rows
of each recipe therefore differ only in the store. Start a server with ``make server``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks import measure
from benchmarks import runner as bench_tracking
from gansweep.runner import tracking

_REDIRECTED = ("ensure_experiment", "start_child", "end_run", "MlflowRunLogger")
# MLflow prints "View run ... at http://..." on stdout when an HTTP store's run ends: it would break --json.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


@contextmanager
def store_at(uri: str) -> Iterator[None]:
    """Send the tracking calls of ``bench_tracking.tracking_overhead`` (which opens its own sqlite store) to
    ``uri``; restored on exit."""
    real = {name: getattr(tracking, name) for name in _REDIRECTED}
    tracking.ensure_experiment = lambda _uri, name, _location=None: real["ensure_experiment"](uri, name)
    tracking.start_child = lambda target, *a: real["start_child"](dataclasses.replace(target, uri=uri), *a)
    tracking.end_run = lambda _uri, *a: real["end_run"](uri, *a)
    tracking.MlflowRunLogger = lambda _uri, run_id: real["MlflowRunLogger"](uri, run_id)
    try:
        yield
    finally:
        for name, value in real.items():
            setattr(tracking, name, value)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri", required=True, help="the server, e.g. http://127.0.0.1:5000")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved off/on pairs per recipe and store")
    ap.add_argument("--iterations", type=int, help="iterations per timed run (default: the study's)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    tracking.check_reachable(args.tracking_uri)
    rows = []
    for recipe in ("post", "modern"):
        for store in ("sqlite", args.tracking_uri):
            if store == "sqlite":
                row = bench_tracking.tracking_overhead(recipe, "study", args.repeats, args.iterations)
            else:
                with store_at(store):
                    row = bench_tracking.tracking_overhead(recipe, "study", args.repeats, args.iterations)
            rows.append({"store": store, **row})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"Tracking overhead by store (interleaved off/on pairs, one {bench_tracking.STUDY} job, failed1)")
    for row in rows:
        lo, hi = row["overhead_pct_range"]
        print(
            f"  recipe={row['recipe']:6s} B={row['batch']:<3d} store={row['store']}:"
            f" off {measure.median(row['seconds_off']):.2f} s"
            f"  on {measure.median(row['seconds_on']):.2f} s"
            f"  direct {row['direct_seconds']:.2f} s = {row['direct_pct']:.1f} %"
            f"  wall {row['overhead_pct']:+.1f} % ({len(row['seconds_off'])} pairs {lo:+.1f} to {hi:+.1f} %)"
        )


if __name__ == "__main__":
    main()
