"""Target studies and the port factorial on planted answers: the cell that rescues every seed, the main
effects and the interaction a planted synergy makes, and the verdicts."""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

from analysis import catalog, distributions, verdict_classes
from analysis.factorial_cells import cell_fixes, cell_name, cell_table, fixes_of
from analysis.factorial_effects import design_text, effect_table, two_level
from analysis.labels import FACTOR_PREFIX
from analysis.report_spec import Condition, ReportSpecError, Target, parse_spec, parse_target
from analysis.target_verdict import factorial_verdict
from analysis.verdicts import NO, UNDECIDED, YES
from gansweep.run import contract

MODES = catalog.metric_column(contract.MODES)
FIXES = ("adam_hparams", "batch", "bias_correction", "init", "scale")
# the half fraction with an even number of fixes (I = -ABCDE): none, the 10 pairs, the 5 fours
CELLS = [c for k in (0, 2, 4) for c in itertools.combinations(FIXES, k)]


def planted(value, seeds: int = 5) -> pd.DataFrame:
    rows = []
    for cell in CELLS:
        label = "none" if not cell else "[" + ",".join(cell) + "]"
        for seed in range(seeds):
            rows.append(
                {
                    "config_label": label,
                    "seed": seed,
                    "status": "FINISHED",
                    FACTOR_PREFIX + "ablation": label,
                    MODES: float(value(set(cell), seed)),
                }
            )
    return pd.DataFrame(rows)


SPEC = Target.at_least(contract.MODES, 9.0, "ablation")


def synergy(cell: set[str], seed: int) -> float:
    """Init and scale together lift the digits from 1 to 10 (9 on seed 0); nothing else matters."""
    return (10 - (seed == 0)) if {"init", "scale"} <= cell else 1


def test_fixes_parse_from_the_list_text() -> None:
    assert fixes_of("[init,scale]") == {"init", "scale"} and fixes_of("none") == frozenset()
    assert fixes_of("[]") == frozenset()
    for fixes in (frozenset(), frozenset({"sn"}), frozenset({"init", "scale"})):
        assert cell_fixes(cell_name(fixes)) == fixes


def test_the_smallest_rescuing_cell_and_the_synergy_are_found() -> None:
    runs = planted(synergy)
    cells = cell_table(runs, SPEC)
    assert len(cells) == 16 and list(cells["fixes"])[:2] == [0, 2]
    rescuing = cells[cells["rescued"] == cells["n"]]
    # init + scale and the four cells of four that contain both
    assert set(rescuing["cell"]) == {"init + scale"} | {
        " + ".join(sorted(set(FIXES) - {x})) for x in ("adam_hparams", "batch", "bias_correction")
    }
    table = effect_table(runs, SPEC)
    effects = table.set_index("effect")
    assert len(effects) == 15
    # the synergy lifts 4 of the 8 cells with init (and none without) by 9 (8 on seed 0): main effects of init
    # and scale and their interaction 4.5 per seed (4 on seed 0), 4.4 on average
    for name in ("init", "scale", "init × scale"):
        assert effects.loc[name, "mean_diff"] == pytest.approx(4.4), name
    assert effects.loc["batch", "mean_diff"] == pytest.approx(0.0, abs=1e-9)
    # pooled within-cell error (only seed 0 varies): the three planted effects are decided differences with
    # t intervals around 4.4, every other effect is an equivalence (0 inside ± 1 digit)
    for name in ("init", "scale", "init × scale"):
        row = effects.loc[name]
        assert row["verdict"] == verdict_classes.DIFFERENCE and row["p_holm"] < 0.05, name
        assert row["ci_low"] < 4.4 < row["ci_high"] and row["ci_high"] - row["ci_low"] < 0.5, name
    others = effects.drop(index=["init", "scale", "init × scale"])
    assert set(others["verdict"]) == {verdict_classes.EQUIVALENT}
    word, sentence = factorial_verdict(cells, table, SPEC)
    assert word == YES and "is init + scale (5 of 5 seeds" in sentence
    assert "the effects that differ: init Δ 4.4 [" in sentence and "init × scale Δ 4.4 [" in sentence


def test_no_cell_rescuing_any_seed_is_a_no_and_some_seeds_not_decided() -> None:
    runs = planted(lambda cell, seed: 1)
    assert factorial_verdict(cell_table(runs, SPEC), effect_table(runs, SPEC), SPEC)[0] == NO
    runs = planted(lambda cell, seed: 10 if seed < 3 and {"init", "scale"} <= cell else 1)
    word, sentence = factorial_verdict(cell_table(runs, SPEC), effect_table(runs, SPEC), SPEC)
    assert word == UNDECIDED and "3 of 5 seeds" in sentence


def test_a_target_without_fixes_reads_each_config() -> None:
    runs = pd.DataFrame(
        {
            "config_label": ["tf"] * 5,
            "seed": range(5),
            "status": ["FINISHED"] * 5,
            MODES: [10, 10, 9, 10, 10.0],
        }
    )
    spec = Target.at_least(contract.MODES, 10.0)
    cells = cell_table(runs, spec)
    assert cells.iloc[0]["cell"] == "tf" and cells.iloc[0]["rescued"] == 4
    assert effect_table(runs, spec).empty
    word, sentence = factorial_verdict(cells, effect_table(runs, spec), spec)
    assert word == UNDECIDED
    assert "4 of 5 seeds reach 10 or more digits; digits on the 5 seeds: 10, 10, 9, 10, 10" in sentence
    fd_key = catalog.metric_column(contract.FD)
    runs = runs.assign(**{fd_key: [348.0, 91.4, 100.0, 114.0, 82.6]})  # the figure named is the first bound's
    fd_first = Target((Condition(contract.FD, 25.0, at_most=True), Condition(contract.MODES, 10.0)))
    word, sentence = factorial_verdict(cell_table(runs, fd_first), pd.DataFrame(), fd_first)
    assert word == NO and "; FD on the 5 seeds: 348, 91.4, 100, 114, 82.6 (mean 147" in sentence


def test_the_target_block_is_checked() -> None:
    spec = parse_spec(
        {"question": "q?", "target": {"metric": "modes_covered", "at_least": 9, "fixes": "ablation"}}
    )
    assert spec.target == Target.at_least(contract.MODES, 9.0, "ablation")
    with pytest.raises(ReportSpecError, match=r"report\.target\.at_least='nine'"):
        parse_spec({"target": {"metric": "modes_covered", "at_least": "nine"}})
    with pytest.raises(ReportSpecError, match=r"report\.target\.bound: unknown key"):
        parse_spec({"target": {"metric": "modes_covered", "at_least": 9, "bound": 1}})
    with pytest.raises(ReportSpecError, match=r"needs exactly one of at_least, at_most"):
        parse_spec({"target": {"metric": "fd", "at_least": 9, "at_most": 25}})
    with pytest.raises(ReportSpecError, match=r"report\.target\.all\[1\]\.metric: unknown figure 'fid'"):
        parse_spec(
            {
                "target": {
                    "all": [{"metric": "modes_covered", "at_least": 10}, {"metric": "fid", "at_most": 1}]
                }
            }
        )
    # what meta.json keeps reads back as the same target
    several = parse_spec(
        {"target": {"all": [{"metric": "modes_covered", "at_least": 10}, {"metric": "fd", "at_most": 25}]}}
    ).target
    assert parse_target(several.to_meta()) == several and parse_target(spec.target.to_meta()) == spec.target


def test_a_target_of_several_bounds_needs_every_one_on_a_seed() -> None:
    """The reference recipe's bar (issue 26): all ten digits, FD at most 25 and KL at most 0.05."""
    rows = []
    fd = {"a": [20, 22, 24, 19, 21], "b": [20, 30, 24, 19, 21]}  # b misses FD on seed 1
    for config in ("a", "b"):
        for seed in range(5):
            rows.append(
                {
                    "config_label": config,
                    "seed": seed,
                    "status": "FINISHED",
                    MODES: 10.0,
                    catalog.metric_column(contract.FD): float(fd[config][seed]),
                    catalog.metric_column(contract.KL_TO_UNIFORM): 0.09
                    if (config, seed) == ("a", 4)
                    else 0.02,
                }
            )
    runs = pd.DataFrame(rows)
    spec = Target(
        (
            Condition(contract.MODES, 10.0),
            Condition(contract.FD, 25.0, at_most=True),
            Condition(contract.KL_TO_UNIFORM, 0.05, at_most=True),
        )
    )
    assert spec.text() == "10 or more digits, FD at most 25 and KL at most 0.05"
    cells = cell_table(runs, spec).set_index("cell")
    assert cells.loc["a", "rescued"] == 4 and cells.loc["b", "rescued"] == 4  # a fails KL, b FD, once each
    assert cells.loc["b", "target FD"] == pytest.approx(22.8)
    word, sentence = factorial_verdict(cell_table(runs, spec), effect_table(runs, spec), spec)
    assert (
        word == UNDECIDED
        and "no cell reaches 10 or more digits, FD at most 25 and KL at most 0.05" in sentence
    )


def test_with_a_bound_at_most_first_the_lowest_mean_is_the_best_cell() -> None:
    """FD first (stabilizer_factorial): of two one-fix cells that rescue every seed the answer names the one
    with the lower FD, and without a rescue the closest (or lowest) FD, never the highest."""
    fd_key = catalog.metric_column(contract.FD)
    fds = {"none": 40.0, "[sn]": 9.0, "[ema]": 14.0, "[ema,sn]": 6.0}
    runs = pd.DataFrame(
        [
            {
                "config_label": c,
                "seed": s,
                "status": "FINISHED",
                FACTOR_PREFIX + "stabilizer": c,
                fd_key: fd + s,
            }
            for c, fd in fds.items()
            for s in range(5)
        ]
    )
    spec = Target((Condition(contract.FD, 25.0, at_most=True),), "stabilizer")
    word, sentence = factorial_verdict(cell_table(runs, spec), effect_table(runs, spec), spec)
    assert word == YES and "on every seed is sn (5 of 5 seeds" in sentence
    strict = Target((Condition(contract.FD, 5.0, at_most=True),), "stabilizer")
    word, sentence = factorial_verdict(cell_table(runs, strict), effect_table(runs, strict), strict)
    assert word == NO and "the lowest mean is ema + sn" in sentence
    some = Target((Condition(contract.FD, 7.5, at_most=True),), "stabilizer")  # ema + sn on seeds 0, 1
    word, sentence = factorial_verdict(cell_table(runs, some), effect_table(runs, some), some)
    assert word == UNDECIDED and "the closest is ema + sn (2 of 5 seeds)" in sentence


def test_the_method_names_the_designs_aliasing() -> None:
    # port_fixes' half fraction (I = ABCDE) against stabilizer_factorial's full 2 x 2
    fraction = design_text([frozenset(c) for c in CELLS])
    assert fraction.startswith(
        "In a 2^(5−1) fraction of resolution V each main effect is aliased with a four-way"
    )
    full = design_text([frozenset(), frozenset({"sn"}), frozenset({"ema"}), frozenset({"ema", "sn"})])
    assert full.startswith("In this full 2^2 factorial") and "aliased" not in full
    assert "resolution IV" in design_text(
        [frozenset(c) for k in (0, 2, 4) for c in itertools.combinations("abcd", k)]
    )


def test_cells_carry_what_d_does_with_the_reals_where_logged() -> None:
    from analysis.stats import add_probes

    runs = planted(synergy)
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    # D(x) passes 0.99 at iteration 30 in cells without the scale fix, never with it
    rows = []
    for run_id, fixes in zip(runs["run_id"], runs[FACTOR_PREFIX + "ablation"], strict=True):
        high = "scale" not in fixes_of(fixes)
        rows += [(run_id, "d_real", step, 0.999 if high and step >= 30 else 0.6) for step in (10, 20, 30, 40)]
    history = pd.DataFrame(rows, columns=["run_id", "key", "step", "value"])
    runs[catalog.metric_column("d_real_logit")] = 9.0
    runs[catalog.metric_column("d_fake_logit")] = -3.0
    cells = cell_table(add_probes(runs, history), SPEC).set_index("cell")
    assert cells.loc["none", "first iteration D(x) > 0.99"] == 30
    assert pd.isna(cells.loc["init + scale", "first iteration D(x) > 0.99"])
    assert (cells["D logit margin (real − fake)"] == 12.0).all()


def test_effects_only_from_a_two_level_design() -> None:
    full = [frozenset(c) for k in range(len(FIXES) + 1) for c in itertools.combinations(FIXES, k)]
    assert two_level([frozenset(c) for c in CELLS]) and two_level(full)
    # the half fraction with one cell missing, and a forward path with its backward check, are not
    assert not two_level([frozenset(c) for c in CELLS[:-1]])
    path = [frozenset(FIXES), *(frozenset(FIXES) - {f} for f in FIXES), frozenset({*FIXES, "dtype"})]
    assert not two_level(path)
    runs = planted(synergy)
    runs = runs[runs["config_label"] != "[adam_hparams,batch,bias_correction,init]"]
    assert effect_table(runs, SPEC).empty and not cell_table(runs, SPEC).empty


def test_require_every_cell_reaches_the_target() -> None:
    def table(values: dict[str, list[float]]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"config_label": c, "seed": s, "status": "FINISHED", MODES: v}
                for c, vs in values.items()
                for s, v in enumerate(vs)
            ]
        )

    spec = parse_target({"metric": "modes_covered", "at_least": 9, "require": "every"})
    assert spec.require == "every" and parse_target(spec.to_meta()) == spec
    both = table({"failed5": [9, 10, 9], "failed6": [10, 10, 9]})
    word, sentence = factorial_verdict(cell_table(both, spec), effect_table(both, spec), spec)
    assert word == YES and sentence.startswith("every cell reaches 9 or more digits on every seed")
    one = table({"failed5": [9, 10, 9], "failed6": [1, 2, 1]})
    word, sentence = factorial_verdict(cell_table(one, spec), effect_table(one, spec), spec)
    assert word == NO and sentence.startswith("failed6 reach(es)")
    # the same runs under "some": failed5 rescues every seed, a Yes
    some = Target.at_least(contract.MODES, 9.0)
    assert factorial_verdict(cell_table(one, some), effect_table(one, some), some)[0] == YES
    partial = table({"failed5": [9, 10, 9], "failed6": [10, 2, 9]})
    assert factorial_verdict(cell_table(partial, spec), effect_table(partial, spec), spec)[0] == UNDECIDED
    with pytest.raises(ReportSpecError, match=r"report\.target\.require='all'"):
        parse_target({"metric": "modes_covered", "at_least": 9, "require": "all"})


def test_a_failed_run_is_a_seed_that_misses_the_target() -> None:
    """A FAILED run (diverged and stopped) counts in n and reaches nothing: no false Yes from the rest."""
    runs = pd.DataFrame(
        [
            {
                "config_label": c,
                "seed": s,
                "status": "FAILED" if (c, s) == ("failed5", 2) else "FINISHED",
                MODES: v,
            }
            for c, vs in {"failed5": [9, 10, 9], "failed6": [10, 10, 9]}.items()
            for s, v in enumerate(vs)
        ]
        + [{"config_label": "failed6", "seed": 3, "status": "KILLED", MODES: 1.0}]
    )
    every = parse_target({"metric": "modes_covered", "at_least": 9, "require": "every"})
    cells = cell_table(runs, every).set_index("cell")
    assert cells.loc["failed5", "n"] == 3 and cells.loc["failed5", "rescued"] == 2
    assert cells.loc["failed5", "values"] == "9,10,failed" and cells.loc["failed5", "mean"] == 9.5
    assert cells.loc["failed6", "n"] == 3  # a KILLED run is no result
    assert factorial_verdict(cell_table(runs, every), effect_table(runs, every), every)[0] == UNDECIDED
    # require: every with a single cell still asks every cell
    one = runs[runs["config_label"] == "failed6"]
    word, sentence = factorial_verdict(cell_table(one, every), effect_table(one, every), every)
    assert word == YES and sentence.startswith("every cell reaches")


def test_effects_use_each_cells_own_variance() -> None:
    """Welch–Satterthwaite: only the cells that vary carry error; an unbalanced cell does not bias the
    estimate (the mean of cell means), and with no variance anywhere there is no test."""
    runs = planted(synergy)
    effects = effect_table(runs, SPEC).set_index("effect")
    # 4 rescuing cells vary (9,10,10,10,10: variance 0.2), 12 do not: se = sqrt(4 * (1/8)^2 * 0.2 / 5), and
    # Satterthwaite's df of 4 equal terms with 4 df each is 16 (the pooled error's would be 80 − 16 = 64)
    se = math.sqrt(4 * (1 / 8) ** 2 * 0.2 / 5)
    half = effects.loc["init", "ci_high"] - effects.loc["init", "mean_diff"]
    assert half == pytest.approx(distributions.t_quantile(0.975, 16.0) * se)
    # one extra run at 10 in init + scale: the estimate is the mean of cell means (that cell 59/6), not the
    # mean of runs (which would weigh it by its 6 runs: 226/41 − 1)
    extra = runs[runs["config_label"] == "[init,scale]"].iloc[[1]].assign(seed=5)
    unbalanced = effect_table(pd.concat([runs, extra]), SPEC).set_index("effect")
    assert unbalanced.loc["init", "mean_diff"] == pytest.approx((3 * 9.8 + 59 / 6 + 4) / 8 - 1)
    assert unbalanced.loc["init", "mean_diff"] != pytest.approx(226 / 41 - 1)
    flat = effect_table(planted(lambda cell, seed: 5 if "init" in cell else 1), SPEC).set_index("effect")
    assert flat.loc["init", "mean_diff"] == pytest.approx(4.0) and math.isnan(flat.loc["init", "p_value"])
    assert flat.loc["init", "verdict"] == verdict_classes.NOT_DECIDED


def test_a_fraction_missing_a_cell_says_why_it_has_no_effects(tmp_path) -> None:
    from analysis.pipeline import derive_tables
    from analysis.report_spec import Contrast, ReportSpec

    runs = planted(synergy)
    runs = runs[runs["config_label"] != "[adam_hparams,batch,bias_correction,init]"].assign(diverged=False)
    contrast = Contrast("drop", "ablation", "[adam_hparams,batch,init,scale]", levels=("[init,scale]",))
    for contrasts, tail in (((), "no effects are estimated"), ((contrast,), "; the contrasts compare them")):
        out = derive_tables(runs, ("ablation",), ReportSpec(target=SPEC, contrasts=contrasts), tmp_path)
        said = [m for m in out.messages if "not a two-level factorial" in m]
        assert len(said) == 1 and said[0].endswith(tail), out.messages
