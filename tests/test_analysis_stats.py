"""The analysis' statistics without MLflow: Student-t quantiles, confidence intervals, collapse onset, param
casting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.load import cast_param_column, parse_param, restore_inf
from analysis.stats import collapse_onset, mean_ci
from analysis.tdist import regularized_incomplete_beta, t_cdf, t_quantile

# Two-sided 95 % critical values t(0.975, df) from a printed table (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2).
T_TABLE_0975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    20: 2.086,
    30: 2.042,
    100: 1.984,
}


@pytest.mark.parametrize(("df", "expected"), sorted(T_TABLE_0975.items()))
def test_t_quantile_matches_printed_table(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=6e-4)


def test_t_quantile_closed_forms() -> None:
    # df = 1 is the Cauchy distribution: t = tan(pi (p - 1/2)).
    for p in (0.6, 0.9, 0.975, 0.995):
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-11)
    # df = 2: t = (2p - 1) / sqrt(2 p (1 - p)); at p = 0.975 this is 4.30265272974946...
    for p in (0.55, 0.8, 0.975, 0.999):
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-11)
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729911275, abs=1e-9)


def test_t_quantile_is_symmetric_and_inverts_the_cdf() -> None:
    for df in (1, 2, 3, 7.5, 40):
        for p in (0.01, 0.3, 0.5, 0.8, 0.999):
            t = t_quantile(p, df)
            assert t_cdf(t, df) == pytest.approx(p, abs=1e-12)
            assert t_quantile(1 - p, df) == pytest.approx(-t, abs=1e-9)


def test_t_quantile_agrees_with_scipy_when_available() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 12, 29, 500):
        for p in (0.9, 0.95, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(float(stats.t.ppf(p, df)), rel=1e-10)


def test_incomplete_beta_known_values_and_bad_input() -> None:
    # I_x(1, 1) = x; I_x(a, 1) = x^a; I_0.5(a, a) = 1/2.
    assert regularized_incomplete_beta(1, 1, 0.3) == pytest.approx(0.3, abs=1e-14)
    assert regularized_incomplete_beta(3, 1, 0.4) == pytest.approx(0.4**3, abs=1e-14)
    assert regularized_incomplete_beta(2.5, 2.5, 0.5) == pytest.approx(0.5, abs=1e-14)
    with pytest.raises(ValueError, match=r"x=1\.5"):
        regularized_incomplete_beta(1, 1, 1.5)
    with pytest.raises(ValueError, match="p=1"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="df=0"):
        t_quantile(0.9, 0)


def test_mean_ci_by_hand_for_three_values() -> None:
    values = [2.0, 4.0, 9.0]
    # mean 5; deviations -3, -1, 4 -> s^2 = (9 + 1 + 16) / 2 = 13; sem = sqrt(13 / 3)
    # t(0.975, 2) = 0.95 / sqrt(2 * 0.975 * 0.025) = 4.3026527297494...
    half = 4.302652729749464 * math.sqrt(13.0 / 3.0)
    out = mean_ci(values)
    assert out["n"] == 3
    assert out["mean"] == pytest.approx(5.0)
    assert out["std"] == pytest.approx(math.sqrt(13.0))
    assert out["ci_low"] == pytest.approx(5.0 - half, rel=1e-12)
    assert out["ci_high"] == pytest.approx(5.0 + half, rel=1e-12)
    assert half == pytest.approx(8.9567, abs=1e-4)


def test_mean_ci_drops_non_finite_and_handles_small_n() -> None:
    out = mean_ci([1.0, np.nan, np.inf, 3.0])
    assert out["n"] == 2
    assert out["mean"] == pytest.approx(2.0)
    # s = sqrt(2) over n = 2 values -> sem = 1, so the half-width is t(0.975, 1) = 12.7062...
    assert out["ci_high"] - out["mean"] == pytest.approx(12.706204736174707, rel=1e-10)
    one = mean_ci([7.0])
    assert one["n"] == 1 and one["mean"] == 7.0 and math.isnan(one["ci_low"]) and math.isnan(one["std"])
    none = mean_ci([])
    assert none["n"] == 0 and math.isnan(none["mean"])


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
