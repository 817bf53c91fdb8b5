"""The one document model of a study: its ``meta.json`` and ``tables/*.csv`` turned into report blocks
(:class:`analysis.report.Block`), which :mod:`analysis.report` renders to Markdown (``report.md``, the
published ``README.md``) and HTML (``report.html``). The regenerated report and the published README are the
same document: the report adds the parent run and a reading guide, the README the generated-file notice.

A grid study opens with its verdict (**Yes.** / **No.** / **Not decided.**, from
:func:`analysis.contrasts.study_verdict`) and the primary comparisons; a study without contrasts opens with
what its runs did (:func:`outcome_sentence`); a search with the trial its answer rule picks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from analysis import contract, factorial, inference, probes, references
from analysis.contrasts import LONG_COLUMNS, is_paired
from analysis.meta import META, contrast_of
from analysis.report import Block
from analysis.search_document import search_blocks, search_key_number, search_verdict
from analysis.sections import (
    SEARCH_KIND,
    figures,
    messages,
    notice,
    provenance,
    read_meta,
    read_text_table,
    title,
)
from analysis.stats import run_classes_text
from analysis.tables import fmt
from analysis.verdicts import (
    delta_text,
    p_text,
    secondary_findings,
    study_verdict,
    unit_text,
    verdict_table,
    wide_table,
)

# The headline columns a README shows (the CSV keeps all of them).
README_HEADLINE = (
    "config_label",
    "n",
    contract.MODES,
    contract.PRECISION,
    contract.RECALL,
    contract.FD,
    contract.CONTRAST,
    contract.COLLAPSED,
    contract.NEVER_LEARNED,
)
# What each plot shows: the one home of the captions (report and README alike).
PLOT_CAPTIONS = {
    "modes_covered.png": "Digits covered at the end of training: runs as dots, the mean and its 95 % "
    "bootstrap interval as a diamond.",
    "quality_kl_fd_ndb.png": "KL of the class distribution to uniform, Fréchet distance and NDB per config.",
    "precision_recall.png": "Precision (sample fidelity) against recall (coverage of the data), per run and "
    "per config mean.",
    "training_curves.png": "Training curves per config (losses, D's outputs, then the digits covered and the "
    "FD at each eval point); the collapse onset of a run is marked by a dotted line and ▼.",
    "class_shares.png": "Share of each digit among each config's final samples (one bright cell: collapse).",
    "samples_final.png": "Final sample grid of each config's representative run, on the absolute grey scale.",
    "samples_final_stretched.png": "Final samples of a representative run per config, each image's contrast "
    "stretched to its own range as the post's imshow showed them (eval/contrast says how faint they are).",
    "stacked_modes_covered.png": "Stacked-MNIST modes covered of 1,000 at the end of training: runs as dots, "
    "the mean and its 95 % bootstrap interval as a diamond.",
    "stacked_kl_to_uniform.png": "Stacked-MNIST KL of the generated mode distribution to uniform over 1,000 "
    "modes (nats; 0 is uniform).",
}
HEADLINE_METHOD = (
    "mean over the completed seeds [95 % percentile bootstrap interval of the mean; none with one seed]; "
    "precision and recall over the runs whose recall is above 0 (recall 0: degenerate samples, whose "
    "precision says nothing; n counts every completed run); collapsed and never learned: fractions of the "
    "completed runs"
)
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
        spec = factorial.parse_target(meta["target"])
        word, sentence = factorial.factorial_verdict(*_factorial_tables(folder), spec)
        if longs and meta["contrasts"]:  # what the primary comparisons found, beside the target's answer
            long = pd.concat(longs.values(), ignore_index=True)
            beside = study_verdict(long, [contrast_of(c) for c in meta["contrasts"]])[1]
            sentence = f"{sentence} Beside it: {beside[0].lower()}{beside[1:]}"
        return word, sentence
    if not meta["contrasts"]:
        return "", outcome_sentence(_runs(folder))
    long = pd.concat(longs.values(), ignore_index=True) if longs else pd.DataFrame(columns=LONG_COLUMNS)
    return study_verdict(long, [contrast_of(c) for c in meta["contrasts"]])


def _factorial_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = Path(folder) / "tables"
    cells = pd.read_csv(tables / "cells.csv", keep_default_na=False, na_values=[""], dtype={"values": str})
    effects = pd.read_csv(tables / "effects.csv", keep_default_na=False, na_values=[""], dtype={"diffs": str})
    return cells, effects


def _factorial_blocks(folder: Path, meta: dict, figure_dir: str) -> list[Block]:
    spec = factorial.parse_target(meta["target"])
    cells, effects = _factorial_tables(folder)
    fig = contract.figure(spec.metric)
    shown = cells.assign(
        rescued=[
            f"{r['rescued']}/{r['n']} [{fmt(float(r['rescue_low']), 2)}, {fmt(float(r['rescue_high']), 2)}]"
            for _, r in cells.iterrows()
        ]
    ).drop(columns=["rescue_low", "rescue_high", *([] if spec.fixes else ["fixes"])])
    out = [
        Block("h2", "Cells"),
        Block(
            "p",
            f"Each cell's {fig.short} on every seed, their mean, and the seeds that reach the target "
            f"({spec.text()}) with the Wilson 95 % interval of that rate. CSV: "
            "[tables/cells.csv](tables/cells.csv).",
        ),
        Block("table", table=shown.rename(columns={"rescued": "reach the target"})),
    ]
    if "cells.png" in meta["figures"]:
        out.append(Block("image", text="cells", path=f"{figure_dir}/cells.png"))
    if effects.empty:
        return out
    out += [
        Block("h2", "Effects"),
        Block(
            "p",
            "Main effects and two-way interactions of the fixes on "
            f"{fig.short}: the mean over the runs whose coded product is +1 minus the mean over those where "
            "it is −1 (a main effect: with the fix minus without), tested as the [method](#method) says. "
            "CSV: [tables/effects.csv](tables/effects.csv).",
        ),
        Block(
            "table",
            table=pd.DataFrame(
                {
                    "effect": effects["effect"],
                    "seeds": effects["n_seeds"],
                    f"Δ {fig.short}": [delta_text(factorial._as_row(r)) for _, r in effects.iterrows()],
                    "p (Holm)": [
                        f"{p_text(float(r['p_value']))} ({p_text(float(r['p_holm']))})"
                        for _, r in effects.iterrows()
                    ],
                    "verdict": effects["verdict"],
                }
            ),
        ),
    ]
    if "effects.png" in meta["figures"]:
        out.append(Block("image", text="effects", path=f"{figure_dir}/effects.png"))
    return out


def _reals_blocks(folder: Path) -> list[Block]:
    """What D does with the reals, where the study logged D's output on 0–255 reals scaled to [0, 1]."""
    path = Path(folder) / "tables" / "reals.csv"
    if not path.is_file():
        return []
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    shown = pd.DataFrame(
        {
            "reals": table["arm"],
            "runs": table["runs"],
            "D(x) > 0.99 first at (median; range)": [
                f"{probes.iteration(r['separates_median'])} ({probes.iteration(r['separates_min'])}–"
                f"{probes.iteration(r['separates_max'])}); {int(r['separated'])}/{int(r['runs'])} runs"
                if int(r["separated"])
                else f"never; 0/{int(r['runs'])} runs"
                for _, r in table.iterrows()
            ],
            **{
                title: [probes.interval(r, name) for _, r in table.iterrows()]
                for name, title in (
                    ("margin", "logit margin"),
                    ("d_real", "D(x)"),
                    ("d_unit", "D(x / 255)"),
                    ("d_fake", "D(G(z))"),
                    ("unit_minus_fake", "D(x / 255) − D(G(z))"),
                )
            },
        }
    )
    return [
        Block("h2", "What D does with the reals"),
        Block("p", probes.reals_sentence(table)),
        Block(
            "p",
            "Per arm: final values (the last logging window's means), mean [bootstrap 95 % interval over the "
            "runs]; D(x / 255) is D's output on the same real batch rescaled to [0, 1], logged only where "
            "reals are fed in 0–255. CSV: [tables/reals.csv](tables/reals.csv).",
        ),
        Block("table", table=shown),
    ]


def _runs(folder: Path) -> pd.DataFrame:
    path = Path(folder) / "tables" / "runs.csv"
    return pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.is_file() else pd.DataFrame()


def outcome_sentence(runs: pd.DataFrame) -> str:
    """What the runs of a study without contrasts did, in one sentence: how many end on at most three
    digits, each config's final digits and dominant digit, how many never learned or collapsed."""
    column = contract.metric_column(contract.MODES)
    if runs.empty or column not in runs:
        return "No run has logged the digit figure yet."
    done = runs[runs["status"] == "FINISHED"]
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
    for flag, words in ((contract.NEVER_LEARNED, "never learned"), (contract.COLLAPSED, "collapsed")):
        if flag in done:
            hit = done[done[flag].astype(str).str.lower() == "true"]["config_label"].tolist()
            if hit:
                tail.append(f"{len(hit)} {words} ({', '.join(hit)})")
    end = f"; {'; '.join(tail)}" if tail else ""
    return (
        f"{few} of the {runs_text} end on at most 3 digits; digits covered at the end: "
        f"{'; '.join(parts)}{end}."
    )


def _facts(meta: dict, seeds: int, published: bool) -> list[str]:
    then = meta["publish_command"] if published else f"gansweep-analyze experiment={meta['study']}"
    facts = [
        f"Runs: {meta['runs']} in {meta['configs']} configs"
        + ("; one seed per config, so no interval anywhere." if seeds == 1 else "."),
        "Run outcomes: " + run_classes_text(meta["collapse_modes"]) + ".",
        f"Command: `{meta['command']}`, then `{then}`.",
        *provenance(meta),
    ]
    if meta["shared"]:
        facts.append(
            "Shared by every run: " + " ".join(f"`{k}={v}`" for k, v in meta["shared"].items()) + "."
        )
    return facts


def _headline_columns(meta: dict) -> list[str]:
    """The figures the contrasts name when they name any (with the outcome fractions), else
    :data:`README_HEADLINE`."""
    named = [m for c in meta["contrasts"] for m in c.get("metrics", ())]
    if not named:
        return list(README_HEADLINE)
    return ["config_label", "n", *dict.fromkeys(named), contract.COLLAPSED, contract.NEVER_LEARNED]


def study_blocks(
    folder: Path, *, figure_dir: str, published: bool, extras: Mapping[str, str] = ()
) -> list[Block]:
    """The document of a grid study folder (``meta.json`` + ``tables/``), figures under ``figure_dir``.
    ``published``: end with the generated-file notice; ``extras`` (report only): ``parent`` (the parent
    run the report is uploaded to)."""
    folder = Path(folder)
    meta = read_meta(folder)
    if meta.get("kind") == SEARCH_KIND:
        return search_blocks(folder, meta)
    extras = dict(extras)
    longs = contrast_tables(folder, meta)
    contrasts = [contrast_of(c) for c in meta["contrasts"]]
    tables = folder / "tables"
    headline = read_text_table(tables / "headline.csv") if (tables / "headline.csv").is_file() else None
    seeds = (
        int(pd.to_numeric(headline["n"], errors="coerce").max())
        if headline is not None and len(headline)
        else 0
    )
    word, sentence = verdict(folder, meta)
    out = [title(meta), Block("p", f"**{word}** {sentence}" if word else sentence)]
    if longs:
        long = pd.concat(longs.values(), ignore_index=True)
        table = verdict_table(long)
        if not table.empty:
            out.append(Block("table", table=table))
        named = ", ".join(f"“{c.name}”" for c in contrasts if c.primary)
        rule = (
            f"Decision rule: the target (the [cells](#cells)), as {factorial.rule_text(meta['target'])}; the "
            f"primary comparisons (the first figure of {named}) stand beside it: a fix whose drop is a "
            "*difference* is needed, one whose drop is not is not shown needed (never “not needed”)."
            if meta.get("target")
            else "Decision rule: the primary comparisons (the first figure of "
            + named
            + "); **Yes.** when one is a *difference* in the expected direction, **No.** when every one is "
            "*equivalent* (or differs against the expectation), else **Not decided.**"
        )
        hypothesis = f"Hypothesis: {meta['hypothesis']} " if meta.get("hypothesis") else ""
        out.append(Block("p", hypothesis + rule + " Method: [below](#method)."))
    out.append(Block("list", items=tuple(_facts(meta, seeds, published))))
    if meta.get("target"):
        out += _factorial_blocks(folder, meta, figure_dir)
    out += _reals_blocks(folder)
    for i, contrast in enumerate(contrasts, start=1):
        if i not in longs:
            continue
        out.append(Block("h2", f"Contrast: {contrast.name}"))
        note = (
            "Each cell: Δ [95 % interval] · verdict; the runs columns: digits each seed covers at the end. "
            "Precision and recall compare only pairs where both runs have recall > 0 (recall 0: degenerate "
            f"samples). Every figure's minimum meaningful difference: `gansweep/figures.py`. CSV (with p, "
            f"Holm's p and every pair's Δ): [tables/contrast_{i}.csv](tables/contrast_{i}.csv)."
        )
        out += [Block("p", note), Block("table", table=wide_table(longs[i]))]
        figure = f"contrast_{i}.png"
        if figure in meta["figures"]:
            out.append(Block("image", text=contrast.name, path=f"{figure_dir}/{figure}"))
    if longs:
        others = secondary_findings(pd.concat(longs.values(), ignore_index=True))
        if others:
            out += [Block("h2", "Secondary comparisons"), Block("list", items=tuple(others))]
    if headline is not None:
        out.append(Block("h2", "Final figures per config"))
        out.append(
            Block(
                "p",
                f"{HEADLINE_METHOD}. CSV: [tables/headline.csv](tables/headline.csv); every figure: "
                "[tables/summary.csv](tables/summary.csv); per run: [tables/runs.csv](tables/runs.csv).",
            )
        )
        columns = [c for c in _headline_columns(meta) if c in headline.columns]
        names = {c: contract.short_name(c) for c in columns if c.startswith(contract.EVAL_PREFIX)}
        out.append(
            Block("table", table=headline[columns].rename(columns={**names, "config_label": "config"}))
        )
        if meta.get("references"):
            out.append(Block("h2", "Beside the published figures"))
            out.append(
                Block(
                    "p",
                    "The papers' figures as published (from the study file's report.references), then this "
                    "study's configs that log the same figures.",
                )
            )
            out.append(Block("table", table=references.table(meta["references"], headline)))
            if meta.get("references_note"):
                out.append(Block("p", meta["references_note"]))
    if (tables / "status.csv").is_file():
        out += [
            Block("h2", "Runs per config by outcome"),
            Block("table", table=read_text_table(tables / "status.csv")),
        ]
    out += figures(meta, PLOT_CAPTIONS, figure_dir)
    methods = []
    if longs:
        pairings = pd.concat(longs.values(), ignore_index=True).get("paired", pd.Series([True]))
        methods.append(inference.method([is_paired(v) for v in pairings]))
    if meta.get("target"):
        has_effects = not _factorial_tables(folder)[1].empty
        methods.append(factorial.METHOD if has_effects else factorial.CELLS_METHOD)
    if methods:
        out += [Block("h2", "Method"), *(Block("p", text) for text in methods)]
    if extras.get("parent"):
        out.append(
            Block(
                "p",
                f"Most recent parent run: {extras['parent']}; this report is also logged there under "
                f"{contract.REPORT_ARTIFACT_PATH}/.",
            )
        )
    out += messages(meta)
    if published:
        out.append(notice("the MLflow store"))
    return out


# ---- the project README's findings ------------------------------------------------------------------------


def key_number(folder: Path, meta: dict) -> str:
    """The number a study's verdict rests on: the primary comparison it names (or its largest), as
    "Δ digits −8.4 [−8.9, −7.8] (30 pairs)"; a target study's cell closest to its target, by seed; a
    search's picked trial's objective."""
    if meta.get("kind") == SEARCH_KIND:
        return search_key_number(folder, meta)
    if meta.get("target"):
        spec = factorial.parse_target(meta["target"])
        cells, _ = _factorial_tables(folder)
        if cells.empty:
            return "–"
        best = cells.sort_values(["rescued", "mean"], ascending=False, kind="stable").iloc[0]
        where = "" if len(cells) == 1 else f"{best['cell']}: "
        return (
            f"{where}{contract.figure(spec.metric).short} {str(best['values']).replace(',', ', ')} "
            f"({int(best['rescued'])}/{int(best['n'])} seeds reach {spec.text()})"
        )
    longs = contrast_tables(folder, meta)
    if not longs:
        return "–"
    long = pd.concat(longs.values(), ignore_index=True)
    primary = long[long["family"] == "primary"]
    if primary.empty:
        return "–"
    hits = primary[primary["verdict"] == inference.DIFFERENCE]
    pick = hits if len(hits) else primary
    sizes = pick["mean_diff"].astype(float).abs().fillna(-1)
    r = pick.loc[sizes.idxmax()]
    where = "" if r["group"] in ("all runs", "pooled") else f" ({r['group']})"
    level = f"{r['level']} − {r['baseline']}{where}: "
    fig = contract.figure(str(r["metric"]))
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
