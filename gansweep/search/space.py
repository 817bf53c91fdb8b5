"""A search's settings as Hydra gives them, checked and turned into Optuna's terms (used by the sweeper
plugin, and by the sweep's supervisor to refuse bad input before the MLflow store is touched).

Search spaces use Hydra's sweep syntax, in the study file's ``hydra.sweeper.params`` or on the command line:

    interval(1e-5, 1e-3)              FloatDistribution
    tag(log, interval(1e-5, 1e-3))    the same, log-scaled
    int(interval(16, 256))            IntDistribution (tag(log, int(interval(...))): log-scaled)
    range(32, 129, 32)                IntDistribution(32, 128, step=32) (floats: FloatDistribution with step)
    choice(32, 64, 128), 32,64,128    CategoricalDistribution (lists are kept as their override text)
    0.5                               a fixed value, passed to every trial as it is
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from omegaconf import DictConfig, OmegaConf

from gansweep.run import contract
from gansweep.run.config import get, real_scale
from gansweep.search.study import SearchError, SearchInfo, check_settings, default_storage

SWEEPER_TARGET_MARK = "gansweep_optuna"  # in hydra.sweeper._target_ of the Optuna sweeper


@dataclass(frozen=True)
class Param:
    """One searched key: its Optuna distribution, and for categorical values that are not scalars, the
    override text each stored value stands for."""

    key: str
    distribution: Any
    texts: Mapping[Any, str]

    def override(self, value: Any) -> str:
        return f"{self.key}={self.texts.get(value, _text(value))}"


@dataclass(frozen=True)
class Space:
    """The searched params and the overrides every trial gets as they are."""

    params: tuple[Param, ...]
    fixed: tuple[str, ...]

    @property
    def distributions(self) -> dict[str, Any]:
        return {p.key: p.distribution for p in self.params}

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        return [*self.fixed, *(p.override(values[p.key]) for p in self.params)]

    def corners(self) -> list[list[str]]:
        """Two trials' overrides: every param at its lowest (first) and at its highest (last) value, so
        a key the config does not have, or a value it refuses, is found before the search starts."""
        out = []
        for end in (0, -1):
            values = {p.key: _ends(p.distribution)[end] for p in self.params}
            out.append(self.overrides(values))
        return out


def is_optuna_sweeper(config: DictConfig) -> bool:
    return SWEEPER_TARGET_MARK in str(OmegaConf.select(config, "hydra.sweeper._target_", default=""))


def _text(value: Any) -> str:
    """A value as Hydra's override grammar writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def _ends(dist: Any) -> tuple[Any, Any]:
    import optuna

    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return dist.choices[0], dist.choices[-1]
    return dist.low, dist.high


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _param(o: Override) -> Param | str:
    """An override -> a searched Param, or the override text of a fixed value."""
    import optuna

    D = optuna.distributions
    key, value = o.get_key_element(), o.value()
    if isinstance(value, IntervalSweep):
        lo, hi, log = value.start, value.end, "log" in (value.tags or set())
        if not (_number(lo) and _number(hi)) or not lo < hi:
            raise SearchError(f"hydra.sweeper.params.{key}: interval({lo}, {hi}) is empty or reversed")
        if log and lo <= 0:
            raise SearchError(f"hydra.sweeper.params.{key}: a log-scaled interval needs a low end > 0 ({lo})")
        if isinstance(lo, int) and isinstance(hi, int):
            return Param(key, D.IntDistribution(lo, hi, log=log), {})
        return Param(key, D.FloatDistribution(float(lo), float(hi), log=log), {})
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if not all(_number(x) for x in (start, stop, step)) or step <= 0 or not start < stop:
            raise SearchError(
                f"hydra.sweeper.params.{key}: range({start}, {stop}, {step}) is empty or reversed "
                "(a search range counts up: start < stop, step > 0)"
            )
        n = int((stop - start) // step) + (1 if (stop - start) % step else 0)
        last = start + (n - 1) * step
        if all(isinstance(x, int) for x in (start, stop, step)):
            return Param(key, D.IntDistribution(start, last, step=step), {})
        return Param(key, D.FloatDistribution(float(start), float(last), step=float(step)), {})
    if isinstance(value, ChoiceSweep):
        if value.tags and "log" in value.tags:
            raise SearchError(f"hydra.sweeper.params.{key}: log applies to interval(...), not choice(...)")
        choices, texts = [], {}
        for v in value.list:
            if isinstance(v, list | tuple | dict):
                text = _text(v)
                texts[text] = text
                choices.append(text)
            else:
                choices.append(v)
        if not choices:
            raise SearchError(f"hydra.sweeper.params.{key}: choice() offers nothing to choose")
        if len(set(map(repr, choices))) != len(choices):
            raise SearchError(f"hydra.sweeper.params.{key}: choice{tuple(choices)} names a value twice")
        return Param(key, D.CategoricalDistribution(choices), texts)
    if o.is_sweep_override():
        raise SearchError(f"hydra.sweeper.params.{key}: {o.input_line} is no search space this sweeper takes")
    return o.input_line


def parse_space(params: Mapping[str, Any] | None, arguments: Sequence[str]) -> Space:
    """``hydra.sweeper.params`` and the command line's overrides (which win for the same key) -> a Space."""
    parser = OverridesParser.create()
    lines = {str(k): f"{k}={v}" for k, v in (params or {}).items()}
    try:
        for o in parser.parse_overrides(list(arguments)):
            lines[o.get_key_element()] = o.input_line
        parsed = parser.parse_overrides(list(lines.values()))
    except Exception as exc:
        raise SearchError(f"hydra.sweeper.params: {exc}".splitlines()[0]) from None
    searched, fixed = [], []
    for o in parsed:
        p = _param(o)
        (fixed if isinstance(p, str) else searched).append(p)
    return Space(tuple(searched), tuple(fixed))


def final_metric_keys(cfg: Mapping[str, Any]) -> set[str]:
    """The figures a run of ``cfg`` ends with (``Result.final`` of ``gansweep.run.loop.train``, what a trial
    is scored on): the last window's training curves (``d_real_unit`` with reals in 0-255), ``lr``,
    ``img_per_s``, with ``train.imprint_steps`` the ``imprint/corr_<s>`` figures and, with eval on, the final
    eval point's figures."""
    from gansweep.metrics.evaluator import METRIC_GROUPS, STACKED_FIGURES, resolve_groups

    keys = {*contract.TRAINING_CURVES, *contract.GRAD_NORMS, *contract.D_LOGITS, "lr", "img_per_s"}
    if real_scale(cfg) == "raw255":
        keys.add(contract.D_REAL_UNIT)
    keys |= {contract.imprint_key(s) for s in get(cfg, "train").get("imprint_steps") or ()}
    if not get(cfg, "eval.enabled"):
        return keys
    if get(cfg, "data.name") == "stacked_mnist":
        return keys | {contract.EVAL_PREFIX + f for f in STACKED_FIGURES}
    for group in resolve_groups(get(cfg, "eval.metrics")):
        keys |= {contract.EVAL_PREFIX + f for f in METRIC_GROUPS[group]}
    if get(cfg, "eval.stretched"):
        keys |= {contract.STRETCHED_PREFIX + f for f in METRIC_GROUPS["modes"]}
    return keys


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


@dataclass(frozen=True)
class Search:
    """A checked search: the shared info, the space, the sampler's settings, how many trials, batch size."""

    info: SearchInfo
    space: Space
    sampler: dict[str, Any]
    n_trials: int
    n_jobs: int | None


def read_search(config: DictConfig, arguments: Sequence[str]) -> Search:
    """``hydra.sweeper`` and the command line's overrides -> a checked :class:`Search`; :class:`SearchError`
    naming the key otherwise. Does not compose the trials' configs (:func:`check_search` does)."""
    sw = OmegaConf.to_container(config.hydra.sweeper, resolve=True)
    objectives = _as_list(sw.get("objective"))
    directions = _as_list(sw.get("direction"))
    if len(directions) == 1 and len(objectives) > 1:
        raise SearchError(
            f"hydra.sweeper.direction={directions}: give one direction per objective ({objectives})"
        )
    sampler = dict(sw.get("sampler") or {})
    pruner = dict(sw.get("pruner") or {"name": "none"})
    check_settings(
        objectives=objectives,
        directions=directions,
        sampler=sampler,
        pruner=pruner,
        n_trials=sw.get("n_trials"),
        n_jobs=sw.get("n_jobs"),
    )
    tracking_uri = OmegaConf.select(config, "tracking.uri", default=None)
    info = SearchInfo(
        storage=str(sw.get("storage") or default_storage(tracking_uri and str(tracking_uri))),
        study_name=str(sw.get("study_name") or config.study),
        objectives=tuple(objectives),
        directions=tuple(directions),
        pruner=pruner,
    )
    space = parse_space(sw.get("params"), arguments)
    if not space.params:
        raise SearchError(
            "hydra.sweeper.params: nothing to search; give at least one key a choice(...), interval(...) "
            "or range(...) (in the study file or on the command line)"
        )
    return Search(info, space, sampler, int(sw["n_trials"]), sw.get("n_jobs"))


def check_search(config: DictConfig, arguments: Sequence[str]) -> Search:
    """:func:`read_search`, then compose and validate the trials at the corners of the space and check that
    the runs log every objective: bad input is refused (naming the key) before anything starts."""
    from gansweep.runner.jobs import check_jobs

    search = read_search(config, arguments)
    corners = search.space.corners()
    check_jobs(config, corners)
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    cfg = GlobalHydra.instance().config_loader().load_sweep_config(config, corners[0])
    with open_dict(cfg):
        del cfg["hydra"]
    logged = final_metric_keys(OmegaConf.to_container(cfg, resolve=True))
    for key in search.info.objectives:
        if key not in logged:
            raise SearchError(
                f"hydra.sweeper.objective: {key!r} is no figure these runs log; choose from "
                f"{', '.join(sorted(logged))}"
            )
    return search
