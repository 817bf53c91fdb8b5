"""A study file's ``report:`` block (``experiments/<study>.yaml``) read into a :class:`ReportSpec`: the
question, the contrasts it compares (:class:`Contrast`), the published figures shown beside the study's
(:class:`Reference`) and a target every seed must reach (:class:`Target`, of one or several
:class:`Condition` bounds, optionally over a factorial of fixes). :func:`report_block` is the one reader of
the file's block; a malformed entry raises :class:`ReportSpecError` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis import catalog
from analysis.tables import fmt

EXPECT = {"lower": "less", "higher": "greater", "": "two-sided"}
# report.target.require: the cells' quantifier (see Target.require)
REQUIRE = ("some", "every")


class ReportSpecError(ValueError):
    """A study file's ``report:`` block is malformed; the message names the bad value."""


@dataclass(frozen=True)
class Contrast:
    name: str
    factor: str
    baseline: str
    by: tuple[str, ...] = ()
    # the figures compared (metric keys), the first that a group logged carries its verdict; () = the default
    # catalog.CONTRAST_METRICS
    metrics: tuple[str, ...] = ()
    # the hypothesis' direction for the first figure: "lower" | "higher" (level vs baseline; one-sided) | ""
    expect: str = ""
    # add a row pooled over the groups (stratified), which is then the primary comparison
    pool: bool = False
    # whether the contrast's first figure answers the question (None: the first contrast only)
    primary: bool | None = None
    # compare only the runs with these values of varying keys (key, value) pairs, e.g. (("recipe", "modern"),)
    where: tuple[tuple[str, str], ...] = ()
    # pair the runs by seed (the sign-flip test) or compare the arms as independent samples (permutation)
    paired: bool = True
    # compare only these levels of the factor with the baseline; () = every other level
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reference:
    """A published figure set shown beside a study's own: who (``model``), where (``source``), the figures
    (metric key -> value as published)."""

    model: str
    source: str
    figures: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class ReportSpec:
    question: str = ""
    # what a "Yes." would mean, in words (the study's hypothesis)
    hypothesis: str = ""
    contrasts: tuple[Contrast, ...] = ()
    references: tuple[Reference, ...] = ()
    # what differs between the references' setting and the study's (stated under the references table)
    references_note: str = ""
    # a target every seed must reach (report.target), with a factorial over sets of fixes when it names
    # them: answered by its cells (and effects), not by contrasts
    target: Target | None = None


def parse_spec(block: Mapping[str, Any] | None) -> ReportSpec:
    """A ``report:`` mapping -> :class:`ReportSpec`; :class:`ReportSpecError` naming a bad entry."""
    if not block:
        return ReportSpec()
    if not isinstance(block, Mapping):
        raise ReportSpecError(f"report={block!r}: expected a mapping with question and contrasts")
    contrasts = [_contrast(i, item) for i, item in enumerate(block.get("contrasts") or ())]
    references = [_reference(i, item) for i, item in enumerate(block.get("references") or ())]
    return ReportSpec(
        target=parse_target(block.get("target")),
        question=str(block.get("question") or ""),
        hypothesis=str(block.get("hypothesis") or ""),
        contrasts=tuple(contrasts),
        references=tuple(references),
        references_note=str(block.get("references_note") or ""),
    )


def _contrast(i: int, item: Any) -> Contrast:
    """``report.contrasts[i]`` -> :class:`Contrast`."""
    if not isinstance(item, Mapping) or "factor" not in item or "baseline" not in item:
        raise ReportSpecError(f"report.contrasts[{i}]={item!r}: needs factor and baseline")
    by = item.get("by") or ()
    if isinstance(by, str):
        by = (by,)
    expect = str(item.get("expect") or "")
    if expect not in EXPECT:
        raise ReportSpecError(
            f"report.contrasts[{i}].expect={expect!r}: choose lower, higher or leave it out"
        )
    where = item.get("where") or {}
    if not isinstance(where, Mapping):
        raise ReportSpecError(f"report.contrasts[{i}].where={where!r}: expected a mapping key -> value")
    levels = item.get("levels", ())
    if isinstance(levels, str) or not isinstance(levels, Sequence) or ("levels" in item and not levels):
        raise ReportSpecError(
            f"report.contrasts[{i}].levels={levels!r}: expected a non-empty list of the factor's values"
        )
    for flag in ("pool", "primary", "paired"):
        if flag in item and not isinstance(item[flag], bool):
            raise ReportSpecError(f"report.contrasts[{i}].{flag}={item[flag]!r}: must be true or false")
    return Contrast(
        name=str(item.get("name") or f"{item['factor']} vs {item['baseline']}"),
        factor=str(item["factor"]),
        baseline=str(item["baseline"]),
        by=tuple(str(b) for b in by),
        metrics=_figures(item.get("metrics") or (), f"report.contrasts[{i}].metrics"),
        expect=expect,
        pool=bool(item.get("pool", False)),
        primary=item.get("primary", i == 0),
        where=tuple((str(k), str(v)) for k, v in where.items()),
        paired=bool(item.get("paired", True)),
        levels=tuple(_level_text(v) for v in levels),
    )


def _reference(i: int, item: Any) -> Reference:
    """``report.references[i]`` -> :class:`Reference`."""
    where = f"report.references[{i}]"
    if not isinstance(item, Mapping) or not item.get("model") or not item.get("source"):
        raise ReportSpecError(f"{where}={item!r}: needs model, source and figures")
    figures = item.get("figures")
    if not isinstance(figures, Mapping) or not figures:
        raise ReportSpecError(f"{where}.figures={figures!r}: needs a mapping figure -> published value")
    keys = _figures(list(figures), f"{where}.figures")
    values = []
    for name, key in zip(figures, keys, strict=True):
        value = figures[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ReportSpecError(f"{where}.figures.{name}={value!r}: must be a number")
        values.append((key, float(value)))
    return Reference(str(item["model"]), str(item["source"]), tuple(values))


def _level_text(value: Any) -> str:
    """A level as a run's label spells it: a YAML list ``[a, b]`` (or the text "[a, b]") as ``[a,b]``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ",".join(str(v).strip() for v in value) + "]"
    text = str(value).strip()
    return "[" + ",".join(p.strip() for p in text[1:-1].split(",")) + "]" if text.startswith("[") else text


def _figures(names: Any, where: str) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ReportSpecError(f"{where}={names!r}: expected a list of figure names")
    try:
        return tuple(catalog.figure_key(str(n)) for n in names)
    except ValueError as err:
        raise ReportSpecError(f"{where}: {err}") from None


def study_file(study: str, root: Path) -> Path:
    """Where study ``study`` is declared: ``<root>/experiments/<study>.yaml``."""
    return root / "experiments" / f"{study}.yaml"


def report_block(study: str, root: Path) -> Mapping[str, Any]:
    """The study file's ``report:`` block (the one reader of it; empty without file or block), with
    ``references: <other study>`` replaced by that study's list of references, so that the papers' figures
    are written in one study file."""
    block = _written_block(study, root)
    named = block.get("references")
    if isinstance(named, str):
        borrowed = _written_block(named, root).get("references") if named != study else None
        if not isinstance(borrowed, list) or not borrowed:
            raise ReportSpecError(
                f"report.references={named!r}: names no other study file that lists references"
            )
        block = {**block, "references": borrowed}
    return block


def _written_block(study: str, root: Path) -> Mapping[str, Any]:
    """The study file's ``report:`` block as written."""
    path = study_file(study, root)
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data.get("report") or {}


def load_spec(study: str, root: Path) -> ReportSpec:
    """The ``report:`` block of the study file, or an empty spec when the study has no file or no block."""
    return parse_spec(report_block(study, root))


@dataclass(frozen=True)
class Condition:
    """One bound a figure must meet on a seed: ``metric`` (a key) at least, or at most, ``bound``."""

    metric: str
    bound: float
    at_most: bool = False

    def met(self, values: np.ndarray) -> np.ndarray:
        """Which values meet the bound (NaN never does)."""
        v = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            return np.isfinite(v) & ((v <= self.bound) if self.at_most else (v >= self.bound))

    def text(self) -> str:
        """``"10 or more digits"``, ``"FD at most 25"``."""
        fig = catalog.figure(self.metric)
        if self.at_most:
            return f"{fig.short} at most {fmt(self.bound, 3)}"
        return f"{fmt(self.bound, 3)} or more {fig.short}"

    def to_meta(self) -> dict[str, object]:
        return {"metric": self.metric, "at_most" if self.at_most else "at_least": self.bound}


@dataclass(frozen=True)
class Target:
    """A study file's ``report.target`` block: the bounds every seed must meet (``conditions``; the first
    one's figure is the one the cells and effects show) and, for a factorial, the list-valued factor whose
    values are sets of fixes."""

    conditions: tuple[Condition, ...]
    fixes: str | None = None
    # the question's quantifier over the cells: does SOME cell reach the target on every seed (a search for a
    # rescue), or does EVERY cell (e.g. one fix on several generators)?
    require: str = "some"

    @classmethod
    def at_least(cls, metric: str, bound: float, fixes: str | None = None, require: str = "some") -> Target:
        """The common case: one figure at least ``bound``."""
        return cls((Condition(metric, float(bound)),), fixes, require)

    @property
    def metric(self) -> str:
        return self.conditions[0].metric

    def text(self) -> str:
        """``"10 or more digits, FD at most 25 and KL at most 0.05"``."""
        parts = [c.text() for c in self.conditions]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def reached(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of a :func:`analysis.factorial_cells.cell_runs` frame meet every condition."""
        ok = np.ones(len(frame), dtype=bool)
        for i, condition in enumerate(self.conditions):
            ok &= condition.met(frame["value" if i == 0 else target_column(condition)].to_numpy(dtype=float))
        return ok

    def to_meta(self) -> dict[str, object]:
        return {
            "all": [c.to_meta() for c in self.conditions],
            "fixes": self.fixes,
            **({"require": self.require} if self.require != "some" else {}),
        }


def target_column(condition: Condition) -> str:
    """The cell tables' column holding a further condition's figure (the first condition's is ``value``)."""
    return f"target {catalog.short_name(condition.metric)}"


def _condition(item: Any, where: str) -> Condition:
    if not isinstance(item, Mapping) or "metric" not in item:
        raise ReportSpecError(f"{where}={item!r}: needs metric and at_least or at_most")
    bounds = [k for k in ("at_least", "at_most") if k in item]
    if len(bounds) != 1:
        raise ReportSpecError(f"{where}={item!r}: needs exactly one of at_least, at_most")
    unknown = sorted(set(item) - {"metric", "at_least", "at_most"})
    if unknown:
        raise ReportSpecError(f"{where}.{unknown[0]}: unknown key; known: metric, at_least, at_most")
    try:
        metric = catalog.figure_key(str(item["metric"]))
    except ValueError as err:
        raise ReportSpecError(f"{where}.metric: {err}") from None
    bound = item[bounds[0]]
    if isinstance(bound, bool) or not isinstance(bound, int | float):
        raise ReportSpecError(f"{where}.{bounds[0]}={bound!r}: must be a number")
    return Condition(metric, float(bound), bounds[0] == "at_most")


def parse_target(block: Any) -> Target | None:
    """``report.target`` -> :class:`Target`; None without one; ReportSpecError naming a bad entry. One bound
    (``metric`` with ``at_least`` or ``at_most``) or several (``all:``, a list of such), plus ``fixes``.
    Also reads what :meth:`Target.to_meta` writes."""
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise ReportSpecError(
            f"report.target={block!r}: needs metric and at_least (or all:), and optionally fixes"
        )
    fixes = block.get("fixes")
    require = str(block.get("require", "some"))
    if require not in REQUIRE:
        raise ReportSpecError(f"report.target.require={require!r}: choose one of {', '.join(REQUIRE)}")
    block = {k: v for k, v in block.items() if k != "require"}
    if "all" in block:
        unknown = sorted(set(block) - {"all", "fixes"})
        if unknown:
            raise ReportSpecError(
                f"report.target.{unknown[0]}: unknown key beside all; known: all, fixes, require"
            )
        items = block["all"]
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            raise ReportSpecError(f"report.target.all={items!r}: needs a non-empty list of bounds")
        conditions = tuple(_condition(item, f"report.target.all[{i}]") for i, item in enumerate(items))
    else:
        unknown = sorted(set(block) - {"metric", "at_least", "at_most", "fixes"})
        if unknown:
            raise ReportSpecError(
                f"report.target.{unknown[0]}: unknown key; known: metric, at_least, at_most, all, fixes, "
                "require"
            )
        item = {k: v for k, v in block.items() if k != "fixes"}
        conditions = (_condition(item, "report.target"),)
    return Target(conditions, str(fixes) if fixes else None, require)
