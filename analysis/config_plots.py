"""The figures of each config's final results: one figure per config with its runs and the mean's 95 %
interval (:func:`plot_intervals`), the sample-quality figures side by side (:func:`plot_quality`),
precision against recall (:func:`plot_precision_recall`) and the final class shares
(:func:`plot_class_shares`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from analysis import catalog
from analysis.plot_style import (
    NoDataError,
    config_colors,
    config_labels,
    config_styles,
    finite_values,
    legend_below,
    panel_height,
    rc_style,
    save,
    wrap_label,
)
from analysis.stats import completed
from gansweep.run import contract


def _counts_note(status: pd.DataFrame, label: str) -> str:
    row = status[status["config_label"] == label]
    if row.empty:
        return ""
    r = row.iloc[0]
    parts = [f"{int(r['finished'])}/{int(r['runs'])} finished"]
    for column in ("diverged", "failed", "killed", "running"):
        if int(r[column]):
            parts.append(f"{int(r[column])} {column}")
    return ", ".join(parts)


def _interval_panel(
    ax: Axes,
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    column: str,
    labels: Sequence[str],
    colors: Mapping[str, tuple[float, ...]],
) -> bool:
    """Per config (one row each, first on top): every completed run as a dot (diverged: a cross), the mean as
    a diamond with its 95 % CI. Returns whether anything was drawn."""
    done = completed(runs)
    drawn = False
    for i, label in enumerate(labels):
        y = len(labels) - 1 - i
        group = done[done["config_label"] == label]
        if column in group:
            values = finite_values(group[column])
            diverged = group["diverged"].to_numpy(dtype=bool)
            k = len(values)
            offsets = (np.arange(k) - (k - 1) / 2.0) * (0.5 / max(k, 1))
            ok = np.isfinite(values)
            ax.scatter(
                values[ok & ~diverged], y + offsets[ok & ~diverged], s=14, color=colors[label], alpha=0.6
            )
            ax.scatter(values[ok & diverged], y + offsets[ok & diverged], s=24, color="black", marker="x")
            drawn = drawn or bool(ok.any())
        row = summary[(summary["config_label"] == label) & (summary["metric"] == column)]
        if not row.empty and np.isfinite(row["mean"].iloc[0]):
            mean = float(row["mean"].iloc[0])
            low, high = float(row["ci_low"].iloc[0]), float(row["ci_high"].iloc[0])
            xerr = [[max(0.0, mean - low)], [max(0.0, high - mean)]] if np.isfinite(low) else None
            ax.errorbar(
                mean, y, xerr=xerr, fmt="D", color=colors[label], mec="black", ms=6, capsize=4, lw=1.5
            )
    ax.set_ylim(-0.7, len(labels) - 0.3)
    return drawn


def _config_axis(ax: Axes, labels: Sequence[str], status: pd.DataFrame) -> None:
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(
        [f"{wrap_label(lbl)}\n({_counts_note(status, lbl)})" for lbl in reversed(labels)], fontsize=8
    )


def plot_intervals(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    status: pd.DataFrame,
    key: str,
    path: Path,
    *,
    title: str,
    xlabel: str,
    xlim: tuple[float, float] | None = None,
) -> Path:
    """One metric per config: runs as dots, mean and 95 % CI (Student t) as a diamond with whiskers. Configs
    none of whose runs logged the metric (MNIST runs on a Stacked-MNIST figure) are left out; colours stay
    those of the study's other plots."""
    column = catalog.metric_column(key)
    if column not in runs or not np.isfinite(finite_values(completed(runs)[column])).any():
        raise NoDataError(f"no completed run logged {key}")
    every = config_labels(runs)
    colors = config_colors(every)
    logged = runs.groupby("config_label")[column].apply(lambda v: bool(v.notna().any()))
    labels = [label for label in every if logged.get(label, False)]
    with plt.rc_context(rc_style()):
        fig, ax = plt.subplots(figsize=(9, panel_height(len(labels))))
        _interval_panel(ax, runs, summary, column, labels, colors)
        _config_axis(ax, labels, status)
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        fig.tight_layout()
        return save(fig, path)


def plot_quality(runs: pd.DataFrame, summary: pd.DataFrame, status: pd.DataFrame, path: Path) -> Path:
    """KL(samples' class distribution || uniform), Fréchet distance and NDB per config, side by side."""
    panels = (
        (contract.KL_TO_UNIFORM, "KL(class shares ‖ uniform) — lower is better"),
        (contract.FD, "Fréchet distance — lower is better"),
        (contract.NDB, "NDB (bins differing) — lower is better"),
    )
    done = completed(runs)
    present = [
        (k, t)
        for k, t in panels
        if catalog.metric_column(k) in done
        and np.isfinite(finite_values(done[catalog.metric_column(k)])).any()
    ]
    if not present:
        raise NoDataError(f"no completed run logged any of {', '.join(k for k, _ in panels)}")
    labels = config_labels(runs)
    colors = config_colors(labels)
    with plt.rc_context(rc_style()):
        fig, axes = plt.subplots(
            1, len(panels), figsize=(15, panel_height(len(labels))), sharey=True, squeeze=False
        )
        for ax, (key, title) in zip(axes[0], panels, strict=True):
            drawn = _interval_panel(ax, runs, summary, catalog.metric_column(key), labels, colors)
            if not drawn:
                ax.text(0.5, 0.5, f"{key}\nnot logged", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(title)
            ax.set_xlabel(key)
        _config_axis(axes[0][0], labels, status)
        fig.suptitle("Sample quality per config (dots: runs, diamond: mean ± 95 % CI, ×: diverged)")
        fig.tight_layout()
        return save(fig, path)


def plot_precision_recall(runs: pd.DataFrame, summary: pd.DataFrame, path: Path) -> Path:
    """Precision against recall: one dot per completed run, config means with 95 % CIs on both axes."""
    p_col, r_col = catalog.metric_column(contract.PRECISION), catalog.metric_column(contract.RECALL)
    done = completed(runs)
    if p_col not in done or r_col not in done:
        raise NoDataError(f"no completed run logged both {contract.PRECISION} and {contract.RECALL}")
    ok = np.isfinite(finite_values(done[p_col])) & np.isfinite(finite_values(done[r_col]))
    if not ok.any():
        raise NoDataError(f"no completed run has finite {contract.PRECISION} and {contract.RECALL}")
    labels = config_labels(runs)
    styles = config_styles(labels)
    with plt.rc_context(rc_style()):
        fig, ax = plt.subplots(figsize=(10, 7))
        for label in labels:
            color, marker, _ = styles[label]
            group = done[done["config_label"] == label]
            ax.scatter(
                finite_values(group[r_col]),
                finite_values(group[p_col]),
                s=22,
                color=color,
                marker=marker,
                alpha=0.55,
            )
            rows = summary[summary["config_label"] == label].set_index("metric")
            if p_col in rows.index and r_col in rows.index and np.isfinite(rows.loc[p_col, "mean"]):
                px, rx = rows.loc[p_col], rows.loc[r_col]
                xerr = (
                    None
                    if not np.isfinite(rx["ci_low"])
                    else [[rx["mean"] - rx["ci_low"]], [rx["ci_high"] - rx["mean"]]]
                )
                yerr = (
                    None
                    if not np.isfinite(px["ci_low"])
                    else [[px["mean"] - px["ci_low"]], [px["ci_high"] - px["mean"]]]
                )
                ax.errorbar(
                    rx["mean"],
                    px["mean"],
                    xerr=xerr,
                    yerr=yerr,
                    fmt=marker,
                    color=color,
                    mec="black",
                    ms=7,
                    capsize=3,
                    label=label,
                )
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("recall (coverage of the real data)")
        ax.set_ylabel("precision (fidelity of the samples)")
        ax.set_title("Precision vs recall (small: runs, large: config mean ± 95 % CI)")
        bottom = legend_below(fig, *ax.get_legend_handles_labels())
        fig.tight_layout(rect=(0, bottom, 1, 1))
        return save(fig, path)


def plot_class_shares(runs: pd.DataFrame, path: Path) -> Path:
    """Heat map, configs × digits: mean final share of each digit among the samples (completed runs)."""
    done = completed(runs)
    columns = [catalog.metric_column(k) for k in contract.CLASS_SHARES]
    if not all(c in done for c in columns):
        raise NoDataError("no completed run logged eval/class_share_0..9")
    labels = config_labels(runs)
    matrix = np.full((len(labels), contract.N_DIGITS), np.nan)
    for i, label in enumerate(labels):
        group = done[done["config_label"] == label]
        for d, column in enumerate(columns):
            values = finite_values(group[column])
            values = values[np.isfinite(values)]
            if values.size:
                matrix[i, d] = values.mean()
    if not np.isfinite(matrix).any():
        raise NoDataError("every eval/class_share_* value is missing")
    with plt.rc_context({**rc_style(), "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(10, panel_height(len(labels))))
        image = ax.imshow(
            np.ma.masked_invalid(matrix),
            cmap="viridis",
            vmin=0.0,
            vmax=max(0.2, np.nanmax(matrix)),
            aspect="auto",
        )
        for i in range(len(labels)):
            for d in range(contract.N_DIGITS):
                value = matrix[i, d]
                text = "–" if not np.isfinite(value) else f"{value:.2f}"
                ax.text(
                    d,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if np.isfinite(value) and value > 0.6 * np.nanmax(matrix) else "white",
                )
        ax.set_xticks(range(contract.N_DIGITS))
        ax.set_xlabel("digit (classifier label of the samples)")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels([wrap_label(lbl) for lbl in labels], fontsize=8)
        ax.set_title("Final class shares per config (mean over completed runs; uniform = 0.10)")
        fig.colorbar(image, ax=ax, label="share of samples")
        fig.tight_layout()
        return save(fig, path)
