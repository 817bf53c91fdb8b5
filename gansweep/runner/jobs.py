"""The jobs of a sweep as the launching process sees them before any starts: their override lists (as the
basic sweeper expands them) and the check that each composes and validates."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf, open_dict

from gansweep.run.config import apply_images, validate


def plan_jobs(config: DictConfig) -> list[list[str]] | None:
    """Each job's override list, made as Hydra's basic sweeper makes them (None for another sweeper)."""
    if not str(OmegaConf.select(config, "hydra.sweeper._target_", default="")).endswith("BasicSweeper"):
        return None
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    overrides = parser.parse_overrides(
        [*(f"{k}={v}" for k, v in params.items()), *config.hydra.overrides.task]
    )
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def check_jobs(config: DictConfig, jobs: list[list[str]]) -> None:
    """Compose and validate every job; the first bad one raises ValueError naming the job and the value."""
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    common = set.intersection(*(set(job) for job in jobs)) if len(jobs) > 1 else set()
    for i, job in enumerate(jobs):
        try:
            cfg = loader.load_sweep_config(config, job)
            with open_dict(cfg):
                del cfg["hydra"]
            validate(apply_images(OmegaConf.to_container(cfg, resolve=True)))
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            own = " ".join(o for o in job if o not in common)  # what sets this job apart
            raise ValueError(f"job {i}{f' ({own})' if own else ''}: {message}") from None
