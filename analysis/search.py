"""A hyperparameter search's own report: the optimisation history, the Pareto front (several objectives) and
the parameters' importances (Optuna's fANOVA), plotted with matplotlib from the Optuna study that the
search's MLflow parent run names. Written to ``<out>/search/`` (``report.md``, ``report.html``, the plots and
``trials.csv``) and uploaded beside the study's report. Reads MLflow and the Optuna storage only."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import yaml
from mlflow import MlflowClient

from analysis.plot_style import save
from analysis.report import Block, write_report
from analysis.report_spec import ReportSpecError, report_block, study_file
from gansweep.run import contract

FOLDER = "search"


@dataclass
class SearchReport:
    """What :func:`search_report` wrote (empty when the study is no search) and what the user should know."""

    files: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    parent: str | None = None


def find_search(tracking_uri: str, experiment: str) -> Any | None:
    """The newest parent run of the experiment that ran an Optuna search, or None."""
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{contract.TAG_ROLE}` = '{contract.ROLE_PARENT}'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    return next((r for r in runs if r.data.tags.get(contract.TAG_OPTUNA_STUDY)), None)


class SearchUnavailableError(LookupError):
    """A search that cannot be published: no search in the store, its storage missing, or no trials. The
    message names the study."""


@dataclass
class OpenedSearch:
    """An opened search: its newest parent run, the Optuna study, its objectives and the storage URL."""

    parent: Any
    study: Any
    names: list[str]
    directions: list[str]
    url: str


def declares_search(study: str, root: Path) -> bool:
    """Whether the study file of ``study`` selects the Optuna sweeper (``override /hydra/sweeper``)."""
    path = study_file(study, root)
    if not path.is_file():
        return False
    defaults = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("defaults") or []
    return any(isinstance(d, Mapping) and d.get("override /hydra/sweeper") == "optuna" for d in defaults)


def _objectives(parent: Any, study: Any) -> tuple[list[str], list[str]]:
    pairs = [p.rsplit(":", 1) for p in parent.data.tags.get(contract.TAG_OBJECTIVES, "").split()]
    names = [p[0] for p in pairs] or [f"objective {i}" for i in range(len(study.directions))]
    return names, [d.name.lower() for d in study.directions]


def open_search(tracking_uri: str, experiment: str, *, storage: str | None = None) -> OpenedSearch:
    """The newest search of study ``experiment`` with its Optuna study, read without writing anything (a
    sqlite storage that does not exist is not created). :class:`SearchUnavailableError` naming the study when
    the store holds no search of it, its storage cannot be found or read, or the search has no trials."""
    import optuna

    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name(experiment) is None:
        raise SearchUnavailableError(
            f"study {experiment!r}: no MLflow experiment of that name in {tracking_uri}; run its search "
            f"first (gansweep-train -m experiment={experiment})"
        )
    parent = find_search(tracking_uri, experiment)
    if parent is None:
        raise SearchUnavailableError(
            f"study {experiment!r}: no parent run in {tracking_uri} ran an Optuna search "
            "(hydra/sweeper=optuna)"
        )
    name = parent.data.tags[contract.TAG_OPTUNA_STUDY]
    url = storage or parent.data.tags.get(contract.TAG_OPTUNA_STORAGE, "")
    if not url or "***" in url:
        raise SearchUnavailableError(
            f"study {experiment!r}: the search's storage {url or '(not recorded)'} cannot be opened as "
            "recorded; pass optuna_storage=<url>"
        )
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///"))
        if str(db) != ":memory:" and not db.is_file():
            raise SearchUnavailableError(
                f"study {experiment!r}: its Optuna storage {db} does not exist (storage {url}); pass "
                "optuna_storage=<url> if it moved"
            )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise SearchUnavailableError(
            f"study {experiment!r}: Optuna study {name!r} is not in storage {url}"
        ) from None
    except Exception as err:  # a storage that cannot be read: sqlalchemy or optuna's own errors
        raise SearchUnavailableError(f"study {experiment!r}: cannot read storage {url}: {err}") from None
    if not study.get_trials(deepcopy=False):
        raise SearchUnavailableError(
            f"study {experiment!r}: its search (Optuna study {name!r} in {url}) has no trials; nothing to "
            "publish"
        )
    names, directions = _objectives(parent, study)
    return OpenedSearch(parent, study, names, directions, url)


@dataclass(frozen=True)
class AnswerRule:
    """Which trial answers a search's question (the study file's ``report.answer``): the best value of
    objective ``best`` among the completed trials whose objectives meet ``at_least`` / ``at_most``. Without
    ``best``, the answer is the best trial (one objective) or the Pareto front (several)."""

    best: str | None = None
    at_least: tuple[tuple[str, float], ...] = ()
    at_most: tuple[tuple[str, float], ...] = ()

    def to_meta(self) -> dict[str, object]:
        return {"best": self.best, "at_least": dict(self.at_least), "at_most": dict(self.at_most)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> AnswerRule:
        return cls(
            meta.get("best"),
            tuple((k, float(v)) for k, v in (meta.get("at_least") or {}).items()),
            tuple((k, float(v)) for k, v in (meta.get("at_most") or {}).items()),
        )

    def for_objectives(self, names: list[str]) -> AnswerRule:
        """This rule checked against the search's objectives (the default: its one objective, if one);
        :class:`ReportSpecError` naming the key that names no objective."""
        for key, value in (("best", self.best), *((f"at_least.{k}", k) for k, _ in self.at_least)):
            if value is not None and value not in names:
                raise ReportSpecError(
                    f"report.answer.{key}={value!r} is no objective of the search ({', '.join(names)})"
                )
        for key, _ in self.at_most:
            if key not in names:
                raise ReportSpecError(
                    f"report.answer.at_most.{key} is no objective of the search ({', '.join(names)})"
                )
        if self.best is None and not (self.at_least or self.at_most) and len(names) == 1:
            return AnswerRule(names[0])
        return self

    def conditions(self) -> list[str]:
        """``["eval/modes_covered ≥ 10"]``."""
        return [f"{k} ≥ {v:g}" for k, v in self.at_least] + [f"{k} ≤ {v:g}" for k, v in self.at_most]

    def meets(self, values: Mapping[str, float]) -> bool:
        """Whether a completed trial's objective values meet the conditions."""
        for key, low in self.at_least:
            if not (math.isfinite(values[key]) and values[key] >= low):
                return False
        for key, high in self.at_most:
            if not (math.isfinite(values[key]) and values[key] <= high):
                return False
        return True


def parse_rule(block: Any) -> AnswerRule:
    """A study file's ``report.answer`` mapping -> :class:`AnswerRule`; :class:`ReportSpecError` naming a bad
    entry."""
    if not block:
        return AnswerRule()
    if not isinstance(block, Mapping):
        raise ReportSpecError(f"report.answer={block!r}: expected a mapping with best, at_least, at_most")
    unknown = set(block) - {"best", "at_least", "at_most"}
    if unknown:
        first = sorted(unknown)[0]
        raise ReportSpecError(f"report.answer.{first}: unknown key; known: best, at_least, at_most")
    bounds = {}
    for key in ("at_least", "at_most"):
        items = block.get(key) or {}
        if not isinstance(items, Mapping):
            raise ReportSpecError(f"report.answer.{key}={items!r}: expected a mapping objective -> bound")
        for name, value in items.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ReportSpecError(f"report.answer.{key}.{name}={value!r}: must be a number")
        bounds[key] = tuple((str(k), float(v)) for k, v in items.items())
    best = block.get("best")
    return AnswerRule(str(best) if best is not None else None, bounds["at_least"], bounds["at_most"])


def load_rule(study: str, root: Path) -> AnswerRule:
    """The ``report.answer`` of the study file (an empty rule when it has none)."""
    return parse_rule(report_block(study, root).get("answer"))


def trials_frame(study: Any) -> pd.DataFrame:
    """One row per trial: number, state, the objective values (``value_<i>``) and the params."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "state": t.state.name}
        for i, v in enumerate(t.values or []):
            row[f"value_{i}"] = v
        row.update({f"param.{k}": v for k, v in t.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _history(frame: pd.DataFrame, objective: str, direction: str, path: Path) -> Path:
    done = frame[frame["state"] == "COMPLETE"].sort_values("trial")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.scatter(done["trial"], done["value_0"], s=14, label="trial", color="tab:blue")
    best = done["value_0"].cummin() if direction == "minimize" else done["value_0"].cummax()
    ax.step(done["trial"], best, where="post", color="tab:red", label="best so far")
    for state, marker in (("PRUNED", "x"), ("FAIL", "|")):
        others = frame[frame["state"] == state]
        if len(others):
            ax.scatter(
                others["trial"], [best.iloc[-1]] * len(others), marker=marker, color="grey", label=state
            )
    ax.set(xlabel="trial", ylabel=objective, title=f"Optimisation history ({direction} {objective})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def _pareto(frame: pd.DataFrame, front: list[int], names: list[str], path: Path) -> Path:
    done = frame[frame["state"] == "COMPLETE"]
    on = done["trial"].isin(front)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(done.loc[~on, "value_0"], done.loc[~on, "value_1"], s=14, color="tab:blue", label="trial")
    ax.scatter(done.loc[on, "value_0"], done.loc[on, "value_1"], s=24, color="tab:red", label="Pareto front")
    for _, row in done[on].iterrows():
        ax.annotate(str(int(row["trial"])), (row["value_0"], row["value_1"]), fontsize=7)
    ax.set(xlabel=names[0], ylabel=names[1], title="Pareto front")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def _importances(study: Any, objective: int, name: str, path: Path) -> Path:
    import optuna

    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    scores = optuna.importance.get_param_importances(
        study, evaluator=evaluator, target=lambda t: t.values[objective]
    )
    keys = list(scores)[::-1]
    fig, ax = plt.subplots(figsize=(6, 1.6 + 0.4 * len(keys)))
    ax.barh(keys, [scores[k] for k in keys], color="tab:green")
    ax.set(xlabel="importance (fANOVA)", title=f"Parameter importances for {name}")
    fig.tight_layout()
    return save(fig, path)


def _figure_blocks(
    study: Any,
    frame: pd.DataFrame,
    best: list[Any],
    names: list[str],
    directions: list[str],
    folder: Path,
    report: SearchReport,
) -> list[Block]:
    """The best trials (or Pareto front) and the figures made of the trials: history, Pareto front and each
    objective's importances; files written and messages go to ``report``."""
    table = pd.DataFrame(
        [{"trial": t.number, **dict(zip(names, t.values, strict=False)), **t.params} for t in best]
    )
    title = "Best trial" if len(directions) == 1 else "Pareto front"
    blocks = [Block("h2", title), Block("table", table=table)]
    done = frame[frame["state"] == "COMPLETE"]
    report.files.append(_history(frame, names[0], directions[0], folder / "history.png"))
    blocks += [Block("h2", "Optimisation history"), Block("image", "history", path="history.png")]
    if len(directions) > 1:
        report.files.append(_pareto(frame, [t.number for t in best], names, folder / "pareto.png"))
        blocks += [Block("h2", "Pareto front"), Block("image", "Pareto front", path="pareto.png")]
    searched = [c for c in frame.columns if c.startswith("param.")]
    varied = [c for c in searched if done[c].nunique() > 1] if len(done) else []
    if len(done) >= 2 and varied:
        blocks.append(Block("h2", "Parameter importances (fANOVA)"))
        for i, name in enumerate(names):
            path = folder / f"importance_{i}.png"
            try:
                report.files.append(_importances(study, i, name, path))
                blocks.append(Block("image", f"importances for {name}", path=path.name))
            except (RuntimeError, ValueError) as err:
                report.messages.append(f"importances for {name}: {err}")
    else:
        report.messages.append("importances need two completed trials whose params differ")
    return blocks


def search_report(
    tracking_uri: str, experiment: str, out_dir: Path, *, storage: str | None = None, upload: bool = True
) -> SearchReport:
    """Write the search's history, Pareto front and importances under ``out_dir/search`` when the
    experiment's newest parent run ran an Optuna search; ``storage`` overrides the URL its tag names."""
    import optuna

    report = SearchReport()
    parent = find_search(tracking_uri, experiment)
    if parent is None:
        return report
    tags = parent.data.tags
    url = storage or tags.get(contract.TAG_OPTUNA_STORAGE, "")
    if "***" in url:
        report.messages.append(
            f"the search's storage {url} needs its password: pass optuna_storage=<url> to read the study"
        )
        return report
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=tags[contract.TAG_OPTUNA_STUDY], storage=url)
    names, directions = _objectives(parent, study)
    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    frame = trials_frame(study)
    frame.to_csv(folder / "trials.csv", index=False)
    report.files.append(folder / "trials.csv")
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    blocks = [
        Block("h1", f"Search {study.study_name}"),
        Block(
            "p",
            f"{len(frame)} trials ({', '.join(f'{n} {s.lower()}' for s, n in sorted(counts.items()))}); "
            f"objectives: {', '.join(f'{d} {n}' for n, d in zip(names, directions, strict=False))}; "
            f"Optuna storage {url}.",
        ),
    ]
    try:
        best = sorted(study.best_trials, key=lambda t: t.number)
    except ValueError:
        best = []
    if not best:
        report.messages.append(f"search {study.study_name}: no completed trial yet")
    else:
        blocks += _figure_blocks(study, frame, best, names, directions, folder, report)
    report.files += write_report(blocks, folder, f"Search {study.study_name}")
    if upload:
        client = MlflowClient(tracking_uri=tracking_uri)
        client.log_artifacts(parent.info.run_id, str(folder), f"{contract.REPORT_ARTIFACT_PATH}/{FOLDER}")
        report.parent = parent.info.run_id
    return report
