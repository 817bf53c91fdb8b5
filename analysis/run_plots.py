"""The figures of what the runs did: their training curves over the iterations (:func:`plot_curves`) and
the final samples of a representative run per config (:func:`plot_samples`)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from analysis import catalog
from analysis.plot_style import (
    NoDataError,
    config_labels,
    config_styles,
    legend_below,
    rc_style,
    save,
    wrap_label,
)
from gansweep.run import contract

CURVE_PANELS = (*contract.TRAINING_CURVES, contract.MODES, contract.FD)


def _collapse_onsets(runs: pd.DataFrame) -> dict[object, float]:
    """Run id -> the onset of its collapse, for the runs classed collapsed (after covering more digits; a run
    that never learned or never covered more than the threshold has no collapse to mark); else NaN."""
    fell = runs[catalog.COLLAPSED].astype("boolean").fillna(False) if catalog.COLLAPSED in runs else None
    steps = runs[catalog.COLLAPSE_STEP]
    steps = steps.where(fell.to_numpy(dtype=bool), np.nan) if fell is not None else steps
    return dict(zip(runs["run_id"], steps, strict=True))


def config_lines(
    ax: Axes, data: pd.DataFrame, ids: Sequence[str], label: str, color: tuple[float, ...], style: object
) -> pd.DataFrame:
    """One config's curves of a history slice (run_id, step, value): each run of ``ids`` thin, the per-step
    mean over them thick (labelled ``label``), non-finite values as gaps. Returns the rows drawn (empty: none
    of ``ids`` logged it, nothing drawn)."""
    sub = data[data["run_id"].isin(ids)]
    if sub.empty:
        return sub
    values = sub["value"].to_numpy(dtype=np.float64)
    sub = sub.assign(value=np.where(np.isfinite(values), values, np.nan))
    for _, run_data in sub.groupby("run_id", sort=True):
        ax.plot(run_data["step"], run_data["value"], color=color, lw=0.7, alpha=0.35)
    mean = sub.groupby("step", sort=True)["value"].mean()
    ax.plot(mean.index, mean.to_numpy(), color=color, ls=style, lw=2.0, label=label)
    return sub


def _curve_panel(
    ax: Axes,
    key: str,
    data: pd.DataFrame,
    runs: pd.DataFrame,
    styles: Mapping[str, tuple[tuple[float, ...], str, object]],
    onset: Mapping[object, float],
    collapse_modes: float,
) -> None:
    """One metric's panel: per config (in ``styles``' order) every run thin, the per-step mean thick, and
    each collapse onset as a dotted vertical (with a ▼ on the digits panel)."""
    for label, (color, _, style) in styles.items():
        ids = [r for r in runs.loc[runs["config_label"] == label, "run_id"]]
        sub = config_lines(ax, data, ids, label, color, style)
        if sub.empty:
            continue
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


def plot_curves(runs: pd.DataFrame, history: pd.DataFrame, collapse_modes: float, path: Path) -> Path:
    """Training curves (loss_d, loss_g, d_real, d_fake, eval/modes_covered, eval/fd: how long a budget
    needs) per iteration: every run thin, the per-step mean over a config's runs thick, collapse onsets as
    dotted verticals and ▼ markers."""
    panels = [k for k in CURVE_PANELS if (history["key"] == k).any()]
    if not panels:
        raise NoDataError(f"no run logged any of {', '.join(CURVE_PANELS)}")
    styles = config_styles(config_labels(runs))
    onset = _collapse_onsets(runs)
    with plt.rc_context(rc_style()):
        fig, axes = plt.subplots(
            len(panels), 1, figsize=(14, 2.4 * len(panels) + 1.0), sharex=True, squeeze=False
        )
        for ax, key in zip(axes[:, 0], panels, strict=True):
            _curve_panel(ax, key, history[history["key"] == key], runs, styles, onset, collapse_modes)
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
    with plt.rc_context({**rc_style(), "axes.grid": False}):
        row_height = 4.2  # a square grid 3.4 wide plus its two-line title
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, row_height * nrows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, label in zip(axes.ravel(), shown, strict=False):
            image, caption = images[label]
            gray = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0 if image.dtype.kind == "f" else 255}
            ax.imshow(image, interpolation="nearest", **(gray if image.ndim == 2 else {}))
            ax.set_title(f"{wrap_label(label, 34)}\n{caption}", fontsize=8)
        title = textwrap.fill(f"Final samples ({artifact}) of a representative run per config", 40 * ncols)
        fig.suptitle(title)
        # room for the title (wrapped to the figure's width) above the panels' own
        fig.tight_layout(rect=(0, 0, 1, 1 - (0.2 + 0.2 * (title.count("\n") + 1)) / (row_height * nrows)))
        return save(fig, path)
