"""The document of a published hyperparameter search: its verdict (:func:`search_verdict`: the trial the
study file's ``report.answer`` rule picks) and its blocks (:func:`search_blocks`), from ``meta.json`` and
``tables/`` alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import catalog, search
from analysis.report import Block
from analysis.sections import figures, messages, notice, provenance, read_text_table, title
from analysis.verdicts import NO, UNDECIDED, YES

_YES_CELL = "yes"
_STATE_WORDS = {"FAIL": "failed"}


def _values_text(row: pd.Series, names: list[str], params: list[str]) -> str:
    values = ", ".join(f"{n} {row[n]}" for n in names)
    chosen = ", ".join(f"{p}={row[p]}" for p in params)
    return f"{values}; {chosen}" if chosen else values


def _trials_text(numbers: list[str]) -> str:
    return ("trial " if len(numbers) == 1 else "trials ") + ", ".join(numbers)


def states_text(states: pd.DataFrame) -> str:
    """``"3 complete, 1 pruned, 0 failed"``."""
    return ", ".join(
        f"{n} {_STATE_WORDS.get(s, s.lower())}"
        for s, n in zip(states["state"], states["trials"], strict=True)
    )


def search_verdict(folder: Path, meta: dict) -> tuple[str, str]:
    """(verdict word, answer sentence) of a published search: **Yes.** when a completed trial meets the
    answer rule's conditions (the sentence names the rule's pick), **No.** when trials completed and none
    does, **Not decided.** when none completed."""
    tables = Path(folder) / "tables"
    best = read_text_table(tables / "best.csv")
    trials = read_text_table(tables / "trials.csv")
    states = read_text_table(tables / "states.csv")
    names = [o["name"] for o in meta["objectives"]]
    directions = {o["name"]: o["direction"] for o in meta["objectives"]}
    params = [c for c in best.columns if c not in ("trial", "answer", "front", *names)]
    rule = search.AnswerRule.from_meta(meta["rule"])
    counts = dict(zip(states["state"], states["trials"], strict=True))
    tally = f"{len(trials)} trials: {states_text(states)}"
    if counts.get("COMPLETE", "0") == "0":
        return UNDECIDED, f"No trial completed ({tally}): nothing answers the question yet."
    front = best[best["front"] == _YES_CELL]
    front_text = "; ".join(
        f"trial {r['trial']} ({_values_text(r, names, params)})" for _, r in front.iterrows()
    )
    front_name = (
        "Best trial"
        if len(names) == 1
        else "Pareto front of " + " and ".join(f"{n} ({directions[n]})" for n in names)
    )
    picked = best[best["answer"] == _YES_CELL]
    conditions = rule.conditions()
    if rule.best is not None and len(picked):
        row = picked.iloc[0]
        word = "lowest" if directions[rule.best] == "minimize" else "highest"
        others = [n for n in names if n != rule.best]
        meeting = int((trials["meets_rule"] == _YES_CELL).sum())
        among = f" with {' and '.join(conditions)}" if conditions else ""
        text = (
            f"{meeting} of the completed trials{among}; the {word} {rule.best} among them is trial "
            f"{row['trial']}: {rule.best} {row[rule.best]}"
            + (f" with {', '.join(f'{n} {row[n]}' for n in others)}" if others else "")
            + (f", at {', '.join(f'{p}={row[p]}' for p in params)}" if params else "")
            + f" ({tally}; one seed per trial, so no interval)."
        )
        if len(names) > 1:
            text += f" {front_name}: {_trials_text(list(front['trial']))}."
        return YES, text
    if rule.best is not None and conditions:
        return NO, f"no completed trial has {' and '.join(conditions)} ({tally}). {front_name}: {front_text}."
    return YES, f"{front_name} ({tally}): {front_text}."


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


def search_blocks(folder: Path, meta: dict) -> list[Block]:
    """The document of a published search from its ``meta.json`` and ``tables/*.csv`` alone."""
    folder = Path(folder)
    word, sentence = search_verdict(folder, meta)
    out = [title(meta, " (hyperparameter search)"), Block("p", f"**{word}** {sentence}")]
    objectives = ", ".join(f"{o['name']} ({o['direction']})" for o in meta["objectives"])
    states = read_text_table(folder / "tables" / "states.csv")
    trials = pd.read_csv(folder / "tables" / "trials.csv", keep_default_na=False, na_values=[""])
    facts = [
        f"Search: Optuna study `{meta['optuna_study']}`, {len(trials)} trials ({states_text(states)}); "
        f"objectives {objectives}; the answer is {_rule_text(meta)}; {meta['runs']} MLflow runs.",
        f"Command: `{meta['command']}`, then `{meta['publish_command']}`.",
        *provenance(meta),
    ]
    out.append(Block("list", items=tuple(facts)))
    best = read_text_table(folder / "tables" / "best.csv")
    single = len(meta["objectives"]) == 1
    out += [
        Block("h2", "Best trials"),
        Block(
            "p",
            ("The best trial" if single else "The Pareto front")
            + " (`front`) and the trial the answer names (`answer`), rounded to 4 significant figures. CSV: "
            "[tables/best.csv](tables/best.csv).",
        ),
        Block("table", table=best),
        Block("h2", "Trials by state"),
        Block("p", "CSV: [tables/states.csv](tables/states.csv)."),
        Block("table", table=states),
        Block("h2", "Every trial"),
        Block(
            "p",
            "`meets_rule`: whether a completed trial meets the answer's conditions; `note`: what the sweeper "
            "recorded on an interrupted, failed, pruned or retried trial. CSV at full precision, with each "
            "trial's MLflow run id: [tables/trials.csv](tables/trials.csv).",
        ),
        Block("table", table=trials.drop(columns=["run_id"])),
    ]
    out += figures(meta, _search_captions(meta), "figures")
    out += messages(meta)
    out.append(notice("the MLflow store and the Optuna storage"))
    return out


def search_key_number(folder: Path, meta: dict) -> str:
    """The number a search's answer rests on: the picked trial's objective (one seed)."""
    best = read_text_table(Path(folder) / "tables" / "best.csv")
    rule = search.AnswerRule.from_meta(meta["rule"])
    picked = best[best["answer"] == _YES_CELL]
    if rule.best is None or picked.empty:
        return "–"
    name = catalog.short_name(rule.best)
    return f"{name} {picked.iloc[0][rule.best]} (trial {picked.iloc[0]['trial']}, one seed)"
