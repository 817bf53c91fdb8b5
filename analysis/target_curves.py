"""The curve of a target study's figures against iterations (``target_curves.png``): one panel per bound of
``report.target`` (e.g. digits, FD and KL), per config every run thin and the mean over its runs thick, the
bound as a dashed line. It says whether the budget was long enough (a curve still falling at the last eval
point) and from which iteration a config meets the bar, which the cell table (final values only) cannot."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from analysis import catalog
from analysis.plot_style import NoDataError, config_labels, config_styles, legend_below, rc_style, save
from analysis.report_spec import Condition, Target
from analysis.run_plots import config_lines
from gansweep.run import contract

# figures spanning orders of magnitude (FD from ~500 at initialisation to ~10, KL from 2.3 to ~0.01) read
# best on a log axis; counts (digits, modes) on a linear one
LOG_SCALE = (contract.FD, contract.KL_TO_UNIFORM, contract.STACKED_KL)


def curve_panels(runs: pd.DataFrame, history: pd.DataFrame, target: Target) -> list[Condition]:
    """The bounds of ``target`` whose figure some run of ``runs`` logged at two eval points or more, in the
    target's order: one panel each."""
    logged = history[history["run_id"].isin(runs["run_id"])]
    return [c for c in target.conditions if logged.loc[logged["key"] == c.metric, "step"].nunique() >= 2]


def plot_target_curves(runs: pd.DataFrame, history: pd.DataFrame, target: Target, path: Path) -> Path:
    """Each of ``target``'s figures at every eval point, per config of ``runs`` (see the module docstring);
    :class:`NoDataError` when no run logged any of them at two eval points or more."""
    panels = curve_panels(runs, history, target)
    if not panels:
        keys = ", ".join(c.metric for c in target.conditions)
        raise NoDataError(f"no run logged {keys} at two eval points or more")
    logged = history[history["run_id"].isin(runs["run_id"])]
    styles = config_styles(config_labels(runs))
    with plt.rc_context(rc_style()):
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
        for ax, condition in zip(axes[0], panels, strict=True):
            data = logged[logged["key"] == condition.metric]
            for label, (color, _, style) in styles.items():
                ids = list(runs.loc[runs["config_label"] == label, "run_id"])
                config_lines(ax, data, ids, label, color, style)
            ax.axhline(condition.bound, color="black", ls="--", lw=1.0, label="target")
            if condition.metric in LOG_SCALE:
                ax.set_yscale("log")
            ax.set_title(f"{catalog.figure(condition.metric).short}: target {condition.text()}", fontsize=10)
            ax.set_xlabel("iteration")
        handles, names = axes[0, 0].get_legend_handles_labels()
        bottom = legend_below(fig, handles, names)
        fig.suptitle("The target's figures at each eval point (thin: runs, thick: mean over a config's runs)")
        fig.tight_layout(rect=(0, bottom, 1, 1 - 0.45 / fig.get_size_inches()[1]))
        return save(fig, path)
