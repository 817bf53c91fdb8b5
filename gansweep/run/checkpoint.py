"""A run's checkpoint: what a resume needs as plain arrays (``last.npz``, no pickles), written atomically,
read, checked against the model and the config, and loaded into a freshly built :class:`Setup`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gansweep.engine.gan import GAN
from gansweep.run.build import Setup

IMPRINT_STATE = "imprint/"  # checkpoint keys of the samples train.imprint_steps recorded: imprint/<iteration>
BUFFER_STATE = "buffer/"  # checkpoint keys of the nets' non-parameter state (BatchNorm's running statistics,
# spectral normalisation's u and v): buffer/<name>, e.g. buffer/G.0.bn_mean, buffer/D.0.sn_u
EMA_STATE = "ema/"  # G's weight average (model.g_ema): ema/<param name>, and ema/t, the averaging steps taken


def checkpoint_state(
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
