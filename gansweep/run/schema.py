"""The run config's schema: each section's keys and their types, as dataclasses.

The entry point registers them in Hydra's ConfigStore (``gansweep.cli.train.register_schema``) as the base of
``conf/config.yaml``, so Hydra refuses a key no section has (``+model.bogus=1``) and a value of the wrong type
(``train.iterations=abc``), naming the key, before any run exists. No Hydra here, and no values: every field
is ``MISSING`` and takes its value (and its documentation) from ``conf/``. What types cannot say (ranges,
choices, one key against another) ``gansweep.run.config.validate`` checks.

Where the YAML holds a float, the field is ``Any``: a ``float`` field would turn ``model.init_gain=1`` into
``1.0``, which is another config hash than the one such a run was recorded under (``validate`` checks that
those are numbers). Sections whose keys belong to someone else stay open: ``optimizer`` and ``schedule``
(their builder's arguments, checked by building them) and a study's ``report`` (the analysis').
"""

from dataclasses import dataclass, field
from typing import Any

# OmegaConf's marker of a value the config must supply (``omegaconf.MISSING``), spelled out so that this
# module, which gansweep.run.config and so the training loop import, imports no omegaconf
MISSING: Any = "???"


@dataclass
class GeneratorConfig:
    hidden: list[int] = MISSING
    activations: list[str] = MISSING
    out_activation: str = MISSING


@dataclass
class DiscriminatorConfig:
    hidden: list[int] = MISSING
    activations: list[str] = MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    z_dim: int = MISSING
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    init: str = MISSING
    init_gain: Any = MISSING  # a float
    pack: int = MISSING
    minibatch_std: bool = MISSING
    g_ema: Any = MISSING  # null or a float
    spectral_norm: bool = MISSING
    g_batchnorm: bool = MISSING


@dataclass
class SourceConfig:
    run: str | None = MISSING
    file: str | None = MISSING
    commit: str | None = MISSING
    lr: Any = MISSING  # a float
    holdout: int = MISSING
    decay_milestones: list[int] = MISSING
    decay_gamma: Any = MISSING  # floats (a list, or one for all milestones)


@dataclass
class NoiseConfig:
    dist: str = MISSING
    dim: int = MISSING


@dataclass
class LossConfig:
    name: str = MISSING


@dataclass
class DataConfig:
    name: str = MISSING
    channels: int = MISSING
    split: str = MISSING
    scale: str = MISSING
    sampling: str = MISSING
    subset: int | None = MISSING
    classes: list[int] | None = MISSING
    cache_dir: str | None = MISSING
    source_dir: str | None = MISSING
    holdout: int = MISSING


@dataclass
class StackedMnistDataConfig(DataConfig):
    """``data=stacked_mnist``: one key more (only there, so the other configs' hashes do not hold it)."""

    eval_samples: int = MISSING


@dataclass
class TrainConfig:
    iterations: int = MISSING
    batch_size: int = MISSING
    log_every: int = MISSING
    sample_every: int = MISSING
    grid_size: int = MISSING
    fresh_grid_every: int | None = MISSING
    fresh_grid_size: int = MISSING
    dtype: str = MISSING
    checkpoint_every: int = MISSING
    stop_on_nan: bool = MISSING
    unroll_steps: int = MISSING
    imprint_steps: list[int] | None = MISSING
    images: int | None = MISSING


@dataclass
class EvalConfig:
    enabled: bool = MISSING
    every: int = MISSING
    n_samples: int = MISSING
    mode_share: Any = MISSING  # a float
    k: int = MISSING
    metrics: list[str] | None = MISSING
    stretched: bool = MISSING


@dataclass
class TrackingConfig:
    enabled: bool = MISSING
    uri: str | None = MISSING
    experiment: str | None = MISSING
    artifact_location: str | None = MISSING


@dataclass
class RunConfig:
    """The whole run config (``conf/config.yaml`` and its groups)."""

    study: str = MISSING
    seed: int = MISSING
    force: bool = MISSING
    resume: str | None = MISSING
    source: SourceConfig = field(default_factory=SourceConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: dict[str, Any] = MISSING
    schedule: dict[str, Any] = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    flip: Any = None  # the values ablation=<quirk> switches to (conf/recipe/<recipe>.yaml)
    report: Any = None


# Where the entry point registers each schema: (ConfigStore group, name, node). ``conf/config.yaml`` names
# the first in its defaults list, ``conf/data/stacked_mnist.yaml`` the second.
SCHEMAS = (
    (None, "gansweep_schema", RunConfig),
    ("schema/data", "stacked_mnist", StackedMnistDataConfig),
)
