"""Regenerate every table, plot and the report of one study from the MLflow store, then upload them to the
study's most recent parent run. Missing data never raises: it becomes a message in the (partial) report."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException

from analysis import catalog, imprint, probes
from analysis.artifacts import fetch_samples, upload_report
from analysis.comparison_plots import plot_cells, plot_contrast
from analysis.config_plots import plot_class_shares, plot_intervals, plot_precision_recall, plot_quality
from analysis.contrast_table import decide
from analysis.contrasts import contrast_rows
from analysis.document import study_blocks
from analysis.factorial_cells import cell_table, run_values
from analysis.factorial_effects import NOT_FACTORIAL, effect_table
from analysis.labels import relabel
from analysis.load import Study, load_study
from analysis.meta import META, build_meta
from analysis.plot_style import NoDataError
from analysis.report import write_report
from analysis.report_spec import ReportSpec, Target, load_spec
from analysis.run_plots import plot_curves, plot_samples
from analysis.stats import add_collapse, add_probes, completed, status_counts, summarize
from analysis.tables import headline_table, run_table, summary_markdown, write_table
from analysis.target_curves import plot_target_curves
from analysis.verdicts import wide_table
from gansweep import paths
from gansweep.run import contract

# Everything regenerate() writes lives under these names in the output folder (removed before rewriting).
OUTPUTS = ("plots", "tables", "report.md", "report.html", META)
PLOT_FILES = {
    "modes": "modes_covered.png",
    "quality": "quality_kl_fd_ndb.png",
    "precision_recall": "precision_recall.png",
    "curves": "training_curves.png",
    "target_curves": "target_curves.png",
    "class_shares": "class_shares.png",
    "samples": contract.SAMPLES_ARTIFACT,  # a study's sample figures carry the name of the runs' grids
    "samples_stretched": contract.STRETCHED_SAMPLES_ARTIFACT,
    "stacked": "stacked_modes_covered.png",
    "stacked_kl": "stacked_kl_to_uniform.png",
}


@dataclass
class Regeneration:
    """What a regeneration produced: files written, messages for the user, where the report was uploaded."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    uploaded_to: str | None = None
    spec: ReportSpec = field(default_factory=ReportSpec)
    shared: dict[str, str] = field(default_factory=dict)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict = field(default_factory=dict)


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
            finished = r["status"] == contract.FINISHED
            kept = "its final metrics are kept" if finished else "left out of the statistics"
            messages.append(f"run {name} diverged (NaN/Inf, status {r['status']}){why} — counted, {kept}")
        elif r["status"] in (contract.FAILED, contract.KILLED):
            messages.append(f"run {name} is {r['status']}{why} — counted, left out of the statistics")
        elif r["status"] != contract.FINISHED:
            messages.append(f"run {name} is still {r['status']} — counted, left out of the statistics")
        if no_metrics.loc[index]:
            messages.append(f"run {name} logged no metrics")
    repeats = completed(runs).groupby(["config_label", "seed"], sort=True).size()
    for (label, seed), count in repeats[repeats > 1].items():
        messages.append(
            f"{label} seed {seed} has {count} FINISHED runs (each force=true re-run adds one);"
            " all are averaged"
        )
    return messages


# The plots a study's run table alone makes (no histories, no artifacts): --rederive remakes them too.
TABLE_PLOTS = ("modes", "quality", "precision_recall", "class_shares", "stacked", "stacked_kl")


def table_plot_jobs(runs: pd.DataFrame, summary: pd.DataFrame, status: pd.DataFrame) -> dict[str, object]:
    """The :data:`TABLE_PLOTS` as jobs (output path -> path), those of figures the study logs."""
    jobs = {
        "modes": lambda p: plot_intervals(
            runs,
            summary,
            status,
            contract.MODES,
            p,
            title="Digits covered per config (of 10; mean and 95 % bootstrap interval)",
            xlabel="eval/modes_covered at the end of training",
            xlim=(0.7, contract.N_DIGITS + 0.3),
        ),
        "quality": lambda p: plot_quality(runs, summary, status, p),
        "precision_recall": lambda p: plot_precision_recall(runs, summary, p),
        "class_shares": lambda p: plot_class_shares(runs, p),
        "stacked": lambda p: plot_intervals(
            runs,
            summary,
            status,
            contract.STACKED_MODES,
            p,
            title="Stacked-MNIST modes covered per config (of 1000; mean and 95 % bootstrap interval)",
            xlabel="eval/stacked_modes_covered at the end of training",
            xlim=(0, contract.N_STACKED_MODES),
        ),
        "stacked_kl": lambda p: plot_intervals(
            runs,
            summary,
            status,
            contract.STACKED_KL,
            p,
            title="Stacked-MNIST KL to uniform over 1000 modes (nats; mean and 95 % bootstrap interval)",
            xlabel="eval/stacked_kl_to_uniform at the end of training",
        ),
    }
    stacked = catalog.metric_column(contract.STACKED_MODES)
    if stacked not in runs or runs[stacked].isna().all():  # not this study's figures
        jobs = {k: v for k, v in jobs.items() if k not in ("stacked", "stacked_kl")}
    return jobs


def run_jobs(jobs: dict[str, object], plot_dir: Path, made: dict[str, Path], messages: list[str]) -> None:
    """Run each plot job into ``plot_dir``; a plot without data becomes a message."""
    for name, job in jobs.items():
        try:
            made[name] = job(plot_dir / PLOT_FILES[name])
        except NoDataError as err:
            messages.append(f"plot {PLOT_FILES[name]} skipped: {err}")


def _make_plots(
    study: Study,
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    status: pd.DataFrame,
    plot_dir: Path,
    collapse_modes: float,
    result: Regeneration,
) -> None:
    jobs = {
        **table_plot_jobs(runs, summary, status),
        "curves": lambda p: plot_curves(runs, study.history, collapse_modes, p),
        "samples": lambda p: _samples_plot(study, runs, p, result, contract.SAMPLES_ARTIFACT),
        "samples_stretched": lambda p: _samples_plot(
            study, runs, p, result, contract.STRETCHED_SAMPLES_ARTIFACT
        ),
    }
    target = result.spec.target
    if target is not None:
        jobs["target_curves"] = lambda p: plot_target_curves(runs, study.history, target, p)
    run_jobs(jobs, plot_dir, result.plots, result.messages)


def _samples_plot(study: Study, runs: pd.DataFrame, path: Path, result: Regeneration, artifact: str) -> Path:
    images, messages = fetch_samples(study.tracking_uri, runs, artifact)
    result.messages.extend(messages)
    return plot_samples(images, sorted(runs["config_label"].unique()), path, artifact)


@dataclass
class Derived:
    """What :func:`derive_tables` wrote and found."""

    files: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)  # every contrast's rows, decided together
    plots: dict[str, Path] = field(default_factory=dict)  # the contrast plots by name
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)


def quality_only(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with precision and recall blanked where recall is 0: such samples cover none of the data (a
    saturated blob scores precision 1), so neither figure says anything about their quality."""
    recall = catalog.metric_column(contract.RECALL)
    if recall not in runs:
        return runs
    out = runs.copy()
    degenerate = pd.to_numeric(out[recall], errors="coerce") == 0
    for key in (contract.PRECISION, contract.RECALL):
        column = catalog.metric_column(key)
        if column in out:
            out[column] = out[column].astype("float64").mask(degenerate)
    return out


def _factorial(
    runs: pd.DataFrame, spec: Target, out_dir: Path, out: Derived, *, contrasts: bool = False
) -> None:
    """The cell table of a target study, and for a factorial the effect table and plot; ``contrasts``:
    whether the study also compares its cells in contrasts (said where no effects are estimated)."""
    cells = cell_table(runs, spec)
    effects = effect_table(runs, spec)
    out.files += write_table(cells, out_dir / "tables", "cells")
    out.files += write_table(effects, out_dir / "tables", "effects")
    if len(cells) > 1:
        out.plots["cells"] = plot_cells(
            run_values(runs, spec),
            list(cells["cell"]),
            out_dir / "plots" / "cells.png",
            metric=spec.metric,
            bound=spec.conditions[0].bound,
            target=spec.conditions[0].text(),
        )
    if effects.empty:
        if spec.fixes and not cells.empty:
            out.messages.append(NOT_FACTORIAL + ("; the contrasts compare them" if contrasts else ""))
        elif spec.fixes:
            out.messages.append("the factorial has no completed run to estimate effects from")
        return
    as_long = effects.rename(columns={"effect": "level", "n_seeds": "n_pairs"}).assign(
        group="all runs", baseline="without", metric=spec.metric
    )
    out.plots["effects"] = plot_contrast(
        as_long,
        out_dir / "plots" / "effects.png",
        title="Main effects and two-way interactions of the fixes",
        compared="mean with − mean without over all runs (±1 coding; 95 % t interval from the pooled "
        "within-cell error)",
    )


def derive_tables(runs: pd.DataFrame, varying: tuple[str, ...], spec: ReportSpec, out_dir: Path) -> Derived:
    """The tables a study's answer rests on, from its runs (with the outcome columns of
    :func:`analysis.stats.add_collapse`): one contrast table per contrast of ``spec`` (decided together:
    Holm across the study) with its plot, the per-config summary and headline."""
    out = Derived()
    files, messages, made = out.files, out.messages, out.plots
    parts = []
    for i, contrast in enumerate(spec.contrasts, start=1):
        long, said = contrast_rows(runs, varying, contrast)
        messages.extend(said)
        if not long.empty:
            parts.append(long.assign(_index=i))
    decided = decide(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()
    if parts:
        index = pd.concat(parts, ignore_index=True)["_index"]
        for i, contrast in enumerate(spec.contrasts, start=1):
            long = decided[(index == i).to_numpy()].reset_index(drop=True)
            if long.empty:
                continue
            name = f"contrast_{i}"
            files += write_table(long, out_dir / "tables", name, markdown=wide_table(long))
            try:
                made[name] = plot_contrast(long, out_dir / "plots" / f"{name}.png", title=contrast.name)
            except NoDataError as err:
                messages.append(f"plot {name}.png skipped: {err}")
    if spec.target is not None:
        _factorial(runs, spec.target, out_dir, out, contrasts=bool(spec.contrasts))
    reals = probes.reals_table(runs)
    if not reals.empty:
        files += write_table(reals, out_dir / "tables", "reals")
    imprints = imprint.imprint_table(runs)
    if not imprints.empty:
        files += write_table(imprints, out_dir / "tables", "imprint")
        made["imprint"] = imprint.plot_imprint(imprints, out_dir / "plots" / "imprint.png")
    metric_cols = sorted(c for c in runs.columns if c.startswith("metrics."))
    flags = [c for c in (catalog.COLLAPSED, catalog.NEVER_LEARNED, catalog.COLLAPSE_STEP) if c in runs]
    flags += [c for c in (catalog.D_SEPARATES_STEP, catalog.LOGIT_MARGIN) if c in runs]
    summary = summarize(quality_only(runs), [*metric_cols, *flags])
    headline_cols = [catalog.metric_column(k) for k in catalog.HEADLINE] + flags[:2]
    tables = out_dir / "tables"
    files += write_table(summary, tables, "summary", markdown=summary_markdown(summary))
    files += write_table(headline_table(summary, headline_cols), tables, "headline")
    out.contrasts, out.summary = decided, summary
    return out


def _run_tables(runs: pd.DataFrame, tables: Path) -> list[Path]:
    """The runs per config by outcome (``status``) and per run (``runs``: every metric in the CSV, the
    headline figures in the Markdown)."""
    files = write_table(status_counts(runs), tables, "status")
    metric_cols = sorted(c for c in runs.columns if c.startswith("metrics."))
    headline_cols = [catalog.metric_column(k) for k in catalog.HEADLINE]
    full_runs = run_table(runs, metric_cols)
    short_runs = run_table(runs, [c for c in headline_cols if c in runs]).drop(columns=["run_id"])
    return files + write_table(full_runs, tables, "runs", markdown=short_runs)


def _write_meta(result: Regeneration, study_name: str, collapse_modes: float) -> None:
    """``result.meta`` from the study and the figures made, written to ``meta.json``."""
    result.meta = build_meta(
        study_name,
        runs=result.runs,
        spec=result.spec,
        shared=result.shared,
        messages=result.messages,
        collapse_modes=collapse_modes,
    )
    result.meta["figures"] = sorted(p.name for p in result.plots.values())
    path = result.out_dir / META
    path.write_text(json.dumps(result.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def regenerate(
    tracking_uri: str,
    study_name: str,
    out_dir: Path,
    *,
    collapse_modes: float = catalog.DEFAULT_COLLAPSE_MODES,
    upload: bool = True,
    spec: ReportSpec | None = None,
) -> Regeneration:
    """Read study ``study_name`` and (re)write its tables, plots, ``meta.json`` and report under
    ``out_dir``; upload them to the most recent parent run when ``upload``. Raises
    :class:`analysis.load.StudyNotFoundError` for an unknown study; everything else that is missing becomes
    a message. ``spec``: the study's question and contrasts (default: the ``report:`` block of
    ``experiments/<study>.yaml``)."""
    study = load_study(tracking_uri, study_name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear(out_dir)
    result = Regeneration(out_dir=out_dir)
    result.spec = spec if spec is not None else load_spec(study_name, paths.project_root())
    labelled = relabel(study.runs)
    result.shared = labelled.shared
    runs = add_probes(add_collapse(labelled.runs, study.history, collapse_modes), study.history)
    if runs.empty:
        result.messages.append(f"study {study_name} has no runs (only parent runs, or nothing logged yet)")
    result.messages.extend(_run_messages(runs))
    result.runs = runs
    derived = derive_tables(runs, labelled.varying, result.spec, out_dir)
    result.files += derived.files
    result.messages.extend(derived.messages)
    result.plots.update(derived.plots)
    result.contrasts = derived.contrasts
    result.files += _run_tables(runs, out_dir / "tables")
    if not runs.empty:
        _make_plots(
            study, runs, derived.summary, status_counts(runs), out_dir / "plots", collapse_modes, result
        )
    result.files += sorted(result.plots.values())
    parent = study.latest_parent()
    if upload and parent is None:
        result.messages.append("no parent run in this study: the report is not uploaded to MLflow")
    _write_meta(result, study_name, collapse_modes)
    blocks = study_blocks(
        out_dir, figure_dir="plots", published=False, extras={"parent": parent} if upload and parent else {}
    )
    result.files += write_report(blocks, out_dir, f"Study {study_name}")
    if upload and parent is not None:
        try:
            upload_report(tracking_uri, parent, out_dir, [out_dir / name for name in OUTPUTS])
            result.uploaded_to = parent
        except (MlflowException, OSError) as err:
            result.messages.append(f"upload to parent run {parent} failed: {err}")
    return result
