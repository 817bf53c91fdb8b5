"""Publish a study's answer into ``experiments/<study>/``: ``gansweep-analyze experiment=<study> --publish``.

Two steps, so that a published README cannot drift from its tables:

1. :func:`publish` regenerates the study from the MLflow store (:func:`analysis.pipeline.regenerate`, into a
   temporary folder), copies the tables (CSV and Markdown) and the figures that carry the answer, and writes
   ``meta.json`` (question, contrasts, command, commits, wall time, machine; all read from the store).
2. :func:`render_readme` writes ``README.md`` from ``meta.json`` and the CSV tables alone. The first
   paragraph is the answer: one sentence per contrast, derived from the contrast table's verdicts.

``tests/test_publish.py`` re-renders every committed ``experiments/*/README.md`` from its own files, and
publishes a synthetic store twice to check that the output is a function of the store.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from analysis import contract, references
from analysis.contrasts import LONG_COLUMNS, Contrast, summary_sentence, wide_markdown
from analysis.pipeline import CONTRAST_METHOD, HEADLINE_METHOD, Result, regenerate
from analysis.tables import markdown_table

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
    """First start to last end of the study's runs, the summed run time and the most runs at once."""
    times = runs.dropna(subset=["start_time", "end_time"])
    if times.empty:
        return {"wall_hours": None, "run_hours": None, "max_parallel": None}
    start, end = times["start_time"].astype("int64"), times["end_time"].astype("int64")
    events = sorted([(int(s), 1) for s in start] + [(int(e), -1) for e in end])
    level = peak = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return {
        "wall_hours": round((int(end.max()) - int(start.min())) / 3.6e6, 2),
        "run_hours": round(float((end - start).sum()) / 3.6e6, 2),
        "max_parallel": peak,
    }


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
) -> list[Path]:
    """Regenerate ``study`` and write its published folder ``target`` (replacing what is there). Returns the
    files written."""
    target = Path(target)
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
    wall = (
        f"{meta['wall_hours']} h wall clock ({meta['run_hours']} run-hours, at most {meta['max_parallel']} "
        "runs at once)"
        if meta["wall_hours"] is not None
        else "unknown"
    )
    facts = [
        f"Runs: {meta['runs']} in {meta['configs']} configs; collapse = eval/modes_covered ≤ "
        f"{meta['collapse_modes']:g} digits from some eval point to the last.",
        f"Command: `{meta['command']}`, then `{meta['publish_command']}`.",
        f"Code commit(s) of the runs: {', '.join(meta['commits']) or 'unknown'}.",
        f"Wall time: {wall}.",
        f"Machine: host {', '.join(meta['hosts']) or 'unknown'}; BLAS threads per run "
        f"{', '.join(meta['blas_threads']) or 'unknown'}; {'; '.join(meta['versions']) or ''}.",
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
    figures = [f for f in meta["figures"] if f in _CAPTIONS]
    if figures:
        out.append("## Figures\n")
        for figure in figures:
            out.append(f"{_CAPTIONS[figure]}\n\n![{figure}](figures/{figure})\n")
    if meta["messages"]:
        out.append("## Messages from the analysis\n")
        out.append("\n".join(f"- {m}" for m in meta["messages"]) + "\n")
    out.append(
        "*Generated by `gansweep-analyze --publish` from the MLflow store; do not edit by hand "
        "(tests/test_publish.py re-renders this file from meta.json and tables/).*\n"
    )
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
