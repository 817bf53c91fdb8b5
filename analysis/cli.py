"""``gansweep-analyze experiment=NAME [collapse_modes=N] [--tracking-uri URI] [--out DIR] [--no-upload]``:
regenerate a study's tables, plots and report from the MLflow store. ``--bench`` runs the speed benchmark,
``--list`` prints the studies in the store, ``--publish`` writes the study's answer to
experiments/<study>/ (a grid's from its contrasts, a search's from its trials; a search with no trials or
whose Optuna storage cannot be found is refused, exit 2, before anything is written); ``--rederive``
re-derives a published study's answer from its committed tables/runs.csv and the study file's ``report:``
block, without the store (``experiment=all``: every published study)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from analysis import catalog
from analysis.load import StudyNotFoundError, list_studies
from analysis.pipeline import regenerate
from analysis.report_spec import ReportSpecError
from analysis.search import SearchUnavailableError, search_report
from gansweep import paths
from gansweep.run import contract

T = TypeVar("T")

KEYS = {
    "experiment": "the study (MLflow experiment) to analyse",
    "collapse_modes": "collapse threshold (digits)",
    "optuna_storage": "a search's Optuna storage URL (default: the one its parent run names)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gansweep-analyze",
        description="Regenerate every table, plot and the report of a study from the MLflow store.",
        epilog="example: gansweep-analyze experiment=failed_architectures",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="experiment=NAME (required) and optionally collapse_modes=N "
        f"(default {catalog.DEFAULT_COLLAPSE_MODES})",
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: the project's store, sqlite:///<root>/mlruns.db)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <root>/reports/<study>)"
    )
    parser.add_argument("--no-upload", action="store_true", help="do not log the report to the parent run")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="write the study's published answer to experiments/<study>/ (README, tables, figures)",
    )
    parser.add_argument(
        "--rederive",
        action="store_true",
        help="re-derive experiments/<study>/ from its tables/runs.csv and the study file, without the store "
        "(experiment=all: every published study), and update README.md's findings",
    )
    parser.add_argument("--list", action="store_true", help="list the studies in the store and exit")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="time regenerating a synthetic 50-run study in a temporary store and exit",
    )
    return parser


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["experiment=smoke", ...]`` -> ``{"experiment": "smoke", ...}``; ValueError naming a bad item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("+")
        if not sep or not value.strip():
            raise ValueError(f"{item!r}: expected KEY=VALUE, e.g. experiment=smoke")
        if key not in KEYS:
            raise ValueError(f"{item!r}: unknown key {key!r}; known keys: {', '.join(KEYS)}")
        out[key] = value.strip()
    return out


def _store_missing(uri: str) -> str | None:
    """A message when ``uri`` is a sqlite store whose file does not exist (reading would create it)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if str(db) != ":memory:" and not db.exists():
            return f"no MLflow store at {db} (tracking URI {uri}); run a study first or pass --tracking-uri"
    return None


def _read_study(name: str, uri: str, job: Callable[[], T]) -> tuple[T | None, int]:
    """Run ``job`` (which reads study ``name`` from ``uri``) -> (its result, 0), or (None, exit code) with the
    error printed: 2 for an unknown study, a search that cannot be published or a bad ``report:`` block, 1
    when the store cannot be read."""
    try:
        return job(), 0
    except (StudyNotFoundError, SearchUnavailableError, ReportSpecError) as err:
        print(f"gansweep-analyze: {err}", file=sys.stderr)
        return None, 2
    except MlflowException as err:
        print(f"gansweep-analyze: cannot read study {name!r} from {uri}: {err}", file=sys.stderr)
        return None, 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 also for a partial report, 2 for bad arguments or an
    unknown study, 1 when the store cannot be read)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.bench:
        from gansweep.cli.bench import load

        return load("regenerate").main([])
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = args.tracking_uri or paths.default_tracking_uri()
    try:
        overrides = parse_overrides(args.overrides)
        collapse_modes = float(overrides.get("collapse_modes", catalog.DEFAULT_COLLAPSE_MODES))
    except ValueError as err:
        parser.error(str(err))
    if args.rederive:
        return _rederive(overrides.get("experiment"), args.out)
    missing = _store_missing(uri)
    if missing:
        print(f"gansweep-analyze: {missing}", file=sys.stderr)
        return 1
    if args.list or "experiment" not in overrides:
        try:
            names = list_studies(MlflowClient(tracking_uri=uri))
        except MlflowException as err:
            print(f"gansweep-analyze: cannot read {uri}: {err}", file=sys.stderr)
            return 1
        print(f"studies in {uri}: {', '.join(names) if names else '(none)'}")
        if args.list:
            return 0
        print("gansweep-analyze: give the study to analyse, e.g. experiment=smoke", file=sys.stderr)
        return 2
    if args.publish:
        return _publish(overrides["experiment"], uri, args, overrides, collapse_modes)
    return _analyze(overrides["experiment"], uri, args, overrides, collapse_modes)


def _publish(
    name: str, uri: str, args: argparse.Namespace, overrides: dict[str, str], collapse_modes: float
) -> int:
    """``--publish``: write the study's answer to experiments/<study>/ (or ``--out``) and the findings."""
    from analysis.publish import publish, update_findings

    start = time.perf_counter()
    target = args.out or paths.project_root() / "experiments" / name
    storage = overrides.get("optuna_storage")
    files, code = _read_study(
        name,
        uri,
        lambda: publish(uri, name, target, collapse_modes=collapse_modes, storage=storage),
    )
    if code:
        return code
    print(f"published {len(files)} files to {target} in {time.perf_counter() - start:.1f} s")
    print(f"answer: {target / 'README.md'}")
    root = paths.project_root()
    if args.out is None and update_findings(root / "README.md", root / "experiments"):
        print(f"findings in {root / 'README.md'} updated")
    return 0


def _analyze(
    name: str, uri: str, args: argparse.Namespace, overrides: dict[str, str], collapse_modes: float
) -> int:
    """Regenerate the study's report under reports/<study>/ (or ``--out``), and a search's report beside."""
    start = time.perf_counter()
    out = args.out or paths.project_root() / "reports" / name
    result, code = _read_study(
        name,
        uri,
        lambda: regenerate(uri, name, out, collapse_modes=collapse_modes, upload=not args.no_upload),
    )
    if code:
        return code
    for message in result.messages:
        print(f"note: {message}")
    print(
        f"wrote {len(result.files)} files ({len(result.plots)} plots) to {result.out_dir} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    print(f"report: {result.out_dir / 'report.md'}")
    if result.uploaded_to:
        print(f"logged to parent run {result.uploaded_to} under {contract.REPORT_ARTIFACT_PATH}/")
    found = search_report(uri, name, out, storage=overrides.get("optuna_storage"), upload=not args.no_upload)
    for message in found.messages:
        print(f"note: {message}")
    if found.files:
        print(f"search report: {out / 'search' / 'report.md'} ({len(found.files)} files)")
    return 0


def _rederive(name: str | None, out: Path | None) -> int:
    from analysis.publish import rederive, update_findings
    from analysis.report_spec import load_spec

    root = paths.project_root()
    experiments = root / "experiments"
    if not name:
        print("gansweep-analyze: --rederive needs experiment=<study> or experiment=all", file=sys.stderr)
        return 2
    names = sorted(p.parent.name for p in experiments.glob("*/meta.json")) if name == "all" else [name]
    for study in names:
        folder = out if out is not None and name != "all" else experiments / study
        if not (folder / "meta.json").is_file():
            print(f"gansweep-analyze: {folder} holds no published study (no meta.json)", file=sys.stderr)
            return 2
        try:
            files = rederive(folder, load_spec(study, root))
        except ReportSpecError as err:
            print(f"gansweep-analyze: {err}", file=sys.stderr)
            return 2
        print(f"re-derived {study}: {len(files)} files in {folder}")
    if out is None and update_findings(root / "README.md", experiments):
        print(f"findings in {root / 'README.md'} updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
