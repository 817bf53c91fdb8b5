"""Published figures beside a study's own: the table a study's ``report.references`` block asks for.

The reference figures live in the study file only (``experiments/<study>.yaml``, ``report.references``: model,
source, figures as published) and reach the published README through ``meta.json``; nothing here or in a
README types them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analysis import catalog


def figure_keys(references: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metric keys any reference publishes, in first-seen order."""
    keys: list[str] = []
    for ref in references:
        keys.extend(k for k in ref["figures"] if k not in keys)
    return keys


def to_meta(references: Sequence[Any]) -> list[dict[str, Any]]:
    """:class:`analysis.report_spec.Reference` entries as JSON-ready dicts (``meta.json``)."""
    return [{"model": r.model, "source": r.source, "figures": dict(r.figures)} for r in references]


def table(references: Sequence[Mapping[str, Any]], headline: pd.DataFrame) -> pd.DataFrame:
    """One row per published reference, then one per config of this study that logged a referenced figure
    (its mean [95 % interval] from the headline table, with its seeds); a column per referenced figure."""
    keys = figure_keys(references)
    columns = ["model", "source", *(catalog.short_name(k) for k in keys)]
    rows = []
    for ref in references:
        row = {"model": ref["model"], "source": ref["source"]}
        row.update({catalog.short_name(k): _published(ref["figures"].get(k)) for k in keys})
        rows.append(row)
    present = [k for k in keys if k in headline.columns]
    for _, ours in headline.iterrows():
        values = [str(ours[k]) for k in present]
        if not values or all(v in ("", "–", "nan") or v.startswith("–") for v in values):
            continue
        seeds = f", {ours['n']} seeds" if "n" in ours else ""
        row = {"model": str(ours["config_label"]), "source": f"this study (mean [95 % interval]{seeds})"}
        row.update({catalog.short_name(k): "–" for k in keys})
        row.update({catalog.short_name(k): str(ours[k]) for k in present})
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _published(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:g}"
