"""The drawing conventions every figure of the analysis shares: PNG files with byte-stable output (Agg
backend, fixed DPI, no Software metadata, :func:`save`), one colour, marker and line style per config in
sorted label order (:func:`config_styles`; past the palette's size, markers and line styles tell configs of
the same colour apart), and legends below the axes in as many columns as they need, the figure growing to
hold every entry (:func:`legend_below`; legible at 50 configs). Each ``plot_*`` function (in
:mod:`analysis.config_plots`, :mod:`analysis.run_plots`, :mod:`analysis.comparison_plots`) writes one file
and returns its path, or raises :class:`NoDataError` saying which metric or artifact the study lacks.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

DPI = 100
# No "Software" chunk: PNG bytes then depend only on the pixels (Agg writes no date).
PNG_METADATA: dict[str, str | None] = {"Software": None}


class NoDataError(LookupError):
    """The study holds nothing this figure could show; the message says what is missing."""


def rc_style() -> dict[str, object]:
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
    wrapped = [wrap_label(n, chars) for n in names]
    per_column = [wrapped[i::ncol] for i in range(ncol)]
    lines = max(sum(w.count("\n") + 1 for w in col) for col in per_column)
    extra = 0.17 * lines + 0.35
    fig.set_size_inches(width, height + extra)
    fig.legend(handles, wrapped, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    return extra / (height + extra)


def wrap_label(label: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


def finite_values(values: pd.Series) -> np.ndarray:
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return arr


def panel_height(n: int) -> float:
    return max(3.0, 0.6 * n + 1.6)


def config_labels(runs: pd.DataFrame) -> list[str]:
    return sorted(runs["config_label"].unique())
