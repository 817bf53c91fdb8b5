"""The analysis' statistics without MLflow: descriptions with bootstrap intervals, outcome classes, collapse
onset, param casting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import catalog
from analysis.intervals import bootstrap_ci
from analysis.load import cast_param_column, parse_param, restore_inf
from analysis.stats import add_collapse, collapse_onset, describe
from gansweep.run import contract


def test_describe_gives_the_bootstrap_interval_of_the_mean_inside_the_values() -> None:
    values = [2.0, 4.0, 9.0]
    out = describe(values)
    assert out["n"] == 3 and out["mean"] == pytest.approx(5.0)
    assert out["std"] == pytest.approx(math.sqrt(13.0))  # s^2 = (9 + 1 + 16) / 2
    assert (out["min"], out["max"]) == (2.0, 9.0)
    assert (out["ci_low"], out["ci_high"]) == bootstrap_ci(values)
    assert 2.0 <= out["ci_low"] < 5.0 < out["ci_high"] <= 9.0


def test_describe_drops_non_finite_and_handles_small_n() -> None:
    out = describe([1.0, np.nan, np.inf, 3.0])
    assert out["n"] == 2 and out["mean"] == pytest.approx(2.0)
    assert 1.0 <= out["ci_low"] <= out["ci_high"] <= 3.0
    one = describe([7.0])
    assert one["n"] == 1 and one["mean"] == 7.0 and math.isnan(one["ci_low"]) and math.isnan(one["std"])
    none = describe([])
    assert none["n"] == 0 and math.isnan(none["mean"])


def test_outcome_classes_from_the_histories() -> None:
    """never learned (contrast and FD barely moved), collapsed (fell to <= 3 digits after covering more),
    else the digits at the end; a run at 1 digit from the start has not collapsed."""
    rows = []
    cases = {
        "flat": ([1, 1, 1], [0.001, 0.001, 0.002], [400, 401, 399]),  # a grey square that stays one
        "fell": ([8, 6, 2], [0.2, 0.9, 1.0], [300, 150, 320]),
        "stuck": ([1, 1, 1], [0.0, 0.9, 1.0], [400, 420, 380]),  # moved, but never covered > 3 digits
        "good": ([2, 7, 10], [0.3, 0.9, 1.0], [300, 80, 40]),
    }
    for run_id, (modes, contrast, fd) in cases.items():
        for step, m, c, f in zip((0, 100, 200), modes, contrast, fd, strict=True):
            rows += [(run_id, contract.MODES, step, m), (run_id, contract.CONTRAST, step, c)]
            rows.append((run_id, contract.FD, step, f))
    history = pd.DataFrame(rows, columns=["run_id", "key", "step", "value"])
    runs = pd.DataFrame({"run_id": [*cases, "no_eval"]})
    out = add_collapse(runs, history, 3).set_index("run_id")
    assert out.loc["flat", catalog.OUTCOME] == "never learned" and out.loc["flat", catalog.NEVER_LEARNED]
    assert not out.loc["flat", catalog.COLLAPSED]
    assert out.loc["fell", catalog.OUTCOME] == "collapsed" and out.loc["fell", catalog.COLLAPSED]
    assert out.loc["fell", catalog.COLLAPSE_STEP] == 200 and out.loc["fell", catalog.MAX_MODES] == 8
    assert out.loc["stuck", catalog.OUTCOME] == "1 digits" and not out.loc["stuck", catalog.COLLAPSED]
    assert out.loc["good", catalog.OUTCOME] == "10 digits"
    assert pd.isna(out.loc["no_eval", catalog.OUTCOME]) and pd.isna(out.loc["no_eval", catalog.COLLAPSED])


def test_collapse_onset_definition() -> None:
    steps = [100, 200, 300, 400]
    assert collapse_onset(steps, [9, 2, 1, 1], max_modes=3) == 200
    # a dip that recovers is not a collapse; the onset is after the last eval point above the threshold
    assert collapse_onset(steps, [2, 8, 1, 3], max_modes=3) == 300
    assert math.isnan(collapse_onset(steps, [1, 1, 1, 6], max_modes=3))
    assert collapse_onset(steps, [1, 1, 1, 1], max_modes=3) == 100
    assert collapse_onset(steps, [9, 9, np.nan, np.nan], max_modes=3) == 300
    assert math.isnan(collapse_onset([], [], max_modes=3))
    # unsorted input is ordered by step first
    assert collapse_onset([300, 100, 200], [1, 9, 2], max_modes=3) == 200


def test_params_are_cast_to_one_type_per_column() -> None:
    assert parse_param("None") is None and parse_param("true") is True and parse_param("64") == 64
    assert parse_param("2e-4") == pytest.approx(2e-4) and parse_param("[256, 512]") == "[256, 512]"
    ints = cast_param_column(["1", "64", None])
    assert str(ints.dtype) == "Int64" and ints.iloc[1] == 64 and ints.isna().iloc[2]
    floats = cast_param_column(["0.5", "1", "None"])
    assert floats.dtype == np.float64 and floats.iloc[1] == 1.0 and math.isnan(floats.iloc[2])
    bools = cast_param_column(["True", "false"])
    assert str(bools.dtype) == "boolean" and bools.tolist() == [True, False]
    mixed = cast_param_column(["1", "relu", "[1, 2]"])
    assert isinstance(mixed.dtype, pd.StringDtype) and mixed.tolist() == ["1", "relu", "[1, 2]"]


def test_restore_inf_undoes_mlflow_sanitising() -> None:
    import sys

    assert restore_inf(sys.float_info.max) == math.inf
    assert restore_inf(-sys.float_info.max) == -math.inf
    assert math.isnan(restore_inf(float("nan")))
    assert restore_inf(3.5) == 3.5
