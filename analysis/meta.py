"""What a study's ``meta.json`` says besides its tables: question, contrasts, command, commits, wall time and
machine, all read from the regenerated study (the store), never typed. :func:`analysis.document.study_blocks`
renders it with the tables, into the report and the published README alike."""

from __future__ import annotations

import pandas as pd

from analysis import references
from analysis.report_spec import Contrast, ReportSpec
from gansweep.run import contract

META = "meta.json"


def wall_clock(runs: pd.DataFrame) -> dict[str, object]:
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


def tag_values(runs: pd.DataFrame, tag: str) -> list[str]:
    column = f"tags.{tag}"
    if column not in runs:
        return []
    return sorted(str(v) for v in runs[column].dropna().unique())


def run_command(study: str) -> str:
    return f"gansweep-train -m experiment={study} hydra/launcher=joblib hydra.launcher.n_jobs=2 resume=auto"


def contrast_meta(c: Contrast) -> dict[str, object]:
    """A contrast as ``meta.json`` keeps it (the keys at their defaults left out)."""
    return {
        "name": c.name,
        "factor": c.factor,
        "baseline": c.baseline,
        "by": list(c.by),
        **({"metrics": list(c.metrics)} if c.metrics else {}),
        **({"expect": c.expect} if c.expect else {}),
        **({"pool": True} if c.pool else {}),
        **({"where": dict(c.where)} if c.where else {}),
        **({"paired": False} if not c.paired else {}),
        **({"levels": list(c.levels)} if c.levels else {}),
        "primary": bool(c.primary),
    }


def contrast_of(item: dict) -> Contrast:
    """The inverse of :func:`contrast_meta`."""
    return Contrast(
        item["name"],
        item["factor"],
        item["baseline"],
        tuple(item["by"]),
        tuple(item.get("metrics", ())),
        item.get("expect", ""),
        bool(item.get("pool", False)),
        bool(item.get("primary", False)),
        tuple((str(k), str(v)) for k, v in item.get("where", {}).items()),
        bool(item.get("paired", True)),
        tuple(str(v) for v in item.get("levels", ())),
    )


def build_meta(
    study: str,
    *,
    runs: pd.DataFrame,
    spec: ReportSpec,
    shared: dict[str, str],
    messages: list[str],
    collapse_modes: float,
) -> dict[str, object]:
    """What the README says besides its tables, read from the regenerated study."""
    return {
        "study": study,
        "question": spec.question,
        "hypothesis": spec.hypothesis,
        **({"target": spec.target.to_meta()} if spec.target is not None else {}),
        "contrasts": [contrast_meta(c) for c in spec.contrasts],
        **(
            {
                "references": references.to_meta(spec.references),
                "references_note": spec.references_note,
            }
            if spec.references
            else {}
        ),
        "command": run_command(study),
        "publish_command": f"gansweep-analyze experiment={study} --publish",
        "runs": len(runs),
        "configs": int(runs["config_label"].nunique()) if not runs.empty else 0,
        "shared": shared,
        "collapse_modes": collapse_modes,
        "commits": tag_values(runs, contract.TAG_GIT_COMMIT),
        "hosts": tag_values(runs, contract.TAG_HOST),
        "versions": tag_values(runs, contract.TAG_VERSIONS),
        "blas_threads": tag_values(runs, contract.TAG_BLAS_THREADS),
        **wall_clock(runs),
        "messages": messages,
        "figures": [],
    }
