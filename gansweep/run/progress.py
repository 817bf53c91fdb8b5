"""What a run shows while it trains: the progress bar (or plain lines), the sample grids it logs (the fixed
noise batch every ``train.sample_every``, the post's fresh-noise grid every ``train.fresh_grid_every``) and,
at the end, the final grids and ``progress.gif``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gansweep import images
from gansweep.metrics.diversity import contrast_stretch
from gansweep.run import contract
from gansweep.run.build import Setup
from gansweep.run.config import get
from gansweep.run.logger import RunLogger

FRESH_GRID_SALT = 104729  # mixed into (seed, step) for the fresh-noise grids' generator


class Progress:
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


def fixed_samples(setup: Setup) -> np.ndarray:
    """G's samples of the fixed noise batch, in [0, 1]."""
    return images.to_unit(setup.gan.generate(setup.fixed_z), setup.out_activation)


def snapshot(setup: Setup, logger: RunLogger, step: int) -> np.ndarray:
    """Log the fixed-noise grid at ``step``; returns its mosaic (a frame of ``progress.gif``)."""
    samples = fixed_samples(setup)
    mosaic = images.grid(samples, setup.channels)
    # One image per step (each log_image costs ~10 ms of encoding): the samples on the absolute grey
    # scale on the left, and on the right as the post displayed them (imshow: each image's contrast
    # stretched to its own min-max).
    stretched = images.grid(contrast_stretch(samples), setup.channels)
    logger.log_image(images.side_by_side(mosaic, stretched), contract.SAMPLES_IMAGE, step)
    return mosaic


def fresh_snapshot(setup: Setup, cfg: Mapping[str, Any], logger: RunLogger, step: int) -> None:
    """The post's own grids: every 200 iterations (f_Generator_Multilayer.py) 16 *fresh* z, shown with
    imshow (each image stretched). The noise comes from (seed, step), so a resumed run draws the same."""
    gan = setup.gan
    z = gan.sample_z(
        get(cfg, "train.fresh_grid_size"), np.random.default_rng([get(cfg, "seed"), FRESH_GRID_SALT, step])
    )
    samples = images.to_unit(gan.generate(z), setup.out_activation)
    raw, stretched = (images.grid(s, setup.channels) for s in (samples, contrast_stretch(samples)))
    logger.log_image(images.side_by_side(raw, stretched), contract.FRESH_GRID_IMAGE, step)


def save_final_images(setup: Setup, logger: RunLogger, workdir: Path, frames: list[np.ndarray]) -> None:
    """Write and report ``samples_final.png`` (the last frame), ``samples_final_stretched.png`` and
    ``progress.gif`` (every frame)."""
    png = images.save_png(frames[-1], workdir / contract.SAMPLES_ARTIFACT)
    logger.log_artifact(png)
    stretched = contrast_stretch(fixed_samples(setup))
    mosaic = images.grid(stretched, setup.channels)
    logger.log_artifact(images.save_png(mosaic, workdir / contract.STRETCHED_SAMPLES_ARTIFACT))
    logger.log_artifact(images.save_gif(frames, workdir / contract.PROGRESS_ARTIFACT))
