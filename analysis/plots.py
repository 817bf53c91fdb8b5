"""The study's figures as PNG files with byte-stable output (Agg backend, fixed DPI, no Software metadata).

Each ``plot_*`` function writes one file and returns its path, or raises :class:`NoDataError` saying which
metric or artifact the study lacks. Configs are always drawn in sorted label order with fixed colours; past
the palette's size, markers and line styles tell configs of the same colour apart, and legends go below the
axes in as many columns as they need, the figure growing to hold every entry (legible at 50 configs).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analysis import contract, inference
from analysis.stats import completed

DPI = 100
# No "Software" chunk: PNG bytes then depend only on the pixels (Agg writes no date).
PNG_METADATA: dict[str, str | None] = {"Software": None}
CURVE_PANELS = (*contract.TRAINING_CURVES, contract.MODES, contract.FD)


class NoDataError(LookupError):
    """The study holds nothing this figure could show; the message says what is missing."""


def _style() -> dict[str, object]:
    return {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
    }


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG to ``path`` with fixed DPI and metadata, then close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png", metadata=PNG_METADATA)
    plt.close(fig)
    return path


def config_colors(labels: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A fixed colour per config label (in the given order): tab10 up to 10 configs, tab20, then repeats."""
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {label: tuple(cmap(i % cmap.N)) for i, label in enumerate(labels)}


_MARKERS = ("D", "o", "s", "^", "v", "P")
_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))


def config_styles(labels: Sequence[str]) -> dict[str, tuple[tuple[float, ...], str, object]]:
    """(colour, marker, line style) per config label: :func:`config_colors`, then the next marker and line
    style each time the palette repeats, so that up to 6 x 20 configs each look different."""
    colors = config_colors(labels)
    period = 10 if len(labels) <= 10 else 20
    return {
        label: (colors[label], _MARKERS[(i // period) % 6], _LINESTYLES[(i // period) % 6])
        for i, label in enumerate(labels)
    }


def legend_below(fig: Figure, handles: Sequence[object], names: Sequence[str]) -> float:
    """A legend under the axes in up to 4 columns, every entry shown: the figure grows by the legend's
    height. Returns the fraction of the new height the legend takes (the ``rect`` bottom for tight_layout)."""
    width, height = fig.get_size_inches()
    ncol = 1 if len(names) <= 6 else min(4, math.ceil(len(names) / 10))
    chars = max(16, int((width / ncol - 0.7) / 0.075))  # 0.7 in for the handle; ~0.075 in a character
    wrapped = [_wrap(n, chars) for n in names]
    per_column = [wrapped[i::ncol] for i in range(ncol)]
    lines = max(sum(w.count("\n") + 1 for w in col) for col in per_column)
    extra = 0.17 * lines + 0.35
    fig.set_size_inches(width, height + extra)
    fig.legend(handles, wrapped, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    return extra / (height + extra)


def _wrap(label: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


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


def _finite(values: pd.Series) -> np.ndarray:
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return arr


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
            values = _finite(group[column])
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
        [f"{_wrap(lbl)}\n({_counts_note(status, lbl)})" for lbl in reversed(labels)], fontsize=8
    )


def _height(n: int) -> float:
    return max(3.0, 0.6 * n + 1.6)


def _labels(runs: pd.DataFrame) -> list[str]:
    return sorted(runs["config_label"].unique())


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
    column = contract.metric_column(key)
    if column not in runs or not np.isfinite(_finite(completed(runs)[column])).any():
        raise NoDataError(f"no completed run logged {key}")
    every = _labels(runs)
    colors = config_colors(every)
    logged = runs.groupby("config_label")[column].apply(lambda v: bool(v.notna().any()))
    labels = [label for label in every if logged.get(label, False)]
    with plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(9, _height(len(labels))))
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
        if contract.metric_column(k) in done and np.isfinite(_finite(done[contract.metric_column(k)])).any()
    ]
    if not present:
        raise NoDataError(f"no completed run logged any of {', '.join(k for k, _ in panels)}")
    labels = _labels(runs)
    colors = config_colors(labels)
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(
            1, len(panels), figsize=(15, _height(len(labels))), sharey=True, squeeze=False
        )
        for ax, (key, title) in zip(axes[0], panels, strict=True):
            drawn = _interval_panel(ax, runs, summary, contract.metric_column(key), labels, colors)
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
    p_col, r_col = contract.metric_column(contract.PRECISION), contract.metric_column(contract.RECALL)
    done = completed(runs)
    if p_col not in done or r_col not in done:
        raise NoDataError(f"no completed run logged both {contract.PRECISION} and {contract.RECALL}")
    ok = np.isfinite(_finite(done[p_col])) & np.isfinite(_finite(done[r_col]))
    if not ok.any():
        raise NoDataError(f"no completed run has finite {contract.PRECISION} and {contract.RECALL}")
    labels = _labels(runs)
    styles = config_styles(labels)
    with plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(10, 7))
        for label in labels:
            color, marker, _ = styles[label]
            group = done[done["config_label"] == label]
            ax.scatter(
                _finite(group[r_col]), _finite(group[p_col]), s=22, color=color, marker=marker, alpha=0.55
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


def plot_curves(runs: pd.DataFrame, history: pd.DataFrame, collapse_modes: float, path: Path) -> Path:
    """Training curves (loss_d, loss_g, d_real, d_fake, eval/modes_covered, eval/fd: how long a budget
    needs) per iteration: every run thin, the per-step mean over a config's runs thick, collapse onsets as
    dotted verticals and ▼ markers."""
    panels = [k for k in CURVE_PANELS if (history["key"] == k).any()]
    if not panels:
        raise NoDataError(f"no run logged any of {', '.join(CURVE_PANELS)}")
    labels = _labels(runs)
    styles = config_styles(labels)
    # the onset of the runs classed collapsed (after covering more digits; a run that never learned or never
    # covered more than the threshold has no collapse to mark)
    fell = runs[contract.COLLAPSED].astype("boolean").fillna(False) if contract.COLLAPSED in runs else None
    steps = runs[contract.COLLAPSE_STEP]
    steps = steps.where(fell.to_numpy(dtype=bool), np.nan) if fell is not None else steps
    onset = dict(zip(runs["run_id"], steps, strict=True))
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(
            len(panels), 1, figsize=(14, 2.4 * len(panels) + 1.0), sharex=True, squeeze=False
        )
        for ax, key in zip(axes[:, 0], panels, strict=True):
            data = history[history["key"] == key]
            for label in labels:
                color, _, style = styles[label]
                ids = [r for r in runs.loc[runs["config_label"] == label, "run_id"]]
                sub = data[data["run_id"].isin(ids)]
                if sub.empty:
                    continue
                values = sub["value"].to_numpy(dtype=np.float64)
                sub = sub.assign(value=np.where(np.isfinite(values), values, np.nan))
                for _, run_data in sub.groupby("run_id", sort=True):
                    ax.plot(run_data["step"], run_data["value"], color=color, lw=0.7, alpha=0.35)
                mean = sub.groupby("step", sort=True)["value"].mean()
                ax.plot(mean.index, mean.to_numpy(), color=color, ls=style, lw=2.0, label=label)
                for run_id in ids:
                    step = onset.get(run_id, np.nan)
                    if step is not None and np.isfinite(step):
                        ax.axvline(step, color=color, ls=":", lw=1.0)
                        if key == contract.MODES:
                            at = sub[(sub["run_id"] == run_id) & (sub["step"] == step)]["value"]
                            ax.plot(
                                [step],
                                [at.iloc[0] if len(at) else collapse_modes],
                                marker="v",
                                color=color,
                                mec="black",
                                ms=9,
                            )
            if key == contract.MODES:
                ax.axhline(
                    collapse_modes,
                    color="grey",
                    ls="--",
                    lw=1.0,
                    label=f"collapse threshold ({collapse_modes:g})",
                )
                ax.set_ylim(-0.3, contract.N_DIGITS + 0.3)
            ax.set_ylabel(key)
            ax.set_title(key if key != contract.MODES else f"{key} (▼ / dotted: collapse onset)")
        axes[-1, 0].set_xlabel("iteration")
        handles, names = axes[0, 0].get_legend_handles_labels()
        extra_h, extra_n = axes[-1, 0].get_legend_handles_labels()
        for h, n in zip(extra_h, extra_n, strict=True):
            if n not in names:
                handles.append(h)
                names.append(n)
        bottom = legend_below(fig, handles, names)
        fig.suptitle("Training curves per config (thin: runs, thick: mean over a config's runs)")
        fig.tight_layout(rect=(0, bottom, 1, 1 - 0.45 / fig.get_size_inches()[1]))  # room for the title
        return save(fig, path)


def plot_class_shares(runs: pd.DataFrame, path: Path) -> Path:
    """Heat map, configs × digits: mean final share of each digit among the samples (completed runs)."""
    done = completed(runs)
    columns = [contract.metric_column(k) for k in contract.CLASS_SHARES]
    if not all(c in done for c in columns):
        raise NoDataError("no completed run logged eval/class_share_0..9")
    labels = _labels(runs)
    matrix = np.full((len(labels), contract.N_DIGITS), np.nan)
    for i, label in enumerate(labels):
        group = done[done["config_label"] == label]
        for d, column in enumerate(columns):
            values = _finite(group[column])
            values = values[np.isfinite(values)]
            if values.size:
                matrix[i, d] = values.mean()
    if not np.isfinite(matrix).any():
        raise NoDataError("every eval/class_share_* value is missing")
    with plt.rc_context({**_style(), "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(10, _height(len(labels))))
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
        ax.set_yticklabels([_wrap(lbl) for lbl in labels], fontsize=8)
        ax.set_title("Final class shares per config (mean over completed runs; uniform = 0.10)")
        fig.colorbar(image, ax=ax, label="share of samples")
        fig.tight_layout()
        return save(fig, path)


def plot_samples(
    images: Mapping[str, tuple[np.ndarray, str]],
    labels: Sequence[str],
    path: Path,
    artifact: str = contract.SAMPLES_ARTIFACT,
) -> Path:
    """Final sample grids side by side: ``images`` maps a config label to (image array, caption). Pixels
    are drawn on the absolute grey scale (0 black, 1 white), never auto-contrasted: grey stays grey."""
    shown = [lbl for lbl in labels if lbl in images]
    if not shown:
        raise NoDataError(f"no run has a {artifact} artifact")
    ncols = min(4, len(shown))
    nrows = (len(shown) + ncols - 1) // ncols
    with plt.rc_context({**_style(), "axes.grid": False}):
        row_height = 4.2  # a square grid 3.4 wide plus its two-line title
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, row_height * nrows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, label in zip(axes.ravel(), shown, strict=False):
            image, caption = images[label]
            gray = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0 if image.dtype.kind == "f" else 255}
            ax.imshow(image, interpolation="nearest", **(gray if image.ndim == 2 else {}))
            ax.set_title(f"{_wrap(label, 34)}\n{caption}", fontsize=8)
        title = textwrap.fill(f"Final samples ({artifact}) of a representative run per config", 40 * ncols)
        fig.suptitle(title)
        # room for the title (wrapped to the figure's width) above the panels' own
        fig.tight_layout(rect=(0, 0, 1, 1 - (0.2 + 0.2 * (title.count("\n") + 1)) / (row_height * nrows)))
        return save(fig, path)


# The colour of a compared pair by its verdict class ("difference": red for the worse, blue for the better).
_VERDICT_COLORS = {
    inference.DIFFERENCE: "difference",
    inference.EQUIVALENT: "tab:green",
    inference.NOT_DECIDED: "grey",
    inference.FLOOR: "black",
    inference.CEILING: "black",
}


def plot_contrast(long: pd.DataFrame, path: Path, *, title: str, compared: str = "") -> Path:
    """One contrast: per compared pair of configs (rows) and figure (panels), the mean paired difference
    with its interval (diamond and whiskers; hollow: no interval), against a zero line. ``compared`` says
    what a row's difference is (default: level − baseline on the same seeds, bootstrap interval)."""
    if long.empty:
        raise NoDataError("the contrast has no paired runs")
    metrics = list(dict.fromkeys(long["metric"]))
    pairs = list(dict.fromkeys(zip(long["group"], long["level"], strict=True)))
    names = [f"{g} · {lv}" if g != "all runs" else str(lv) for g, lv in pairs]
    with plt.rc_context(_style()):
        fig, axes = plt.subplots(
            1,
            len(metrics),
            figsize=(3.6 * len(metrics) + 2.5, _height(len(pairs)) * 0.8),
            sharey=True,
            squeeze=False,
        )
        for ax, metric in zip(axes[0], metrics, strict=True):
            part = long[long["metric"] == metric].set_index(["group", "level"])
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
                    better = contract.figure(metric).better
                    worse = mean < 0 if better != "lower" else mean > 0
                    color = "tab:red" if worse else "tab:blue"
                ax.errorbar(
                    mean,
                    y,
                    xerr=[[mean - low], [high - mean]] if ok else None,
                    fmt="D",
                    color=color,
                    mfc=color if str(r.get("verdict", "")) != inference.FLOOR else "white",
                    mec=color,
                    ms=6,
                    capsize=3,
                )
            mmd = contract.figure(metric).mmd
            ax.axvspan(-mmd, mmd, color="tab:green", alpha=0.12, lw=0)
            ax.axvline(0.0, color="black", lw=0.8)
            ax.set_title(f"Δ {contract.short_name(metric)}")
            ax.set_ylim(-0.7, len(pairs) - 0.3)
        axes[0][0].set_yticks(range(len(pairs)))
        axes[0][0].set_yticklabels([_wrap(n, 30) for n in reversed(names)], fontsize=8)
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
    fig_def = contract.figure(metric)
    cells = [c for c in order if (data["cell"] == c).any()]
    with_fixes = bool(data["fixes"].map(len).any())
    with plt.rc_context(_style()):
        fig, ax = plt.subplots(figsize=(8.5, _height(len(cells)) * 0.8))
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
        labels = [_wrap(c, 34) + (f" ({sizes[c]})" if with_fixes else "") for c in cells]
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
