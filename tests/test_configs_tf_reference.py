"""post=tf_reference, the positive control (issue 25): the TensorFlow GAN the post ported composes to every
fact of gan_tensorflow.py under recipe=tf, validates and builds; a recipe on the command line still wins;
recipe=tf's ablations flip one quirk each to the post's value; its study sweeps 5 seeds."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONF, ROOT
from hydra import compose
from omegaconf import OmegaConf

from gansweep.run.build import build
from gansweep.run.config import flatten, real_scale, validate
from gansweep.run.loop import train_step

pytestmark = pytest.mark.usefixtures("hydra_conf")

QUIRKS = sorted(p.stem for p in (CONF / "ablation").glob("*.yaml") if p.stem not in ("none", "flipped_grad"))


def resolved(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def test_tf_reference_is_the_tensorflow_model_the_post_ported() -> None:
    cfg = resolved(["post=tf_reference"])
    validate(cfg)
    m = cfg["model"]
    assert (m["name"], m["z_dim"], cfg["noise"]) == ("tf_reference", 100, {"dist": "uniform", "dim": 100})
    assert m["generator"] == {"hidden": [128], "activations": ["relu"], "out_activation": "sigmoid"}
    assert m["discriminator"] == {"hidden": [128], "activations": ["relu"]}  # D's logit: sigmoid in the loss
    assert (m["init"], m["init_gain"]) == ("post", 1.0)  # xavier_init: N(0, 1/sqrt(fan_in/2)), no x0.002
    assert (m["pack"], m["minibatch_std"], cfg["train"]["unroll_steps"]) == (1, False, 0)
    assert cfg["loss"] == {"name": "nonsaturating"}  # sigmoid cross-entropy on logits, G: fake -> 1
    assert cfg["optimizer"] == {
        "name": "adam",
        "lr": 1e-3,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "bias_correction": "standard",
    }
    assert cfg["schedule"] == {"name": "constant", "warmup_steps": 0}
    tr = cfg["train"]
    assert (tr["batch_size"], tr["dtype"]) == (128, "float32")
    assert (tr["fresh_grid_every"], tr["fresh_grid_size"]) == (1000, 16)  # its out/ grids
    data = cfg["data"]
    assert (data["name"], data["split"], data["scale"], data["sampling"]) == (
        "mnist",
        "train",
        "unit",
        "epoch",
    )
    assert (data["subset"], data["classes"]) == (None, None)
    assert real_scale(cfg) == "unit"
    src = cfg["source"]
    assert src["run"] == "tf_reference" and src["file"].endswith("GAN/vanilla_gan/gan_tensorflow.py")
    assert src["commit"] and src["lr"] == 1e-3
    assert cfg["flip"]["batch_size"] == 1 and cfg["flip"]["lr"] == 1e-3  # ablations flip to the post's values
    header = (CONF / "post" / "tf_reference.yaml").read_text().split("\ndefaults:")[0]
    assert "Evidence:" in header and "Not modelled:" in header


def test_hydra_records_recipe_tf_as_the_choice() -> None:
    cfg = compose("config", overrides=["post=tf_reference"], return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    assert (choices.recipe, choices.optimizer, choices.model, choices.loss) == (
        "tf",
        "adam_tf",
        "tf_reference",
        "nonsaturating",
    )


def test_tf_reference_builds_and_trains_as_its_script() -> None:
    cfg = resolved(["post=tf_reference", "data.subset=1000"])
    setup = build(cfg)
    G, D = setup.gan.G, setup.gan.D
    assert G.dtype == D.dtype == np.float32 and setup.fixed_z.dtype == np.float32
    shapes = {k: v.shape for k, v in {**G.params, **D.params}.items()}
    assert shapes == {
        "G.0.W": (100, 128),
        "G.0.b": (128,),
        "G.1.W": (128, 784),
        "G.1.b": (784,),
        "D.0.W": (784, 128),
        "D.0.b": (128,),
        "D.1.W": (128, 1),
        "D.1.b": (1,),
    }
    for name, value in {**G.params, **D.params}.items():
        if name.endswith(".b"):
            assert not value.any(), name  # tf.zeros
        elif value.size > 1000:  # xavier_init's std 1/sqrt(fan_in/2), within sampling error
            assert value.std() == pytest.approx(1 / np.sqrt(value.shape[0] / 2), rel=0.05), name
    assert setup.sampler.mode == "epoch" and setup.sampler.batch_size == 128
    assert setup.reals.dtype == np.float32 and 0 <= setup.reals.min() and setup.reals.max() == 1
    z = setup.gan.sample_z(1000, np.random.default_rng(0))
    assert z.min() >= -1 and z.max() < 1 and abs(z.mean()) < 0.01
    _, stats = train_step(setup, real_scale(cfg), 128, 0)
    assert np.isfinite(list(stats.values())).all()


def test_a_recipe_on_the_command_line_beats_the_one_tf_reference_selects() -> None:
    post = resolved(["post=tf_reference", "recipe=post"])
    validate(post)
    assert post["model"]["name"] == "tf_reference" and post["flip"]["batch_size"] == 64
    assert (post["train"]["batch_size"], post["train"]["dtype"], post["model"]["init_gain"]) == (
        1,
        "float64",
        0.002,
    )
    assert (post["data"]["scale"], post["optimizer"]["bias_correction"]) == ("raw255", "post_constant")
    assert post["optimizer"]["lr"] == 1e-3  # the run's own lr (source.lr), as for every post run
    modern = resolved(["post=tf_reference", "recipe=modern"])
    assert (modern["model"]["init"], modern["optimizer"]["lr"], modern["train"]["batch_size"]) == (
        "he_normal",
        2e-4,
        64,
    )
    # and a key set on the command line beats recipe=tf
    own = resolved(["post=tf_reference", "train.batch_size=32", "loss=hinge"])
    assert (own["train"]["batch_size"], own["loss"]["name"]) == (32, "hinge")


def test_recipe_tf_is_tf_reference_without_its_model_and_source() -> None:
    tf, ref = resolved(["recipe=tf"]), resolved(["post=tf_reference"])
    validate(tf)
    for section in ("optimizer", "loss", "data"):
        assert tf[section] == ref[section], section
    assert (tf["model"]["init"], tf["model"]["init_gain"]) == (
        ref["model"]["init"],
        ref["model"]["init_gain"],
    )
    assert (tf["train"]["batch_size"], tf["train"]["dtype"]) == (128, "float32")


@pytest.mark.parametrize("ablation", QUIRKS)
def test_each_ablation_of_recipe_tf_flips_one_quirk_to_the_post(ablation: str) -> None:
    """On the post's failed run 1 (lr 3e-5). On tf_reference itself the post's Adam settings are TensorFlow's
    (the post's recipe takes each run's own lr), so there ablation=adam_hparams changes nothing."""
    base = dict(flatten(resolved(["post=failed1", "recipe=tf", "ablation=none"])))
    flipped = dict(flatten(resolved(["post=failed1", "recipe=tf", f"ablation={ablation}"])))
    changed = {k for k in base if base[k] != flipped[k]}
    assert changed, f"ablation={ablation} changed nothing from recipe=tf"
    post = dict(flatten(resolved(["post=failed1", "recipe=post"])))
    for key in changed:
        assert flipped[key] == post[key], f"{key}: {flipped[key]!r} is not the post's {post[key]!r}"
    assert len({k.split(".")[0] for k in changed}) == 1, sorted(changed)
    if ablation == "adam_hparams":
        assert resolved(["post=tf_reference", "ablation=adam_hparams"]) == resolved(["post=tf_reference"])


def test_the_tf_reference_study_runs_the_control_on_five_seeds_past_the_goal_grids() -> None:
    from test_configs import sweep_jobs

    jobs = sweep_jobs("tf_reference")
    assert len(jobs) == 5
    seeds = []
    for job in jobs:
        cfg = resolved(job)
        assert cfg["source"]["run"] == "tf_reference" and cfg["optimizer"]["lr"] == 1e-3
        assert cfg["train"]["iterations"] >= 80_000  # the author kept the TF grids to at least 80,000
        assert cfg["train"]["batch_size"] == 128 and cfg["eval"]["enabled"]
        seeds.append(cfg["seed"])
    assert seeds == [0, 1, 2, 3, 4]
    text = (ROOT / "experiments" / "tf_reference.yaml").read_text().split("study:")[0]
    assert "Measured:" in text and "experiment=tf_reference" in text
