"""Publish a study's answer into ``experiments/<study>/``: ``gansweep-analyze experiment=<study> --publish``.

Two steps, so that a published README cannot drift from its tables:

1. :func:`publish` regenerates the study from the MLflow store (:func:`analysis.pipeline.regenerate`, into a
   temporary folder), copies the tables (CSV and Markdown) and the figures that carry the answer, and writes
   ``meta.json`` (question, contrasts, command, commits, wall time, machine; all read from the store).
2. :func:`render_readme` writes ``README.md`` from ``meta.json`` and the CSV tables alone. The first
   paragraph is the answer: one sentence per contrast, derived from the contrast table's verdicts.

A hyperparameter search (the study file selects ``hydra/sweeper=optuna``, or the store holds a search of the
study) is published by :func:`publish_search` instead: its tables are the trials, the best trials (Pareto
front) and the trials per state, its figures the search report's (history, Pareto front, importances), and
its answer the trial the study file's ``report.answer`` rule picks (:class:`analysis.search.AnswerRule`);
:func:`render_readme` renders both kinds (``meta.json``'s ``kind``).

``tests/test_publish.py`` re-renders every committed ``experiments/*/README.md`` from its own files, and
publishes a synthetic store twice to check that the output is a function of the store;
``tests/test_publish_search.py`` publishes a real tiny search.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import contract, references, search
from analysis.contrasts import LONG_COLUMNS, Contrast, ReportSpec, load_spec, summary_sentence, wide_markdown
from analysis.load import load_study
from analysis.pipeline import CONTRAST_METHOD, HEADLINE_METHOD, Result, regenerate
from analysis.tables import fmt, markdown_table, write_table
from gansweep import paths

README = "README.md"
META = "meta.json"
# The figures a published study carries (besides one per contrast), when the study has them.
FIGURES = (
    "modes_covered.png",
    "class_shares.png",
    "stacked_modes_covered.png",
    "stacked_kl_to_uniform.png",
    "samples_final_stretched.png",
)
TABLES = ("headline", "status", "summary", "runs")
# Columns of the headline table the README shows (the CSV keeps all of them).
README_HEADLINE = (
    "config_label",
    contract.MODES,
    contract.PRECISION,
    contract.RECALL,
    contract.FD,
    contract.CONTRAST,
    contract.COLLAPSED,
)
_TEXT_COLUMNS = {"contrast": "string", "group": "string", "level": "string", "baseline": "string"}


def _wall(runs: pd.DataFrame) -> dict[str, object]:
    """The time some run of the study was running (the union of the runs' intervals, so the hours between
    two invocations of a study continued later do not count), the summed run time and the most runs at once.

    A run closed by a later invocation (tag ``gansweep.stale``: its process was gone) has the closing time as
    its end, not the time it stopped: it counts as 0 h, and ``stale_runs`` says how many did."""
    times = runs.dropna(subset=["start_time", "end_time"])
    if times.empty:
        return {"wall_hours": None, "run_hours": None, "max_parallel": None}
    start, end = times["start_time"].astype("int64"), times["end_time"].astype("int64")
    column = "tags.gansweep.stale"
    stale = times[column].notna() if column in times else pd.Series(False, index=times.index)
    end = end.where(~stale, start)
    live = ~stale  # a stale run's interval is unknown: it adds no event
    events = sorted([(int(s), 1) for s in start[live]] + [(int(e), -1) for e in end[live]])
    level = peak = 0
    busy, since = 0, 0
    for t, delta in events:
        if level == 0 and delta > 0:
            since = t
        level += delta
        peak = max(peak, level)
        if level == 0:
            busy += t - since
    wall = {
        "wall_hours": round(busy / 3.6e6, 2),
        "run_hours": round(float((end - start).sum()) / 3.6e6, 2),
        "max_parallel": peak,
    }
    if stale.any():
        wall["stale_runs"] = int(stale.sum())
    return wall


def _tag_values(runs: pd.DataFrame, tag: str) -> list[str]:
    column = f"tags.{tag}"
    if column not in runs:
        return []
    return sorted(str(v) for v in runs[column].dropna().unique())


def _command(study: str) -> str:
    return f"gansweep-train -m experiment={study} hydra/launcher=joblib hydra.launcher.n_jobs=2 resume=auto"


def build_meta(study: str, result: Result, collapse_modes: float) -> dict[str, object]:
    """What the README says besides its tables, read from the regenerated study."""
    runs = result.runs
    return {
        "study": study,
        "question": result.spec.question,
        "contrasts": [
            {
                "name": c.name,
                "factor": c.factor,
                "baseline": c.baseline,
                "by": list(c.by),
                **({"metrics": list(c.metrics)} if c.metrics else {}),
            }
            for c in result.spec.contrasts
        ],
        **(
            {
                "references": references.to_meta(result.spec.references),
                "references_note": result.spec.references_note,
            }
            if result.spec.references
            else {}
        ),
        "command": _command(study),
        "publish_command": f"gansweep-analyze experiment={study} --publish",
        "runs": len(runs),
        "configs": int(runs["config_label"].nunique()) if not runs.empty else 0,
        "shared": result.shared,
        "collapse_modes": collapse_modes,
        "commits": _tag_values(runs, contract.TAG_GIT_COMMIT),
        "hosts": _tag_values(runs, contract.TAG_HOST),
        "versions": _tag_values(runs, contract.TAG_VERSIONS),
        "blas_threads": _tag_values(runs, contract.TAG_BLAS_THREADS),
        **_wall(runs),
        "messages": result.messages,
        "figures": [],
    }


def publish(
    tracking_uri: str,
    study: str,
    target: Path,
    *,
    collapse_modes: float = contract.DEFAULT_COLLAPSE_MODES,
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
        meta = build_meta(study, result, collapse_modes)
        plots_dir = Path(tmp) / "plots"
        names = sorted(p.name for p in plots_dir.glob("contrast_*.png")) + list(FIGURES)
        for name in names:
            if (plots_dir / name).is_file():
                written.append(Path(shutil.copy2(plots_dir / name, target / "figures" / name)))
                meta["figures"].append(name)
    (target / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    readme = target / README
    readme.write_text(render_readme(target), encoding="utf-8")
    return [*written, target / META, readme]


def read_contrast(path: Path) -> pd.DataFrame:
    """A published contrast CSV read back with its text columns as text ("3e-06" stays "3e-06")."""
    frame = pd.read_csv(path, dtype=_TEXT_COLUMNS, keep_default_na=False, na_values=[""])
    for column in ("contrast", "group", "level", "baseline", "verdict"):
        frame[column] = frame[column].astype(str)
    return frame[LONG_COLUMNS]


def _read_text_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


_CAPTIONS = {
    "modes_covered.png": "Digits covered at the end of training: runs as dots, mean and 95 % CI as a "
    "diamond.",
    "class_shares.png": "Share of each digit among each config's final samples (one bright cell: collapse).",
    "stacked_modes_covered.png": "Stacked-MNIST modes covered of 1,000 at the end of training: runs as dots, "
    "mean and 95 % CI as a diamond.",
    "stacked_kl_to_uniform.png": "Stacked-MNIST KL of the generated mode distribution to uniform over 1,000 "
    "modes (nats; 0 is uniform).",
    "samples_final_stretched.png": "Final samples of a representative run per config, each image's contrast "
    "stretched to its own range as the post's imshow showed them.",
}


def _headline_columns(meta: dict) -> list[str]:
    """The headline columns a README shows: the figures its contrasts name when they name any (with the
    collapsed fraction), else :data:`README_HEADLINE`."""
    named = [m for c in meta["contrasts"] for m in c.get("metrics", ())]
    if not named:
        return list(README_HEADLINE)
    return ["config_label", *dict.fromkeys(named), contract.COLLAPSED]


def render_readme(folder: Path) -> str:
    """``README.md`` of a published study from its ``meta.json`` and ``tables/*.csv`` alone."""
    folder = Path(folder)
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    if meta.get("kind") == SEARCH_KIND:
        return render_search_readme(folder, meta)
    contrasts = [Contrast(c["name"], c["factor"], c["baseline"], tuple(c["by"])) for c in meta["contrasts"]]
    longs = {}
    for i, _ in enumerate(contrasts, start=1):
        path = folder / "tables" / f"contrast_{i}.csv"
        if path.is_file():
            longs[i] = read_contrast(path)
    out = [f"# Study `{meta['study']}`\n"]
    sentences = [summary_sentence(longs[i], c) for i, c in enumerate(contrasts, start=1) if i in longs] or [
        "No contrast could be computed yet (see the messages below)."
    ]
    question = f"**{meta['question']}** " if meta["question"] else ""
    out.append(question + " ".join(sentences) + "\n")
    wall = _wall_text(meta)
    facts = [
        f"Runs: {meta['runs']} in {meta['configs']} configs; collapse = eval/modes_covered ≤ "
        f"{meta['collapse_modes']:g} digits from some eval point to the last.",
        f"Command: `{meta['command']}`, then `{meta['publish_command']}`.",
        *_provenance(meta, wall),
    ]
    if meta["shared"]:
        facts.append(
            "Shared by every run: " + " ".join(f"`{k}={v}`" for k, v in meta["shared"].items()) + "."
        )
    out.append("\n".join(f"- {f}" for f in facts) + "\n")
    for i, contrast in enumerate(contrasts, start=1):
        if i not in longs:
            continue
        out.append(f"## Contrast: {contrast.name}\n")
        out.append(CONTRAST_METHOD + f" CSV: [tables/contrast_{i}.csv](tables/contrast_{i}.csv).\n")
        out.append(markdown_table(wide_markdown(longs[i])))
        figure = f"contrast_{i}.png"
        if figure in meta["figures"]:
            out.append(f"![{contrast.name}](figures/{figure})\n")
    headline = folder / "tables" / "headline.csv"
    if headline.is_file():
        out.append("## Final figures per config\n")
        out.append(
            f"Mean [95 % CI] (n): {HEADLINE_METHOD}. CSV: [tables/headline.csv](tables/headline.csv); "
            "every figure: [tables/summary.csv](tables/summary.csv); "
            "per run: [tables/runs.csv](tables/runs.csv).\n"
        )
        table = _read_text_table(headline)
        out.append(markdown_table(table[[c for c in _headline_columns(meta) if c in table.columns]]))
        if meta.get("references"):
            out.append("## Beside the published figures\n")
            out.append(
                "The papers' figures as published (from the study file's report.references), then this "
                "study's configs that log the same figures.\n"
            )
            out.append(markdown_table(references.table(meta["references"], table)))
            if meta.get("references_note"):
                out.append(meta["references_note"] + "\n")
    status = folder / "tables" / "status.csv"
    if status.is_file():
        out.append("## Runs per config by outcome\n")
        out.append(markdown_table(_read_text_table(status)))
    out += _closing_sections(meta, _CAPTIONS, "the MLflow store")
    return "\n".join(out)


def _closing_sections(meta: dict, captions: dict[str, str], source: str) -> list[str]:
    """A published README's last sections, for grids and searches alike: the figures ``captions`` describe,
    the analysis's messages, and the generated-file notice naming where the numbers were read (``source``)."""
    out = []
    figures = [f for f in meta["figures"] if f in captions]
    if figures:
        out.append("## Figures\n")
        for figure in figures:
            out.append(f"{captions[figure]}\n\n![{figure}](figures/{figure})\n")
    if meta["messages"]:
        out.append("## Messages from the analysis\n")
        out.append("\n".join(f"- {m}" for m in meta["messages"]) + "\n")
    out.append(
        f"*Generated by `gansweep-analyze --publish` from {source}; do not edit by hand "
        "(tests/test_publish.py re-renders this file from meta.json and tables/).*\n"
    )
    return out


def _wall_text(meta: dict) -> str:
    if meta["wall_hours"] is None:
        return "unknown"
    text = (
        f"{meta['wall_hours']} h wall clock ({meta['run_hours']} run-hours, at most {meta['max_parallel']} "
        "runs at once)"
    )
    if meta.get("stale_runs"):
        text += (
            f"; {meta['stale_runs']} run(s) whose process was gone when a later invocation closed them count "
            "as 0 h (when they stopped is not recorded)"
        )
    return text


def _provenance(meta: dict, wall: str) -> list[str]:
    """The README facts after the command: code commits, wall time, machine (grids and searches alike)."""
    return [
        f"Code commit(s) of the runs: {', '.join(meta['commits']) or 'unknown'}.",
        f"Wall time: {wall}.",
        f"Machine: host {', '.join(meta['hosts']) or 'unknown'}; BLAS threads per run "
        f"{', '.join(meta['blas_threads']) or 'unknown'}; {'; '.join(meta['versions']) or ''}.",
    ]


# ---- hyperparameter searches ------------------------------------------------------------------------------

SEARCH_KIND = "search"
SEARCH_FIGURES = ("history.png", "pareto.png")  # and importance_<i>.png, one per objective
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
_YES = "yes"


def _search_command(study: str) -> str:
    return f"gansweep-train -m experiment={study} hydra/launcher=joblib"


def _trial_note(attrs: Mapping[str, Any], retried_as: int | None) -> str:
    """Why a trial is not a plain completed one, from what the sweeper recorded on it: interrupted (and the
    trial that asked its params again), failed (the run's reason, shortened), pruned, or a retry."""
    from gansweep.search import ATTR_FAIL_REASON, ATTR_INTERRUPTED, ATTR_PRUNED_AT, ATTR_RETRY_OF

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


def _trial_tables(
    found: search.Search, rule: search.AnswerRule
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(trials, best, states): every trial at full precision with whether it meets the rule; the Pareto
    front (one objective: the best trial) and the rule's pick, rounded as the README shows them; the number of
    trials per state."""
    from gansweep.search import ATTR_RETRY_OF, ATTR_RUN_ID

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
    pick = None
    if rule.best is not None:
        eligible = done[done["meets_rule"] == _YES]
        eligible = eligible[eligible[rule.best].map(lambda v: math.isfinite(float(v)))]
        if len(eligible):
            ascending = found.directions[names.index(rule.best)] == "minimize"
            order = eligible.sort_values([rule.best, "trial"], ascending=[ascending, True], kind="stable")
            pick = int(order.iloc[0]["trial"])
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
    :class:`analysis.contrasts.ReportSpecError` when the answer rule names no objective. ``rule`` and
    ``spec`` default to the study file's ``report:`` block."""
    target = Path(target)
    root = paths.project_root()
    found = search.open_search(tracking_uri, study, storage=storage)
    rule = (rule if rule is not None else search.load_rule(study, root)).for_objectives(found.names)
    spec = spec if spec is not None else load_spec(study, root)
    trials, best, states = _trial_tables(found, rule)
    runs = load_study(tracking_uri, study, history_keys=()).runs
    meta: dict[str, object] = {
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
        "commits": _tag_values(runs, contract.TAG_GIT_COMMIT),
        "hosts": _tag_values(runs, contract.TAG_HOST),
        "versions": _tag_values(runs, contract.TAG_VERSIONS),
        "blas_threads": _tag_values(runs, contract.TAG_BLAS_THREADS),
        **_wall(runs),
        "messages": [],
        "figures": [],
    }
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
    (target / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    readme = target / README
    readme.write_text(render_readme(target), encoding="utf-8")
    return [*written, target / META, readme]


def _values_text(row: pd.Series, names: list[str], params: list[str]) -> str:
    values = ", ".join(f"{n} {row[n]}" for n in names)
    chosen = ", ".join(f"{p}={row[p]}" for p in params)
    return f"{values}; {chosen}" if chosen else values


def search_answer(folder: Path, meta: dict) -> str:
    """The answer paragraph of a published search, from ``tables/best.csv``, ``tables/trials.csv`` and
    ``tables/states.csv`` (numbers as those tables print them) and the rule in ``meta.json``."""
    tables = Path(folder) / "tables"
    best = _read_text_table(tables / "best.csv")
    trials = _read_text_table(tables / "trials.csv")
    states = _read_text_table(tables / "states.csv")
    names = [o["name"] for o in meta["objectives"]]
    directions = {o["name"]: o["direction"] for o in meta["objectives"]}
    params = [c for c in best.columns if c not in ("trial", "answer", "front", *names)]
    rule = search.AnswerRule.from_meta(meta["rule"])
    counts = dict(zip(states["state"], states["trials"], strict=True))
    total = len(trials)
    completed = counts.get("COMPLETE", "0")
    tally = f"{total} trials: {_states_text(states)}"
    question = f"**{meta['question']}** " if meta["question"] else ""
    if completed == "0":
        return question + f"No trial completed ({tally}): nothing answers the question yet."
    front = best[best["front"] == _YES]
    front_text = "; ".join(
        f"trial {r['trial']} ({_values_text(r, names, params)})" for _, r in front.iterrows()
    )
    if len(names) == 1:
        front_name = "Best trial"
    else:
        front_name = "Pareto front of " + " and ".join(f"{n} ({directions[n]})" for n in names)
    picked = best[best["answer"] == _YES]
    conditions = rule.conditions()
    if rule.best is not None and len(picked):
        row = picked.iloc[0]
        word = "lowest" if directions[rule.best] == "minimize" else "highest"
        others = [n for n in names if n != rule.best]
        meeting = int((trials["meets_rule"] == _YES).sum())
        among = f" with {' and '.join(conditions)}" if conditions else ""
        text = (
            f"Trial {row['trial']}: {rule.best} {row[rule.best]}"
            + (f" with {', '.join(f'{n} {row[n]}' for n in others)}" if others else "")
            + (f", at {', '.join(f'{p}={row[p]}' for p in params)}" if params else "")
            + f": the {word} {rule.best} of the {meeting} completed trials{among} ({tally})."
        )
        if len(names) > 1:
            text += f" {front_name}: {_trials_text(list(front['trial']))}."
        return question + text
    if rule.best is not None and conditions:
        return question + (
            f"No completed trial has {' and '.join(conditions)} ({tally}). {front_name}: {front_text}."
        )
    return question + f"{front_name} ({tally}): {front_text}."


def _trials_text(numbers: list[str]) -> str:
    return ("trial " if len(numbers) == 1 else "trials ") + ", ".join(numbers)


_STATE_WORDS = {"FAIL": "failed"}


def _states_text(states: pd.DataFrame) -> str:
    """``"3 complete, 1 pruned, 0 failed"``."""
    return ", ".join(
        f"{n} {_STATE_WORDS.get(s, s.lower())}"
        for s, n in zip(states["state"], states["trials"], strict=True)
    )


def _rule_text(meta: dict) -> str:
    rule = search.AnswerRule.from_meta(meta["rule"])
    directions = {o["name"]: o["direction"] for o in meta["objectives"]}
    if rule.best is None:
        return "the Pareto front (the study file's report.answer names no objective to rank by)"
    word = "lowest" if directions[rule.best] == "minimize" else "highest"
    conditions = rule.conditions()
    among = f" with {' and '.join(conditions)}" if conditions else ""
    return f"the {word} {rule.best} among the completed trials{among} (the study file's report.answer)"


def _search_captions(meta: dict) -> dict[str, str]:
    names = [o["name"] for o in meta["objectives"]]
    directions = [o["direction"] for o in meta["objectives"]]
    captions = {
        "history.png": f"Optimisation history: each completed trial's {names[0]} and the best so far "
        f"({directions[0]}); pruned and failed trials marked.",
        "pareto.png": f"{names[0]} against {names[-1]} for the completed trials, the Pareto front "
        "highlighted and numbered.",
    }
    for i, name in enumerate(names):
        captions[f"importance_{i}.png"] = f"Parameter importances for {name} (Optuna's fANOVA)."
    return captions


def render_search_readme(folder: Path, meta: dict) -> str:
    """``README.md`` of a published search from its ``meta.json`` and ``tables/*.csv`` alone."""
    folder = Path(folder)
    out = [f"# Study `{meta['study']}` (hyperparameter search)\n", search_answer(folder, meta) + "\n"]
    objectives = ", ".join(f"{o['name']} ({o['direction']})" for o in meta["objectives"])
    states = _read_text_table(folder / "tables" / "states.csv")
    trials = pd.read_csv(folder / "tables" / "trials.csv", keep_default_na=False, na_values=[""])
    facts = [
        f"Search: Optuna study `{meta['optuna_study']}`, {len(trials)} trials ({_states_text(states)}); "
        f"objectives {objectives}; the answer is {_rule_text(meta)}; "
        f"{meta['runs']} MLflow runs.",
        f"Command: `{meta['command']}`, then `{meta['publish_command']}`.",
        *_provenance(meta, _wall_text(meta)),
    ]
    out.append("\n".join(f"- {f}" for f in facts) + "\n")
    best = _read_text_table(folder / "tables" / "best.csv")
    single = len(meta["objectives"]) == 1
    out.append("## Best trials\n")
    out.append(
        ("The best trial" if single else "The Pareto front")
        + " (`front`) and the trial the answer names (`answer`), rounded to 4 significant figures. CSV: "
        "[tables/best.csv](tables/best.csv).\n"
    )
    out.append(markdown_table(best))
    out.append("## Trials by state\n")
    out.append("CSV: [tables/states.csv](tables/states.csv).\n")
    out.append(markdown_table(states))
    out.append("## Every trial\n")
    out.append(
        "`meets_rule`: whether a completed trial meets the answer's conditions; `note`: what the sweeper "
        "recorded on an interrupted, failed, pruned or retried trial. CSV at full precision, with each "
        "trial's MLflow run id: [tables/trials.csv](tables/trials.csv).\n"
    )
    out.append(markdown_table(trials.drop(columns=["run_id"])))
    out += _closing_sections(meta, _search_captions(meta), "the MLflow store and the Optuna storage")
    return "\n".join(out)


FINDINGS_START = "<!-- findings: written by gansweep-analyze --publish from experiments/*/README.md -->"
FINDINGS_END = "<!-- /findings -->"


def findings_block(experiments: Path) -> str:
    """One bullet per published study: its README's answer paragraph, linked."""
    lines = [FINDINGS_START]
    for folder in sorted(p.parent for p in Path(experiments).glob(f"*/{META}")):
        answer = (folder / README).read_text(encoding="utf-8").split("\n\n")[1].strip()
        lines.append(f"- [`{folder.name}`](experiments/{folder.name}/README.md): {answer}")
    lines.append(FINDINGS_END)
    return "\n".join(lines)


def update_findings(readme: Path, experiments: Path) -> bool:
    """Replace the findings block of the project README (between the markers); False when it has none."""
    text = Path(readme).read_text(encoding="utf-8")
    if FINDINGS_START not in text or FINDINGS_END not in text:
        return False
    head, rest = text.split(FINDINGS_START, 1)
    _, tail = rest.split(FINDINGS_END, 1)
    Path(readme).write_text(head + findings_block(experiments) + tail, encoding="utf-8")
    return True
