"""Publish a study's answer into ``experiments/<study>/``: ``gansweep-analyze experiment=<study> --publish``.

Two steps, so that a published README cannot drift from its tables:

1. :func:`publish` regenerates the study from the MLflow store (:func:`analysis.pipeline.regenerate`, into a
   temporary folder), copies the tables (CSV and Markdown) and the figures that carry the answer, and writes
   ``meta.json`` (question, hypothesis, contrasts, command, commits, wall time, machine; all read from the
   store and the study file).
2. :func:`render_readme` writes ``README.md`` from ``meta.json`` and the CSV tables alone, through the one
   document model (:func:`analysis.document.study_blocks`): the verdict first.

:func:`rederive` re-derives a published grid study's contrasts, summary, headline and contrast figures from
its own ``tables/runs.csv`` (the final figures of every run) with the current statistics and the study file's
``report:`` block, without the store: ``gansweep-analyze experiment=<study> --rederive``.

A hyperparameter search (the study file selects ``hydra/sweeper=optuna``, or the store holds a search of the
study) is published by :func:`publish_search` instead: its tables are the trials, the best trials (Pareto
front) and the trials per state, its figures the search report's (history, Pareto front, importances), and
its answer the trial the study file's ``report.answer`` rule picks (:class:`analysis.search.AnswerRule`).

``tests/test_analysis_publish.py`` re-renders every committed ``experiments/*/README.md`` from its own files,
and publishes a synthetic store twice to check that the output is a function of the store;
``tests/test_analysis_publish_search.py`` publishes a real tiny search.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import catalog, search
from analysis.document import study_blocks
from analysis.findings import findings_table
from analysis.labels import relabel
from analysis.load import load_study
from analysis.meta import META, contrast_meta, tag_values, wall_clock
from analysis.pipeline import derive_tables, regenerate, run_jobs, table_plot_jobs
from analysis.report import to_markdown
from analysis.report_spec import ReportSpec, load_spec
from analysis.sections import README, SEARCH_KIND, read_meta
from analysis.stats import status_counts
from analysis.tables import fmt, markdown_table, write_table
from gansweep import paths
from gansweep.run import contract

# The figures a published study carries (besides one per contrast), when the study has them.
FIGURES = (
    "cells.png",
    "effects.png",
    "target_curves.png",
    "modes_covered.png",
    "class_shares.png",
    "stacked_modes_covered.png",
    "stacked_kl_to_uniform.png",
    contract.STRETCHED_SAMPLES_ARTIFACT,
    "imprint.png",
)
TABLES = ("headline", "status", "summary", "runs", "cells", "effects", "reals", "imprint")


def publish(
    tracking_uri: str,
    study: str,
    target: Path,
    *,
    collapse_modes: float = catalog.DEFAULT_COLLAPSE_MODES,
    spec=None,
    storage: str | None = None,
    rule: search.AnswerRule | None = None,
) -> list[Path]:
    """Regenerate ``study`` and write its published folder ``target`` (replacing what is there). Returns the
    files written. A search study goes to :func:`publish_search` (``storage``, ``rule``: its arguments)."""
    target = Path(target)
    if search.declares_search(study, paths.project_root()) or search.find_search(tracking_uri, study):
        return publish_search(tracking_uri, study, target, storage=storage, rule=rule, spec=spec)
    with tempfile.TemporaryDirectory(prefix="gansweep-publish-") as tmp:
        result = regenerate(
            tracking_uri, study, Path(tmp), collapse_modes=collapse_modes, upload=False, spec=spec
        )
        if target.exists():
            shutil.rmtree(target)
        (target / "tables").mkdir(parents=True)
        (target / "figures").mkdir()
        written: list[Path] = []
        for src in sorted((Path(tmp) / "tables").glob("*")):
            if src.stem in TABLES or src.stem.startswith("contrast_"):
                written.append(Path(shutil.copy2(src, target / "tables" / src.name)))
        meta = dict(result.meta, figures=[])
        plots_dir = Path(tmp) / "plots"
        names = figure_order(p.name for p in plots_dir.glob("*.png"))
        for name in names:
            if (plots_dir / name).is_file():
                written.append(Path(shutil.copy2(plots_dir / name, target / "figures" / name)))
                meta["figures"].append(name)
    _write_meta(target, meta)
    return [*written, target / META, _write_readme(target)]


def figure_order(names: Iterable[str]) -> list[str]:
    """The figures of ``names`` a published study carries, in the order its README shows them: the
    contrasts' (``contrast_<i>.png``, sorted), then :data:`FIGURES` in its order."""
    names = set(names)
    return sorted(n for n in names if n.startswith("contrast_")) + [f for f in FIGURES if f in names]


def _write_meta(folder: Path, meta: dict) -> None:
    (folder / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_readme(folder: Path) -> Path:
    readme = folder / README
    readme.write_text(render_readme(folder), encoding="utf-8")
    return readme


def render_readme(folder: Path) -> str:
    """``README.md`` of a published study from its ``meta.json`` and ``tables/*.csv`` alone."""
    return to_markdown(study_blocks(Path(folder), figure_dir="figures", published=True))


def rederive(folder: Path, spec: ReportSpec) -> list[Path]:
    """Re-derive published grid study ``folder`` from its ``tables/runs.csv`` (see the module docstring): the
    contrast tables and figures, summary and headline, the published figures the run table makes (digits,
    class shares, Stacked modes and KL), and ``meta.json``'s question, hypothesis and contrasts from
    ``spec``; then the README. The runs' outcome columns are the ones runs.csv holds."""
    folder = Path(folder)
    meta = read_meta(folder)
    if meta.get("kind") == SEARCH_KIND:
        meta.update(question=spec.question)
        _write_meta(folder, meta)
        return [folder / META, _write_readme(folder)]
    runs = pd.read_csv(folder / "tables" / "runs.csv", keep_default_na=False, na_values=[""])
    if catalog.MAX_MODES not in runs:  # published before the outcome classes: its collapsed is not theirs
        runs = runs.drop(columns=[catalog.COLLAPSED], errors="ignore")
    # the full config label (the run's overrides); studies published before it was kept: the run name, which
    # the runner sets to the same overrides
    labelled = relabel(runs.assign(config_label=runs["full_label" if "full_label" in runs else "run_name"]))
    for old in folder.glob("tables/contrast_*"):
        old.unlink()
    for old in folder.glob("figures/contrast_*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="gansweep-rederive-") as tmp:
        derived = derive_tables(labelled.runs, labelled.varying, spec, Path(tmp))
        written = [Path(shutil.copy2(f, folder / "tables" / f.name)) for f in derived.files]
        for path in derived.plots.values():
            written.append(Path(shutil.copy2(path, folder / "figures" / path.name)))
        # the published figures the run table alone makes, with the current statistics
        remade: dict[str, Path] = {}
        jobs = table_plot_jobs(labelled.runs, derived.summary, status_counts(labelled.runs))
        run_jobs(jobs, Path(tmp) / "plots", remade, [])
        for path in remade.values():
            if path.name in meta["figures"]:
                written.append(Path(shutil.copy2(path, folder / "figures" / path.name)))
    made = {p.name for p in derived.plots.values()}
    stacked = catalog.metric_column(contract.STACKED_MODES)
    logs_stacked = stacked in runs and runs[stacked].notna().any()
    if spec.target is not None:
        meta["target"] = spec.target.to_meta()
    meta.update(
        question=spec.question,
        hypothesis=spec.hypothesis,
        contrasts=[contrast_meta(c) for c in spec.contrasts],
        figures=figure_order(
            [*made, *(n for n in meta["figures"] if not n.startswith("contrast_") and n not in made)]
        ),
        # a plot of a figure the study never logs is no message of this study; a message the derivation
        # repeats is kept once (re-deriving twice changes nothing)
        messages=list(
            dict.fromkeys(
                [m for m in meta["messages"] if logs_stacked or not m.startswith("plot stacked")]
                + derived.messages
            )
        ),
    )
    _write_meta(folder, meta)
    return [*written, folder / META, _write_readme(folder)]


# ---- hyperparameter searches ------------------------------------------------------------------------------

SEARCH_FIGURES = ("history.png", "pareto.png")  # and importance_<i>.png, one per objective
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
_YES = "yes"


def _search_command(study: str) -> str:
    return f"gansweep-train -m experiment={study} hydra/launcher=joblib"


def _trial_note(attrs: Mapping[str, Any], retried_as: int | None) -> str:
    """Why a trial is not a plain completed one, from what the sweeper recorded on it: interrupted (and the
    trial that asked its params again), failed (the run's reason, shortened), pruned, or a retry."""
    from gansweep.search.study import ATTR_FAIL_REASON, ATTR_INTERRUPTED, ATTR_PRUNED_AT, ATTR_RETRY_OF

    notes = []
    if ATTR_INTERRUPTED in attrs:
        notes.append(f"interrupted ({attrs[ATTR_INTERRUPTED]})")
    if ATTR_FAIL_REASON in attrs:
        reason = " ".join(str(attrs[ATTR_FAIL_REASON]).split())
        notes.append(f"failed: {reason if len(reason) <= 80 else reason[:77] + '...'}")
    if ATTR_PRUNED_AT in attrs:
        notes.append(f"pruned at iteration {attrs[ATTR_PRUNED_AT]}")
    if retried_as is not None:
        notes.append(f"asked again as trial {retried_as}")
    if ATTR_RETRY_OF in attrs:
        notes.append(f"asks interrupted trial {attrs[ATTR_RETRY_OF]} again")
    return "; ".join(notes)


def _rule_pick(done: pd.DataFrame, found: search.OpenedSearch, rule: search.AnswerRule) -> int | None:
    """The trial the answer rule picks among the completed ones (``done``): of those that meet it, the best
    on ``rule.best`` (the lower trial number on a tie); None without a ``best`` or an eligible trial."""
    if rule.best is None:
        return None
    eligible = done[done["meets_rule"] == _YES]
    eligible = eligible[eligible[rule.best].map(lambda v: math.isfinite(float(v)))]
    if not len(eligible):
        return None
    ascending = found.directions[found.names.index(rule.best)] == "minimize"
    order = eligible.sort_values([rule.best, "trial"], ascending=[ascending, True], kind="stable")
    return int(order.iloc[0]["trial"])


def _trial_tables(
    found: search.OpenedSearch, rule: search.AnswerRule
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(trials, best, states): every trial at full precision with whether it meets the rule; the Pareto
    front (one objective: the best trial) and the rule's pick, rounded as the README shows them; the number of
    trials per state."""
    from gansweep.search.study import ATTR_RETRY_OF, ATTR_RUN_ID

    names = found.names
    trials = found.study.get_trials(deepcopy=False)
    params = sorted({k for t in trials for k in t.params})
    retried_by = {t.user_attrs[ATTR_RETRY_OF]: t.number for t in trials if ATTR_RETRY_OF in t.user_attrs}
    rows = []
    for t in trials:
        values = dict(zip(names, t.values or [], strict=False)) if t.state.name == "COMPLETE" else {}
        meets = "" if not values else (_YES if rule.meets(values) else "no")
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "meets_rule": meets,
                **{n: values.get(n, float("nan")) for n in names},
                **{k: t.params.get(k) for k in params},
                "note": _trial_note(t.user_attrs, retried_by.get(t.number)),
                "run_id": t.user_attrs.get(ATTR_RUN_ID, ""),
            }
        )
    frame = pd.DataFrame(rows, columns=["trial", "state", "meets_rule", *names, *params, "note", "run_id"])
    frame = frame.sort_values("trial", kind="stable").reset_index(drop=True)
    done = frame[frame["state"] == "COMPLETE"]
    try:
        front = {t.number for t in found.study.best_trials}
    except ValueError:
        front = set()
    pick = _rule_pick(done, found, rule)
    chosen = done[done["trial"].isin(front | ({pick} if pick is not None else set()))]
    best = pd.DataFrame(
        {
            "trial": chosen["trial"].astype(int),
            "answer": [_YES if int(t) == pick else "" for t in chosen["trial"]],
            "front": [_YES if int(t) in front else "" for t in chosen["trial"]],
            **{c: chosen[c].map(_cell) for c in [*names, *params]},
        },
        columns=["trial", "answer", "front", *names, *params],
    ).reset_index(drop=True)
    counts = frame["state"].value_counts()
    states = pd.DataFrame(
        [
            {"state": s, "trials": int(counts.get(s, 0))}
            for s in [*STATES, *sorted(set(counts.index) - set(STATES))]
            if s in STATES[:3] or counts.get(s, 0)
        ]
    )
    return frame, best, states


def _cell(value: object) -> str:
    """A best-trials cell as the README prints it: floats to 4 significant figures."""
    if hasattr(value, "item"):
        value = value.item()
    return fmt(value, 4)


def _search_meta(
    study: str, spec: ReportSpec, found: search.OpenedSearch, rule: search.AnswerRule, runs: pd.DataFrame
) -> dict[str, object]:
    """A search study's ``meta.json`` before its report is made (no messages and figures yet)."""
    return {
        "kind": SEARCH_KIND,
        "study": study,
        "question": spec.question,
        "contrasts": [],
        "optuna_study": found.study.study_name,
        "objectives": [
            {"name": n, "direction": d} for n, d in zip(found.names, found.directions, strict=True)
        ],
        "rule": rule.to_meta(),
        "command": _search_command(study),
        "publish_command": f"gansweep-analyze experiment={study} --publish",
        "runs": len(runs),
        "commits": tag_values(runs, contract.TAG_GIT_COMMIT),
        "hosts": tag_values(runs, contract.TAG_HOST),
        "versions": tag_values(runs, contract.TAG_VERSIONS),
        "blas_threads": tag_values(runs, contract.TAG_BLAS_THREADS),
        **wall_clock(runs),
        "messages": [],
        "figures": [],
    }


def publish_search(
    tracking_uri: str,
    study: str,
    target: Path,
    *,
    storage: str | None = None,
    rule: search.AnswerRule | None = None,
    spec: ReportSpec | None = None,
) -> list[Path]:
    """Write the published folder of search study ``study`` (replacing what is there): ``tables/`` (trials,
    best, states), ``figures/`` (the search report's history, Pareto front and importances), ``meta.json``
    and ``README.md``. :class:`analysis.search.SearchUnavailableError` (naming the study) before anything is
    written when the store holds no search of it, its storage is missing, or it has no trials;
    :class:`analysis.report_spec.ReportSpecError` when the answer rule names no objective. ``rule`` and
    ``spec`` default to the study file's ``report:`` block."""
    target = Path(target)
    root = paths.project_root()
    found = search.open_search(tracking_uri, study, storage=storage)
    rule = (rule if rule is not None else search.load_rule(study, root)).for_objectives(found.names)
    spec = spec if spec is not None else load_spec(study, root)
    trials, best, states = _trial_tables(found, rule)
    runs = load_study(tracking_uri, study, history_keys=()).runs
    meta = _search_meta(study, spec, found, rule, runs)
    with tempfile.TemporaryDirectory(prefix="gansweep-publish-") as tmp:
        report = search.search_report(tracking_uri, study, Path(tmp), storage=found.url, upload=False)
        meta["messages"] = report.messages
        if target.exists():
            shutil.rmtree(target)
        (target / "figures").mkdir(parents=True)
        written: list[Path] = []
        written += write_table(best, target / "tables", "best")
        written += write_table(states, target / "tables", "states")
        written += write_table(trials, target / "tables", "trials", markdown=trials.drop(columns=["run_id"]))
        made = Path(tmp) / search.FOLDER
        importances = [f"importance_{i}.png" for i in range(len(found.names))]
        for name in [*SEARCH_FIGURES, *importances]:
            if (made / name).is_file():
                written.append(Path(shutil.copy2(made / name, target / "figures" / name)))
                meta["figures"].append(name)
    _write_meta(target, meta)
    return [*written, target / META, _write_readme(target)]


FINDINGS_START = "<!-- findings: written by gansweep-analyze --publish from experiments/*/README.md -->"
FINDINGS_END = "<!-- /findings -->"


def findings_block(experiments: Path) -> str:
    """The findings table of the project README: one row per published study (question, verdict, key
    number), between the markers."""
    table = markdown_table(findings_table(experiments)).rstrip("\n")
    return "\n".join([FINDINGS_START, table, FINDINGS_END])


def update_findings(readme: Path, experiments: Path) -> bool:
    """Replace the findings block of the project README (between the markers); False when it has none."""
    text = Path(readme).read_text(encoding="utf-8")
    if FINDINGS_START not in text or FINDINGS_END not in text:
        return False
    head, rest = text.split(FINDINGS_START, 1)
    _, tail = rest.split(FINDINGS_END, 1)
    Path(readme).write_text(head + findings_block(experiments) + tail, encoding="utf-8")
    return True
