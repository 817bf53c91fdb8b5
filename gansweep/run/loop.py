"""The training loop: train the GAN a validated config describes, report through a logger.

One flat loop (nanoGPT style). It never imports mlflow or hydra: the runner hands it a
:class:`~gansweep.run.logger.RunLogger` (MLflow-backed, or ``NullLogger``), a working folder, an optional
evaluator and a ``should_stop`` flag that signal handlers raise. One iteration = one D step on B real + B
fake, then one G step on B fresh fakes. What it trains is built by :mod:`gansweep.run.build`; what it saves
and resumes from, by :mod:`gansweep.run.checkpoint`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gansweep.data import prepare_images
from gansweep.run import contract
from gansweep.run.build import Setup, build
from gansweep.run.checkpoint import checkpoint_state, restore, restore_imprints, save_checkpoint
from gansweep.run.config import config_hash, get, real_scale
from gansweep.run.evaluate import evaluate, imprint_metrics
from gansweep.run.logger import RunLogger
from gansweep.run.progress import Progress, fixed_samples, fresh_snapshot, save_final_images, snapshot


@dataclass
class Result:
    """How a run ended: FINISHED, KILLED (stopped by a signal, checkpointed) or DIVERGED (NaN/Inf loss)."""

    status: str
    iteration: int
    final: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    detail: str = ""


def _real_batch(setup: Setup, scale: str, batch: int) -> np.ndarray:
    if setup.stacked is not None:
        x, _ = setup.stacked.sample(batch, setup.rngs["data"])
        return prepare_images(x, scale, setup.dtype)
    return setup.reals[setup.sampler.next_indices()]


def train_step(
    setup: Setup, scale: str, batch: int, it: int, *, unit_probe: bool = False
) -> tuple[float, dict[str, float]]:
    """Training iteration ``it``: one D step on a real batch and fresh noise, then one G step on fresh noise
    (through D unrolled ``train.unroll_steps`` steps), at the schedule's lr. Returns (lr, the steps'
    statistics). The loop and the benchmark both run this. ``unit_probe`` (reals in 0-255) adds
    ``d_real_unit``: D's mean output, before its update, on the same real batch divided by 255; it draws
    nothing and touches no training state, so the run is the same with or without it.

    :func:`train` calls it by its module-level name at every iteration: the loop's one seam (a wrapper
    assigned to ``gansweep.run.loop.train_step`` runs in its place)."""
    gan, lr = setup.gan, setup.schedule(it)
    real = _real_batch(setup, scale, batch)
    noise = setup.rngs["noise"]
    z_d = gan.sample_z(batch, noise)
    unit = gan.d_output(np.divide(real, real.dtype.type(255.0))) if unit_probe else None
    stats = gan.iteration(real, z_d, gan.sample_z(batch, noise), lr)
    if unit is not None:
        stats[contract.D_REAL_UNIT] = unit
    return lr, stats


def train(
    cfg: Mapping[str, Any],
    *,
    logger: RunLogger,
    workdir: Path,
    setup: Setup | None = None,
    evaluator: Any = None,
    resume_state: Mapping[str, np.ndarray] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    label: str = "train",
) -> Result:
    """Train the GAN ``cfg`` describes. Writes ``last.npz``, ``samples_final.png``,
    ``samples_final_stretched.png`` and ``progress.gif`` into ``workdir`` and reports them (and metrics,
    grids, eval figures) through ``logger``.

    One function on purpose (about 100 lines): the loop reads top to bottom as one iteration runs, nanoGPT
    style; what each step calls (the iteration, grids, eval points, checkpoints) lives in its own module."""
    workdir.mkdir(parents=True, exist_ok=True)
    setup = setup or build(cfg)
    chash = config_hash(cfg)
    tr = get(cfg, "train")
    total, batch = tr["iterations"], tr["batch_size"]
    eval_on = evaluator is not None and get(cfg, "eval.enabled")
    eval_every = get(cfg, "eval.every") if eval_on else 0
    fresh_every = tr.get("fresh_grid_every")
    scale = real_scale(cfg)
    ckpt_path = workdir / contract.CHECKPOINT_FILE

    # d_real_unit: D on the reals rescaled to [0, 1], for runs that feed it 0-255 (data.scale raw255)
    unit_probe = scale == "raw255"
    keys = (
        *contract.TRAINING_CURVES,
        *contract.GRAD_NORMS,
        *contract.D_LOGITS,
        *((contract.D_REAL_UNIT,) if unit_probe else ()),
    )
    window, seen = dict.fromkeys(keys, 0.0), 0
    start, frames = 0, []
    partial: set[str] = set()  # curves a checkpoint from before they existed has no sums for
    imprint_steps = set(tr.get("imprint_steps") or ())
    imprints: dict[int, np.ndarray] = {}
    if resume_state is not None:
        start, frames, saved, seen = restore(setup, resume_state)
        window.update({k: v for k, v in saved.items() if k in window})
        partial = {k for k in window if k not in saved} if seen else set()
        imprints = {s: v for s, v in restore_imprints(resume_state).items() if s in imprint_steps}

    def checkpoint(step: int) -> Path:
        save_checkpoint(ckpt_path, checkpoint_state(setup, chash, step, frames, window, seen, imprints))
        logger.flush()  # metrics up to the checkpoint first: a resume from it must not leave a gap
        logger.log_artifact(ckpt_path, contract.CHECKPOINT_DIR)
        return ckpt_path

    if start == 0:
        if 0 in imprint_steps:
            imprints[0] = fixed_samples(setup)
        frames.append(snapshot(setup, logger, 0))
        if fresh_every:
            fresh_snapshot(setup, cfg, logger, 0)
        if eval_on:
            logger.log_metrics(evaluate(setup, evaluator, cfg, 0), 0)

    last = {}
    progress = Progress(total, start, label)
    tick = time.perf_counter()
    try:
        for it in range(start, total):
            if should_stop():
                path = checkpoint(it)
                return Result(contract.KILLED, it, last, path, f"stopped by a signal at iteration {it}")
            lr, stats = train_step(setup, scale, batch, it, unit_probe=unit_probe)
            if not (math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"])):
                bad = {k: stats[k] for k in ("loss_d", "loss_g")}
                logger.log_metrics({k: v for k, v in stats.items() if math.isfinite(v)}, it + 1)
                if tr["stop_on_nan"]:
                    return Result(
                        contract.DIVERGED, it + 1, last, None, f"non-finite loss at iteration {it + 1}: {bad}"
                    )
            for k in keys:
                window[k] += stats[k]
            seen += 1
            step = it + 1
            if step in imprint_steps:
                imprints[step] = fixed_samples(setup)
            if step % tr["log_every"] == 0 or step == total:
                now = time.perf_counter()
                last = {k: window[k] / seen for k in keys if k not in partial}
                partial = set()
                last.update(lr=lr, img_per_s=batch * seen / max(now - tick, 1e-9))
                logger.log_metrics(last, step)
                progress.update(step, {k: last[k] for k in ("loss_d", "loss_g", "d_fake")})
                window, seen, tick = dict.fromkeys(keys, 0.0), 0, now
            if step % tr["sample_every"] == 0 and step != total:
                frames.append(snapshot(setup, logger, step))
            if fresh_every and step % fresh_every == 0:
                fresh_snapshot(setup, cfg, logger, step)
            if eval_on and step % eval_every == 0 and step != total:
                logger.log_metrics(evaluate(setup, evaluator, cfg, step), step)
            if step % tr["checkpoint_every"] == 0 and step != total:
                checkpoint(step)
    finally:
        progress.close()

    frames.append(snapshot(setup, logger, total))
    final = dict(last)
    if eval_on:
        scores = evaluate(setup, evaluator, cfg, total)
        logger.log_metrics(scores, total)
        final.update(scores)
    if imprint_steps:
        scores = imprint_metrics(fixed_samples(setup), imprints)
        logger.log_metrics(scores, total)
        final.update(scores)
    save_final_images(setup, logger, workdir, frames)
    return Result(contract.FINISHED, total, final, checkpoint(total))
