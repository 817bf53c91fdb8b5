"""The post's recipe in float64 with its ×0.002 init keeps every array out of the subnormal range: weights,
gradients, the forward and backward buffers of each layer, and Adam's state (subnormal operands take the
CPU's slow path; measured 4-5x, see gansweep.engine.optim). Trains the real config on the real MNIST cache."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose
from omegaconf import OmegaConf

from gansweep.run.build import build
from gansweep.run.config import real_scale
from gansweep.run.loop import train_step


def _subnormal(a: np.ndarray) -> int:
    if a.dtype.kind != "f":
        return 0
    return int(np.count_nonzero((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)))


def _arrays(gan) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for net in (gan.G, gan.D):
        out[f"{net.name}.params"] = net.flat_params
        out[f"{net.name}.grads"] = net.flat_grads
        for i, layer in enumerate(net.layers):
            buf = getattr(layer, "_last", None)
            for key in ("x", "y", "pre", "gpre", "dx"):
                if net is gan.G and i == 0 and key == "dx":
                    continue  # the gradient into z is never computed: an unwritten buffer
                value = getattr(buf, key, None)
                if isinstance(value, np.ndarray):
                    out[f"{net.name}.{i}.{key}"] = value
    for name, opt in (("opt_g", gan.opt_g), ("opt_d", gan.opt_d)):
        for key, value in opt.state_dict().items():
            if isinstance(value, np.ndarray):
                out[f"{name}.{key}"] = value
    return out


@pytest.mark.parametrize("run", ["failed1", "extreme_decay"])
def test_post_recipe_float64_stays_out_of_the_subnormals(hydra_conf, run: str) -> None:
    cfg = OmegaConf.to_container(compose("config", overrides=[f"post={run}", "recipe=post"]), resolve=True)
    setup = build(cfg)
    assert setup.dtype == np.float64 and setup.gan.G.dtype == np.float64
    batch = int(cfg["train"]["batch_size"])
    for it in range(300):  # past the flush period of the optimizer state and the decay's milestones
        train_step(setup, real_scale(cfg), batch, it)
    arrays = _arrays(setup.gan)
    assert any(".0.gpre" in k for k in arrays) and any(k.startswith("opt_d.") for k in arrays)
    bad = {k: n for k, a in arrays.items() if (n := _subnormal(a))}
    assert not bad, f"subnormal values in {bad}"
