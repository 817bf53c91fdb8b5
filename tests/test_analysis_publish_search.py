"""Publishing a hyperparameter search (``gansweep-analyze experiment=<search study> --publish``): a real tiny
search (two objectives, 3 trials of 30 iterations, as tests/test_search.py runs them) published into temporary
folders; its answer read back against its tables and the Optuna study, re-rendered from its tables, and the
refusals (no search, a missing storage, no trials, a rule naming no objective) before anything is written."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
from conftest import TINY_EVAL, TINY_TRAIN, Store, sweep_into

from analysis.cli import main as analyze
from analysis.publish import META, README, findings_block, publish, render_readme
from analysis.report_spec import ReportSpecError, parse_spec
from analysis.search import AnswerRule, SearchUnavailableError, load_rule, parse_rule
from analysis.tables import fmt
from gansweep import paths

STUDY = "pubsearch"
SPEC = parse_spec({"question": "Which lr and batch give the lowest FD?"})
FD, MODES = "eval/fd", "eval/modes_covered"


@pytest.fixture(autouse=True)
def _isolated_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    yield
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Minimum FD and most digits over lr and batch: 3 random trials, 30 iterations, eval at 15 and 30."""
    store = sweep_into(
        tmp_path_factory.mktemp("publish-search"),
        "hydra/sweeper=optuna",
        f"study={STUDY}",
        *TINY_TRAIN,
        *TINY_EVAL,
        f"hydra.sweeper.objective=[{FD},{MODES}]",
        "hydra.sweeper.direction=[minimize,maximize]",
        "hydra.sweeper.sampler.name=random",
        "hydra.sweeper.sampler.seed=0",
        "optimizer.lr=tag(log,interval(0.00001,0.001))",
        "train.batch_size=choice(16,32)",
        "hydra.sweeper.n_trials=3",
        experiment=STUDY,
    )
    assert store.proc.returncode == 0, store.proc.stderr[-4000:]
    return store


def _study(store: Store) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{store.root / 'optuna.db'}")


def _answer(folder: Path) -> str:
    return (folder / README).read_text(encoding="utf-8").split("\n\n")[1]


def _text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.mark.slow
def test_a_published_search_answers_from_its_tables_and_rerenders(searched: Store, tmp_path: Path) -> None:
    study = _study(searched)
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3
    floor = min(t.values[1] for t in done)  # a condition some trials meet
    rule = AnswerRule(FD, ((MODES, floor),))
    folder = tmp_path / "experiments" / STUDY
    files = publish(searched.tracking_uri, STUDY, folder, spec=SPEC, rule=rule)
    names = {p.relative_to(folder).as_posix() for p in files}
    for table in ("best", "states", "trials"):
        assert {f"tables/{table}.csv", f"tables/{table}.md"} <= names
    assert {"figures/history.png", "figures/pareto.png", "README.md", "meta.json"} <= names
    meta = json.loads((folder / META).read_text())
    assert meta["kind"] == "search" and meta["contrasts"] == []
    assert all((folder / "figures" / f).is_file() for f in meta["figures"])
    assert meta["commits"] and meta["hosts"] and meta["runs"] == 3 and meta["wall_hours"] is not None

    # The rule's pick, from the Optuna study directly, is the table's answer row and the README's answer.
    expected = min((t for t in done if t.values[1] >= floor), key=lambda t: (t.values[0], t.number))
    best = _text(folder / "tables" / "best.csv")
    row = best[best["answer"] == "yes"].iloc[0]
    assert int(row["trial"]) == expected.number
    assert row[FD] == fmt(expected.values[0], 4) and row[MODES] == fmt(expected.values[1], 4)
    answer = _answer(folder)
    assert answer.startswith("**Yes.** ")
    assert f"the lowest {FD} among them is trial {expected.number}: {FD} {row[FD]} with {MODES} " in answer
    for param in ("optimizer.lr", "train.batch_size"):
        assert f"{param}={row[param]}" in answer
        assert row[param] == fmt(expected.params[param], 4)
    assert "(3 trials: 3 complete, 0 pruned, 0 failed; one seed per trial, so no interval)" in answer
    front = sorted(t.number for t in study.best_trials)
    assert sorted(int(t) for t in best.loc[best["front"] == "yes", "trial"]) == front
    states = _text(folder / "tables" / "states.csv")
    assert dict(zip(states["state"], states["trials"], strict=True)) == {
        "COMPLETE": "3",
        "PRUNED": "0",
        "FAIL": "0",
    }
    trials = pd.read_csv(folder / "tables" / "trials.csv")
    assert list(trials["trial"]) == [0, 1, 2] and trials[FD].tolist() == [
        t.values[0] for t in study.get_trials()
    ]

    # Re-rendered from meta.json and tables/ alone, as test_analysis_publish.py checks committed folders.
    assert (folder / README).read_text(encoding="utf-8") == render_readme(folder)
    # A function of the store: published again, byte for byte the same.
    again = tmp_path / "again"
    publish(searched.tracking_uri, STUDY, again, spec=SPEC, rule=rule)
    for name in names:
        assert (folder / name).read_bytes() == (again / name).read_bytes(), name
    # The project README's findings carry the search's verdict and its picked trial as a grid's.
    row_text = (
        f"| [`{STUDY}`](experiments/{STUDY}/README.md) | {SPEC.question} | **Yes.** | FD {row[FD]} (trial"
    )
    assert row_text in findings_block(folder.parent)


@pytest.mark.slow
def test_when_no_trial_meets_the_rule_the_answer_says_so_and_gives_the_front(
    searched: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "none"
    publish(searched.tracking_uri, STUDY, folder, spec=SPEC, rule=AnswerRule(FD, ((MODES, 11.0),)))
    answer = _answer(folder)
    assert answer.startswith(f"**No.** no completed trial has {MODES} ≥ 11 (3 trials: ")
    best = _text(folder / "tables" / "best.csv")
    assert (best["answer"] == "").all()
    for _, row in best[best["front"] == "yes"].iterrows():
        assert f"trial {row['trial']} ({FD} {row[FD]}, {MODES} {row[MODES]}; optimizer.lr=" in answer
    assert (folder / README).read_text(encoding="utf-8") == render_readme(folder)
    # Without a rule: the Pareto front of the two objectives.
    publish(searched.tracking_uri, STUDY, tmp_path / "front", spec=SPEC)
    assert "Pareto front of eval/fd (minimize) and eval/modes_covered (maximize)" in _answer(
        tmp_path / "front"
    )


@pytest.mark.slow
def test_a_search_that_cannot_be_published_is_refused_before_anything_is_written(
    searched: Store, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "kept.txt").write_text("untouched")
    missing = tmp_path / "moved" / "optuna.db"
    with pytest.raises(SearchUnavailableError, match=f"study '{STUDY}': its Optuna storage {missing}"):
        publish(searched.tracking_uri, STUDY, target, storage=f"sqlite:///{missing}")
    assert not missing.exists()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(study_name=STUDY, storage=empty, directions=["minimize", "maximize"])
    with pytest.raises(SearchUnavailableError, match=f"study '{STUDY}': its search .* has no trials"):
        publish(searched.tracking_uri, STUDY, target, storage=empty)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    optuna.create_study(study_name="other", storage=other)
    with pytest.raises(SearchUnavailableError, match=f"study '{STUDY}': Optuna study '{STUDY}' is not in"):
        publish(searched.tracking_uri, STUDY, target, storage=other)
    with pytest.raises(ReportSpecError, match=re.escape("report.answer.best='eval/fid'")):
        publish(searched.tracking_uri, STUDY, target, rule=AnswerRule("eval/fid"))
    assert [p.name for p in target.iterdir()] == ["kept.txt"]
    # The command: exit 2 naming the study, nothing written.
    out = tmp_path / "cli"
    args = ["--publish", "--tracking-uri", searched.tracking_uri, "--out", str(out)]
    assert analyze([f"experiment={STUDY}", f"optuna_storage={empty}", *args]) == 2
    assert not out.exists()


def test_a_study_file_declared_search_without_a_search_in_the_store_is_refused(tmp_path: Path) -> None:
    from analysis.search import open_search
    from analysis.synthetic import SyntheticSpec, build_synthetic_study, sqlite_store

    uri, artifacts = sqlite_store(str(tmp_path))
    with pytest.raises(SearchUnavailableError, match="study 'tune_modern': no MLflow experiment"):
        publish(uri, "tune_modern", tmp_path / "out")
    one = SyntheticSpec(models=("failed1",), recipes=("post",), seeds=(0,), with_samples=False)
    build_synthetic_study(uri, "grid", artifacts, one)
    with pytest.raises(SearchUnavailableError, match=r"study 'grid': no parent run .* ran an Optuna search"):
        open_search(uri, "grid")
    assert not (tmp_path / "out").exists()


def test_answer_rules_are_read_from_the_study_file_and_checked() -> None:
    from omegaconf import OmegaConf

    rule = load_rule("tune_modern", paths.project_root())
    assert rule == AnswerRule(FD, ((MODES, 10.0),))
    objectives = list(
        OmegaConf.load(paths.project_root() / "experiments" / "tune_modern.yaml").hydra.sweeper.objective
    )
    assert rule.for_objectives(objectives) == rule
    assert rule.conditions() == [f"{MODES} ≥ 10"]
    assert rule.meets({FD: 1.0, MODES: 10.0}) and not rule.meets({FD: 1.0, MODES: 9.0})
    assert not rule.meets({FD: 1.0, MODES: math.nan})
    assert AnswerRule().for_objectives([FD]) == AnswerRule(FD)  # one objective: its best trial
    assert AnswerRule.from_meta(rule.to_meta()) == rule
    for block, message in (
        ({"best": FD, "below": {}}, "report.answer.below: unknown key"),
        ({"at_least": [MODES]}, "report.answer.at_least="),
        ({"at_least": {MODES: "ten"}}, f"report.answer.at_least.{MODES}='ten'"),
        ("lowest", "report.answer='lowest'"),
    ):
        with pytest.raises(ReportSpecError, match=message):
            parse_rule(block)
    with pytest.raises(ReportSpecError, match=f"report.answer.at_most.{MODES}"):
        AnswerRule(FD, (), ((MODES, 3.0),)).for_objectives([FD])
