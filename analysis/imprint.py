"""Where the extreme step decay's "digit" comes from (issue 25): per config of a study whose runs logged
``train.imprint_steps`` (``imprint/corr_<s>``: the mean Pearson correlation of each final fixed-noise sample
with the same sample after ``s`` iterations, both contrast-stretched), that correlation at every recorded
iteration, with its bootstrap 95 % interval over the runs.

:func:`imprint_table`: one row per (config, recorded iteration). :func:`plot_imprint`: the correlation
against the recorded iteration, one line per config: a config whose final samples are the imprint of its
first steps stays near 1 from the iteration it froze at. :func:`imprint_sentence`: the table in words.
The verdict (decay vs constant lr at iteration 41, paired by seed) is the study's contrast, not this module's.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import catalog, tables
from analysis.plot_style import NoDataError, config_styles, legend_below, save
from analysis.stats import completed, describe
from gansweep.figures import IMPRINT_PREFIX

COLUMNS = ["config", "step", "runs", "mean", "low", "high"]
PREFIX = catalog.metric_column(IMPRINT_PREFIX)


def _steps(runs: pd.DataFrame) -> list[int]:
    found = (c.removeprefix(PREFIX) for c in runs.columns if c.startswith(PREFIX))
    return sorted(int(s) for s in found if s.isdigit())


def imprint_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per config and iteration the runs recorded (param ``train.imprint_steps``, or a logged
    ``imprint/corr_<s>``): the completed runs that logged it, the mean correlation and its bootstrap 95 %
    interval (:func:`analysis.stats.describe`). A recorded iteration no run of a config logged (its samples
    were flat: no correlation) has ``runs`` 0 and no mean. Empty when no run logged one."""
    done = completed(runs)
    logged = _steps(done)
    if not logged:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for step in sorted(set(logged) | set(recorded_steps(done))):
        column = f"{PREFIX}{step}"
        for label, part in sorted(done.groupby("config_label"), key=lambda kv: str(kv[0])):
            values = (
                pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)
                if column in part
                else np.array([])
            )
            d = describe(values)
            rows.append([str(label), step, d["n"], d["mean"], d["ci_low"], d["ci_high"]])
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values(["config", "step"], kind="stable").reset_index(drop=True)


def recorded_steps(runs: pd.DataFrame) -> list[int]:
    """The iterations the runs were asked to record (param ``train.imprint_steps``), logged or not."""
    column = catalog.param_column("train.imprint_steps")
    steps: set[int] = set()
    for value in runs.get(column, pd.Series(dtype=object)).dropna():
        steps.update(int(s) for s in str(value).strip("[]").split(",") if s.strip().lstrip("-").isdigit())
    return sorted(steps)


def interval_text(row: pd.Series) -> str:
    """``mean [low, high]`` of a :func:`imprint_table` row (:func:`analysis.tables.interval_text`)."""
    return tables.interval_text(float(row["mean"]), float(row["low"]), float(row["high"]))


def imprint_sentence(table: pd.DataFrame) -> str:
    """Per config, the correlation of the final samples with each recorded iteration's, in words; the
    recorded iterations no run logged are named (their samples were flat: no correlation)."""
    shown = table[table["runs"] > 0]
    if shown.empty:
        return ""
    parts = []
    for config, rows in shown.groupby("config", sort=True):
        values = "; ".join(f"iteration {int(r['step']):,}: {interval_text(r)}" for _, r in rows.iterrows())
        parts.append(f"{config} ({int(rows['runs'].max())} runs) — {values}")
    text = (
        "Correlation of each final fixed-noise sample with the same sample at a recorded iteration (both "
        "contrast-stretched; mean over the runs [bootstrap 95 % interval]): " + ". ".join(parts) + "."
    )
    flat = table[table["runs"] == 0]
    if not flat.empty:
        where = "; ".join(
            f"{config} at iteration {', '.join(f'{int(s):,}' for s in rows['step'])}"
            for config, rows in flat.groupby("config", sort=True)
        )
        text += f" Flat samples (each pixel within 1e-12 of the others: no picture, no correlation): {where}."
    return text


def plot_imprint(table: pd.DataFrame, path: Path) -> Path:
    """The final samples' correlation with each recorded iteration's samples (evenly spaced, labelled by
    iteration), one line per config with its 95 % interval as error bars."""
    if table.empty or not (table["runs"] > 0).any():
        raise NoDataError(f"no run logged {IMPRINT_PREFIX}<iteration> (train.imprint_steps)")
    steps = sorted(table["step"].unique())
    where = {s: i for i, s in enumerate(steps)}
    labels = sorted(table["config"].unique())
    styles = config_styles(labels)
    with plt.rc_context({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}):
        fig, ax = plt.subplots(figsize=(7.0, 4.2))
        handles = []
        for n, label in enumerate(labels):
            rows = table[(table["config"] == label) & (table["runs"] > 0)]
            color, marker, style = styles[label]
            x = np.array([where[s] for s in rows["step"]], dtype=float) + (n - (len(labels) - 1) / 2) * 0.04
            mean = rows["mean"].to_numpy(dtype=float)
            err = np.vstack([mean - rows["low"].to_numpy(float), rows["high"].to_numpy(float) - mean])
            bars = ax.errorbar(
                x, mean, yerr=np.nan_to_num(err), color=color, marker=marker, linestyle=style, capsize=3
            )
            handles.append(bars)
        ax.set_xticks(range(len(steps)), [f"{s:,}" for s in steps])
        ax.set_xlabel("recorded iteration s")
        ax.set_ylabel("corr(final sample, sample at s)")
        low = pd.to_numeric(table["low"], errors="coerce").fillna(table["mean"])
        ax.set_ylim(min(-0.05, float(np.nanmin(low)) - 0.05), 1.05)
        ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle=":")
        ax.set_title(
            "How much the final samples are G's samples after s iterations\n"
            "(fixed noise, contrast-stretched; mean over runs, 95 % bootstrap interval)"
        )
        runs = {label: int(table[table["config"] == label]["runs"].max()) for label in labels}
        bottom = legend_below(fig, handles, [f"{label} ({runs[label]} runs)" for label in labels])
        fig.tight_layout(rect=(0, bottom, 1, 1))
        return save(fig, path)
