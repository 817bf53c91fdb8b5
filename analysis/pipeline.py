"""Regenerate every table, plot and the report of one study from the MLflow store, then upload them to the
study's most recent parent run. Missing data never raises: it becomes a message in the (partial) report."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException

from analysis import contract, plots, references
from analysis.artifacts import fetch_samples, upload_report
from analysis.contrasts import ReportSpec, contrast_rows, load_spec, summary_sentence, wide_markdown
from analysis.labels import relabel
from analysis.load import Study, load_study
from analysis.report import Block, write_report
from analysis.stats import CONFIDENCE, add_collapse, status_counts, summarize
from analysis.tables import headline_table, run_table, summary_markdown, write_table
from gansweep import paths

# Everything regenerate() writes lives under these names in the output folder (removed before rewriting).
OUTPUTS = ("plots", "tables", "report.md", "report.html")
PLOT_FILES = {
    "modes": "modes_covered.png",
    "quality": "quality_kl_fd_ndb.png",
    "precision_recall": "precision_recall.png",
    "curves": "training_curves.png",
    "class_shares": "class_shares.png",
    "samples": "samples_final.png",
    "samples_stretched": "samples_final_stretched.png",
    "stacked": "stacked_modes_covered.png",
    "stacked_kl": "stacked_kl_to_uniform.png",
}


@dataclass
class Result:
    """What a regeneration produced: files written, messages for the user, where the report was uploaded."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    uploaded_to: str | None = None
    spec: ReportSpec = field(default_factory=ReportSpec)
    shared: dict[str, str] = field(default_factory=dict)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    contrast_files: list[tuple[str, pd.DataFrame, Path | None]] = field(default_factory=list)
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    answer: list[str] = field(default_factory=list)


def _clear(out_dir: Path) -> None:
    for name in OUTPUTS:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _run_messages(runs: pd.DataFrame) -> list[str]:
    """One line per run that is not a plain FINISHED run with metrics, plus repeated (config, seed) pairs."""
    messages: list[str] = []
    metric_cols = [c for c in runs.columns if c.startswith("metrics.")]
    no_metrics = runs[metric_cols].isna().all(axis=1) if metric_cols else pd.Series(True, index=runs.index)
    for index, r in runs.iterrows():
        seed = r["seed"] if pd.notna(r["seed"]) else "?"
        name = f"{r['config_label']} seed {seed} ({r['run_id'][:8]})"
        why = f": {r['error']}" if r["error"] else ""
        if r["diverged"]:
            kept = "its final metrics are kept" if r["status"] == "FINISHED" else "left out of the statistics"
            messages.append(f"run {name} diverged (NaN/Inf, status {r['status']}){why} — counted, {kept}")
        elif r["status"] in ("FAILED", "KILLED"):
            messages.append(f"run {name} is {r['status']}{why} — counted, left out of the statistics")
        elif r["status"] != "FINISHED":
            messages.append(f"run {name} is still {r['status']} — counted, left out of the statistics")
        if no_metrics.loc[index]:
            messages.append(f"run {name} logged no metrics")
    finished = runs[runs["status"] == "FINISHED"]
    repeats = finished.groupby(["config_label", "seed"], sort=True).size()
    for (label, seed), count in repeats[repeats > 1].items():
        messages.append(
            f"{label} seed {seed} has {count} FINISHED runs (each force=true re-run adds one);"
            " all are averaged"
        )
    return messages


def _make_plots(
    study: Study,
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    status: pd.DataFrame,
    plot_dir: Path,
    collapse_modes: float,
    result: Result,
) -> None:
    jobs = {
        "modes": lambda p: plots.plot_intervals(
            runs,
            summary,
            status,
            contract.MODES,
            p,
            title="Digits covered per config (of 10; mean ± 95 % CI)",
            xlabel="eval/modes_covered at the end of training",
            xlim=(-0.3, contract.N_DIGITS + 0.3),
        ),
        "quality": lambda p: plots.plot_quality(runs, summary, status, p),
        "precision_recall": lambda p: plots.plot_precision_recall(runs, summary, p),
        "curves": lambda p: plots.plot_curves(runs, study.history, collapse_modes, p),
        "class_shares": lambda p: plots.plot_class_shares(runs, p),
        "samples": lambda p: _samples_plot(study, runs, p, result, contract.SAMPLES_ARTIFACT),
        "samples_stretched": lambda p: _samples_plot(
            study, runs, p, result, contract.STRETCHED_SAMPLES_ARTIFACT
        ),
        "stacked": lambda p: plots.plot_intervals(
            runs,
            summary,
            status,
            contract.STACKED_MODES,
            p,
            title="Stacked-MNIST modes covered per config (of 1000; mean ± 95 % CI)",
            xlabel="eval/stacked_modes_covered at the end of training",
            xlim=(0, contract.N_STACKED_MODES),
        ),
        "stacked_kl": lambda p: plots.plot_intervals(
            runs,
            summary,
            status,
            contract.STACKED_KL,
            p,
            title="Stacked-MNIST KL to uniform over 1000 modes per config (nats; mean ± 95 % CI)",
            xlabel="eval/stacked_kl_to_uniform at the end of training",
        ),
    }
    for name, job in jobs.items():
        try:
            result.plots[name] = job(plot_dir / PLOT_FILES[name])
        except plots.NoDataError as err:
            result.messages.append(f"plot {PLOT_FILES[name]} skipped: {err}")


def _samples_plot(study: Study, runs: pd.DataFrame, path: Path, result: Result, artifact: str) -> Path:
    images, messages = fetch_samples(study.tracking_uri, runs, artifact)
    result.messages.extend(messages)
    return plots.plot_samples(images, sorted(runs["config_label"].unique()), path, artifact)


def _blocks(
    study: Study,
    runs: pd.DataFrame,
    status: pd.DataFrame,
    headline: pd.DataFrame,
    result: Result,
    collapse_modes: float,
    parent: str | None,
) -> list[Block]:
    n_configs = runs["config_label"].nunique() if not runs.empty else 0
    blocks = [
        Block("h1", f"Study {study.name}: mode collapse across configs and seeds"),
        Block(
            "p",
            f"{len(runs)} runs in {n_configs} configs, read from MLflow experiment {study.name} "
            f"(id {study.experiment_id}). Regenerate with: gansweep-analyze experiment={study.name}",
        ),
    ]
    blocks += answer_blocks(result, collapse_modes)
    if parent:
        blocks.append(
            Block(
                "p",
                f"Most recent parent run: {parent}; this report is also logged there under "
                f"{contract.REPORT_ARTIFACT_PATH}/.",
            )
        )
    if result.messages:
        blocks += [Block("h2", "Messages"), Block("list", items=tuple(result.messages))]
    blocks += [Block("h2", "Runs per config by outcome"), Block("table", table=status)]
    if not headline.empty and len(headline.columns) > 1:
        blocks += [
            Block("h2", "Final metrics per config"),
            Block(
                "p",
                f"Mean [{CONFIDENCE:.0%} CI] (n = completed runs with a finite value): {HEADLINE_METHOD}. "
                "Full table: tables/summary.csv; per run: tables/runs.csv.",
            ),
            Block("table", table=headline),
        ]
    if result.spec.references:
        refs = references.to_meta(result.spec.references)
        blocks += [
            Block("h2", "Beside the published figures"),
            Block(
                "table",
                table=references.table(refs, headline.astype(str) if not headline.empty else headline),
            ),
        ]
        if result.spec.references_note:
            blocks.append(Block("p", result.spec.references_note))
    captions = {
        "modes": "Digits covered at the end of training (dots: runs, diamond: mean with 95 % CI).",
        "quality": "KL of the class distribution to uniform, Fréchet distance and NDB per config.",
        "precision_recall": "Precision (sample fidelity) against recall (coverage of the data), per run and "
        "per config mean.",
        "curves": "Training curves per config; the collapse onset of a run is marked by a dotted line and ▼.",
        "class_shares": "Share of each digit among a config's final samples (collapse: one bright cell).",
        "samples": "Final sample grid of each config's representative run, on the absolute grey scale.",
        "samples_stretched": "The same samples with each image's contrast stretched to its own min-max, as "
        "matplotlib's imshow shows them and as the post saw them: a digit drawn in the 5th decimal of a grey "
        "square appears here (eval/contrast says how faint it really is).",
        "stacked": "Stacked-MNIST modes covered (of 1000).",
        "stacked_kl": "Stacked-MNIST KL of the mode distribution to uniform over 1000 modes (nats).",
    }
    if result.plots:
        blocks.append(Block("h2", "Plots"))
        for name, path in result.plots.items():
            if name not in captions:  # the contrast figures stand beside their tables above
                continue
            blocks += [Block("p", captions[name]), Block("image", text=name, path=f"plots/{path.name}")]
    blocks += [
        Block("h2", "How to read this report"),
        Block(
            "list",
            items=(
                "Statistics use the completed runs of a config: status FINISHED (trained to the end). "
                "Diverged runs (tag gansweep.diverged; the runner stops them, status FAILED), failed, "
                "killed and running runs are counted in the outcome table (outcomes add up to runs) but "
                "stopped early, so their last values are not averaged.",
                "95 % CI: mean ± t(0.975, n−1) · s/√n with the sample standard deviation s, clipped to the "
                "figure's range (digits 0–10, shares and precision/recall 0–1, distances ≥ 0); the collapsed "
                f"fraction has a Wilson score interval; none with fewer than {contract.MIN_N_FOR_CI} seeds "
                "(the report then says 'no CI').",
                f"Collapse onset: the first eval step from which eval/modes_covered stays ≤ "
                f"{collapse_modes:g} up to the last eval point (NaN/Inf counts as collapsed); "
                "a run whose last eval covers more never collapsed. "
                "collapsed = fraction of completed runs with an onset.",
                "Representative run of a config: a completed, non-diverged run whose final modes_covered is "
                "closest to the config median (ties: lowest seed).",
            ),
        ),
    ]
    return blocks


HEADLINE_METHOD = (
    "Student-t 95 % interval of the mean over seeds, clipped to each figure's range (contract.RANGES: "
    f"digits [0, 10], precision, recall, NDB and contrast [0, 1], distances ≥ 0); collapsed: "
    f"Wilson {CONFIDENCE:.0%} score interval of the proportion; no interval below n = {contract.MIN_N_FOR_CI}"
)
CONTRAST_METHOD = (
    "Δ = level − baseline on the same seeds (completed runs of both), mean and Student-t 95 % interval of "
    "the paired differences, clipped to the largest difference the figure's range allows; no interval "
    f"below {contract.MIN_N_FOR_CI} pairs. Verdict from the first figure: a difference when its interval "
    "excludes 0, else 'no difference detected' (no correction for the number of comparisons); after 'also', "
    "the other figures whose interval excludes 0."
)


def answer_blocks(result: Result, collapse_modes: float) -> list[Block]:
    """The study's question, what its runs share, the collapse definition and the contrast tables."""
    blocks: list[Block] = []
    if result.spec.question:
        blocks.append(Block("p", f"Question: {result.spec.question}"))
    if result.answer:
        blocks += [Block("h2", "Answer"), Block("list", items=tuple(result.answer))]
    if result.shared:
        shared = " ".join(f"{k}={v}" for k, v in result.shared.items())
        blocks.append(Block("p", f"Every run of this study shares: {shared}. Labels name what varies."))
    blocks.append(
        Block(
            "p",
            f"Collapse: a run has collapsed when eval/modes_covered stays ≤ {collapse_modes:g} digits from "
            "some eval point to its last one (collapse_modes; onset marked on the training curves).",
        )
    )
    for name, table, plot in result.contrast_files:
        blocks += [Block("h2", f"Contrast: {name}"), Block("p", CONTRAST_METHOD), Block("table", table=table)]
        if plot is not None:
            blocks.append(Block("image", text=name, path=f"plots/{plot.name}"))
    return blocks


def _contrasts(runs: pd.DataFrame, varying: tuple[str, ...], out_dir: Path, result: Result) -> list[Path]:
    files: list[Path] = []
    longs = []
    for i, contrast in enumerate(result.spec.contrasts, start=1):
        long, messages = contrast_rows(runs, varying, contrast)
        result.messages.extend(messages)
        if long.empty:
            continue
        longs.append(long)
        wide = wide_markdown(long)
        name = f"contrast_{i}"
        files += write_table(long, out_dir / "tables", name, markdown=wide)
        plot = None
        try:
            plot = plots.plot_contrast(long, out_dir / "plots" / f"{name}.png", title=contrast.name)
            result.plots[f"contrast_{i}"] = plot
        except plots.NoDataError as err:
            result.messages.append(f"plot {name}.png skipped: {err}")
        result.contrast_files.append((contrast.name, wide, plot))
        result.answer.append(summary_sentence(long, contrast))
    result.contrasts = pd.concat(longs, ignore_index=True) if longs else pd.DataFrame()
    return files


def regenerate(
    tracking_uri: str,
    study_name: str,
    out_dir: Path,
    *,
    collapse_modes: float = contract.DEFAULT_COLLAPSE_MODES,
    upload: bool = True,
    spec: ReportSpec | None = None,
) -> Result:
    """Read study ``study_name`` and (re)write its tables, plots and report under ``out_dir``; upload them to
    the most recent parent run when ``upload``. Raises :class:`analysis.load.StudyNotFoundError` for an
    unknown study; everything else that is missing becomes a message. ``spec``: the study's question and
    contrasts (default: the ``report:`` block of ``experiments/<study>.yaml``)."""
    study = load_study(tracking_uri, study_name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    result = Result(out_dir=out_dir)
    result.spec = spec if spec is not None else load_spec(study_name, paths.project_root())
    labelled = relabel(study.runs)
    result.shared = labelled.shared
    runs = add_collapse(labelled.runs, study.history, collapse_modes)
    if runs.empty:
        result.messages.append(f"study {study_name} has no runs (only parent runs, or nothing logged yet)")
    result.messages.extend(_run_messages(runs))
    metric_cols = sorted(c for c in runs.columns if c.startswith("metrics."))
    summary = summarize(runs, [*metric_cols, contract.COLLAPSED, contract.COLLAPSE_STEP])
    status = status_counts(runs)
    headline_cols = [contract.metric_column(k) for k in contract.HEADLINE] + [contract.COLLAPSED]
    headline = headline_table(summary, headline_cols)
    result.runs = runs
    result.files += _contrasts(runs, labelled.varying, out_dir, result)
    tables = out_dir / "tables"
    result.files += write_table(status, tables, "status")
    result.files += write_table(summary, tables, "summary", markdown=summary_markdown(summary))
    result.files += write_table(headline, tables, "headline")
    full_runs = run_table(runs, metric_cols)
    short_runs = run_table(runs, [c for c in headline_cols if c in runs]).drop(columns=["run_id"])
    result.files += write_table(full_runs, tables, "runs", markdown=short_runs)
    if not runs.empty:
        _make_plots(study, runs, summary, status, out_dir / "plots", collapse_modes, result)
    result.files += sorted(result.plots.values())
    parent = study.latest_parent()
    if upload and parent is None:
        result.messages.append("no parent run in this study: the report is not uploaded to MLflow")
    blocks = _blocks(study, runs, status, headline, result, collapse_modes, parent if upload else None)
    result.files += write_report(blocks, out_dir, f"Study {study_name}")
    if upload and parent is not None:
        try:
            upload_report(tracking_uri, parent, out_dir, [out_dir / name for name in OUTPUTS])
            result.uploaded_to = parent
        except (MlflowException, OSError) as err:
            result.messages.append(f"upload to parent run {parent} failed: {err}")
    return result
