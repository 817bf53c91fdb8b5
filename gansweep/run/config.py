"""Check a resolved run config (a plain nested dict) and derive what the runner needs from it.

No Hydra here: the entry point resolves the config to plain Python containers and hands it over. Every check
raises :class:`ConfigError` (a ``ValueError``) naming the dotted key and the bad value, before any run exists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from gansweep.data.loader import SCALES as _DATA_SCALES
from gansweep.data.loader import SPLITS
from gansweep.data.sampler import MODES as SAMPLINGS
from gansweep.engine.activations import parse_activation
from gansweep.engine.gan import Z_DISTS as NOISES
from gansweep.engine.gan import n_packs
from gansweep.engine.layers import INITS
from gansweep.engine.losses import LOSSES
from gansweep.engine.optim import build_optimizer
from gansweep.engine.schedules import build_schedule
from gansweep.errors import ArgumentError
from gansweep.run import schema

SCALES = (*_DATA_SCALES, "auto")
DATASETS = ("mnist", "stacked_mnist")
DTYPES = ("float32", "float64")

# Keys that do not change what a run computes: left out of the config hash. ``report`` is a study file's
# instructions to the analysis (contrasts, labels); ``flip`` (the other recipe's quirk values, which
# ablation=<quirk> takes one of) only feeds the settings that hold them. Neither is logged as params either
# (see run_params).
_NOT_PARAMS = ("report", "flip")
_UNHASHED = ("tracking", "force", "resume", "hydra", "study", *_NOT_PARAMS)
_PROBE = {"probe": np.zeros(1)}  # a parameter to build the configured optimizer on, as its check
# The mode-collapse remedies and the value that turns each off. A remedy left off is left out of the config
# hash, so the hash of every config from before the remedies existed is unchanged (its FINISHED runs are still
# skipped, its checkpoints still resume).
REMEDIES_OFF = {"model.pack": 1, "model.minibatch_std": False, "train.unroll_steps": 0}
# The stabilisers (issue 26: G's weight average, spectral normalisation of D, BatchNorm in G) and the value
# that turns each off: left out of the config hash when off, as the remedies are.
STABILIZERS_OFF = {"model.g_ema": None, "model.spectral_norm": False, "model.g_batchnorm": False}
# Measurements that change nothing a run trains, only what it logs, and the value that turns each off: left
# out of the config hash when off, as the remedies are (train.imprint_steps: the imprint/corr_<s> metrics).
PROBES_OFF = {"train.imprint_steps": None}
# A budget in images seen instead of iterations (train.images, see apply_images): out of the hash when off.
BUDGET_OFF = {"train.images": None}
# Keys the config no longer has, and the value every config held for each when they went: the hash is taken
# as if each were still there with that value, so the hash of every config from before they went is unchanged
# (its FINISHED runs are still skipped, its checkpoints still resume). train.fault_at/train.fault were a
# testing aid (issue 27: the tests now inject their faults from outside, tests/faults/).
RETIRED = {"train.fault_at": None, "train.fault": "raise"}
# Values renamed since published studies ran, hashed under the name they had then, for the same reason:
# the post's failed generators were the model files archN until issue 27 gave each one name, failedN.
RENAMED = {"model.name": {f"failed{i}": f"arch{i}" for i in range(1, 7)}}


class ConfigError(ValueError):
    """A bad value in the run config; the message names the dotted key and the value."""


def get(cfg: Mapping[str, Any], key: str) -> Any:
    """``cfg["a"]["b"]`` for ``key="a.b"``; a missing key is a :class:`ConfigError`."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"{key}: missing from the config")
        node = node[part]
    return node


def _bad(key: str, value: Any, why: str) -> ConfigError:
    shown = str(value).lower() if isinstance(value, bool) else repr(value)  # true/false as written
    return ConfigError(f"{key}={shown}: {why}")


def _int(cfg: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    value = get(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(key, value, f"must be an integer >= {minimum}")
    return value


def _positive(cfg: Mapping[str, Any], key: str, *, allow_zero: bool = False) -> float:
    value = get(cfg, key)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise _bad(key, value, "must be a finite number " + (">= 0" if allow_zero else "> 0"))
    return float(value)


def _choice(cfg: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = get(cfg, key)
    if value not in allowed:
        raise _bad(key, value, f"must be one of {', '.join(allowed)}")
    return value


def _activation(key: str, value: Any) -> None:
    try:
        parse_activation(value)
    except ValueError as exc:
        raise _bad(key, value, str(exc)) from None


def _layers(cfg: Mapping[str, Any], key: str) -> None:
    hidden, acts = get(cfg, f"{key}.hidden"), get(cfg, f"{key}.activations")
    if not isinstance(hidden, list) or not hidden:
        raise _bad(f"{key}.hidden", hidden, "must be a non-empty list of layer widths")
    for i, width in enumerate(hidden):
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise _bad(f"{key}.hidden[{i}]", width, "layer widths must be integers > 0")
    if not isinstance(acts, list) or len(acts) != len(hidden):
        raise _bad(f"{key}.activations", acts, f"needs one activation per hidden layer ({len(hidden)})")
    for i, act in enumerate(acts):
        _activation(f"{key}.activations[{i}]", act)


def _builder_section(cfg: Mapping[str, Any], section: str, build: Callable[[str, dict], Any]) -> None:
    """Check section ``optimizer`` or ``schedule`` by building it: the builder knows its names, its arguments
    and their ranges, and refuses an argument it does not take; its :class:`ArgumentError` becomes a
    ConfigError naming the dotted key."""
    node = get(cfg, section)
    try:
        build(node["name"], builder_args(cfg, section))
    except ArgumentError as exc:
        if exc.arg == "base_lr":
            raise _bad("optimizer.lr", get(cfg, "optimizer.lr"), str(exc)) from None
        if exc.arg in node:
            raise _bad(f"{section}.{exc.arg}", node[exc.arg], str(exc)) from None
        raise ConfigError(f"{section}.{exc.arg}: {exc} ({section}.name={node['name']})") from None


def builder_args(cfg: Mapping[str, Any], section: str) -> dict[str, Any]:
    """The keyword arguments of section ``optimizer`` or ``schedule`` for its builder: every key but ``name``
    (each key of the section is an argument of its builder; validate refuses any other)."""
    return {k: v for k, v in get(cfg, section).items() if k != "name"}


def _known_keys(cfg: Mapping[str, Any], cls: Any = schema.RunConfig, prefix: str = "") -> None:
    """Refuse a key the schema (``gansweep.run.schema``) does not have. Hydra refuses ``model.bogus=1`` and a
    wrong type itself, but ``+model.bogus=1`` adds the key past it. A section typed ``Any`` or ``dict``
    (optimizer, schedule, report) is its owner's to check."""
    hints = typing.get_type_hints(cls)
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            raise _bad(dotted, value, f"not a config key (known here: {', '.join(hints)})")
        sub = hints[key]
        if dotted == "data" and isinstance(value, Mapping) and value.get("name") == "stacked_mnist":
            sub = schema.StackedMnistDataConfig
        if dataclasses.is_dataclass(sub):
            if not isinstance(value, Mapping):
                raise _bad(dotted, value, "must be a section")
            _known_keys(value, sub, f"{dotted}.")


def validate(cfg: Mapping[str, Any]) -> None:
    """Refuse a config that cannot run, naming the key and value. Checks every section the runner reads, and
    refuses a key that no part of the schema reads."""
    _known_keys(cfg)
    _int(cfg, "seed", minimum=0)
    _model(cfg)
    _positive(cfg, "optimizer.lr")  # a run's base rate; the optimizer itself would take 0
    _builder_section(cfg, "optimizer", lambda name, kw: build_optimizer(name, _PROBE, **kw))
    lr = get(cfg, "optimizer.lr")
    _builder_section(cfg, "schedule", lambda name, kw: build_schedule(name, lr, **kw))
    _data(cfg)
    _train(cfg)
    if get(cfg, "eval.enabled"):
        _eval(cfg)


def _model(cfg: Mapping[str, Any]) -> None:
    """The nets, their init, the noise that feeds G and the loss."""
    z_dim = _int(cfg, "model.z_dim")
    _layers(cfg, "model.generator")
    _activation("model.generator.out_activation", get(cfg, "model.generator.out_activation"))
    _layers(cfg, "model.discriminator")
    _choice(cfg, "model.init", INITS)
    _positive(cfg, "model.init_gain")
    noise_dim = get(cfg, "noise.dim")
    if noise_dim != z_dim:
        raise _bad("noise.dim", noise_dim, f"must equal the generator's input size model.z_dim={z_dim}")
    _choice(cfg, "noise.dist", NOISES)
    _choice(cfg, "loss.name", LOSSES)


def _data(cfg: Mapping[str, Any]) -> None:
    """The dataset, its split, scale, sampling and the subsets a run may train on."""
    name = _choice(cfg, "data.name", DATASETS)
    channels, expected = get(cfg, "data.channels"), 3 if name == "stacked_mnist" else 1
    if channels != expected:
        raise _bad("data.channels", channels, f"must be {expected} for data.name={name} (choose data=<name>)")
    if name == "stacked_mnist":
        _int(cfg, "data.eval_samples")
    _choice(cfg, "data.split", SPLITS)
    _choice(cfg, "data.scale", SCALES)
    _choice(cfg, "data.sampling", SAMPLINGS)
    _int(cfg, "data.holdout", minimum=0)
    subset = get(cfg, "data.subset")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset <= 0):
        raise _bad("data.subset", subset, "must be null or an integer > 0")
    classes = get(cfg, "data.classes")
    if classes is not None and (
        not isinstance(classes, list) or not classes or any(c not in range(10) for c in classes)
    ):
        raise _bad("data.classes", classes, "must be null or a non-empty list of digits 0-9")


def _train(cfg: Mapping[str, Any]) -> None:
    """The loop's counts and cadences, the remedies and stabilisers, its dtype, probes and budget."""
    for key in ("iterations", "batch_size", "log_every", "sample_every", "grid_size", "checkpoint_every"):
        _int(cfg, f"train.{key}")
    _remedies(cfg)
    _stabilizers(cfg)
    _choice(cfg, "train.dtype", DTYPES)
    fresh = get(cfg, "train.fresh_grid_every")
    if fresh is not None:
        _int(cfg, "train.fresh_grid_every")
        _int(cfg, "train.fresh_grid_size")
    _imprint_steps(cfg)
    _images(cfg)


def _eval(cfg: Mapping[str, Any]) -> None:
    """The eval points' cadence, sample count, neighbours, mode share and metric groups (when eval is on)."""
    _int(cfg, "eval.every")
    n_samples = _int(cfg, "eval.n_samples", minimum=2)
    k = _int(cfg, "eval.k")
    if k >= n_samples:
        raise _bad("eval.k", k, f"must be below eval.n_samples={n_samples} (k nearest neighbours)")
    share = get(cfg, "eval.mode_share")
    if not isinstance(share, int | float) or not 0 < share < 1:
        raise _bad("eval.mode_share", share, "must be in (0, 1)")
    metrics = get(cfg, "eval.metrics")
    if metrics is not None:
        from gansweep.metrics.evaluator import resolve_groups

        if not isinstance(metrics, list) or not metrics:
            raise _bad("eval.metrics", metrics, "must be null (all) or a non-empty list of metric names")
        try:
            resolve_groups(metrics)
        except ValueError as exc:
            raise _bad("eval.metrics", metrics, str(exc)) from None


def _remedies(cfg: Mapping[str, Any]) -> None:
    """The mode-collapse remedies, and whether they can apply to this batch size."""
    batch = get(cfg, "train.batch_size")
    pack = _int(cfg, "model.pack")
    try:
        packs = n_packs(batch, pack, "train.batch_size")
    except ValueError:
        raise ConfigError(
            f"model.pack={pack}, train.batch_size={batch}: the batch must divide into packs of model.pack "
            f"samples (choose a batch size that is a multiple of {pack}, or model.pack=1)"
        ) from None
    if get(cfg, "model.minibatch_std") and packs < 2:
        raise ConfigError(
            f"model.minibatch_std=true, train.batch_size={batch}, model.pack={pack}: the minibatch standard "
            f"deviation needs at least 2 {'packs' if pack > 1 else 'samples'} per D batch; it has "
            f"{packs} (the post recipe trains with batch 1: set train.batch_size >= {2 * pack})"
        )
    _int(cfg, "train.unroll_steps", minimum=0)


def _stabilizers(cfg: Mapping[str, Any]) -> None:
    """G's weight average (a decay in (0, 1) or null), spectral normalisation of D, BatchNorm in G (which
    needs at least 2 samples per G batch)."""
    decay = get(cfg, "model.g_ema")
    ok = isinstance(decay, int | float) and not isinstance(decay, bool) and 0 < decay < 1
    if decay is not None and not ok:
        raise _bad("model.g_ema", decay, "must be null (off) or a decay in (0, 1), e.g. 0.999")
    batch = get(cfg, "train.batch_size")
    if get(cfg, "model.g_batchnorm") and batch < 2:
        raise ConfigError(
            f"model.g_batchnorm=true, train.batch_size={batch}: BatchNorm normalises over the batch and "
            "needs at least 2 samples per G batch (the post recipe trains with batch 1: set "
            "train.batch_size >= 2, or model.g_batchnorm=false)"
        )


def _images_of(cfg: Mapping[str, Any]) -> int | None:
    images = get(cfg, "train").get("images")
    if images is not None and (isinstance(images, bool) or not isinstance(images, int) or images < 1):
        raise _bad("train.images", images, "must be null or an integer > 0 (images seen per run)")
    return images


def apply_images(cfg: dict[str, Any]) -> dict[str, Any]:
    """``train.images`` (a budget in images seen) set: ``train.iterations`` becomes ceil(images /
    batch_size), so runs at different batch sizes see the same number of real images (issue 25). The
    entry point applies it to the composed config before :func:`validate`; returns ``cfg``."""
    images = _images_of(cfg)
    if images is not None:
        batch = _int(cfg, "train.batch_size")
        cfg["train"]["iterations"] = -(-images // batch)
    return cfg


def _images(cfg: Mapping[str, Any]) -> None:
    """``train.images``: null, or a budget :func:`apply_images` has turned into ``train.iterations``."""
    images = _images_of(cfg)
    if images is None:
        return
    batch, total = _int(cfg, "train.batch_size"), get(cfg, "train.iterations")
    if total != -(-images // batch):
        raise _bad(
            "train.iterations",
            total,
            f"must be ceil(train.images={images} / train.batch_size={batch}) = {-(-images // batch)} when "
            "train.images is set (gansweep.run.config.apply_images sets it)",
        )


def _imprint_steps(cfg: Mapping[str, Any]) -> None:
    """``train.imprint_steps``: null, or distinct iterations in [0, train.iterations]."""
    steps, total = get(cfg, "train").get("imprint_steps"), get(cfg, "train.iterations")
    if steps is None:
        return
    why = f"must be null or a non-empty list of distinct iterations in [0, train.iterations={total}]"
    if not isinstance(steps, list) or not steps or len(set(map(repr, steps))) != len(steps):
        raise _bad("train.imprint_steps", steps, why)
    for i, step in enumerate(steps):
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= total:
            raise _bad(f"train.imprint_steps[{i}]", step, why)


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys and leaf values: ``{"a": {"b": 1}}`` -> ``("a.b", 1)``. Lists stay leaves."""
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{dotted}.")
        else:
            yield dotted, value


def run_params(cfg: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The dotted keys and values a run logs as params: :func:`flatten` without ``report`` and ``flip`` (the
    analysis' instructions, and the values the ablation settings hold already)."""
    return flatten({k: v for k, v in cfg.items() if k not in _NOT_PARAMS})


def config_hash(cfg: Mapping[str, Any]) -> str:
    """A stable digest of what a run computes (tracking, study name and control flags left out, each
    mode-collapse remedy, stabiliser and probe at its off value left out too: see :data:`REMEDIES_OFF`,
    :data:`STABILIZERS_OFF`, :data:`PROBES_OFF`, :data:`BUDGET_OFF`; and each key of :data:`RETIRED` put
    back at the value it had, each value of :data:`RENAMED` under its old name)."""
    kept = {k: v for k, v in cfg.items() if k not in _UNHASHED}
    for key, value in RETIRED.items():
        section, name = key.split(".")
        node = kept.get(section)
        if isinstance(node, Mapping) and name not in node:
            kept[section] = {**node, name: value}
    for key, old_names in RENAMED.items():
        section, name = key.split(".")
        node = kept.get(section)
        if isinstance(node, Mapping) and node.get(name) in old_names:
            kept[section] = {**node, name: old_names[node[name]]}
    for key, off in {**REMEDIES_OFF, **STABILIZERS_OFF, **PROBES_OFF, **BUDGET_OFF}.items():
        section, name = key.split(".")
        node = kept.get(section)
        if isinstance(node, Mapping) and name in node and _same(node[name], off):
            kept[section] = {k: v for k, v in node.items() if k != name}
    blob = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _same(value: Any, off: Any) -> bool:
    """``value == off`` with the type kept apart (True is not the pack size 1)."""
    return type(value) is type(off) and value == off


def real_scale(cfg: Mapping[str, Any]) -> str:
    """The range reals are fed to D in: ``data.scale``, with ``auto`` matching G's output activation."""
    scale = get(cfg, "data.scale")
    if scale != "auto":
        return scale
    return "symmetric" if get(cfg, "model.generator.out_activation") == "tanh" else "unit"
