"""The target curves (analysis.target_curves): one panel per bound of a study's target that its runs logged
at two eval points or more, the bound drawn, and no figure (a message) without such a curve."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from analysis.plot_style import NoDataError
from analysis.report_spec import Condition, Target
from analysis.target_curves import curve_panels, plot_target_curves
from gansweep.run import contract

TARGET = Target(
    (
        Condition(contract.FD, 25.0, at_most=True),
        Condition(contract.MODES, 10.0),
        Condition(contract.KL_TO_UNIFORM, 0.05, at_most=True),
    )
)


def _study(steps: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two configs x 2 seeds; FD and digits logged at ``steps``, KL at the last step only."""
    runs, rows = [], []
    for label in ("none", "sn"):
        for seed in range(2):
            run_id = f"{label}-{seed}"
            runs.append({"run_id": run_id, "config_label": label, "seed": seed})
            for i, step in enumerate(steps):
                rows.append({"run_id": run_id, "key": contract.FD, "step": step, "value": 500.0 / (i + 1)})
                rows.append(
                    {"run_id": run_id, "key": contract.MODES, "step": step, "value": min(10, 1 + 5 * i)}
                )
            rows.append({"run_id": run_id, "key": contract.KL_TO_UNIFORM, "step": steps[-1], "value": 0.04})
    return pd.DataFrame(runs), pd.DataFrame(rows)


def test_one_panel_per_bound_logged_along_the_run(tmp_path: Path) -> None:
    runs, history = _study((0, 2500, 5000))
    panels = curve_panels(runs, history, TARGET)
    # KL was logged at one eval point only: no curve to draw; FD and digits keep the target's order
    assert [c.metric for c in panels] == [contract.FD, contract.MODES]
    path = plot_target_curves(runs, history, TARGET, tmp_path / "target_curves.png")
    height, width, _ = mpimg.imread(path).shape
    assert width > 1.5 * height  # two panels side by side
    # runs of another study in the history are not this study's curves
    assert curve_panels(runs.iloc[:0], history, TARGET) == []


def test_no_curve_is_a_message_not_a_figure(tmp_path: Path) -> None:
    runs, history = _study((5000,))
    with pytest.raises(NoDataError, match="two eval points"):
        plot_target_curves(runs, history, TARGET, tmp_path / "target_curves.png")
    assert not (tmp_path / "target_curves.png").exists()
