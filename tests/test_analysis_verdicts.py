"""Verdicts on planted answers: the exact sign-flip test, the bootstrap interval, Holm, the verdict classes
(difference, equivalent, not decided, both at floor), the minimum meaningful difference, and the study's
Yes / No / Not decided."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from analysis import catalog, distributions, intervals, significance, verdict_classes
from analysis.contrast_table import PRIMARY, SECONDARY, decide
from analysis.contrasts import contrast_rows
from analysis.labels import FACTOR_PREFIX
from analysis.report_spec import Contrast, parse_spec
from analysis.verdicts import NO, UNDECIDED, YES, study_verdict
from gansweep.run import contract

MODES = catalog.metric_column(contract.MODES)
FD = catalog.metric_column(contract.FD)


def planted(
    cells: dict[str, tuple[list[float], list[float]]], fd: dict[str, tuple[list, list]] | None = None
):
    """A relabelled run table: per model (a group), the final digits of recipe post and recipe modern by
    seed (and optionally FD)."""
    rows = []
    for model, (post, modern) in cells.items():
        for recipe, values in (("post", post), ("modern", modern)):
            for seed, value in enumerate(values):
                row = {
                    "config_label": f"{model} · {recipe}",
                    "seed": seed,
                    "status": "FINISHED",
                    "diverged": False,
                    FACTOR_PREFIX + "model": model,
                    FACTOR_PREFIX + "recipe": recipe,
                    MODES: float(value),
                }
                if fd is not None:
                    row[FD] = float(fd[model][0 if recipe == "post" else 1][seed])
                rows.append(row)
    return pd.DataFrame(rows)


def _decided(runs: pd.DataFrame, contrast: Contrast) -> pd.DataFrame:
    long, messages = contrast_rows(runs, ("model", "recipe"), contrast)
    assert not messages
    return decide(long)


def test_sign_flip_p_is_the_share_of_sign_patterns_by_enumeration() -> None:
    d = np.array([-3.0, -1.0, -2.0, 0.5])
    sums = [float(np.dot(s, d)) for s in itertools.product((1, -1), repeat=4)]
    obs = d.sum()
    assert significance.sign_flip_p(d, "less") == pytest.approx(sum(s <= obs + 1e-12 for s in sums) / 16)
    assert significance.sign_flip_p(d) == pytest.approx(sum(abs(s) >= abs(obs) - 1e-12 for s in sums) / 16)
    # five identical differences: the smallest p the exact test has at n = 5
    assert significance.sign_flip_p([-9] * 5, "less") == 1 / 32 == significance.min_p(5, "less")
    assert significance.sign_flip_p([-9] * 5) == 2 / 32 == significance.min_p(5)
    assert significance.sign_flip_p([0, 0, 0]) == 1.0 and math.isnan(significance.sign_flip_p([]))
    # beyond MAX_EXACT: a seeded Monte Carlo estimate, reproducible and never 0
    many = np.full(30, -1.0)
    p = significance.sign_flip_p(many, "less")
    assert 0 < p < 1e-4 and p == significance.sign_flip_p(many, "less")


def test_bootstrap_interval_stays_inside_the_data_and_is_seeded() -> None:
    d = [1.0, 1.0, 2.0, 9.0]
    low, high = intervals.bootstrap_ci(d)
    assert 1.0 <= low <= np.mean(d) <= high <= 9.0
    assert (low, high) == intervals.bootstrap_ci(d)
    assert intervals.bootstrap_ci([-9, -9, -9]) == (-9.0, -9.0)
    assert all(math.isnan(v) for v in intervals.bootstrap_ci([3.0]))


def test_tarone_keeps_only_comparisons_that_can_reach_their_level() -> None:
    assert significance.testable([1 / 32, 1.0, 1 / 8]) == [True, False, False]
    assert significance.testable([1 / 32] * 4) == [False] * 4
    assert significance.testable([1 / 1024] * 4) == [True] * 4
    adjusted = significance.holm([0.03, 0.5, 0.2], [1 / 32, 1.0, 1 / 8])
    assert adjusted[0] == pytest.approx(0.03) and math.isnan(adjusted[1]) and math.isnan(adjusted[2])


def test_holm_by_hand() -> None:
    p = [0.01, 0.04, 0.03, float("nan"), 0.005]
    adjusted = significance.holm(p)
    # ordered 0.005, 0.01, 0.03, 0.04 with m = 4: 0.02, 0.03, 0.06, 0.06 (monotone)
    assert adjusted[4] == pytest.approx(0.02) and adjusted[0] == pytest.approx(0.03)
    assert adjusted[2] == pytest.approx(0.06) and adjusted[1] == pytest.approx(0.06)
    assert math.isnan(adjusted[3])


def test_planted_answers_get_their_verdict_classes() -> None:
    runs = planted(
        {
            "effect": ([1, 2, 1, 1, 2], [9, 10, 8, 9, 10]),  # a real effect
            "same": ([5, 5, 6, 5, 6], [5, 5, 6, 5, 6]),  # no effect, tight spread
            "wide": ([1, 9, 2], [8, 2, 7]),  # no effect, wide spread at n = 3
            "floor": ([1, 1, 1, 1, 1], [1, 1, 1, 1, 1]),  # both arms at 1 digit
        }
    )
    contrast = Contrast("post vs modern", "recipe", "modern", ("model",), expect="lower", primary=True)
    long = _decided(runs, contrast).set_index("group")
    assert long.loc["effect", "verdict"] == verdict_classes.DIFFERENCE
    assert long.loc["effect", "mean_diff"] == pytest.approx(-7.8)
    assert long.loc["same", "verdict"] == verdict_classes.EQUIVALENT
    assert long.loc["wide", "verdict"] == verdict_classes.NOT_DECIDED
    assert long.loc["wide", "seeds_needed"] > 3
    assert long.loc["floor", "verdict"] == verdict_classes.FLOOR
    # Holm-Tarone: the floor and the equal pairs (every Δ 0) and 3 pairs one-sided (smallest p 1/8) cannot
    # reach 0.05, so the family is the one comparison that can
    assert long.loc["effect", "p_value"] == pytest.approx(1 / 32)
    assert long.loc["effect", "p_holm"] == pytest.approx(1 / 32)
    assert math.isnan(long.loc["floor", "p_holm"]) and math.isnan(long.loc["wide", "p_holm"])
    assert (long["family"] == PRIMARY).all()


def test_holm_can_withhold_a_difference_that_stands_alone() -> None:
    # the same effect decided alone (a family of one) is a difference; among four it is not (see above)
    runs = planted({"effect": ([1, 2, 1, 1, 2], [9, 10, 8, 9, 10])})
    long = _decided(runs, Contrast("c", "recipe", "modern", ("model",), expect="lower", primary=True))
    assert long["verdict"].iloc[0] == verdict_classes.DIFFERENCE and long["p_holm"].iloc[0] == pytest.approx(
        1 / 32
    )
    runs = planted({m: ([1, 2, 1, 1, 2], [9, 10, 8, 9, 10]) for m in ("a", "b", "c", "d")})
    long = _decided(runs, Contrast("c", "recipe", "modern", ("model",), expect="lower", primary=True))
    assert set(long["verdict"]) == {verdict_classes.NOT_DECIDED}
    # four comparisons whose smallest p (1/32) exceeds 0.05 / 2: none is testable at its Holm level
    assert long["p_holm"].isna().all()
    assert (long["seeds_needed"] >= 7).all()  # the exact test reaches 0.05 / 4 one-sided from 7 pairs on


def test_pooling_decides_what_each_group_alone_cannot() -> None:
    runs = planted({m: ([1, 2, 1, 1, 2], [9, 10, 8, 9, 10]) for m in ("a", "b", "c", "d")})
    contrast = Contrast("c", "recipe", "modern", ("model",), expect="lower", pool=True, primary=True)
    long = _decided(runs, contrast)
    primary = long[long["family"] == PRIMARY]
    assert list(primary["group"]) == ["pooled"] and int(primary["n_pairs"].iloc[0]) == 20
    assert primary["verdict"].iloc[0] == verdict_classes.DIFFERENCE
    assert set(long[long["family"] == SECONDARY]["group"]) == {"a", "b", "c", "d"}
    word, sentence = study_verdict(long, [contrast])
    assert word == YES
    assert sentence.startswith("post has fewer digits than modern pooled over all groups: Δ digits -7.8")


def test_a_difference_below_the_minimum_meaningful_difference_is_no_finding() -> None:
    fd = {"m": ([105, 106, 104, 105, 105, 106], [100] * 6)}  # FD +5 on 6 seeds: mmd is 10
    runs = planted({"m": ([5] * 6, [5] * 6)}, fd=fd)
    contrast = Contrast("c", "recipe", "modern", metrics=(contract.FD,), primary=True)
    long = _decided(runs, contrast)
    row = long.iloc[0]
    assert row["ci_low"] > 0 and row["p_holm"] == pytest.approx(1 / 32)  # detected (two-sided, n = 6), but
    assert row["verdict"] == verdict_classes.EQUIVALENT  # inside ± 10: no meaningful difference
    word, sentence = study_verdict(long, [contrast])
    assert word == NO and "equivalent within ± 10 FD" in sentence


def test_both_at_floor_is_not_decided_and_says_the_design_cannot_tell() -> None:
    runs = planted({"m": ([1] * 5, [1] * 5)})
    contrast = Contrast("c", "recipe", "modern", expect="lower", primary=True)
    word, sentence = study_verdict(_decided(runs, contrast), [contrast])
    assert word == UNDECIDED and "cannot tell the arms apart" in sentence


def test_not_decided_names_the_seeds_that_would_decide_it() -> None:
    runs = planted({"m": ([1, 9, 2], [8, 2, 7])})
    contrast = Contrast("c", "recipe", "modern", primary=True)
    word, sentence = study_verdict(_decided(runs, contrast), [contrast])
    assert word == UNDECIDED and "seed pairs would decide it" in sentence


def test_seeds_needed_reaches_the_exact_tests_floor() -> None:
    assert verdict_classes.seeds_needed(-8.0, 0.0, 1.0) == 6  # two-sided: 2/2^n < 0.05 from n = 6
    assert verdict_classes.seeds_needed(-8.0, 0.0, 1.0, alternative="less") == 5
    assert verdict_classes.seeds_needed(-8.0, 0.0, 1.0, level=0.05 / 9, alternative="less") == 8
    assert (
        verdict_classes.seeds_needed(0.5, 4.0, 1.0) > 30
    )  # near zero with a wide spread: equivalence is far


def test_report_block_reads_expect_pool_primary_and_where() -> None:
    spec = parse_spec(
        {
            "question": "q?",
            "hypothesis": "h",
            "contrasts": [
                {"factor": "recipe", "baseline": "modern", "expect": "lower", "pool": True},
                {"factor": "ablation", "baseline": "none", "where": {"recipe": "post"}},
            ],
        }
    )
    first, second = spec.contrasts
    assert spec.hypothesis == "h" and first.primary and first.pool and first.expect == "lower"
    assert not second.primary and second.where == (("recipe", "post"),)
    from analysis.report_spec import ReportSpecError

    with pytest.raises(ReportSpecError, match=r"expect='fewer'"):
        parse_spec({"contrasts": [{"factor": "a", "baseline": "b", "expect": "fewer"}]})
    with pytest.raises(ReportSpecError, match=r"pool='yes'"):
        parse_spec({"contrasts": [{"factor": "a", "baseline": "b", "pool": "yes"}]})


def test_where_compares_only_the_runs_it_names() -> None:
    runs = planted({"m": ([1, 2, 1], [9, 10, 8]), "n": ([5, 5, 5], [5, 5, 5])})
    contrast = Contrast("c", "recipe", "modern", where=(("model", "n"),), primary=True)
    long = _decided(runs, contrast)
    assert set(long["group"]) == {"all runs"} and long["mean_diff"].iloc[0] == 0.0


def test_a_floor_blocks_only_the_direction_it_hides() -> None:
    # both arms at 1 digit: "fewer" could not show (floor), but "more" could have and did not
    runs = planted({"m": ([1] * 6, [1] * 6)})
    lower = Contrast("c", "recipe", "modern", expect="lower", primary=True)
    higher = Contrast("c", "recipe", "modern", expect="higher", primary=True)
    assert _decided(runs, lower)["verdict"].iloc[0] == verdict_classes.FLOOR
    long = _decided(runs, higher)
    assert long["verdict"].iloc[0] == verdict_classes.EQUIVALENT
    assert study_verdict(long, [higher])[0] == NO


def test_two_sample_permutation_p_is_the_share_of_splits_by_enumeration() -> None:
    level, base = np.array([1.0, 3.0, 2.0]), np.array([4.0, 6.0, 5.0, 2.0])
    values = np.concatenate([level, base])
    stats = [
        values[list(c)].mean() - np.delete(values, list(c)).mean()
        for c in itertools.combinations(range(7), 3)
    ]
    obs = level.mean() - base.mean()
    p, smallest = significance.permutation_p(level, base, alternative="less")
    assert p == pytest.approx(sum(s <= obs + 1e-12 for s in stats) / 35)
    assert smallest == pytest.approx(1 / 35)  # one split puts the three smallest values in the level arm
    p_two, _ = significance.permutation_p(level, base)
    assert p_two == pytest.approx(sum(abs(s) >= abs(obs) - 1e-12 for s in stats) / 35)
    # five runs per arm, perfectly separated: 1/252 one-sided, where five seed pairs give 1/32
    assert significance.permutation_p([1] * 5, [8, 9, 8, 8, 9], alternative="less") == pytest.approx(
        (1 / 252, 1 / 252)
    )
    assert significance.min_p_two(5, "less") == pytest.approx(1 / 252)
    # all runs alike: no split is more extreme, the test cannot reach any level
    assert significance.permutation_p([1] * 5, [1] * 5, alternative="less") == (1.0, 1.0)


def test_stratified_permutation_and_its_monte_carlo_agree() -> None:
    rng = np.random.default_rng(3)
    level = rng.integers(1, 6, 12).astype(float)
    base = rng.integers(3, 9, 12).astype(float)
    strata = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    exact, _ = significance.permutation_p(level, base, strata, strata, "less")  # 70^3 = 343,000 splits
    assert exact < 0.05
    sampled, _ = significance.permutation_p(level, base, strata, strata, "less", max_splits=10, draws=100_000)
    assert sampled == pytest.approx(exact, abs=0.005)
    # the weighted within-stratum difference, not the difference of the pooled means
    assert intervals.two_sample_diff([1, 10], [0, 9], ["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    low, high = intervals.bootstrap_ci_two(level, base, strata, strata)
    assert low < intervals.two_sample_diff(level, base, strata, strata) < high


def test_student_t_matches_its_tables() -> None:
    assert distributions.t_cdf(2.0, 5) == pytest.approx(0.949030, abs=1e-6)
    assert distributions.t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-5)
    assert distributions.t_quantile(0.975, 10) == pytest.approx(2.228139, abs=1e-5)
    assert distributions.t_quantile(0.975, 64) == pytest.approx(1.997730, abs=1e-5)
    p, low, high = significance.t_test(2.0, 1.0, 10)
    assert p == pytest.approx(2 * (1 - 0.963306), abs=1e-5)
    assert (low, high) == pytest.approx((2 - 2.228139, 2 + 2.228139), abs=1e-5)
    assert significance.t_test(1.0, 0.0, 10) == (0.0, 1.0, 1.0)


def test_unpaired_contrasts_decide_a_family_of_nine_that_five_pairs_cannot() -> None:
    # nine quirks, each lowering the digits from 8-9 to 1-2 on every one of 5 seeds
    cells = {f"q{i}": ([1, 2, 1, 1, 2], [9, 8, 9, 8, 9]) for i in range(9)}
    runs = planted(cells)
    paired = _decided(runs, Contrast("c", "recipe", "modern", ("model",), expect="lower", primary=True))
    assert set(paired["verdict"]) == {verdict_classes.NOT_DECIDED}  # 1/32 > 0.05 / 9
    unpaired = Contrast("c", "recipe", "modern", ("model",), expect="lower", primary=True, paired=False)
    long = _decided(runs, unpaired)
    assert set(long["verdict"]) == {verdict_classes.DIFFERENCE} and not long["paired"].any()
    assert long["p_value"].iloc[0] == pytest.approx(1 / 252)
    assert long["n_pairs"].iloc[0] == 5 and long["mean_diff"].iloc[0] == pytest.approx(-7.2)
    word, sentence = study_verdict(long, [unpaired])
    assert word == YES and "5 runs per arm, permutation p 0.004" in sentence
    assert "Unpaired contrasts" in verdict_classes.method(list(long["paired"]))
    assert "Paired contrasts" not in verdict_classes.method(list(long["paired"]))


def test_paired_false_is_read_and_kept_in_meta() -> None:
    from analysis.meta import contrast_meta, contrast_of

    block = {"contrasts": [{"factor": "recipe", "baseline": "modern", "paired": False}]}
    contrast = parse_spec(block).contrasts[0]
    assert contrast.paired is False and contrast_of(contrast_meta(contrast)) == contrast
    with pytest.raises(Exception, match=r"report\.contrasts\[0\]\.paired='no'"):
        parse_spec({"contrasts": [{"factor": "recipe", "baseline": "modern", "paired": "no"}]})


def test_levels_compare_only_the_listed_levels_with_the_baseline() -> None:
    rows = []
    for level, values in (
        ("five", [10, 10, 9]),
        ("four_a", [7, 8, 7]),
        ("four_b", [9, 10, 10]),
        ("all", [1] * 3),
    ):
        for seed, value in enumerate(values):
            rows.append(
                {
                    "config_label": level,
                    "seed": seed,
                    "status": "FINISHED",
                    "diverged": False,
                    FACTOR_PREFIX + "ablation": level,
                    MODES: float(value),
                }
            )
    runs = pd.DataFrame(rows)
    contrast = Contrast("drop", "ablation", "five", levels=("four_a", "four_b"), primary=True, paired=False)
    long, messages = contrast_rows(runs, ("ablation",), contrast)
    assert not messages and set(long["level"]) == {"four_a", "four_b"}
    # a listed level without runs is named, the rest still compared
    long, messages = contrast_rows(
        runs, ("ablation",), Contrast("d", "ablation", "five", levels=("four_c", "all"))
    )
    assert set(long["level"]) == {"all"} and messages == ["contrast 'd': levels ['four_c'] have no runs yet"]
    spec = parse_spec({"contrasts": [{"factor": "ablation", "baseline": "five", "levels": ["four_a"]}]})
    assert spec.contrasts[0].levels == ("four_a",)
    for bad in ("four_a", []):
        with pytest.raises(Exception, match=r"report\.contrasts\[0\]\.levels=.*expected a non-empty list"):
            parse_spec({"contrasts": [{"factor": "ablation", "baseline": "five", "levels": bad}]})
    # a YAML list or a spaced text reads as the run label spells the cell
    spaced = parse_spec(
        {"contrasts": [{"factor": "a", "baseline": "b", "levels": [["init", "scale"], "[x, y]"]}]}
    )
    assert spaced.contrasts[0].levels == ("[init,scale]", "[x,y]")
    from analysis.meta import contrast_meta, contrast_of

    assert contrast_of(contrast_meta(contrast)) == contrast
