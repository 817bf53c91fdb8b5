"""The stabilisers in real runs: conf/stabilizer composes with every recipe and remedy, bad values are refused
naming the key, the config hash of every config from before them is unchanged, a run resumed from its
checkpoint ends bit-identical with each on, and with G's average on the eval points score the averaged G and
log the trained G's figures as eval_raw/ (tracking off)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CONF, RESUMABLE, stopped_and_resumed
from hydra import compose
from omegaconf import OmegaConf

from gansweep.run import contract
from gansweep.run.build import build
from gansweep.run.checkpoint import load_checkpoint
from gansweep.run.config import ConfigError, config_hash, run_params, validate
from gansweep.run.logger import NullLogger
from gansweep.run.loop import train

pytestmark = pytest.mark.usefixtures("hydra_conf")

STABILIZERS = sorted(p.stem for p in (CONF / "stabilizer").glob("*.yaml"))
RECIPES = sorted(p.stem for p in (CONF / "recipe").glob("*.yaml"))
REMEDIES = sorted(p.stem for p in (CONF / "remedy").glob("*.yaml"))
KEYS = ("g_ema", "spectral_norm", "g_batchnorm")


def resolved(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def test_each_stabilizer_option_sets_its_key() -> None:
    assert STABILIZERS == ["bn", "ema", "none", "sn"]
    want = {
        "none": (None, False, False),
        "ema": (0.999, False, False),
        "sn": (None, True, False),
        "bn": (None, False, True),
    }
    for name, values in want.items():
        cfg = resolved(["recipe=modern", f"stabilizer={name}"])
        assert tuple(cfg["model"][k] for k in KEYS) == values
        params = dict(run_params(cfg))
        assert tuple(params[f"model.{k}"] for k in KEYS) == values
    both = resolved(["recipe=modern", "stabilizer=[ema,sn,bn]"])
    assert tuple(both["model"][k] for k in KEYS) == (0.999, True, True)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_stabilizer_composes_with_every_recipe_and_remedy(recipe: str) -> None:
    """Each combination validates, except what cannot apply at the post recipe's batch of 1 (packing,
    minibatch std, BatchNorm), which is refused naming its key; the stabiliser's keys survive the remedy's."""
    for stabilizer in [*STABILIZERS, "[ema,sn,bn]"]:
        for remedy in REMEDIES:
            cfg = resolved([f"recipe={recipe}", f"remedy={remedy}", f"stabilizer={stabilizer}"])
            batch1 = cfg["train"]["batch_size"] == 1
            refused = batch1 and (
                remedy in ("pack2", "pack4", "minibatch_std") or cfg["model"]["g_batchnorm"]
            )
            if not refused:
                validate(cfg)
                continue
            with pytest.raises(ConfigError) as err:
                validate(cfg)
            assert "train.batch_size=1" in str(err.value)
            named = "model.g_batchnorm=true" if remedy in ("none", "unrolled5") else "model."
            assert named in str(err.value)
    validate(resolved(["post=failed1", "stabilizer=[ema,sn]", "remedy=unrolled5"]))  # batch 1


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["post=failed1", "stabilizer=bn"], ("model.g_batchnorm=true", "train.batch_size=1")),
        (["recipe=modern", "model.g_ema=1"], ("model.g_ema=1", "(0, 1)")),
        (["recipe=modern", "model.g_ema=1.0"], ("model.g_ema=1.0",)),
        (["recipe=modern", "model.g_ema=0"], ("model.g_ema=0",)),
        (["recipe=modern", "model.g_ema=-0.5"], ("model.g_ema=-0.5",)),
        (["recipe=modern", "model.g_ema=true"], ("model.g_ema=true",)),
        (["recipe=modern", "model.g_ema=fast"], ("model.g_ema='fast'",)),
    ],
)
def test_a_bad_stabilizer_value_is_refused_naming_its_key(overrides: list[str], named: tuple) -> None:
    with pytest.raises(ConfigError) as err:
        validate(resolved(overrides))
    for text in named:
        assert text in str(err.value), str(err.value)


@pytest.mark.parametrize("override", ["model.spectral_norm=maybe", "model.g_batchnorm=maybe"])
def test_a_stabilizer_switch_that_is_no_bool_is_refused_by_the_schema(override: str) -> None:
    """The schema types the switches as bools: Hydra refuses another value while composing, naming the key
    (OmegaConf reads 1/0 and yes/no as true/false)."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as err:
        resolved(["recipe=modern", override])
    assert override.split("=")[0] in f"{err.value} {err.value.__cause__}"


# Hashes of configs from before the stabilisers (computed on commit 1b10ea3, before they existed): runs and
# checkpoints of these configs must still be found and resumed.
KNOWN_HASHES = {
    ("recipe=modern",): "01d0f9537818bfc5",
    ("post=failed1",): "fb0a83ba676bcfa1",
    ("model=modern_mlp", "recipe=modern", "data=stacked_mnist", "remedy=pack4"): "4e4afb7adb36b784",
}


def test_stabilizers_off_leave_the_config_hash_as_it_was_and_on_change_it() -> None:
    for overrides, digest in KNOWN_HASHES.items():
        assert config_hash(resolved(list(overrides))) == digest
        assert config_hash(resolved([*overrides, "stabilizer=none"])) == digest
    cfg = resolved(["recipe=modern"])
    bare = {**cfg, "model": {k: v for k, v in cfg["model"].items() if k not in KEYS}}
    assert config_hash(bare) == config_hash(cfg)
    options = ["ema", "sn", "bn", "[ema,sn,bn]", "[ema,sn]"]
    hashes = {config_hash(resolved(["recipe=modern", f"stabilizer={s}"])) for s in options}
    assert len(hashes) == len(options) and KNOWN_HASHES[("recipe=modern",)] not in hashes
    assert config_hash(resolved(["recipe=modern", "model.g_ema=0.99"])) not in hashes


def test_build_wires_each_switch_into_the_nets_and_draws_u_from_its_own_stream() -> None:
    cfg = resolved(["model=failed1", "recipe=modern", "stabilizer=[ema,sn,bn]", "data.subset=256"])
    validate(cfg)
    setup = build(cfg)
    gan = setup.gan
    assert gan.g_ema is not None and gan.g_ema.decay == 0.999
    assert gan.G.batchnorm and gan.D.spectral_norm and not gan.D.batchnorm and not gan.G.spectral_norm
    plain = build(resolved(["model=failed1", "recipe=modern", "data.subset=256"]))
    # the weights, the fixed noise and the data order are drawn as without the stabilisers
    for name, v in plain.gan.D.params.items():
        np.testing.assert_array_equal(gan.D.params[name], v)
    np.testing.assert_array_equal(setup.fixed_z, plain.fixed_z)
    np.testing.assert_array_equal(setup.sampler.next_indices(), plain.sampler.next_indices())
    other = build(resolved(["model=failed1", "recipe=modern", "stabilizer=sn", "data.subset=256", "seed=1"]))
    assert np.any(other.gan.D.state["D.0.sn_u"] != gan.D.state["D.0.sn_u"])


LONG = list(RESUMABLE)


def _final(path: Path) -> dict[str, np.ndarray]:
    kept = ("param/", "opt_", "rng/", "sampler/", "buffer/", "ema/", "frames")
    return {k: v for k, v in load_checkpoint(path).items() if k.startswith(kept)}


@pytest.mark.parametrize(
    "overrides",
    [
        ["stabilizer=ema", "model.g_ema=0.9"],
        ["stabilizer=sn"],
        ["stabilizer=bn"],
        ["stabilizer=[ema,sn,bn]", "remedy=unrolled5", "model.pack=2", "model.minibatch_std=true"],
        ["stabilizer=[ema,sn,bn]", "data=stacked_mnist", "remedy=pack4"],
        ["stabilizer=[ema,sn]", "post=failed1", "remedy=unrolled5", "data.subset=null", "train.batch_size=1"],
    ],
    ids=["ema", "sn", "bn", "all+unroll+pack2+std", "all-stacked-pack4", "ema+sn-post-recipe"],
)
def test_a_run_with_stabilizers_resumed_from_its_checkpoint_is_bit_identical(
    tmp_path: Path, overrides: list[str]
) -> None:
    cfg = resolved([*LONG, *overrides])
    validate(cfg)
    full, resumed = stopped_and_resumed(cfg, tmp_path)
    a, b = _final(full.checkpoint), _final(resumed.checkpoint)
    assert a.keys() == b.keys()
    setup = build(cfg)
    if setup.gan.g_ema is not None:
        assert int(a["ema/t"]) == 12 and "ema/G.0.W" in a
    assert any(k.startswith("buffer/") for k in a) == (setup.gan.G.batchnorm or setup.gan.D.spectral_norm)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    timing = ("img_per_s",)
    same = {k: v for k, v in resumed.final.items() if k not in timing}
    assert same == {k: v for k, v in full.final.items() if k not in timing}


def test_a_checkpoint_without_the_stabilizers_state_is_refused_naming_the_tensor(tmp_path: Path) -> None:
    plain = train(resolved(LONG), logger=NullLogger(), workdir=tmp_path / "plain")
    cfg = resolved([*LONG, "stabilizer=sn"])
    with pytest.raises(ValueError, match=r"buffer/D\.0\.sn_u"):
        train(
            cfg, logger=NullLogger(), workdir=tmp_path / "sn", resume_state=load_checkpoint(plain.checkpoint)
        )


class _MeanEvaluator:
    """Figures that are functions of the samples (the real evaluator is tested elsewhere)."""

    def evaluate(self, samples: np.ndarray, *, metrics=None, **kwargs) -> dict[str, float]:
        mean = float(np.mean(samples))
        groups = {"fd": {"fd": mean}, "modes": {"modes_covered": 10 * mean, "kl_to_uniform": mean / 2}}
        return {
            k: v
            for g, figures in groups.items()
            if metrics is None or g in metrics
            for k, v in figures.items()
        }

    def evaluate_stacked(self, samples: np.ndarray) -> dict[str, float]:
        return {"stacked_modes_covered": float(np.mean(samples)), "stacked_kl_to_uniform": 1.0}


def test_with_g_ema_an_eval_point_scores_the_averaged_g_and_logs_the_trained_gs_figures(
    tmp_path: Path,
) -> None:
    """Training is the same with and without the average: the EMA run's eval_raw/ figures are the plain
    run's eval/ figures, its eval/ figures those of the averaged G; without it nothing eval_raw/ is logged."""
    run = [*LONG, "eval=default", "eval.every=6", "eval.n_samples=50", "eval.stretched=false"]
    plain_cfg, ema_cfg = resolved(run), resolved([*run, "stabilizer=ema"])
    plain = train(plain_cfg, logger=NullLogger(), workdir=tmp_path / "plain", evaluator=_MeanEvaluator())
    ema = train(ema_cfg, logger=NullLogger(), workdir=tmp_path / "ema", evaluator=_MeanEvaluator())
    assert not any(k.startswith(contract.EVAL_RAW_PREFIX) for k in plain.final)
    raw = {
        k.removeprefix(contract.EVAL_RAW_PREFIX): v
        for k, v in ema.final.items()
        if k.startswith(contract.EVAL_RAW_PREFIX)
    }
    assert sorted(raw) == sorted(contract.RAW_FIGURES)
    assert raw == {f: plain.final[contract.EVAL_PREFIX + f] for f in contract.RAW_FIGURES}
    assert ema.final[contract.FD] != plain.final[contract.FD]  # the averaged G's samples
    a, b = load_checkpoint(plain.checkpoint), load_checkpoint(ema.checkpoint)
    for key in (k for k in a if k.startswith("param/")):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the fd-only eval: only eval_raw/fd
    fd_only = resolved([*run, "stabilizer=ema", "eval.metrics=[fd]"])
    scores = train(fd_only, logger=NullLogger(), workdir=tmp_path / "fd", evaluator=_MeanEvaluator()).final
    assert [k for k in scores if k.startswith(contract.EVAL_RAW_PREFIX)] == [contract.RAW_FD]
    stacked = resolved([*run, "stabilizer=ema", "data=stacked_mnist", "data.eval_samples=60"])
    scores = train(stacked, logger=NullLogger(), workdir=tmp_path / "st", evaluator=_MeanEvaluator()).final
    raw = sorted(
        k.removeprefix(contract.EVAL_RAW_PREFIX) for k in scores if k.startswith(contract.EVAL_RAW_PREFIX)
    )
    assert raw == sorted(contract.RAW_STACKED_FIGURES)
