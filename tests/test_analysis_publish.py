"""Reports that answer a study's question (short labels, bounded intervals, contrasts with verdicts) and the
published study folders: tested on synthetic stores with a planted effect (the post recipe collapses) and a
factor without one (the model), and on every committed ``experiments/<study>/``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from analysis import catalog, verdict_classes
from analysis.contrasts import contrast_rows
from analysis.labels import parse_label, relabel
from analysis.meta import wall_clock
from analysis.pipeline import regenerate
from analysis.publish import META, README, publish, render_readme
from analysis.report_spec import Contrast, load_spec, parse_spec
from analysis.sections import wall_text
from analysis.stats import summarize, wilson
from analysis.synthetic import SyntheticSpec, build_synthetic_study, sqlite_store
from gansweep import paths
from gansweep.run import contract

ROOT = paths.project_root()
SPEC = SyntheticSpec(models=("failed1", "failed2"), recipes=("post", "modern"), seeds=(0, 1, 2, 3, 4))
REPORT = parse_spec(
    {
        "question": "Recipe or architecture?",
        "hypothesis": "The post recipe covers fewer digits.",
        "contrasts": [
            {
                "name": "post vs modern",
                "factor": "recipe",
                "baseline": "modern",
                "by": ["model"],
                "expect": "lower",
                "pool": True,
            },
            {"name": "failed2 vs failed1", "factor": "model", "baseline": "failed1", "by": ["recipe"]},
        ],
    }
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri, artifacts = sqlite_store(str(tmp_path_factory.mktemp("publish-store")))
    build_synthetic_study(uri, "planted", artifacts, SPEC)
    few = SyntheticSpec(models=("failed1",), recipes=("post", "modern"), seeds=(0,), with_samples=False)
    build_synthetic_study(uri, "one_seed", artifacts, few)
    return uri


@pytest.fixture(scope="module")
def result(store: str, tmp_path_factory: pytest.TempPathFactory):
    return regenerate(store, "planted", tmp_path_factory.mktemp("report"), upload=False, spec=REPORT)


def test_parse_label_keeps_values_with_spaces() -> None:
    items = parse_label("model.generator.hidden=[256, 512] post=failed1 +extra=1")
    assert items == {"model.generator.hidden": "[256, 512]", "post": "failed1", "extra": "1"}


def test_relabel_names_what_varies_and_states_the_rest_once() -> None:
    runs = pd.DataFrame(
        {
            "config_label": [
                "post=failed1 recipe=post train.iterations=600",
                "post=failed1 recipe=modern train.iterations=600",
                "post=failed2 recipe=post train.iterations=600",
            ]
        }
    )
    out = relabel(runs)
    assert list(out.runs["config_label"]) == ["failed1 · post", "failed1 · modern", "failed2 · post"]
    assert out.shared == {"train.iterations": "600"}
    assert out.varying == ("post", "recipe")
    assert list(out.runs["full_label"]) == list(runs["config_label"])
    dotted = relabel(pd.DataFrame({"config_label": ["source.lr=3e-6 x=1", "source.lr=3e-5 x=1"]}))
    assert list(dotted.runs["config_label"]) == ["lr=3e-6", "lr=3e-5"]


def test_wilson_matches_published_values_and_stays_in_0_1() -> None:
    low, high = wilson(0, 3)
    assert low == 0.0 and high == pytest.approx(0.5615, abs=1e-4)
    low, high = wilson(2, 3)
    assert (low, high) == (pytest.approx(0.2077, abs=1e-4), pytest.approx(0.9385, abs=1e-4))
    for k in range(6):
        low, high = wilson(k, 5)
        assert 0.0 <= low <= k / 5 <= high <= 1.0


def test_report_labels_are_short(result) -> None:
    assert sorted(result.runs["config_label"].unique()) == [
        "failed1 · modern",
        "failed1 · post",
        "failed2 · modern",
        "failed2 · post",
    ]
    text = (result.out_dir / "report.md").read_text()
    assert "model=failed1 recipe=post |" not in text


def test_intervals_keep_their_bounds(result) -> None:
    summary = pd.read_csv(result.out_dir / "tables" / "summary.csv")
    checked = 0
    for _, row in summary.iterrows():
        metric = str(row["metric"]).removeprefix("metrics.")
        bounds = (0.0, 1.0) if metric == catalog.COLLAPSED else catalog.RANGES.get(metric)
        if bounds is None or not math.isfinite(row["ci_low"]):
            continue
        assert bounds[0] <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= bounds[1], row.to_dict()
        checked += 1
    assert checked > 20
    # A proportion of 0 or 1 over 5 seeds has a zero-width bootstrap interval; Wilson's is wide and in [0, 1].
    collapsed = summarize(result.runs, [catalog.COLLAPSED])
    assert (collapsed["ci_high"] - collapsed["ci_low"] > 0.4).all()


def test_one_seed_gives_no_interval_and_says_so_once(store: str, tmp_path: Path) -> None:
    out = regenerate(store, "one_seed", tmp_path, upload=False, spec=REPORT)
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv")
    assert summary["n"].max() == 1
    assert summary["ci_low"].isna().all() and summary["ci_high"].isna().all()
    headline = (tmp_path / "tables" / "headline.md").read_text()
    assert "no CI" not in headline and "[" not in headline
    assert set(out.contrasts["verdict"]) == {verdict_classes.TOO_FEW}
    report = (tmp_path / "report.md").read_text()
    assert report.count("one seed per config, so no interval anywhere") == 1
    assert "stacked" not in report.lower()  # no message about figures this study never logs


def test_contrast_finds_the_planted_effect_and_not_the_absent_one(result) -> None:
    planted = result.contrasts[result.contrasts["contrast"] == "post vs modern"]
    modes = planted[planted["metric"] == contract.MODES]
    pooled = modes[modes["family"] == "primary"]
    assert list(pooled["group"]) == ["pooled"] and int(pooled["n_pairs"].iloc[0]) == 10
    assert pooled["verdict"].iloc[0] == verdict_classes.DIFFERENCE and pooled["ci_high"].iloc[0] < 0
    absent = result.contrasts[result.contrasts["contrast"] == "failed2 vs failed1"]
    absent_modes = absent[absent["metric"] == contract.MODES]
    assert len(absent_modes) == 2 and (absent_modes["family"] == "secondary").all()
    assert verdict_classes.DIFFERENCE not in set(absent_modes["verdict"])
    text = (result.out_dir / "report.md").read_text()
    assert text.split("\n\n")[1].startswith(
        "**Yes.** post has fewer digits than modern pooled over all groups"
    )
    assert text.index("## Contrast: post vs modern") < text.index("## Runs per config by outcome")
    html = (result.out_dir / "report.html").read_text()
    assert "<strong>Yes.</strong>" in html


def test_contrast_names_a_factor_that_does_not_vary(result) -> None:
    long, messages = contrast_rows(result.runs, ("model", "recipe"), Contrast("x", "loss", "post"))
    assert long.empty and "factor 'loss' does not vary" in messages[0]
    long, messages = contrast_rows(result.runs, ("model", "recipe"), Contrast("x", "recipe", "sgd"))
    assert long.empty and "baseline recipe=sgd has no runs" in messages[0]


def test_every_study_file_declares_contrasts_on_keys_it_sweeps() -> None:
    from omegaconf import OmegaConf

    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        if path.stem in ("smoke", "quickstart"):
            continue
        spec = load_spec(path.stem, ROOT)
        if {"override /hydra/sweeper": "optuna"} in (OmegaConf.load(path).get("defaults") or []):
            assert spec.question and not spec.contrasts, path.name  # a search: its answer is its Pareto front
            continue
        swept = OmegaConf.load(path).hydra.sweeper.params
        if (
            spec.target is not None
        ):  # a target study: its fixes (if any) are a key it sweeps; contrasts optional
            assert spec.question, path.name
            assert spec.target.fixes is None or spec.target.fixes in swept, path.name
        else:
            assert spec.question and spec.contrasts, path.name
        for contrast in spec.contrasts:
            assert contrast.factor in swept, (path.name, contrast.factor)
            values = _sweep_values(str(swept[contrast.factor]))
            for wanted in (contrast.baseline, *contrast.levels):
                assert any(
                    float(v) == float(wanted) if _num(v) and _num(wanted) else v == wanted for v in values
                ), (path.name, wanted, values)
            assert all(b in swept for b in contrast.by), (path.name, contrast.by)
            assert all(k in swept for k, _ in contrast.where), (path.name, contrast.where)


def _sweep_values(text: str) -> list[str]:
    """A sweep's comma-separated values, a bracketed list (``[init,scale]``) counting as one."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    return [*values, current.strip()]


def _num(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_publish_is_a_function_of_the_store(store: str, tmp_path: Path) -> None:
    first = publish(store, "planted", tmp_path / "a", spec=REPORT)
    publish(store, "planted", tmp_path / "b", spec=REPORT)
    names = sorted(p.relative_to(tmp_path / "a").as_posix() for p in first)
    assert "README.md" in names and "tables/contrast_1.csv" in names and "figures/contrast_1.png" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    readme = (tmp_path / "a" / README).read_text()
    title, first_paragraph = readme.split("\n\n")[:2]
    assert title == "# `planted`: Recipe or architecture?"
    assert first_paragraph.startswith(
        "**Yes.** post has fewer digits than modern pooled over all groups: Δ digits"
    )
    meta = json.loads((tmp_path / "a" / META).read_text())
    assert meta["runs"] == 20 and meta["wall_hours"] is not None


def _published() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "experiments").glob(f"*/{META}"))


@pytest.mark.parametrize("folder", _published(), ids=lambda p: p.name)
def test_published_readme_is_what_its_tables_render(folder: Path) -> None:
    assert (folder / README).read_text(encoding="utf-8") == render_readme(folder)
    meta = json.loads((folder / META).read_text())
    for figure in meta["figures"]:
        assert (folder / "figures" / figure).is_file(), figure
    contrasts = load_spec(folder.name, ROOT).contrasts
    assert [c.name for c in contrasts] == [c["name"] for c in meta["contrasts"]]
    # the verdict first: the first line after the title is one of the four openings
    opening = (folder / README).read_text(encoding="utf-8").split("\n\n")[1]
    assert opening.startswith(("**Yes.** ", "**No.** ", "**Not decided.** ")), opening[:80]


def test_every_study_with_contrasts_is_published_or_listed_as_pending() -> None:
    published = {p.name for p in _published()}
    text = (ROOT / "experiments" / "README.md").read_text()
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        spec = load_spec(path.stem, ROOT)
        if (spec.contrasts or spec.target is not None) and path.stem not in published:
            assert f"`{path.stem}` (pending" in text, path.stem


def test_readme_findings_are_the_published_answers() -> None:
    from analysis.publish import FINDINGS_END, FINDINGS_START, findings_block

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = text.index(FINDINGS_START), text.index(FINDINGS_END) + len(FINDINGS_END)
    assert text[start:end] == findings_block(ROOT / "experiments")
    for folder in _published():
        assert f"(experiments/{folder.name}/README.md)" in text[start:end]


def test_wall_time_counts_the_hours_some_run_was_running_and_stale_runs_as_zero() -> None:
    """Two invocations an hour apart: the gap is not wall time; a run closed by a later invocation (its end
    is the closing time, not when it stopped) counts as 0 h and is counted in stale_runs."""
    h = 3_600_000
    runs = pd.DataFrame(
        {
            "start_time": [0, h // 2, 3 * h, int(1.5 * h)],
            "end_time": [h, h, 4 * h, 3 * h],
            "tags.gansweep.stale": [None, None, None, "process gone; closed by a later invocation"],
        }
    )
    wall = wall_clock(runs)
    assert wall == {"wall_hours": 2.0, "run_hours": 2.5, "max_parallel": 2, "stale_runs": 1}
    assert "stale_runs" not in wall_clock(runs.iloc[:3])
    text = wall_text(wall)
    assert text.startswith("2.0 h wall clock (2.5 run-hours, at most 2 runs at once); 1 run(s) whose process")


def test_a_trial_note_tells_what_the_sweeper_recorded() -> None:
    from analysis.publish import _trial_note
    from gansweep.search.study import ATTR_FAIL_REASON, ATTR_INTERRUPTED, ATTR_PRUNED_AT, ATTR_RETRY_OF

    assert _trial_note({}, None) == ""
    gone = {ATTR_INTERRUPTED: "its launching process was gone"}
    assert _trial_note(gone, 14) == "interrupted (its launching process was gone); asked again as trial 14"
    assert _trial_note({ATTR_RETRY_OF: 13}, None) == "asks interrupted trial 13 again"
    assert _trial_note({ATTR_PRUNED_AT: 1500}, None) == "pruned at iteration 1500"
    note = _trial_note({ATTR_FAIL_REASON: "diverged:\n  loss_d is nan " + "x" * 200}, None)
    assert note.startswith("failed: diverged: loss_d is nan x") and note.endswith("...") and len(note) == 88


def test_a_study_without_contrasts_opens_with_what_its_runs_did(store: str, tmp_path: Path) -> None:
    """The quickstart's case: no report block, one seed per config; the first paragraph says in one sentence
    how many runs end on at most 3 digits and what each covers, and no cell says "(n=1, no CI)"."""
    from analysis.report_spec import ReportSpec

    regenerate(store, "one_seed", tmp_path, upload=False, spec=ReportSpec())
    report = (tmp_path / "report.md").read_text()
    opening = report.split("\n\n")[1]
    head = "1 of the 2 runs (one seed each) end on at most 3 digits; digits covered at the end: modern "
    assert opening.startswith(head)
    assert re.search(r"; post [12](\.0)? \(mostly \ds\)", opening), opening
    assert "no CI" not in report and "(n=1" not in report


def test_a_target_study_publishes_its_cells_and_verdict(store: str, tmp_path: Path) -> None:
    """tf_reference's case: no contrast, a figure every seed must reach; the planted modern configs cover 7-10
    digits at the end, the post ones 1-2, so no config reaches 11 on any seed and the verdict is No."""
    spec = parse_spec(
        {"question": "Does it cover 11 digits?", "target": {"metric": "modes_covered", "at_least": 11}}
    )
    publish(store, "planted", tmp_path / "t", spec=spec)
    readme = (tmp_path / "t" / README).read_text()
    assert readme == render_readme(tmp_path / "t")
    title, opening = readme.split("\n\n")[:2]
    assert title == "# `planted`: Does it cover 11 digits?"
    assert opening.startswith("**No.** no cell reaches 11 or more digits on any seed; the highest mean is ")
    assert "## Cells" in readme and "| reach the target |" in readme and "| fixes |" not in readme
    cells = pd.read_csv(tmp_path / "t" / "tables" / "cells.csv")
    assert len(cells) == 4 and (cells["n"] == 5).all() and (cells["rescued"] == 0).all()
    meta = json.loads((tmp_path / "t" / META).read_text())
    assert meta["target"] == {"all": [{"metric": contract.MODES, "at_least": 11.0}], "fixes": None}
    # four cells: the cells figure, shown under the Cells table (before any other section)
    assert "cells.png" in meta["figures"] and (tmp_path / "t" / "figures" / "cells.png").stat().st_size > 0
    cells_section = readme.split("## Cells")[1].split("\n## ")[0]
    assert "![cells](figures/cells.png)" in cells_section


def test_a_target_study_with_contrasts_keeps_the_targets_verdict(store: str, tmp_path: Path) -> None:
    """port_rescue's case: a target answers, a contrast (listed levels, unpaired) stands beside it in the
    verdict sentence and the rule; a target of configs (no fixes) estimates no effects."""
    spec = parse_spec(
        {
            "question": "Does it cover 11 digits?",
            "target": {"metric": "modes_covered", "at_least": 11},
            "contrasts": [
                {
                    "factor": "recipe",
                    "baseline": "modern",
                    "levels": ["post"],
                    "expect": "lower",
                    "paired": False,
                }
            ],
        }
    )
    publish(store, "planted", tmp_path / "t", spec=spec)
    readme = (tmp_path / "t" / README).read_text()
    assert readme == render_readme(tmp_path / "t")
    opening = readme.split("\n\n")[1]
    assert (
        opening.startswith("**No.** no cell reaches 11 or more digits on any seed")
        and " Beside it: " in opening
    )
    assert "Decision rule: the target (the [cells](#cells)), as **Yes.** when some cell reaches" in readme
    assert "## Contrast: recipe vs modern" in readme and "## Effects" not in readme
    meta = json.loads((tmp_path / "t" / META).read_text())
    assert meta["contrasts"][0]["levels"] == ["post"]


def test_rederiving_a_freshly_published_study_changes_nothing(store: str, tmp_path: Path) -> None:
    """--rederive works from tables/runs.csv alone: everything the answer rests on must be in it (the outcome
    and probe columns included), so re-deriving what publish just wrote is a fixed point."""
    from analysis.publish import rederive

    folder = tmp_path / "p"
    publish(store, "planted", folder, spec=REPORT)
    before = _text_files(folder)
    rederive(folder, REPORT)
    after = _text_files(folder)
    assert after.keys() == before.keys()
    changed = [str(name) for name in before if before[name] != after[name]]
    assert not changed, changed


def _text_files(folder: Path) -> dict[Path, bytes]:
    return {
        p.relative_to(folder): p.read_bytes()
        for p in folder.rglob("*")
        if p.suffix in (".md", ".csv", ".json")
    }


@pytest.mark.parametrize("study", ["port_rescue", "decay_imprint"])
def test_rederiving_a_published_study_reproduces_it_byte_for_byte(study: str, tmp_path: Path) -> None:
    """A published study re-derived from its own tables/runs.csv by the current code is what is committed
    (README, tables, meta.json: the figure order and the messages included), so `--rederive` after a code
    change shows only what the change itself moves (a factorial target study and a contrast study with a
    probe table)."""
    import shutil

    from analysis.publish import rederive

    folder = tmp_path / study
    shutil.copytree(ROOT / "experiments" / study, folder)
    before = _text_files(folder)
    rederive(folder, load_spec(study, ROOT))
    after = _text_files(folder)
    changed = [str(name) for name in before if before[name] != after.get(name)]
    assert not changed and after.keys() == before.keys(), changed
