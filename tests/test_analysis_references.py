"""The remedies study in the analysis: per-data-set figures in one contrast (10 digits on MNIST, 1,000 modes
on Stacked MNIST), the papers' reference figures rendered from the study file, the Stacked-MNIST plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import catalog, references
from analysis.contrast_table import PRIMARY, decide
from analysis.contrasts import contrast_rows
from analysis.labels import relabel
from analysis.publish import META, README, publish, render_readme
from analysis.report_spec import ReportSpecError, load_spec, parse_spec
from analysis.synthetic import SyntheticSpec, build_synthetic_study, sqlite_store
from analysis.verdicts import wide_table
from gansweep import paths
from gansweep.run import contract

ROOT = paths.project_root()


def _runs() -> pd.DataFrame:
    """Finished runs of remedy {none, pack2} x data {mnist, stacked_mnist} x 3 seeds; MNIST runs log the digit
    figures only, Stacked-MNIST runs the 1,000-mode figures only. pack2 covers 300 more Stacked modes."""
    rows = []
    for data in ("mnist", "stacked_mnist"):
        for remedy in ("none", "pack2"):
            for seed in range(3):
                row = {"config_label": f"data={data} remedy={remedy}", "seed": seed, "status": "FINISHED"}
                if data == "mnist":
                    row[catalog.metric_column(contract.MODES)] = 9.0 + 0.1 * seed
                    row[catalog.metric_column(contract.KL_TO_UNIFORM)] = 0.05
                else:
                    gain = 300.0 if remedy == "pack2" else 0.0
                    row[catalog.metric_column(contract.STACKED_MODES)] = 400.0 + gain + seed
                    row[catalog.metric_column(contract.STACKED_KL)] = 2.0 - gain / 300.0 + 0.01 * seed
                # collapse is judged on the digit figure, which Stacked-MNIST runs do not log: unknown there
                row[catalog.COLLAPSED] = False if data == "mnist" else pd.NA
                rows.append(row)
    frame = pd.DataFrame(rows)
    frame[catalog.COLLAPSED] = frame[catalog.COLLAPSED].astype("boolean")
    for column in frame.columns:
        if column.startswith("metrics."):
            frame[column] = frame[column].astype("float64")
    return frame


def test_the_remedies_contrast_compares_each_data_set_on_its_own_figures() -> None:
    spec = load_spec("remedies", ROOT)
    (contrast,) = spec.contrasts
    labelled = relabel(_runs())
    long, messages = contrast_rows(labelled.runs, labelled.varying, contrast)
    assert not messages
    by_group = {g: list(part["metric"]) for g, part in long.groupby("group")}
    assert by_group["mnist"] == [contract.MODES, contract.KL_TO_UNIFORM]
    assert by_group["stacked_mnist"] == [contract.STACKED_MODES, contract.STACKED_KL]
    decided = decide(long)
    primary = decided[decided["family"] == PRIMARY].set_index("group")
    # each data set's own first figure carries its primary comparison: digits on MNIST, Stacked modes there
    assert primary.loc["mnist", "metric"] == contract.MODES
    assert primary.loc["stacked_mnist", "metric"] == contract.STACKED_MODES
    assert primary.loc["stacked_mnist", "mean_diff"] == pytest.approx(300.0)
    assert primary.loc["mnist", "mean_diff"] == pytest.approx(0.0)
    # outcomes where the digit figure is logged (MNIST), none where it is not (no digits for Stacked)
    wide = wide_table(decided).set_index("runs")
    assert wide.loc["mnist", "level runs"] == "digits 9,9.1,9.2"
    assert wide.loc["stacked_mnist", "level runs"] == ""


def test_the_reference_figures_come_from_the_study_file_only() -> None:
    spec = load_spec("remedies", ROOT)
    published = {(r.model, r.source.split(" ")[0]): dict(r.figures) for r in spec.references}
    assert published[("DCGAN", "VEEGAN")] == {contract.STACKED_MODES: 99.0, contract.STACKED_KL: 3.40}
    assert published[("Unrolled GAN", "VEEGAN")] == {contract.STACKED_MODES: 48.7, contract.STACKED_KL: 4.32}
    assert published[("VEEGAN", "VEEGAN")] == {contract.STACKED_MODES: 150.0, contract.STACKED_KL: 2.95}
    assert published[("DCGAN", "PacGAN")] == {contract.STACKED_MODES: 78.9, contract.STACKED_KL: 4.50}
    assert published[("PacDCGAN2", "PacGAN")] == {contract.STACKED_MODES: 1000.0, contract.STACKED_KL: 0.06}
    assert "convolutional" in spec.references_note and "MLP" in spec.references_note
    # and nowhere else in the code: the analysis holds no copy of them
    for path in (ROOT / "analysis").glob("*.py"):
        assert "4.32" not in path.read_text(), path


def test_a_study_borrows_the_references_of_the_study_file_that_writes_them(tmp_path: Path) -> None:
    # reference_stacked names remedies: the same figures, written once, with its own note of what differs
    borrowed = load_spec("reference_stacked", ROOT)
    assert borrowed.references == load_spec("remedies", ROOT).references
    assert "50,000 iterations" in borrowed.references_note
    (tmp_path / "experiments").mkdir()
    for study, named_study in (("a", "nope"), ("b", "b"), ("c", "d"), ("d", "c")):
        text = f"report:\n  question: q\n  references: {named_study}\n"
        (tmp_path / "experiments" / f"{study}.yaml").write_text(text, encoding="utf-8")
    # no such study, itself, and a chain (c names d, which only names c) are each refused, naming the value
    for study, named in (("a", "nope"), ("b", "b"), ("c", "d")):
        with pytest.raises(ReportSpecError, match=f"report.references='{named}'"):
            load_spec(study, tmp_path)


@pytest.mark.parametrize(
    ("block", "named"),
    [
        ({"references": [{"model": "X", "source": "Y"}]}, "report.references[0].figures"),
        ({"references": [{"model": "X", "source": "Y", "figures": {"bogus": 1}}]}, "unknown figure 'bogus'"),
        (
            {"references": [{"model": "X", "source": "Y", "figures": {"stacked_kl_to_uniform": "a"}}]},
            "figures.stacked_kl_to_uniform='a'",
        ),
        (
            {"contrasts": [{"factor": "a", "baseline": "b", "metrics": ["nope"]}]},
            "report.contrasts[0].metrics",
        ),
    ],
)
def test_a_malformed_references_or_metrics_entry_is_refused_naming_it(block: dict, named: str) -> None:
    with pytest.raises(ReportSpecError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(block)


def test_references_table_puts_our_configs_beside_the_papers() -> None:
    refs = references.to_meta(load_spec("remedies", ROOT).references)
    headline = pd.DataFrame(
        {
            "config_label": ["mnist · none", "stacked_mnist · pack2"],
            "n": ["3", "3"],
            contract.MODES: ["9 [8, 10]", "–"],
            contract.STACKED_MODES: ["–", "700 [650, 750]"],
            contract.STACKED_KL: ["–", "1 [0.9, 1.1]"],
        }
    )
    table = references.table(refs, headline)
    assert list(table.columns) == ["model", "source", "Stacked modes", "Stacked KL"]
    assert table.iloc[4].tolist()[0] == "PacDCGAN2" and table.iloc[4, 2] == "1000"
    assert table.iloc[-1].tolist() == [
        "stacked_mnist · pack2",
        "this study (mean [95 % interval], 3 seeds)",
        "700 [650, 750]",
        "1 [0.9, 1.1]",
    ]
    assert len(table) == 6  # the MNIST config logs no referenced figure


def test_publishing_a_stacked_study_renders_the_references_and_the_stacked_figures(tmp_path: Path) -> None:
    uri, artifacts = sqlite_store(str(tmp_path / "store"))
    build_synthetic_study(uri, "refs", artifacts, SyntheticSpec(with_stacked=True, with_samples=False))
    block = {
        "question": "Do the references render?",
        "contrasts": [
            {
                "name": "post vs modern",
                "factor": "recipe",
                "baseline": "modern",
                "by": ["model"],
                "metrics": ["stacked_modes_covered", "stacked_kl_to_uniform", "modes_covered"],
            }
        ],
        "references": [
            {"model": "PaperNet", "source": "Some et al., Table 9", "figures": {"stacked_modes_covered": 321}}
        ],
        "references_note": "What differs: everything.",
    }
    publish(uri, "refs", tmp_path / "out", spec=parse_spec(block))
    meta = json.loads((tmp_path / "out" / META).read_text())
    assert meta["references"] == [
        {"model": "PaperNet", "source": "Some et al., Table 9", "figures": {contract.STACKED_MODES: 321.0}}
    ]
    assert {"stacked_modes_covered.png", "stacked_kl_to_uniform.png"} <= set(meta["figures"])
    readme = (tmp_path / "out" / README).read_text()
    assert readme == render_readme(tmp_path / "out")
    assert (
        "## Beside the published figures" in readme and "| PaperNet | Some et al., Table 9 | 321 |" in readme
    )
    assert "What differs: everything." in readme
    # the headline shows the figures the contrast names, the 1,000-mode ones included
    head = readme.split("## Final figures per config")[1]
    assert "Stacked KL" in head.split("\n\n")[2].splitlines()[0]
    assert np.isfinite(meta["runs"])


def test_a_stacked_figure_plots_only_the_configs_that_logged_it(tmp_path: Path, monkeypatch) -> None:
    from analysis import config_plots
    from analysis.stats import status_counts, summarize

    runs = _runs()
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    runs["diverged"] = False
    shown: list[list[str]] = []
    real_axis = config_plots._config_axis
    monkeypatch.setattr(
        config_plots,
        "_config_axis",
        lambda ax, labels, status: (shown.append(list(labels)), real_axis(ax, labels, status))[1],
    )
    path = config_plots.plot_intervals(
        runs,
        summarize(runs, [catalog.metric_column(contract.STACKED_MODES)]),
        status_counts(runs),
        contract.STACKED_MODES,
        tmp_path / "s.png",
        title="t",
        xlabel="x",
    )
    assert path.exists()
    assert shown == [["data=stacked_mnist remedy=none", "data=stacked_mnist remedy=pack2"]]
