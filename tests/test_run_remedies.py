"""The remedies in real runs: config keys and refusals, the config hash, Stacked MNIST shapes, params, and a
run stopped and resumed from its checkpoint ending bit-identical to one never stopped (tracking off)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CONF, RESUMABLE, stopped_and_resumed
from hydra import compose
from omegaconf import OmegaConf

from gansweep.run.build import build
from gansweep.run.checkpoint import load_checkpoint
from gansweep.run.config import ConfigError, config_hash, real_scale, run_params, validate
from gansweep.run.loop import train_step

pytestmark = pytest.mark.usefixtures("hydra_conf")

REMEDIES = sorted(p.stem for p in (CONF / "remedy").glob("*.yaml"))


def resolved(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def test_each_remedy_option_sets_its_key_and_composes_with_both_recipes() -> None:
    assert REMEDIES == ["minibatch_std", "none", "pack2", "pack4", "unrolled5"]
    want = {
        "none": (1, False, 0),
        "pack2": (2, False, 0),
        "pack4": (4, False, 0),
        "minibatch_std": (1, True, 0),
        "unrolled5": (1, False, 5),
    }
    for remedy, (pack, std, unroll) in want.items():
        cfg = resolved(["recipe=modern", f"remedy={remedy}"])
        validate(cfg)
        assert (cfg["model"]["pack"], cfg["model"]["minibatch_std"], cfg["train"]["unroll_steps"]) == (
            pack,
            std,
            unroll,
        )
        params = dict(run_params(cfg))  # logged as params like every other key
        assert (params["model.pack"], params["model.minibatch_std"], params["train.unroll_steps"]) == (
            pack,
            std,
            unroll,
        )
    validate(resolved(["recipe=post", "remedy=unrolled5"]))  # unrolling works at the post's batch 1


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["recipe=post", "remedy=pack2"], ("model.pack=2", "train.batch_size=1")),
        (["recipe=modern", "model.pack=5"], ("model.pack=5", "train.batch_size=64")),
        (["recipe=modern", "model.pack=0"], ("model.pack=0",)),
        (["recipe=post", "remedy=minibatch_std"], ("model.minibatch_std=true", "train.batch_size=1")),
        (["recipe=modern", "remedy=minibatch_std", "model.pack=4", "train.batch_size=4"], ("model.pack=4",)),
        (["recipe=modern", "train.unroll_steps=-1"], ("train.unroll_steps=-1",)),
    ],
)
def test_a_remedy_that_cannot_apply_is_refused_naming_its_key(overrides: list[str], named: tuple) -> None:
    with pytest.raises(ConfigError) as err:
        validate(resolved(overrides))
    for text in named:
        assert text in str(err.value), str(err.value)


@pytest.mark.parametrize("override", ["model.minibatch_std=maybe", "train.unroll_steps=2.5"])
def test_a_remedy_value_of_the_wrong_type_is_refused_by_the_schema(override: str) -> None:
    """A bool switch that is no bool, a step count that is no integer: Hydra refuses them while composing,
    naming the key (gansweep/run/schema.py)."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as err:
        resolved(["recipe=modern", override])
    assert override.split("=")[0] in f"{err.value} {err.value.__cause__}"


def test_remedies_off_leave_the_config_hash_as_it_was_and_on_change_it() -> None:
    cfg = resolved(["recipe=modern"])
    bare = {
        **cfg,
        "model": {k: v for k, v in cfg["model"].items() if k not in ("pack", "minibatch_std")},
        "train": {k: v for k, v in cfg["train"].items() if k != "unroll_steps"},
    }
    none = resolved(["recipe=modern", "remedy=none"])
    assert config_hash(cfg) == config_hash(bare) == config_hash(none)
    hashes = {config_hash(resolved(["recipe=modern", f"remedy={r}"])) for r in REMEDIES}
    assert len(hashes) == len(REMEDIES)


@pytest.mark.parametrize("pack", [1, 2])
def test_stacked_mnist_builds_g_with_3x784_outputs_and_d_with_3x784xm_inputs(pack: int) -> None:
    data = ["data=stacked_mnist", f"model.pack={pack}", "train.batch_size=8"]
    cfg = resolved(["model=modern_mlp", "recipe=modern", *data])
    validate(cfg)
    setup = build(cfg)
    assert setup.gan.G.out_dim == 3 * 784 and setup.gan.D.in_dim == 3 * 784 * pack
    _, stats = train_step(setup, real_scale(cfg), 8, 0)
    assert all(np.isfinite(v) for v in stats.values())


LONG = list(RESUMABLE)


def _final(path: Path) -> dict[str, np.ndarray]:
    kept = ("param/", "opt_", "rng/", "sampler/")
    return {k: v for k, v in load_checkpoint(path).items() if k.startswith(kept)}


@pytest.mark.parametrize(
    "remedy",
    [
        ["model.pack=2", "model.minibatch_std=true", "train.unroll_steps=2"],
        ["remedy=unrolled5", "optimizer=sgd"],
        ["remedy=pack4", "data=stacked_mnist"],
        ["remedy=unrolled5", "recipe=post", "train.batch_size=1", "data.subset=null"],
    ],
    ids=["pack2+std+unroll2", "unrolled5-sgd", "pack4-stacked", "unrolled5-post-recipe"],
)
def test_a_run_with_remedies_resumed_from_its_checkpoint_is_bit_identical(
    tmp_path: Path, remedy: list[str]
) -> None:
    cfg = resolved([*LONG, *remedy])
    validate(cfg)
    full, resumed = stopped_and_resumed(cfg, tmp_path)
    a, b = _final(full.checkpoint), _final(resumed.checkpoint)
    assert a.keys() == b.keys() and any(k.startswith("opt_d/") for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    timing = ("img_per_s",)
    same = {k: v for k, v in resumed.final.items() if k not in timing}
    assert same == {k: v for k, v in full.final.items() if k not in timing}  # the same logged averages


class _Evaluator:
    """Records what a Stacked-MNIST eval point asks of the evaluator (the real one is tested elsewhere)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, object]] = []

    def evaluate_stacked(self, samples: np.ndarray) -> dict[str, float]:
        self.calls.append(("stacked", samples.shape, None))
        return {"stacked_modes_covered": 7.0, "stacked_kl_to_uniform": 5.0}

    def evaluate(self, samples: np.ndarray, *, metrics, **kwargs) -> dict[str, float]:
        self.calls.append(("evaluate", samples.shape, tuple(metrics)))
        return {"fd": 1.0, "precision": 0.5, "recall": 0.25}


def test_a_stacked_eval_point_scores_data_eval_samples_and_the_channel_digits(tmp_path: Path) -> None:
    from gansweep.run.evaluate import evaluate

    cfg = resolved(["recipe=modern", "data=stacked_mnist", "data.eval_samples=300", "eval.n_samples=100"])
    validate(cfg)
    ev = _Evaluator()
    scores = evaluate(build(cfg), ev, cfg, 0)
    assert ev.calls == [("stacked", (300, 3 * 784), None), ("evaluate", (100, 784), ("fd", "prdc"))]
    assert scores == {
        "eval/stacked_modes_covered": 7.0,
        "eval/stacked_kl_to_uniform": 5.0,
        "eval/fd": 1.0,
        "eval/precision": 0.5,
        "eval/recall": 0.25,
    }
    with pytest.raises(ConfigError, match=r"data\.eval_samples=5: not a config key"):
        validate(resolved(["recipe=modern", "+data.eval_samples=5"]))
