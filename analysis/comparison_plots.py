"""The figures of a study's comparisons: a contrast's paired differences with their intervals, coloured by
verdict (:func:`plot_contrast`; a factorial's effects too), and a target study's cells against the target
(:func:`plot_cells`)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from analysis import catalog, verdict_classes
from analysis.plot_style import NoDataError, panel_height, rc_style, save, wrap_label

# The colour of a compared pair by its verdict class ("difference": red for the worse, blue for the better).
_VERDICT_COLORS = {
    verdict_classes.DIFFERENCE: "difference",
    verdict_classes.EQUIVALENT: "tab:green",
    verdict_classes.NOT_DECIDED: "grey",
    verdict_classes.FLOOR: "black",
    verdict_classes.CEILING: "black",
}


def _contrast_panel(
    ax: Axes, part: pd.DataFrame, pairs: Sequence[tuple[object, object]], metric: str
) -> None:
    """One figure's panel: per compared pair (first on top) its mean difference and interval, coloured by
    its verdict, over the ± minimum meaningful difference band and the zero line."""
    for i, pair in enumerate(pairs):
        y = len(pairs) - 1 - i
        if pair not in part.index:
            continue
        r = part.loc[pair]
        mean, low, high = float(r["mean_diff"]), float(r["ci_low"]), float(r["ci_high"])
        if not np.isfinite(mean):
            continue
        ok = np.isfinite(low) and np.isfinite(high)
        color = _VERDICT_COLORS.get(str(r.get("verdict", "")), "grey")
        if color == "difference":
            better = catalog.figure(metric).better
            worse = mean < 0 if better != "lower" else mean > 0
            color = "tab:red" if worse else "tab:blue"
        ax.errorbar(
            mean,
            y,
            xerr=[[mean - low], [high - mean]] if ok else None,
            fmt="D",
            color=color,
            mfc=color if str(r.get("verdict", "")) != verdict_classes.FLOOR else "white",
            mec=color,
            ms=6,
            capsize=3,
        )
    mmd = catalog.figure(metric).mmd
    ax.axvspan(-mmd, mmd, color="tab:green", alpha=0.12, lw=0)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_title(f"Δ {catalog.short_name(metric)}")
    ax.set_ylim(-0.7, len(pairs) - 0.3)


def plot_contrast(long: pd.DataFrame, path: Path, *, title: str, compared: str = "") -> Path:
    """One contrast: per compared pair of configs (rows) and figure (panels), the mean paired difference
    with its interval (diamond and whiskers; hollow: no interval), against a zero line. ``compared`` says
    what a row's difference is (default: level − baseline on the same seeds, bootstrap interval)."""
    if long.empty:
        raise NoDataError("the contrast has no paired runs")
    metrics = list(dict.fromkeys(long["metric"]))
    pairs = list(dict.fromkeys(zip(long["group"], long["level"], strict=True)))
    names = [f"{g} · {lv}" if g != "all runs" else str(lv) for g, lv in pairs]
    with plt.rc_context(rc_style()):
        fig, axes = plt.subplots(
            1,
            len(metrics),
            figsize=(3.6 * len(metrics) + 2.5, panel_height(len(pairs)) * 0.8),
            sharey=True,
            squeeze=False,
        )
        for ax, metric in zip(axes[0], metrics, strict=True):
            _contrast_panel(ax, long[long["metric"] == metric].set_index(["group", "level"]), pairs, metric)
        axes[0][0].set_yticks(range(len(pairs)))
        axes[0][0].set_yticklabels([wrap_label(n, 30) for n in reversed(names)], fontsize=8)
        baseline = str(long["baseline"].iloc[0])
        compared = compared or f"level − {baseline} on the same seeds (mean, 95 % bootstrap CI)"
        width = max(40, int(fig.get_size_inches()[0] * 9))  # characters of the suptitle per line
        fig.suptitle(
            textwrap.fill(f"{title}: {compared}", width)
            + "\n"
            + textwrap.fill(
                "red/blue: a difference for the worse/better; green: equivalent (inside the shaded ± "
                "minimum meaningful difference); grey: not decided; hollow: both at the floor",
                width,
            )
        )
        fig.tight_layout()
        return save(fig, path)


def plot_cells(
    data: pd.DataFrame, order: Sequence[str], path: Path, *, metric: str, bound: float, target: str
) -> Path:
    """A target study's cells in the Cells table's ``order`` (first on top): each seed's value as a dot, the
    mean as a diamond, the first bound as a dashed line; a cell whose every seed reaches the whole target in
    blue. ``data``: one row per run with ``cell``, ``fixes`` (a set), ``value`` and ``reached``; ``target``
    the first bound in words. With sets of fixes, each label ends with its number of fixes."""
    if data.empty or not np.isfinite(data["value"].to_numpy(dtype=float)).any():
        raise NoDataError("no cell has a completed run")
    fig_def = catalog.figure(metric)
    cells = [c for c in order if (data["cell"] == c).any()]
    with_fixes = bool(data["fixes"].map(len).any())
    with plt.rc_context(rc_style()):
        fig, ax = plt.subplots(figsize=(8.5, panel_height(len(cells)) * 0.8))
        for i, cell in enumerate(cells):
            y = len(cells) - 1 - i
            part = data[data["cell"] == cell]
            values = part["value"].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            color = "tab:blue" if bool(part["reached"].all()) else "tab:grey"
            offsets = (np.arange(values.size) - (values.size - 1) / 2.0) * (0.5 / max(values.size, 1))
            ax.scatter(values, y + offsets, s=16, color=color, alpha=0.7)
            if values.size:
                ax.plot(values.mean(), y, "D", color=color, mec="black", ms=7)
        ax.axvline(bound, color="tab:red", ls="--", lw=1.2, label=f"target: {target}")
        ax.set_yticks(range(len(cells)))
        sizes = data.groupby("cell")["fixes"].first().map(len)
        labels = [wrap_label(c, 34) + (f" ({sizes[c]})" if with_fixes else "") for c in cells]
        ax.set_yticklabels(list(reversed(labels)), fontsize=8)
        ax.set_ylim(-0.7, len(cells) - 0.3)
        ax.set_xlabel(f"{fig_def.short} at the end of training (dots: seeds; diamond: mean)")
        head = (
            "Each cell (its number of fixes in brackets), fewest fixes first" if with_fixes else "Each config"
        )
        ax.set_title(textwrap.fill(f"{head}; blue: every seed reaches the target", 80))
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        return save(fig, path)
