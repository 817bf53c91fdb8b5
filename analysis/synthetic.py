"""Write a synthetic study into an MLflow store exactly as the runner's contract describes it (parent run,
child runs with tags, params, metric histories including eval/*, failed and diverged runs, a
``samples_final.png`` artifact). The metric values are made up: for the benchmark and the edge-case tests of
the analysis only, never as results."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from PIL import Image

from gansweep.run import contract

_BATCH = 1000  # MLflow's log_batch limit on metrics per call


@dataclass(frozen=True)
class SyntheticSpec:
    """What to write. ``failed`` / ``diverged`` / ``no_metrics`` name (config index, seed) pairs."""

    models: Sequence[str] = ("failed1", "failed2")
    recipes: Sequence[str] = ("post", "modern")
    seeds: Sequence[int] = (0, 1, 2)
    iterations: int = 200
    log_every: int = 10
    eval_every: int = 50
    failed: Sequence[tuple[int, int]] = ()
    killed: Sequence[tuple[int, int]] = ()
    diverged: Sequence[tuple[int, int]] = ()
    no_metrics: Sequence[tuple[int, int]] = ()
    with_eval: bool = True
    with_stacked: bool = False
    with_samples: bool = True
    with_parent: bool = True
    rng_seed: int = 0
    configs: list[tuple[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "configs", [(m, r) for m in self.models for r in self.recipes])


def _samples_png(rng: np.random.Generator) -> bytes:
    """A 4x4 grid of 28x28 noise tiles as PNG bytes (stands in for the runner's sample grid)."""
    tiles = (rng.random((4, 4, 28, 28)) * 255).astype(np.uint8)
    grid = tiles.transpose(0, 2, 1, 3).reshape(4 * 28, 4 * 28)
    buf = io.BytesIO()
    Image.fromarray(grid, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _run_metrics(
    spec: SyntheticSpec, rng: np.random.Generator, *, stop: int, diverged: bool, collapse: bool
) -> list[tuple[str, float, int]]:
    """(key, value, step) triples of one run's curves and eval points up to iteration ``stop``."""
    out: list[tuple[str, float, int]] = []
    for step in range(spec.log_every, stop + 1, spec.log_every):
        frac = step / spec.iterations
        blown = diverged and frac > 0.6
        d_real = float(np.clip(0.5 + 0.4 * frac + 0.05 * rng.standard_normal(), 0.0, 1.0))
        d_fake = float(np.clip(0.5 - 0.4 * frac + 0.05 * rng.standard_normal(), 0.0, 1.0))
        values = {
            "loss_d": float("nan") if blown else 1.4 - frac + 0.1 * rng.standard_normal(),
            "loss_g": float("inf") if blown else 0.7 + 2 * frac + 0.1 * rng.standard_normal(),
            "d_real": d_real,
            "d_fake": d_fake,
            "grad_norm_d": abs(float(rng.standard_normal())),
            "grad_norm_g": abs(float(rng.standard_normal())),
            "lr": 2e-4,
            "img_per_s": 5000 + 100 * float(rng.standard_normal()),
        }
        out.extend((key, float(value), step) for key, value in values.items())
        if spec.with_eval and (step % spec.eval_every == 0 or step == spec.iterations) and not blown:
            modes = 1 + int(rng.integers(0, 2)) if collapse and frac > 0.5 else 7 + int(rng.integers(0, 4))
            shares = rng.dirichlet(np.full(contract.N_DIGITS, 0.3 if collapse else 5.0))
            evals = {
                contract.MODES: modes,
                contract.KL_TO_UNIFORM: float(rng.gamma(2.0, 0.5 if collapse else 0.1)),
                "eval/kl_from_uniform": float(rng.gamma(2.0, 0.2)),
                "eval/entropy": float(rng.uniform(0.5, 2.3)),
                "eval/mnist_score": float(rng.uniform(1, 9)),
                contract.FD: float(rng.gamma(5.0, 20.0 if collapse else 5.0)),
                contract.NDB: float(rng.integers(0, 50)) / 100.0,  # a fraction of the bins, as the runner's
                contract.PRECISION: float(rng.beta(5, 2)),
                contract.RECALL: float(rng.beta(1, 5) if collapse else rng.beta(5, 3)),
                "eval/density": float(rng.uniform(0, 1.5)),
                "eval/coverage": float(rng.uniform(0, 1)),
                "eval/nn_train_dist": float(rng.uniform(3, 8)),
                **{key: float(share) for key, share in zip(contract.CLASS_SHARES, shares, strict=True)},
            }
            if spec.with_stacked:
                evals[contract.STACKED_MODES] = float(rng.integers(20, 900))
                evals[contract.STACKED_KL] = float(rng.gamma(2.0, 1.0))
            out.extend((key, float(value), step) for key, value in evals.items())
    return out


def _log_metrics(client: MlflowClient, run_id: str, triples: list[tuple[str, float, int]], t0: int) -> None:
    metrics = [Metric(key, value, t0 + step, step) for key, value, step in triples]
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH], synchronous=True)


def _child_tags(
    spec: SyntheticSpec, experiment: str, index: int, seed: int, parent_id: str | None
) -> dict[str, str]:
    """The tags of config ``index``'s run of ``seed``, as the runner writes them (a failed or diverged run's
    error, a diverged run's flag)."""
    model, recipe = spec.configs[index]
    key = (index, seed)
    tags = {
        contract.TAG_STUDY: experiment,
        contract.TAG_ROLE: contract.ROLE_CHILD,
        contract.TAG_MODEL: model,
        contract.TAG_RECIPE: recipe,
        contract.TAG_SEED: str(seed),
        contract.TAG_LOSS: "post" if recipe == "post" else "nonsaturating",
        contract.TAG_SCHEDULE: "constant",
        contract.TAG_CONFIG_HASH: f"{index:04d}{seed:04d}",
        contract.TAG_LABEL: f"model={model} recipe={recipe}",
        contract.TAG_OVERRIDES: f"model={model},recipe={recipe},seed={seed}",
    }
    if parent_id is not None:
        tags[contract.TAG_PARENT_RUN] = parent_id
    if key in spec.failed:
        tags[contract.TAG_ERROR] = "RuntimeError: synthetic failure"
    if key in spec.diverged:  # the runner stops a diverged run and ends it FAILED with both tags
        tags[contract.TAG_DIVERGED] = "true"
        tags[contract.TAG_ERROR] = "non-finite loss"
    return tags


def _child_params(spec: SyntheticSpec, experiment: str, index: int, seed: int) -> dict[str, str]:
    """The (resolved config) params of config ``index``'s run of ``seed``."""
    model, recipe = spec.configs[index]
    return {
        "seed": str(seed),
        "study": experiment,
        "model.name": model,
        "model.z_dim": "100",
        "model.generator.hidden": "[256, 512]",
        "recipe.name": recipe,
        "train.iterations": str(spec.iterations),
        "train.batch_size": "1" if recipe == "post" else "64",
        "optimizer.lr": "0.0002",
        "optimizer.beta1": "0.9" if recipe == "post" else "0.5",
        "eval.enabled": str(spec.with_eval),
        "resume": "None",
    }


def build_synthetic_study(
    tracking_uri: str, experiment: str, artifact_location: str, spec: SyntheticSpec | None = None
) -> dict[str, object]:
    """Create experiment ``experiment`` (artifacts under the absolute ``artifact_location`` URI) in
    ``tracking_uri`` and write ``spec``'s runs into it. Returns the experiment id, parent id and child ids."""
    spec = spec or SyntheticSpec()
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(experiment, artifact_location=artifact_location)
    rng = np.random.default_rng(spec.rng_seed)
    t0 = int(time.time() * 1000)
    study_tags = {contract.TAG_STUDY: experiment}
    parent_id: str | None = None
    if spec.with_parent:
        parent = client.create_run(
            experiment_id,
            tags={**study_tags, contract.TAG_ROLE: contract.ROLE_PARENT},
            run_name=f"{experiment}-sweep",
            start_time=t0,
        )
        parent_id = parent.info.run_id
    children: list[str] = []
    for index, (model, recipe) in enumerate(spec.configs):
        collapse = recipe == "post"
        for seed in spec.seeds:
            key = (index, seed)
            failed = key in spec.failed
            killed = key in spec.killed
            diverged = key in spec.diverged
            tags = _child_tags(spec, experiment, index, seed, parent_id)
            run = client.create_run(
                experiment_id,
                tags=tags,
                run_name=f"{model}-{recipe}-s{seed}",
                start_time=t0 + 1000 * len(children) + 1,
            )
            run_id = run.info.run_id
            children.append(run_id)
            params = _child_params(spec, experiment, index, seed)
            client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()], synchronous=True)
            if key not in spec.no_metrics:
                stop = spec.iterations // 3 if (failed or killed) else spec.iterations
                stop = int(spec.iterations * 0.7) if diverged else stop
                triples = _run_metrics(spec, rng, stop=stop, diverged=diverged, collapse=collapse)
                _log_metrics(client, run_id, triples, t0)
            if spec.with_samples and not (failed or killed or diverged) and key not in spec.no_metrics:
                for artifact in (contract.SAMPLES_ARTIFACT, contract.STRETCHED_SAMPLES_ARTIFACT):
                    client.log_image(run_id, Image.open(io.BytesIO(_samples_png(rng))), artifact)
            status = (
                contract.FAILED if failed or diverged else contract.KILLED if killed else contract.FINISHED
            )
            client.set_terminated(run_id, status=status, end_time=t0 + 1000 * len(children) + 500)
    if parent_id is not None:
        client.set_tag(parent_id, "gansweep.jobs", str(len(children)))
        client.set_terminated(parent_id, status=contract.FINISHED)
    return {"experiment_id": experiment_id, "parent_id": parent_id, "children": children}


def sqlite_store(folder: str) -> tuple[str, str]:
    """(tracking URI, artifact root URI) of a fresh sqlite store under the absolute path ``folder``."""
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlruns.db'}", (root / "artifacts").as_uri()
