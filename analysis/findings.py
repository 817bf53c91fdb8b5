"""What a published or regenerated study folder found, read back from its ``meta.json`` and ``tables/*.csv``:
its verdict (:func:`verdict`: **Yes.** / **No.** / **Not decided.** and the answer in one sentence; a study
without contrasts says what its runs did, :func:`outcome_sentence`), the number it rests on
(:func:`key_number`) and the project README's findings table (:func:`findings_table`). The readers of the
folder's tables (:func:`contrast_tables`, :func:`factorial_tables`) serve the study's document too."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import catalog, verdict_classes
from analysis.contrast_table import LONG_COLUMNS
from analysis.meta import META, contrast_of
from analysis.report_spec import parse_target
from analysis.search_document import search_key_number, search_verdict
from analysis.sections import SEARCH_KIND, read_meta
from analysis.stats import completed
from analysis.target_verdict import factorial_verdict
from analysis.verdicts import delta_text, study_verdict, unit_text
from gansweep.run import contract

_TEXT_COLUMNS = {"contrast": "string", "group": "string", "level": "string", "baseline": "string"}


def read_contrast(path: Path) -> pd.DataFrame:
    """A contrast CSV read back with its text columns as text ("3e-06" stays "3e-06")."""
    frame = pd.read_csv(path, dtype=_TEXT_COLUMNS, keep_default_na=False, na_values=[""])
    for column in ("contrast", "family", "group", "level", "baseline", "verdict", "alternative"):
        frame[column] = frame[column].astype(str)
    for column in ("diffs", "level_outcomes", "baseline_outcomes"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame[LONG_COLUMNS]


def contrast_tables(folder: Path, meta: dict) -> dict[int, pd.DataFrame]:
    """The study's contrast tables by their number (1-based), those that exist."""
    out = {}
    for i, _ in enumerate(meta["contrasts"], start=1):
        path = Path(folder) / "tables" / f"contrast_{i}.csv"
        if path.is_file():
            out[i] = read_contrast(path)
    return out


def verdict(folder: Path, meta: dict | None = None) -> tuple[str, str]:
    """(verdict word, answer sentence) of a published or regenerated study folder."""
    meta = meta if meta is not None else read_meta(folder)
    if meta.get("kind") == SEARCH_KIND:
        return search_verdict(folder, meta)
    longs = contrast_tables(folder, meta)
    if meta.get("target"):
        spec = parse_target(meta["target"])
        word, sentence = factorial_verdict(*factorial_tables(folder), spec)
        if longs and meta["contrasts"]:  # what the primary comparisons found, beside the target's answer
            long = pd.concat(longs.values(), ignore_index=True)
            beside = study_verdict(long, [contrast_of(c) for c in meta["contrasts"]])[1]
            sentence = f"{sentence} Beside it: {beside[0].lower()}{beside[1:]}"
        return word, sentence
    if not meta["contrasts"]:
        return "", outcome_sentence(_runs(folder))
    long = pd.concat(longs.values(), ignore_index=True) if longs else pd.DataFrame(columns=LONG_COLUMNS)
    return study_verdict(long, [contrast_of(c) for c in meta["contrasts"]])


def factorial_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = Path(folder) / "tables"
    cells = pd.read_csv(tables / "cells.csv", keep_default_na=False, na_values=[""], dtype={"values": str})
    effects = pd.read_csv(tables / "effects.csv", keep_default_na=False, na_values=[""], dtype={"diffs": str})
    return cells, effects


def _runs(folder: Path) -> pd.DataFrame:
    path = Path(folder) / "tables" / "runs.csv"
    return pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.is_file() else pd.DataFrame()


def outcome_sentence(runs: pd.DataFrame) -> str:
    """What the runs of a study without contrasts did, in one sentence: how many end on at most three
    digits, each config's final digits and dominant digit, how many never learned or collapsed."""
    column = catalog.metric_column(contract.MODES)
    if runs.empty or column not in runs:
        return "No run has logged the digit figure yet."
    done = completed(runs)
    if done.empty:
        return f"None of the {len(runs)} runs has finished yet."
    shares = [c for c in done.columns if c.startswith("metrics." + contract.EVAL_PREFIX + "class_share_")]
    parts = []
    for label, group in done.groupby("config_label", sort=True):
        digits = ", ".join(f"{float(v):g}" for v in group[column])
        text = f"{label} {digits}"
        if shares and len(group) == 1:
            row = group.iloc[0][shares].astype(float)
            if row.notna().any():
                text += f" (mostly {str(row.idxmax()).rsplit('_', 1)[-1]}s)"
        parts.append(text)
    final = pd.to_numeric(done[column], errors="coerce")
    few = int((final <= 3).sum())
    seeds = int(done["seed"].nunique()) if "seed" in done else 1
    runs_text = f"{len(done)} runs" + (" (one seed each)" if seeds == 1 else "")
    tail = []
    for flag, words in ((catalog.NEVER_LEARNED, "never learned"), (catalog.COLLAPSED, "collapsed")):
        if flag in done:
            hit = done[done[flag].astype(str).str.lower() == "true"]["config_label"].tolist()
            if hit:
                tail.append(f"{len(hit)} {words} ({', '.join(hit)})")
    end = f"; {'; '.join(tail)}" if tail else ""
    return (
        f"{few} of the {runs_text} end on at most 3 digits; digits covered at the end: "
        f"{'; '.join(parts)}{end}."
    )


def key_number(folder: Path, meta: dict) -> str:
    """The number a study's verdict rests on: the primary comparison it names (or its largest), as
    "Δ digits −8.4 [−8.9, −7.8] (30 pairs)"; a target study's cell closest to its target, by seed; a
    search's picked trial's objective."""
    if meta.get("kind") == SEARCH_KIND:
        return search_key_number(folder, meta)
    if meta.get("target"):
        spec = parse_target(meta["target"])
        cells, _ = factorial_tables(folder)
        if cells.empty:
            return "–"
        best = cells.sort_values(["rescued", "mean"], ascending=False, kind="stable").iloc[0]
        where = "" if len(cells) == 1 else f"{best['cell']}: "
        return (
            f"{where}{catalog.figure(spec.metric).short} {str(best['values']).replace(',', ', ')} "
            f"({int(best['rescued'])}/{int(best['n'])} seeds reach {spec.text()})"
        )
    longs = contrast_tables(folder, meta)
    if not longs:
        return "–"
    long = pd.concat(longs.values(), ignore_index=True)
    primary = long[long["family"] == "primary"]
    if primary.empty:
        return "–"
    hits = primary[primary["verdict"] == verdict_classes.DIFFERENCE]
    pick = hits if len(hits) else primary
    sizes = pick["mean_diff"].astype(float).abs().fillna(-1)
    r = pick.loc[sizes.idxmax()]
    where = "" if r["group"] in ("all runs", "pooled") else f" ({r['group']})"
    level = f"{r['level']} − {r['baseline']}{where}: "
    fig = catalog.figure(str(r["metric"]))
    n = int(r["n_pairs"])
    extra = f", {len(primary)} comparisons" if len(primary) > 1 else ""
    return f"{level}Δ {fig.short} {delta_text(r)} ({n} {unit_text(r)}{extra})"


def findings_table(experiments: Path) -> pd.DataFrame:
    """One row per published study: its question (linked), verdict and key number."""
    rows = []
    for folder in sorted(p.parent for p in Path(experiments).glob(f"*/{META}")):
        meta = read_meta(folder)
        word, _ = verdict(folder, meta)
        rows.append(
            {
                "study": f"[`{folder.name}`](experiments/{folder.name}/README.md)",
                "question": meta.get("question", ""),
                "verdict": f"**{word}**" if word else "–",
                "key number [95 % interval]": key_number(folder, meta),
            }
        )
    return pd.DataFrame(rows, columns=["study", "question", "verdict", "key number [95 % interval]"])
