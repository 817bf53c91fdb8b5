"""Every config composes and validates: each group option, each study job; bad input is refused."""

from __future__ import annotations

import pytest
from conftest import CONF, ROOT
from hydra import compose
from omegaconf import OmegaConf

from gansweep.run.config import (
    ConfigError,
    apply_images,
    config_hash,
    flatten,
    real_scale,
    run_params,
    validate,
)
from gansweep.search.space import is_optuna_sweeper, parse_space

GROUPS = (
    "model",
    "loss",
    "optimizer",
    "schedule",
    "data",
    "train",
    "eval",
    "tracking",
    "recipe",
    "post",
    "ablation",
    "remedy",
)
STUDIES = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))


pytestmark = pytest.mark.usefixtures("hydra_conf")


def resolved(overrides: list[str]) -> dict:
    return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_option_composes_and_validates(group: str) -> None:
    assert options(group), f"group {group} has no options"
    for option in options(group):
        extra = ["optimizer.lr=1e-3"] if group == "optimizer" else []
        if group == "remedy":  # the default recipe (post, batch 1) refuses packing and minibatch std
            extra = ["recipe=modern"]
        cfg = resolved([f"{group}={option}", *extra])
        validate(cfg)


def sweep_jobs(study: str) -> list[list[str]]:
    """The job override lists Hydra's basic sweeper makes from a study's sweeper params (for a search,
    hydra/sweeper=optuna: the trials at the low and the high corner of its space)."""
    cfg = compose("config", overrides=[f"experiment={study}"], return_hydra_config=True)
    if is_optuna_sweeper(cfg):
        space = parse_space(OmegaConf.to_container(cfg.hydra.sweeper.params), [])
        return [[f"experiment={study}", *corner] for corner in space.corners()]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = cfg.hydra.sweeper.params or {}
    # Hydra's own parser: a value may be a list of group options (ablation=[init,scale]) holding commas
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return [
        [f"experiment={study}", *job] for batch in BasicSweeper.split_arguments(parsed, None) for job in batch
    ]


@pytest.mark.parametrize("study", STUDIES)
def test_every_job_of_every_study_composes_and_validates(study: str) -> None:
    jobs = sweep_jobs(study)
    assert len(jobs) >= 2, f"{study} sweeps nothing"
    hashes = set()
    for job in jobs:
        cfg = apply_images(resolved(job))  # as the entry point does
        validate(cfg)
        assert cfg["study"] == study
        hashes.add(config_hash(cfg))
    assert len(hashes) == len(jobs), f"{study}: two jobs compose to the same config"


def test_study_files_carry_their_command_and_the_readme_lists_them() -> None:
    readme = (ROOT / "experiments" / "README.md").read_text()
    for study in STUDIES:
        text = (ROOT / "experiments" / f"{study}.yaml").read_text()
        assert f"experiment={study}" in text.split("study:")[0], f"{study}: no command in its header"
        assert f"`{study}`" in readme


POST = {  # the post's generators: (z size, hidden sizes, hidden activations)
    "failed1": (100, [200, 560], ["arctan", "relu"]),
    "failed2": (100, [245, 960], ["tanh", "relu"]),
    "failed3": (326, [326, 356, 412], ["arctan", "relu", "arctan"]),
    "failed4": (350, [420, 640], ["arctan", "relu"]),
    "failed5": (600, [660, 780], ["arctan", "relu"]),
    "failed6": (200, [320, 480], ["arctan", "relu"]),
    "extreme_decay": (
        100,
        [128, 256, 346, 480, 560, 686],
        ["arctan", "relu", "arctan", "relu", "tanh", "relu"],
    ),
    "extreme_decay_3layer": (300, [356, 512, 686], ["arctan", "relu", "arctan"]),
}


@pytest.mark.parametrize("model", sorted(POST))
def test_post_architectures_match_the_post(model: str) -> None:
    z, hidden, acts = POST[model]
    cfg = resolved([f"model={model}"])
    m = cfg["model"]
    assert (m["z_dim"], m["generator"]["hidden"], m["generator"]["activations"]) == (z, hidden, acts)
    assert m["generator"]["out_activation"] == "sigmoid"
    assert m["discriminator"] == {"hidden": [hidden[0]], "activations": ["relu"]}  # D tied to G's first layer
    assert cfg["noise"]["dim"] == z


def test_post_recipe_is_the_post() -> None:
    cfg = resolved(["recipe=post"])
    assert cfg["train"]["batch_size"] == 1 and cfg["train"]["dtype"] == "float64"
    assert (cfg["model"]["init"], cfg["model"]["init_gain"]) == ("post", 0.002)
    opt = cfg["optimizer"]
    assert (opt["name"], opt["lr"], opt["beta1"], opt["beta2"], opt["eps"]) == (
        "adam",
        3e-5,
        0.9,
        0.999,
        1e-8,
    )
    assert opt["bias_correction"] == "post_constant"
    assert (cfg["data"]["split"], cfg["data"]["scale"], cfg["data"]["sampling"]) == (
        "test",
        "raw255",
        "post_random",
    )
    assert cfg["loss"]["name"] == "post"
    assert cfg["noise"]["dist"] == "uniform"
    assert cfg["data"]["holdout"] == 10


@pytest.mark.parametrize(
    ("run", "model", "lr", "source_file"),
    [
        ("failed1", "failed1", 3e-5, None),
        ("failed5", "failed5", 3e-5, "f_Generator_Multilayer.py"),
        ("failed6", "failed6", 3e-6, None),
    ],
)
def test_post_runs_as_their_code_ran(run: str, model: str, lr: float, source_file: str | None) -> None:
    cfg = resolved([f"post={run}"])
    assert cfg["model"]["name"] == model and cfg["optimizer"]["lr"] == lr
    assert cfg["train"]["dtype"] == "float64" and cfg["loss"]["name"] == "post"
    assert cfg["source"]["run"] == run and cfg["source"]["file"] == source_file
    assert cfg["schedule"]["name"] == "constant"
    # the modern recipe keeps its own lr on the post's architectures
    assert resolved([f"post={run}", "recipe=modern"])["optimizer"]["lr"] == 2e-4


def test_every_post_config_cites_its_source() -> None:
    for path in sorted((CONF / "post").glob("*.yaml")):
        text = path.read_text()
        assert "Evidence:" in text, f"{path.name} does not say where its facts come from"


def test_modern_recipe() -> None:
    cfg = resolved(["recipe=modern"])
    assert cfg["train"]["batch_size"] == 64 and cfg["model"]["init"] == "he_normal"
    opt = cfg["optimizer"]
    assert (opt["lr"], opt["beta1"], opt["bias_correction"]) == (2e-4, 0.5, "standard")
    assert cfg["data"]["split"] == "train" and cfg["loss"]["name"] == "nonsaturating"
    assert real_scale(cfg) == "unit"
    assert real_scale(resolved(["recipe=modern", "model.generator.out_activation=tanh"])) == "symmetric"


def test_the_extreme_decay() -> None:
    cfg = resolved(["post=extreme_decay"])
    assert cfg["model"]["name"] == "extreme_decay"
    assert cfg["schedule"]["name"] == "post_extreme_decay"
    assert (cfg["schedule"]["milestones"], cfg["schedule"]["gamma"]) == ([1, 41], [0.01, 0.01])
    assert cfg["loss"]["name"] == "post"
    assert cfg["optimizer"]["lr"] == 9e-5 and cfg["data"]["holdout"] == 5


def test_the_second_extreme_decay_file() -> None:
    cfg = resolved(["post=extreme_decay_3layer"])
    assert cfg["model"]["name"] == "extreme_decay_3layer" and cfg["optimizer"]["lr"] == 3e-5
    assert (cfg["schedule"]["milestones"], cfg["schedule"]["gamma"]) == ([1, 31], [0.01, 0.001])


FLIPS = {"post": "modern", "modern": "post", "tf": "post"}  # each recipe's ablations take this one's values
# Where each value of a recipe's `flip` block goes
FLIP_KEYS = {
    "batch_size": "train.batch_size",
    "init": "model.init",
    "init_gain": "model.init_gain",
    "bias_correction": "optimizer.bias_correction",
    "beta1": "optimizer.beta1",
    "lr": "optimizer.lr",
    "split": "data.split",
    "scale": "data.scale",
    "sampling": "data.sampling",
    "dtype": "train.dtype",
}


@pytest.mark.parametrize("recipe", sorted(FLIPS))
def test_each_recipes_flip_block_holds_the_other_recipes_values(recipe: str) -> None:
    """The values a recipe's ablations switch to are stated in its file; they must be the other recipe's."""
    flip = resolved([f"recipe={recipe}"])["flip"]
    other = dict(flatten(resolved([f"recipe={FLIPS[recipe]}"])))
    assert flip == {key: other[dotted] for key, dotted in FLIP_KEYS.items()}
    for key in ("init_gain", "lr"):  # the same type too: 1.0 and 1 are two config hashes
        assert type(flip[key]) is type(other[FLIP_KEYS[key]])


@pytest.mark.parametrize("recipe", sorted(FLIPS))
@pytest.mark.parametrize("ablation", [a for a in options("ablation") if a not in ("none", "flipped_grad")])
def test_each_ablation_flips_exactly_one_quirk(recipe: str, ablation: str) -> None:
    base = dict(flatten(resolved([f"recipe={recipe}", "ablation=none"])))
    flipped = dict(flatten(resolved([f"recipe={recipe}", f"ablation={ablation}"])))
    changed = {k for k in base if base[k] != flipped[k]}
    assert changed, f"ablation={ablation} changed nothing from recipe={recipe}"
    other = dict(flatten(resolved([f"recipe={FLIPS[recipe]}"])))
    for key in changed:
        assert flipped[key] == other[key], f"{key}: {flipped[key]!r} is not the other recipe's {other[key]!r}"
    section = {k.split(".")[0] for k in changed}
    assert len(section) == 1, f"ablation={ablation} touched several sections: {sorted(changed)}"


def test_user_override_beats_the_recipe() -> None:
    cfg = resolved(["recipe=post", "loss=hinge", "data.scale=unit", "train.batch_size=8"])
    assert (cfg["loss"]["name"], cfg["data"]["scale"], cfg["train"]["batch_size"]) == ("hinge", "unit", 8)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.generator.hidden=[200,-5]", "model.generator.hidden[1]"),
        ("model.z_dim=0", "model.z_dim"),
        ("train.batch_size=0", "train.batch_size"),
        ("optimizer.lr=0", "optimizer.lr"),
        ("optimizer.lr=-0.001", "optimizer.lr"),
        ("optimizer.beta1=1.0", "optimizer.beta1"),
        ("noise.dim=64", "noise.dim"),
        ("model.generator.activations=[arctan,swish]", "model.generator.activations[1]"),
        ("data.classes=[3,11]", "data.classes"),
        ("model.generator.activations=[arctan,leaky_relu:1.5]", "model.generator.activations[1]"),
        ("train.iterations=-10", "train.iterations"),
        ("seed=-1", "seed"),
        ("eval.k=1000", "eval.k"),
        ("eval.metrics=[modes,bogus]", "eval.metrics"),
        ("data.channels=3", "data.channels"),
        ("schedule=cosine schedule.min_lr=0.5", "schedule.min_lr"),
        ("optimizer=sgd optimizer.nesterov=maybe", "optimizer.nesterov"),
        ("optimizer=sgd optimizer.momentum=0 optimizer.nesterov=true", "optimizer.nesterov"),
    ],
)
def test_bad_values_are_refused_naming_key_and_value(override: str, key: str) -> None:
    cfg = resolved(override.split(" "))
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    value = override.split(" ")[-1].split("=", 1)[1]
    assert key in str(err.value)
    assert any(part in str(err.value) for part in (value, value.strip("[]").split(",")[-1])), str(err.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.iterations=abc", "train.iterations"),
        ("train.iterations=1.5", "train.iterations"),
        ("train.stop_on_nan=maybe", "train.stop_on_nan"),
        ("eval.stretched=maybe", "eval.stretched"),
        ("model.generator.hidden=[200,abc]", "model.generator.hidden[1]"),
        ("model.bogus=1", "model.bogus"),
        ("train.fault_at=3", "train.fault_at"),  # retired (issue 27): the tests inject faults from outside
        ("data.eval_samples=5", "data.eval_samples"),
    ],
)
def test_hydra_refuses_a_wrong_type_or_unknown_key_naming_it(override: str, key: str) -> None:
    """The schema (gansweep/run/schema.py) types every key: Hydra refuses the override while composing."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as err:
        compose("config", overrides=[override])
    message = f"{err.value} {err.value.__cause__}"
    assert key in message and override.split("=", 1)[1].strip("[]").split(",")[-1] in message, message


@pytest.mark.parametrize(
    "override", ["model=failed7", "experiment=nosuch", "post=failed9", "ablation=bacth", "recipe=old"]
)
def test_unknown_group_option_names_it(override: str) -> None:
    """Also for the groups that default to nothing (a typo in a study's name must not train the defaults)."""
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match=override.replace("=", "/")):
        compose("config", overrides=[override])


def test_flipped_grad_ablation_sets_the_prototypes_loss() -> None:
    for recipe in ("post", "modern"):
        assert resolved([f"recipe={recipe}", "ablation=flipped_grad"])["loss"]["name"] == "post_flipped_grad"


@pytest.mark.parametrize("key", ["report", "flip"])
def test_report_and_flip_are_neither_params_nor_hashed(key: str) -> None:
    cfg = resolved(["experiment=failed_architectures"])
    assert cfg[key]
    assert not any(k.split(".")[0] == key for k, _ in run_params(cfg))
    assert config_hash(cfg) == config_hash({k: v for k, v in cfg.items() if k != key})


def test_two_jobs_that_train_the_same_have_the_same_hash() -> None:
    """recipe=modern ablation=batch trains as recipe=modern train.batch_size=1: one hash."""
    assert config_hash(resolved(["recipe=modern", "ablation=batch"])) == config_hash(
        resolved(["recipe=modern", "train.batch_size=1"])
    )


@pytest.mark.parametrize("recipe", ["post", "modern"])
@pytest.mark.parametrize("model", options("model"))
def test_a_model_trains_with_the_recipes_init_and_its_file_states_none(recipe: str, model: str) -> None:
    text = (CONF / "model" / f"{model}.yaml").read_text()
    assert not any(line.startswith(("init:", "init_gain:")) for line in text.splitlines())
    cfg = resolved([f"model={model}", f"recipe={recipe}"])
    want = resolved([f"model={model}", f"recipe={FLIPS[recipe]}"])["flip"]  # the recipe's values
    assert (cfg["model"]["init"], cfg["model"]["init_gain"]) == (want["init"], want["init_gain"])
    assert (cfg["train"]["batch_size"], cfg["data"]["split"]) == (want["batch_size"], want["split"])


def test_no_config_file_nests_an_interpolation() -> None:
    """Recipe and ablation files state values; an interpolation names a key, never another interpolation."""
    import re

    for path in [*sorted(CONF.glob("*/*.yaml")), CONF / "config.yaml"]:
        nested = re.findall(r"\$\{[^}]*\$\{", path.read_text())
        assert not nested, f"{path}: {nested}"


def test_flatten_gives_short_dotted_params() -> None:
    flat = dict(flatten(resolved(["experiment=failed_architectures"])))
    assert "model.generator.hidden" in flat and "train.batch_size" in flat
    assert all(len(str(v)) <= 500 for v in flat.values())


def test_sgd_takes_none_of_the_recipes_adam_settings() -> None:
    for recipe in ("post", "modern"):
        opt = resolved(["optimizer=sgd", f"recipe={recipe}"])["optimizer"]
        assert opt == {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": False}


# A changed value for each key some schedule takes (the section's other keys kept).
_CHANGED = {
    "warmup_steps": 7,
    "milestones": [3, 60],
    "gamma": {"multistep": 0.5, "post_extreme_decay": [0.1, 0.2], "exponential": 0.99},
    "total_steps": 50,
    "min_lr": 1e-6,
}


@pytest.mark.parametrize("schedule", options("schedule"))
def test_overriding_any_key_a_schedule_takes_changes_the_run(schedule: str) -> None:
    from gansweep.run.build import schedule_of

    cfg = resolved([f"schedule={schedule}"])
    keys = [k for k in cfg["schedule"] if k != "name"]
    assert "warmup_steps" in keys
    steps = range(0, 3000, 3)
    before = [schedule_of(cfg)(t) for t in steps]
    for key in keys:
        changed = _CHANGED[key][schedule] if isinstance(_CHANGED[key], dict) else _CHANGED[key]
        cfg2 = resolved([f"schedule={schedule}", f"schedule.{key}={changed}"])
        validate(cfg2)
        assert cfg2["schedule"][key] == changed
        assert config_hash(cfg2) != config_hash(cfg)
        assert [schedule_of(cfg2)(t) for t in steps] != before, key


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("+unknown_key=1", "unknown_key"),
        ("+train.iteratoins=5", "train.iteratoins"),
        ("+model.generator.dropout=0.5", "model.generator.dropout"),
        ("+model.bogus=1", "model.bogus"),
        ("data=mnist +data.eval_samples=5", "data.eval_samples"),
        ("optimizer=sgd +optimizer.beta1=0.5", "optimizer.beta1"),
        ("schedule=constant +schedule.gamma=0.5", "schedule.gamma"),
        ("schedule=exponential schedule.gamma=1.5", "schedule.gamma"),
    ],
)
def test_a_key_no_part_of_the_schema_reads_is_refused_naming_it(override: str, key: str) -> None:
    cfg = resolved(override.split(" "))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


def test_the_schema_knows_every_key_of_every_config() -> None:
    """No key of the shipped configs is refused as unknown (every group option and study job validates)."""
    for study in STUDIES:
        for job in sweep_jobs(study)[:3]:
            validate(apply_images(resolved(job)))


def test_a_budget_in_images_sets_the_iterations_and_stays_out_of_the_hash_when_off() -> None:
    """train.images: batch 1 and batch 64 see the same images (images_seen); null changes no hash."""
    one = apply_images(resolved(["train.images=6000", "train.batch_size=1"]))
    many = apply_images(resolved(["train.images=6000", "train.batch_size=64"]))
    assert one["train"]["iterations"] == 6000 and many["train"]["iterations"] == 94  # ceil(6000 / 64)
    validate(one)
    validate(many)
    plain = resolved([])
    assert plain["train"]["images"] is None
    without = {**plain, "train": {k: v for k, v in plain["train"].items() if k != "images"}}
    assert config_hash(plain) == config_hash(without)
    # a config whose iterations disagree with its budget (apply_images not applied) is refused by name
    with pytest.raises(ConfigError, match=r"train\.iterations=200: must be ceil\(train\.images=6000"):
        validate(resolved(["train.images=6000"]))
    with pytest.raises(ConfigError, match=r"train\.images=-5"):
        apply_images(resolved(["train.images=-5"]))


def test_the_retired_fault_keys_are_gone_and_hashed_as_they_were() -> None:
    """train.fault_at and train.fault left the config (issue 27); every config held null and raise then, and
    hashes as it did (RETIRED)."""
    plain = resolved([])
    assert "fault_at" not in plain["train"] and "fault" not in plain["train"]
    assert not any(k.startswith("train.fault") for k, _ in run_params(plain))
    old = {**plain, "train": {**plain["train"], "fault_at": None, "fault": "raise"}}
    assert config_hash(plain) == config_hash(old)
    assert config_hash(plain) != config_hash({**old, "train": {**old["train"], "fault_at": 4}})


# Config hashes of study jobs as their runs recorded them (before the schema and the flattened recipes): a
# change of conf/ or of gansweep/run/schema.py must keep them (resume and skip-if-finished match runs by it).
# scripts/config_hashes.py dumps every job's hash and params, to diff before and after such a change.
KNOWN_HASHES = {
    "": "25da6613d105960c",
    "experiment=failed_architectures post=failed1 recipe=post seed=0": "add33b09274fa7eb",
    "experiment=post_ablation post=failed1 recipe=modern ablation=adam_hparams seed=0": "4cdcb430459d8c6c",
    "experiment=post_ablation post=failed1 recipe=post ablation=init seed=0": "5282cbb5bd894e88",
    "experiment=remedies model=modern_mlp recipe=modern data=stacked_mnist remedy=pack4 seed=0": (
        "5002dd034b293285"
    ),
    "experiment=tf_reference post=tf_reference seed=0": "1778c64c4acc9358",
    "experiment=images_seen post=failed1 recipe=post ablation=[adam_hparams,bias_correction,init,scale] "
    "train.images=6000 train.batch_size=64 seed=0": "39c1c2d23d7861b9",
    "experiment=decay_imprint post=extreme_decay schedule=post_extreme_decay seed=0": "31bfffcc05a5f83d",
    "experiment=tune_modern": "6540f3d3eeee96a7",
    "model=failed3": "d94d9f4b4a37cec0",  # recorded as model=arch3: the rename keeps it (RENAMED)
}


@pytest.mark.parametrize("job", sorted(KNOWN_HASHES))
def test_known_jobs_keep_their_config_hash(job: str) -> None:
    cfg = apply_images(resolved(job.split()))
    cfg["study"] = str(cfg["study"])  # as the entry point does
    assert config_hash(cfg) == KNOWN_HASHES[job]


def test_the_schema_marks_missing_values_as_omegaconf_does_without_importing_it() -> None:
    import omegaconf

    from gansweep.run import schema

    assert schema.MISSING == omegaconf.MISSING
    assert "from omegaconf" not in (ROOT / "gansweep" / "run" / "schema.py").read_text()
