"""Dump every study job's config hash and params, to check that a change of conf/ or the schema
changes neither.

    python scripts/config_hashes.py out.json      # then diff two dumps

Each job of each study in experiments/*.yaml (its sweeper grid expanded; for an Optuna search the base config
and the two corners of its space) is composed as the entry point composes it (resolved to plain containers,
``study`` a string, ``train.images`` applied), and written as {job overrides: [config_hash, sorted params]}.
JSON keeps 1 and 1.0 apart, so a value whose type changed shows in the diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def dump() -> dict[str, list]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf
    from test_configs import GROUPS, STUDIES, options, sweep_jobs

    from gansweep.run.config import apply_images, config_hash, run_params

    try:  # the structured-config schema, where it exists (registered by the entry point)
        from gansweep.cli.train import register_schema
    except ImportError:
        register_schema = None
    if register_schema is not None:
        register_schema()
    out: dict[str, list] = {}
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        jobs = [[], *([f"{g}={o}"] for g in GROUPS for o in options(g))]  # the default and each group option
        jobs += [["recipe=modern", f"ablation={o}"] for o in options("ablation")]
        for study in STUDIES:
            jobs += [[f"experiment={study}"], *sweep_jobs(study)]
        for job in jobs:
            if " ".join(job) not in out:
                cfg = OmegaConf.to_container(compose("config", overrides=job), resolve=True)
                cfg["study"] = str(cfg["study"])
                apply_images(cfg)
                params = sorted([k, v] for k, v in run_params(cfg))
                out[" ".join(job)] = [config_hash(cfg), params]
    GlobalHydra.instance().clear()
    return out


if __name__ == "__main__":
    result = dump()
    Path(sys.argv[1]).write_text(json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    print(f"{len(result)} jobs written to {sys.argv[1]}")
