"""The one document model of a study: its ``meta.json`` and ``tables/*.csv`` turned into report blocks
(:class:`analysis.report.Block`), which :mod:`analysis.report` renders to Markdown (``report.md``, the
published ``README.md``) and HTML (``report.html``). The regenerated report and the published README are the
same document: the report adds the parent run and a reading guide, the README the generated-file notice.

A grid study opens with its verdict (**Yes.** / **No.** / **Not decided.**, from
:func:`analysis.findings.verdict`) and the primary comparisons; a study without contrasts opens with what its
runs did (:func:`analysis.findings.outcome_sentence`); a search with the trial its answer rule picks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from analysis import catalog, imprint, probes, references, verdict_classes
from analysis.contrast_table import is_paired
from analysis.factorial_cells import CELLS_METHOD, cell_fixes
from analysis.factorial_effects import method_text
from analysis.findings import contrast_tables, factorial_tables, verdict
from analysis.meta import contrast_of
from analysis.report import Block
from analysis.report_spec import Contrast, parse_target
from analysis.search_document import search_blocks
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
from analysis.target_verdict import effect_row, rule_text
from analysis.verdicts import delta_text, p_text, secondary_findings, verdict_table, wide_table
from gansweep.run import contract

# The headline columns a README shows (the CSV keeps all of them).
README_HEADLINE = (
    "config_label",
    "n",
    contract.MODES,
    contract.PRECISION,
    contract.RECALL,
    contract.FD,
    contract.CONTRAST,
    catalog.COLLAPSED,
    catalog.NEVER_LEARNED,
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
    "target_curves.png": "The target's figures at each eval point, per config (thin: runs, thick: their "
    "mean; dashed: the target's bound): from which iteration a config meets the bar, and whether its curve "
    "still moved at the end of the budget.",
    "class_shares.png": "Share of each digit among each config's final samples (one bright cell: collapse).",
    contract.SAMPLES_ARTIFACT: "Final sample grid of each config's representative run, on the absolute grey "
    "scale.",
    contract.STRETCHED_SAMPLES_ARTIFACT: "Final samples of a representative run per config, each image's "
    "contrast stretched to its own range as the post's imshow showed them (eval/contrast says how faint they "
    "are).",
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


def _factorial_blocks(folder: Path, meta: dict, figure_dir: str) -> list[Block]:
    spec = parse_target(meta["target"])
    cells, effects = factorial_tables(folder)
    fig = catalog.figure(spec.metric)
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
                    f"Δ {fig.short}": [delta_text(effect_row(r)) for _, r in effects.iterrows()],
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
    return ["config_label", "n", *dict.fromkeys(named), catalog.COLLAPSED, catalog.NEVER_LEARNED]


def _answer_blocks(meta: dict, word: str, sentence: str, longs: dict[int, pd.DataFrame]) -> list[Block]:
    """The title, the verdict and, with contrasts, the primary comparisons' table and the decision rule."""
    out = [title(meta), Block("p", f"**{word}** {sentence}" if word else sentence)]
    if not longs:
        return out
    long = pd.concat(longs.values(), ignore_index=True)
    table = verdict_table(long)
    if not table.empty:
        out.append(Block("table", table=table))
    named = ", ".join(f"“{c.name}”" for c in (contrast_of(c) for c in meta["contrasts"]) if c.primary)
    rule = (
        f"Decision rule: the target (the [cells](#cells)), as {rule_text(meta['target'])}; the "
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
    return out


def _contrast_blocks(
    meta: dict, longs: dict[int, pd.DataFrame], contrasts: list[Contrast], figure_dir: str
) -> list[Block]:
    """A section per contrast (its wide table and figure), then the secondary comparisons that differ."""
    out = []
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
    return out


def _headline_blocks(meta: dict, headline: pd.DataFrame) -> list[Block]:
    """The final figures per config and, where the study file lists them, the published figures beside."""
    out = [
        Block("h2", "Final figures per config"),
        Block(
            "p",
            f"{HEADLINE_METHOD}. CSV: [tables/headline.csv](tables/headline.csv); every figure: "
            "[tables/summary.csv](tables/summary.csv); per run: [tables/runs.csv](tables/runs.csv).",
        ),
    ]
    columns = [c for c in _headline_columns(meta) if c in headline.columns]
    names = {c: catalog.short_name(c) for c in columns if c.startswith(contract.EVAL_PREFIX)}
    out.append(Block("table", table=headline[columns].rename(columns={**names, "config_label": "config"})))
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
    return out


def _method_blocks(folder: Path, meta: dict, longs: dict[int, pd.DataFrame]) -> list[Block]:
    """The method of the contrasts' tests and of the target's cells and effects, where the study has them."""
    methods = []
    if longs:
        pairings = pd.concat(longs.values(), ignore_index=True).get("paired", pd.Series([True]))
        methods.append(verdict_classes.method([is_paired(v) for v in pairings]))
    if meta.get("target"):
        cells, effects = factorial_tables(folder)
        design = [cell_fixes(str(c)) for c in cells["cell"]] if not effects.empty else []
        methods.append(method_text(design) if design else CELLS_METHOD)
    if methods:
        return [Block("h2", "Method"), *(Block("p", text) for text in methods)]
    return []


def _imprint_blocks(folder: Path, meta: Mapping, figure_dir: str) -> list[Block]:
    """The final samples' imprint of G's early iterations, where the study recorded them
    (``train.imprint_steps``: decay_imprint)."""
    path = Path(folder) / "tables" / "imprint.csv"
    if not path.is_file():
        return []
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    shown = table[table["runs"] > 0]
    wide = shown.assign(value=[imprint.interval_text(r) for _, r in shown.iterrows()]).pivot(
        index="config", columns="step", values="value"
    )
    wide.columns = [f"iteration {int(c):,}" for c in wide.columns]
    out = [
        Block("h2", "What the final samples keep of G's first iterations"),
        Block("p", imprint.imprint_sentence(table)),
        Block(
            "p",
            "Per config: the mean over its runs [bootstrap 95 % interval] of each final fixed-noise sample's "
            "Pearson correlation with the same sample at that iteration, both contrast-stretched as imshow "
            "shows them; – where a run's samples were flat. CSV: [tables/imprint.csv](tables/imprint.csv).",
        ),
        Block("table", table=wide.fillna("–").reset_index()),
    ]
    if "imprint.png" in meta.get("figures", ()):
        out.append(Block("image", text="imprint", path=f"{figure_dir}/imprint.png"))
    return out


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
    tables = folder / "tables"
    headline = read_text_table(tables / "headline.csv") if (tables / "headline.csv").is_file() else None
    seeds = (
        int(pd.to_numeric(headline["n"], errors="coerce").max())
        if headline is not None and len(headline)
        else 0
    )
    out = _answer_blocks(meta, *verdict(folder, meta), longs)
    out.append(Block("list", items=tuple(_facts(meta, seeds, published))))
    if meta.get("target"):
        out += _factorial_blocks(folder, meta, figure_dir)
    out += _reals_blocks(folder)
    out += _imprint_blocks(folder, meta, figure_dir)
    out += _contrast_blocks(meta, longs, [contrast_of(c) for c in meta["contrasts"]], figure_dir)
    if headline is not None:
        out += _headline_blocks(meta, headline)
    if (tables / "status.csv").is_file():
        out += [
            Block("h2", "Runs per config by outcome"),
            Block("table", table=read_text_table(tables / "status.csv")),
        ]
    out += figures(meta, PLOT_CAPTIONS, figure_dir)
    out += _method_blocks(folder, meta, longs)
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
