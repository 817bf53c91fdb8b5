"""Short config labels: what sets a config apart within its study.

The runner tags each run with its full config label (its overrides without the seed and the control keys,
``gansweep.config_label``). Within one study most of those items are shared by every run (the study's own
settings); the label a reader needs is made of the items that vary. :func:`relabel` replaces
``config_label`` by that short label, keeps the full one as ``full_label``, adds one ``factor.<key>`` column
per varying key (what the study file's contrasts compare) and returns the shared items, stated once above
the tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

# Items of a label are "key=value" separated by spaces; a value may itself hold spaces ("[256, 512]").
_ITEM = re.compile(r" (?=[+~]?[A-Za-z_][\w.]*=)")
SEPARATOR = " · "
FACTOR_PREFIX = "factor."


def parse_label(label: str) -> dict[str, str]:
    """``"post=failed1 recipe=post"`` -> ``{"post": "failed1", "recipe": "post"}`` (bare item: "")."""
    out: dict[str, str] = {}
    for item in _ITEM.split(label.strip()):
        if not item or item == "default":
            continue
        key, _, value = item.partition("=")
        out[key.lstrip("+~")] = value
    return out


def same_value(a: object, b: object) -> bool:
    """Whether two override values are equal, numerically when both read as numbers ("3e-5" == 3.0e-05)."""
    try:
        return float(str(a)) == float(str(b))
    except ValueError:
        return str(a) == str(b)


def _item_text(key: str, value: str) -> str:
    """A config group's choice reads as itself (``failed1``); a dotted key keeps its last part
    (``dtype=float32``, ``lr=3e-6``)."""
    return value if "." not in key else f"{key.rsplit('.', 1)[-1]}={value}"


@dataclass(frozen=True)
class Labels:
    """The outcome of :func:`relabel`: the runs relabelled, the varying keys (in label order) and the
    shared items (key -> value)."""

    runs: pd.DataFrame
    varying: tuple[str, ...]
    shared: dict[str, str]


def relabel(runs: pd.DataFrame) -> Labels:
    """Short labels from the keys whose values differ between the study's runs (in the order they first
    appear in the full labels). Configs the varying keys cannot tell apart keep their full label."""
    out = runs.copy()
    out["full_label"] = out["config_label"].astype(str) if not out.empty else pd.Series(dtype=str)
    parsed = [parse_label(label) for label in out["full_label"]]
    keys: list[str] = []
    for items in parsed:
        keys.extend(k for k in items if k not in keys)
    varying = tuple(
        k for k in keys if len({items.get(k, "") for items in parsed}) > 1 or any(k not in p for p in parsed)
    )
    shared = {k: parsed[0][k] for k in keys if k not in varying}
    short = [
        SEPARATOR.join(_item_text(k, items[k]) for k in varying if k in items) or "default"
        for items in parsed
    ]
    full_of_short: dict[str, set[str]] = {}
    for s, f in zip(short, out["full_label"], strict=True):
        full_of_short.setdefault(s, set()).add(f)
    out["config_label"] = [
        s if len(full_of_short[s]) == 1 else f for s, f in zip(short, out["full_label"], strict=True)
    ]
    for key in varying:
        out[FACTOR_PREFIX + key] = pd.array([items.get(key) for items in parsed], dtype="string")
    return Labels(out, varying, shared)
