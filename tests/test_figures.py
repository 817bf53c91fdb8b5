"""The figure registry is the one home of what a figure is: the evaluator's groups, the analysis' ranges,
words and column names all come from it."""

from __future__ import annotations

import math

import pytest

from analysis import catalog
from gansweep import figures
from gansweep.metrics import evaluator
from gansweep.run import contract


def test_every_evaluator_figure_has_one_record_and_every_record_a_group() -> None:
    returned = [f for group in evaluator.METRIC_GROUPS.values() for f in group] + list(
        evaluator.STACKED_FIGURES
    )
    assert sorted(returned) == sorted(figures.BY_NAME)
    assert len(figures.BY_NAME) == len(figures.FIGURES)  # no name twice
    for name, group in evaluator.METRIC_GROUPS.items():
        assert group == figures.group_figures(name)


def test_records_are_well_formed() -> None:
    for f in figures.FIGURES:
        assert f.low < f.high and f.mmd > 0 and f.better in ("higher", "lower", ""), f
        assert f.short and f.more and f.fewer and f.caption, f
        if math.isfinite(f.high):
            assert f.mmd < f.high - f.low, f


def test_the_analysis_reads_ranges_and_names_from_the_registry() -> None:
    assert set(catalog.RANGES) == set(figures.BY_KEY)
    assert catalog.RANGES[contract.MODES] == (1.0, 10.0)  # one digit always reaches 2 % of the samples
    assert catalog.short_name(contract.MODES) == "digits"
    assert catalog.short_name(contract.STRETCHED_MODES) == "stretched digits"
    assert catalog.figure(contract.FD).mmd == 10.0
    for key in catalog.CONTRAST_METRICS + catalog.HEADLINE:
        assert key in figures.BY_KEY, key


def test_imprint_figures_resolve_from_their_metric_key() -> None:
    fig = figures.figure(contract.imprint_key(41))
    assert fig.key == "imprint/corr_41" and (fig.low, fig.high) == (-1.0, 1.0) and fig.better == ""
    assert catalog.figure_key("imprint/corr_41") == "imprint/corr_41"
    assert catalog.short_name("imprint/corr_41") == "corr. with iteration 41"
    with pytest.raises(ValueError, match=r"unknown figure 'imprint/corr_x'.*imprint/corr_<iteration>"):
        catalog.figure_key("imprint/corr_x")
    # the imprint figures are no evaluator group's
    assert "imprint" not in {f.group for f in figures.FIGURES}
