"""The training loop: build the GAN from a validated config, train it, report through a logger.

One flat loop (nanoGPT style). It never imports mlflow or hydra: the runner hands it a :class:`RunLogger`
(MLflow-backed, or :class:`NullLogger`), a working folder, an optional evaluator and a ``should_stop`` flag
that signal handlers raise. One iteration = one D step on B real + B fake, then one G step on B fresh fakes.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gansweep import contract as K
from gansweep import images
from gansweep.config import ConfigError, builder_args, config_hash, get, real_scale
from gansweep.data import BatchSampler, StackedMNIST, load_mnist, prepare_images, select
from gansweep.engine.gan import GAN
from gansweep.engine.losses import get_loss
from gansweep.engine.nn import build_mlp
from gansweep.engine.optim import build_optimizer
from gansweep.engine.schedules import build_schedule
from gansweep.metrics.diversity import contrast_stretch
from gansweep.metrics.evaluator import resolve_groups
from gansweep.metrics.imprint import mean_correlation

FRESH_GRID_SALT = 104729  # mixed into (seed, step) for the fresh-noise grids' generator
IMPRINT_STATE = "imprint/"  # checkpoint keys of the samples train.imprint_steps recorded: imprint/<iteration>
BUFFER_STATE = "buffer/"  # checkpoint keys of the nets' non-parameter state (BatchNorm's running statistics,
# spectral normalisation's u and v): buffer/<name>, e.g. buffer/G.0.bn_mean, buffer/D.0.sn_u
EMA_STATE = "ema/"  # G's weight average (model.g_ema): ema/<param name>, and ema/t, the averaging steps taken
STACKED_QUALITY = ("fd", "prdc")  # metric groups a Stacked-MNIST eval point computes on the channel images


class RunLogger(Protocol):
    """Where the loop reports: metrics with a step, image mosaics with a step, and files. ``flush`` makes
    everything reported so far durable; the loop calls it before each checkpoint, so a run resumed from that
    checkpoint has every metric up to it."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...
    def log_image(self, mosaic: np.ndarray, key: str, step: int) -> None: ...
    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...
    def flush(self) -> None: ...


class NullLogger:
    """A logger that keeps nothing (tracking off); the loop still writes its local files."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_image(self, mosaic: np.ndarray, key: str, step: int) -> None:
        pass

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


@dataclass
class Result:
    """How a run ended: FINISHED, KILLED (stopped by a signal, checkpointed) or DIVERGED (NaN/Inf loss)."""

    status: str
    iteration: int
    final: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    detail: str = ""


@dataclass
class Setup:
    """Everything a run trains with, built before any tracking run exists (so bad input fails first)."""

    gan: GAN
    schedule: Callable[[int], float]
    sampler: BatchSampler | None
    reals: np.ndarray | None
    stacked: StackedMNIST | None
    rngs: dict[str, np.random.Generator]
    fixed_z: np.ndarray
    out_activation: str
    channels: int
    dtype: np.dtype


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for init, noise, data, the fixed sample batch and spectral normalisation's
    initial u, all from one seed (a stream added at the end leaves the others' draws as they were)."""
    names = ("init", "noise", "data", "fixed", "spectral_norm")
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)}


def schedule_of(cfg: Mapping[str, Any]) -> Callable[[int], float]:
    """The run's learning-rate schedule: section ``schedule`` around ``optimizer.lr``."""
    return build_schedule(
        get(cfg, "schedule.name"), get(cfg, "optimizer.lr"), **builder_args(cfg, "schedule")
    )


def build(cfg: Mapping[str, Any]) -> Setup:
    """Load the data and build G, D, the loss, optimizers and schedule from a validated config."""
    rngs = _streams(get(cfg, "seed"))
    channels = get(cfg, "data.channels")
    pixels = 784 * channels
    z_dim = get(cfg, "model.z_dim")
    init, gain = get(cfg, "model.init"), get(cfg, "model.init_gain")
    dtype = np.dtype(get(cfg, "train.dtype"))
    g_spec, d_spec = get(cfg, "model.generator"), get(cfg, "model.discriminator")
    out_act = g_spec["out_activation"]
    G = build_mlp(
        "G",
        z_dim,
        [*g_spec["hidden"], pixels],
        [*g_spec["activations"], out_act],
        init=init,
        gain=gain,
        rng=rngs["init"],
        dtype=dtype,
        batchnorm=get(cfg, "model.g_batchnorm"),
    )
    pack = get(cfg, "model.pack")
    D = build_mlp(
        "D",
        pixels * pack,  # model.pack samples side by side (PacGAN); 1: one sample
        [*d_spec["hidden"], 1],
        [*d_spec["activations"], "identity"],
        init=init,
        gain=gain,
        rng=rngs["init"],
        dtype=dtype,
        minibatch_std=get(cfg, "model.minibatch_std"),
        spectral_norm=get(cfg, "model.spectral_norm"),
        sn_rng=rngs["spectral_norm"],
    )
    optimizer, opt_kwargs = get(cfg, "optimizer.name"), builder_args(cfg, "optimizer")
    opt_g = build_optimizer(optimizer, G.params, **opt_kwargs)
    opt_d = build_optimizer(optimizer, D.params, **opt_kwargs)
    schedule = schedule_of(cfg)
    gan = GAN(
        G,
        D,
        get_loss(get(cfg, "loss.name")),
        opt_g,
        opt_d,
        z_dim=z_dim,
        z_dist=get(cfg, "noise.dist"),
        pack=pack,
        unroll_steps=get(cfg, "train.unroll_steps"),
        g_ema=get(cfg, "model.g_ema"),
    )

    data = get(cfg, "data")
    imgs, labels = load_mnist(
        data["split"], cache_dir=data.get("cache_dir"), source_dir=data.get("source_dir")
    )
    imgs, labels = select(imgs, labels, classes=data.get("classes"), subset=data.get("subset"))
    batch = get(cfg, "train.batch_size")
    if channels == 3:
        stacked, reals, sampler = StackedMNIST(imgs, labels, seed=get(cfg, "seed")), None, None
    else:
        stacked = None
        reals = prepare_images(imgs, real_scale(cfg), dtype)
        try:
            sampler = BatchSampler(len(reals), batch, data["sampling"], rngs["data"], holdout=data["holdout"])
        except ValueError as exc:
            raise ConfigError(
                f"train.batch_size={batch}, data.sampling={data['sampling']}: {len(reals)} images left after "
                f"data.classes={data.get('classes')} and data.subset={data.get('subset')} are too few ({exc})"
            ) from None
    fixed_z = gan.sample_z(get(cfg, "train.grid_size"), rngs["fixed"])
    return Setup(gan, schedule, sampler, reals, stacked, rngs, fixed_z, out_act, channels, dtype)


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
    nothing and touches no training state, so the run is the same with or without it."""
    gan, lr = setup.gan, setup.schedule(it)
    real = _real_batch(setup, scale, batch)
    noise = setup.rngs["noise"]
    z_d = gan.sample_z(batch, noise)
    unit = gan.d_output(np.divide(real, real.dtype.type(255.0))) if unit_probe else None
    stats = gan.iteration(real, z_d, gan.sample_z(batch, noise), lr)
    if unit is not None:
        stats[K.D_REAL_UNIT] = unit
    return lr, stats


def _state(
    setup: Setup,
    chash: str,
    iteration: int,
    frames: list[np.ndarray],
    window: Mapping[str, float],
    seen: int,
    imprints: Mapping[int, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Everything a resume needs, as plain arrays (loadable with allow_pickle=False): the config's hash,
    parameters, optimizer and RNG state, the sampler, the grids so far, the metric sums since the last
    log line (so a resumed run logs the same averages as an uninterrupted one), the fixed-noise samples
    ``train.imprint_steps`` recorded so far, the nets' buffers (BatchNorm's running statistics, spectral
    normalisation's u and v) and G's weight average."""
    gan = setup.gan
    state: dict[str, np.ndarray] = {"iteration": np.asarray(iteration), "config_hash": np.asarray(chash)}
    state.update({f"window/{k}": np.float64(v) for k, v in window.items()})
    state["window/seen"] = np.asarray(seen)
    state.update({f"param/{k}": v for k, v in {**gan.G.params, **gan.D.params}.items()})
    state.update({f"{BUFFER_STATE}{k}": v for k, v in {**gan.G.state, **gan.D.state}.items()})
    if gan.g_ema is not None:
        state.update({f"{EMA_STATE}{k}": v for k, v in gan.G.param_views(gan.g_ema.shadow).items()})
        state[f"{EMA_STATE}t"] = np.asarray(gan.g_ema.t)
    state.update({f"opt_g/{k}": v for k, v in gan.opt_g.state_dict().items()})
    state.update({f"opt_d/{k}": v for k, v in gan.opt_d.state_dict().items()})
    for name in ("noise", "data"):
        state[f"rng/{name}"] = np.asarray(json.dumps(setup.rngs[name].bit_generator.state))
    if setup.sampler is not None:
        state.update({f"sampler/{k}": v for k, v in setup.sampler.state_dict().items()})
    if frames:
        state["frames"] = np.stack(frames)
    state.update({f"{IMPRINT_STATE}{s}": v for s, v in (imprints or {}).items()})
    return state


def save_checkpoint(path: Path, state: Mapping[str, np.ndarray]) -> Path:
    """Write atomically (temp file, then rename) so a kill mid-write never leaves a torn checkpoint."""
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **state)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickles)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def check_checkpoint(setup: Setup, state: Mapping[str, np.ndarray], chash: str | None = None) -> None:
    """ValueError when the checkpoint was written for another config (its ``config_hash`` differs from
    ``chash``; checkpoints from before the hash was stored are let through), or naming the first tensor of
    the model that it lacks or holds in another shape."""
    if chash is not None and "config_hash" in state and str(state["config_hash"]) != chash:
        raise ValueError(
            f"the checkpoint was trained with another config (hash {state['config_hash']}, this config "
            f"{chash}): resume with the config the checkpoint was trained with"
        )
    for key, v in _checkpointed(setup.gan):
        saved = state.get(key)
        if saved is None or saved.shape != v.shape:
            got = None if saved is None else saved.shape
            raise ValueError(
                f"checkpoint tensor {key}: shape {got} does not match the model's {v.shape} "
                "(resume with the config the checkpoint was trained with)"
            )
    if "iteration" not in state:
        raise ValueError("the checkpoint has no iteration count: not a gansweep checkpoint")


def _checkpointed(gan: GAN) -> list[tuple[str, np.ndarray]]:
    """(checkpoint key, array) of every tensor a resume loads into the model: parameters, buffers and, with
    ``model.g_ema``, the average (``ema/t`` apart)."""
    out = [(f"param/{k}", v) for k, v in (*gan.G.params.items(), *gan.D.params.items())]
    out += [(f"{BUFFER_STATE}{k}", v) for k, v in (*gan.G.state.items(), *gan.D.state.items())]
    if gan.g_ema is not None:
        out += [(f"{EMA_STATE}{k}", v) for k, v in gan.G.param_views(gan.g_ema.shadow).items()]
    return out


def restore(
    setup: Setup, state: Mapping[str, np.ndarray]
) -> tuple[int, list[np.ndarray], dict[str, float], int]:
    """Load a checkpoint into a freshly built setup; returns (iteration, frames, metric sums since the last
    log line, iterations they cover). Shapes must match."""
    check_checkpoint(setup, state)
    gan = setup.gan
    for key, v in _checkpointed(gan):
        v[...] = state[key]
    if gan.g_ema is not None:
        gan.g_ema.t = int(state[f"{EMA_STATE}t"])
    for name, opt in (("opt_g/", gan.opt_g), ("opt_d/", gan.opt_d)):
        opt.load_state_dict({k[len(name) :]: v for k, v in state.items() if k.startswith(name)})
    for name in ("noise", "data"):
        setup.rngs[name].bit_generator.state = json.loads(str(state[f"rng/{name}"]))
    if setup.sampler is not None:
        setup.sampler.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("sampler/")})
    frames = list(state["frames"]) if "frames" in state else []
    window = {k[7:]: float(v) for k, v in state.items() if k.startswith("window/") and k != "window/seen"}
    return int(state["iteration"]), frames, window, int(state.get("window/seen", 0))


def restore_imprints(state: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
    """The fixed-noise samples a checkpoint holds for ``train.imprint_steps`` (iteration -> samples)."""
    return {
        int(k[len(IMPRINT_STATE) :]): np.array(v) for k, v in state.items() if k.startswith(IMPRINT_STATE)
    }


def imprint_metrics(final: np.ndarray, imprints: Mapping[int, np.ndarray]) -> dict[str, float]:
    """``imprint/corr_<s>`` for each recorded iteration s: the mean over the fixed-noise samples of the
    Pearson correlation between the final sample and the one after s iterations, both contrast-stretched
    (as imshow shows them). A key is left out when every pair holds a flat sample (no correlation)."""
    out = {}
    for step in sorted(imprints):
        value = mean_correlation(contrast_stretch(final), contrast_stretch(imprints[step]))
        if math.isfinite(value):
            out[K.imprint_key(step)] = value
    return out


class _Progress:
    """A tqdm bar on a terminal; plain lines (about every 10 %) when not a TTY or under CI."""

    def __init__(self, total: int, start: int, label: str):
        self.total, self.label = total, label
        self.bar = None
        self.next_line = start
        if sys.stderr.isatty() and not os.environ.get("CI"):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, desc=label, unit="it", leave=False)

    def update(self, done: int, info: Mapping[str, float]) -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in info.items()}, refresh=True)
        elif done >= self.next_line or done == self.total:
            stats = " ".join(f"{k}={v:.4g}" for k, v in info.items())
            print(f"[{self.label}] {done}/{self.total} {stats}", file=sys.stderr, flush=True)
            self.next_line = done + max(1, self.total // 10)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _evaluate(setup: Setup, evaluator: Any, cfg: Mapping[str, Any], step: int) -> dict[str, float]:
    """Score ``eval.n_samples`` fresh samples (Stacked MNIST: the 1,000-mode figures of ``data.eval_samples``
    samples, and FD, precision, recall, density and coverage of the first ``eval.n_samples`` channel images);
    the noise comes from (seed, step) so resumes agree. The real reference set is drawn with a fixed seed
    (0), so figures compare across the runs' seeds."""
    ev = get(cfg, "eval")
    rng = np.random.default_rng([get(cfg, "seed"), 7919, step])
    # Stacked MNIST counts 1,000 modes: data.eval_samples (the papers' 26,000), not eval.n_samples
    n = get(cfg, "data.eval_samples") if setup.channels == 3 else ev["n_samples"]
    z = setup.gan.sample_z(n, rng)
    out = _score(setup, evaluator, cfg, images.to_unit(setup.gan.generate(z), setup.out_activation))
    if setup.gan.g_ema is not None:  # the averaged G above; the trained G's main figures on the same noise
        raw = images.to_unit(setup.gan.generate(z, raw=True), setup.out_activation)
        out.update(_raw_scores(setup, evaluator, cfg, raw))
    return out


def _raw_scores(
    setup: Setup, evaluator: Any, cfg: Mapping[str, Any], samples: np.ndarray
) -> dict[str, float]:
    """``eval_raw/``: the trained G's digits (modes covered, KL to uniform) and FD, where ``eval.metrics``
    asks for them (Stacked MNIST: its 1,000-mode figures and the channel images' FD); nothing when the samples
    are not finite."""
    if not np.isfinite(samples).all():
        return {}
    ev, wanted = get(cfg, "eval"), resolve_groups(get(cfg, "eval.metrics"))
    if setup.channels == 3:
        scores = dict(evaluator.evaluate_stacked(samples))
        if "fd" in wanted:
            digits = samples.reshape(-1, 784)[: ev["n_samples"]]
            scores.update(evaluator.evaluate(digits, metrics=["fd"], k=ev["k"], seed=0))
        figures = K.RAW_STACKED_FIGURES
    else:
        groups = [g for g in ("modes", "fd") if g in wanted]
        scores = (
            evaluator.evaluate(samples, metrics=groups, k=ev["k"], seed=0, mode_share=ev["mode_share"])
            if groups
            else {}
        )
        figures = K.RAW_FIGURES
    return {K.EVAL_RAW_PREFIX + k: float(scores[k]) for k in figures if k in scores}


def _score(setup: Setup, evaluator: Any, cfg: Mapping[str, Any], samples: np.ndarray) -> dict[str, float]:
    """The eval point's figures of ``samples`` (in [0, 1]): see :func:`_evaluate`."""
    ev = get(cfg, "eval")
    finite = np.isfinite(samples).all(axis=1)
    if not finite.all():  # a diverged G kept training (train.stop_on_nan=false): nothing to score
        return {K.NONFINITE: float(1.0 - finite.mean())}
    if setup.channels == 3:
        scores = evaluator.evaluate_stacked(samples)
        # Sample quality as for MNIST: FD, precision and recall of the channel images (each one digit), the
        # first eval.n_samples of them, against as many real digits
        wanted = [g for g in STACKED_QUALITY if g in resolve_groups(ev.get("metrics"))]
        if wanted:
            digits = samples.reshape(-1, 784)[: ev["n_samples"]]
            scores.update(evaluator.evaluate(digits, metrics=wanted, k=ev["k"], seed=0))
        return {K.EVAL_PREFIX + k: float(v) for k, v in scores.items()}
    scores = evaluator.evaluate(
        samples, metrics=ev.get("metrics"), k=ev["k"], seed=0, mode_share=ev["mode_share"]
    )
    out = {K.EVAL_PREFIX + k: float(v) for k, v in scores.items()}
    if ev.get("stretched"):
        # What the post saw: imshow stretches each image's contrast, so a digit drawn in the 5th decimal
        # of a grey square shows. Class figures of the stretched samples say which digit that is.
        stretched = evaluator.evaluate(
            contrast_stretch(samples), metrics=["modes"], mode_share=ev["mode_share"]
        )
        out.update({K.STRETCHED_PREFIX + k: float(v) for k, v in stretched.items()})
    return out


def _inject_fault(setup: Setup, kind: str, it: int) -> None:
    """``train.fault_at``: make the run fail (``raise``) or diverge (``diverge``: NaN weights), for tests."""
    if kind == "diverge":
        next(iter(setup.gan.G.params.values()))[...] = np.nan
    else:
        raise RuntimeError(f"injected fault at iteration {it} (train.fault_at={it})")


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
    grids, eval figures) through ``logger``."""
    workdir.mkdir(parents=True, exist_ok=True)
    setup = setup or build(cfg)
    chash = config_hash(cfg)
    gan = setup.gan
    tr = get(cfg, "train")
    total, batch = tr["iterations"], tr["batch_size"]
    eval_on = evaluator is not None and get(cfg, "eval.enabled")
    eval_every = get(cfg, "eval.every") if eval_on else 0
    scale = real_scale(cfg)
    ckpt_path = workdir / K.CHECKPOINT_FILE

    # d_real_unit: D on the reals rescaled to [0, 1], for runs that feed it 0-255 (data.scale raw255)
    unit_probe = scale == "raw255"
    keys = (*K.TRAINING_CURVES, *K.GRAD_NORMS, *K.D_LOGITS, *((K.D_REAL_UNIT,) if unit_probe else ()))
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

    def fixed_samples() -> np.ndarray:
        return images.to_unit(gan.generate(setup.fixed_z), setup.out_activation)

    def record_imprint(step: int) -> None:
        if step in imprint_steps:
            imprints[step] = fixed_samples()

    def snapshot(step: int) -> None:
        samples = fixed_samples()
        mosaic = images.grid(samples, setup.channels)
        frames.append(mosaic)
        # One image per step (each log_image costs ~10 ms of encoding): the samples on the absolute grey
        # scale on the left, and on the right as the post displayed them (imshow: each image's contrast
        # stretched to its own min-max).
        stretched = images.grid(contrast_stretch(samples), setup.channels)
        logger.log_image(images.side_by_side(mosaic, stretched), K.SAMPLES_IMAGE, step)

    fresh_every = tr.get("fresh_grid_every")

    def fresh_snapshot(step: int) -> None:
        # The post's own grids: every 200 iterations (f_Generator_Multilayer.py) 16 *fresh* z, shown with
        # imshow (each image stretched). The noise comes from (seed, step), so a resumed run draws the same.
        z = gan.sample_z(
            tr["fresh_grid_size"], np.random.default_rng([get(cfg, "seed"), FRESH_GRID_SALT, step])
        )
        samples = images.to_unit(gan.generate(z), setup.out_activation)
        raw, stretched = (images.grid(s, setup.channels) for s in (samples, contrast_stretch(samples)))
        logger.log_image(images.side_by_side(raw, stretched), K.FRESH_GRID_IMAGE, step)

    def checkpoint(step: int) -> Path:
        save_checkpoint(ckpt_path, _state(setup, chash, step, frames, window, seen, imprints))
        logger.flush()  # metrics up to the checkpoint first: a resume from it must not leave a gap
        logger.log_artifact(ckpt_path, K.CHECKPOINT_DIR)
        return ckpt_path

    if start == 0:
        record_imprint(0)
        snapshot(0)
        if fresh_every:
            fresh_snapshot(0)
        if eval_on:
            logger.log_metrics(_evaluate(setup, evaluator, cfg, 0), 0)

    last, final = {}, {}
    progress = _Progress(total, start, label)
    tick = time.perf_counter()
    try:
        for it in range(start, total):
            if should_stop():
                path = checkpoint(it)
                return Result(K.KILLED, it, last, path, f"stopped by a signal at iteration {it}")
            if it == tr.get("fault_at"):
                _inject_fault(setup, tr.get("fault", "raise"), it)
            lr, stats = train_step(setup, scale, batch, it, unit_probe=unit_probe)
            if not (math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"])):
                bad = {k: stats[k] for k in ("loss_d", "loss_g")}
                logger.log_metrics({k: v for k, v in stats.items() if math.isfinite(v)}, it + 1)
                if tr["stop_on_nan"]:
                    return Result(
                        K.DIVERGED, it + 1, last, None, f"non-finite loss at iteration {it + 1}: {bad}"
                    )
            for k in keys:
                window[k] += stats[k]
            seen += 1
            step = it + 1
            record_imprint(step)
            if step % tr["log_every"] == 0 or step == total:
                now = time.perf_counter()
                last = {k: window[k] / seen for k in keys if k not in partial}
                partial = set()
                last.update(lr=lr, img_per_s=batch * seen / max(now - tick, 1e-9))
                logger.log_metrics(last, step)
                progress.update(step, {k: last[k] for k in ("loss_d", "loss_g", "d_fake")})
                window, seen, tick = dict.fromkeys(keys, 0.0), 0, now
            if step % tr["sample_every"] == 0 and step != total:
                snapshot(step)
            if fresh_every and step % fresh_every == 0:
                fresh_snapshot(step)
            if eval_on and step % eval_every == 0 and step != total:
                logger.log_metrics(_evaluate(setup, evaluator, cfg, step), step)
            if step % tr["checkpoint_every"] == 0 and step != total:
                checkpoint(step)
    finally:
        progress.close()

    snapshot(total)
    final = dict(last)
    if eval_on:
        scores = _evaluate(setup, evaluator, cfg, total)
        logger.log_metrics(scores, total)
        final.update(scores)
    if imprint_steps:
        scores = imprint_metrics(fixed_samples(), imprints)
        logger.log_metrics(scores, total)
        final.update(scores)
    png = images.save_png(frames[-1], workdir / K.SAMPLES_ARTIFACT)
    logger.log_artifact(png)
    stretched = contrast_stretch(fixed_samples())
    mosaic = images.grid(stretched, setup.channels)
    logger.log_artifact(images.save_png(mosaic, workdir / K.STRETCHED_SAMPLES_ARTIFACT))
    logger.log_artifact(images.save_gif(frames, workdir / K.PROGRESS_ARTIFACT))
    path = checkpoint(total)
    return Result(K.FINISHED, total, final, path)
