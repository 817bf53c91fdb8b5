"""The study's tables as CSV (full precision) and Markdown (rounded), in a deterministic order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis import catalog


def fmt(value: object, digits: int = 4) -> str:
    """A cell for Markdown: NA/NaN as "–", floats to ``digits`` significant figures, the rest as str."""
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """``frame`` as a GitHub Markdown table (pipes in cells escaped); "(no rows)" when empty."""
    if frame.empty:
        return "(no rows)\n"
    header = [str(c).replace("|", "\\|") for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for row in frame.itertuples(index=False):
        cells = [fmt(v.item() if hasattr(v, "item") else v, digits).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def headline_table(summary: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Wide table, one row per config: the seeds it has (``n``, completed runs) and "mean [CI low, CI high]"
    of each of ``metrics`` (column names of the summary) that the summary holds; the mean alone where there
    is no interval (one seed)."""
    labels = sorted(summary["config_label"].unique())
    present = [m for m in metrics if (summary["metric"] == m).any()]
    rows = []
    for label in labels:
        mine = summary[summary["config_label"] == label]
        row: dict[str, object] = {"config_label": label, "n": int(mine["n"].max()) if len(mine) else 0}
        for metric in present:
            hit = mine[mine["metric"] == metric]
            row[metric.removeprefix("metrics.")] = _mean_ci_text(hit.iloc[0]) if not hit.empty else "–"
        rows.append(row)
    return pd.DataFrame(rows, columns=["config_label", "n", *[m.removeprefix("metrics.") for m in present]])


def interval_text(mean: float, low: float, high: float, digits: int = 3) -> str:
    """``"1.5 [1.2, 1.8]"``; the mean alone without an interval; "–" without a value."""
    if not math.isfinite(mean):
        return "–"
    if not (math.isfinite(low) and math.isfinite(high)):
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def _mean_ci_text(row: pd.Series) -> str:
    return interval_text(float(row["mean"]), float(row["ci_low"]), float(row["ci_high"]))


def run_table(runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per-run table: identity, outcome, collapse onset and the final value of each of ``metrics``."""
    base = ["config_label", "seed", "run_name", "run_id", "status", "diverged", "error"]
    base += ["full_label"] if "full_label" in runs else []  # the run's overrides: --rederive reads them
    added = (
        catalog.OUTCOME,
        catalog.MAX_MODES,
        catalog.COLLAPSE_STEP,
        catalog.COLLAPSED,
        catalog.NEVER_LEARNED,
        catalog.D_SEPARATES_STEP,
        catalog.LOGIT_MARGIN,
    )
    extra = [c for c in added if c in runs]
    return runs[[*base, *extra, *[m for m in metrics if m in runs]]].reset_index(drop=True)


def write_table(
    frame: pd.DataFrame, folder: Path, name: str, *, markdown: pd.DataFrame | None = None
) -> list[Path]:
    """Write ``<name>.csv`` (full precision) and ``<name>.md`` (``markdown`` if given, else ``frame``)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{name}.csv", folder / f"{name}.md"
    frame.to_csv(csv_path, index=False, lineterminator="\n")
    md_path.write_text(markdown_table(frame if markdown is None else markdown), encoding="utf-8")
    return [csv_path, md_path]


def summary_markdown(summary: pd.DataFrame) -> pd.DataFrame:
    """The long summary with the ``metrics.`` prefix dropped, for Markdown."""
    out = summary.copy()
    out["metric"] = out["metric"].str.removeprefix("metrics.")
    return out
