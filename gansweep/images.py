"""Sample grids as images: a square mosaic of 28x28 digits (RGB for Stacked MNIST), two mosaics side by side,
PNG and animated GIF."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 28


def to_unit(x: np.ndarray, out_activation: str) -> np.ndarray:
    """G's output mapped to [0, 1]: tanh outputs are shifted, everything is clipped."""
    if out_activation == "tanh":
        x = (x + 1.0) / 2.0
    return np.clip(x, 0.0, 1.0)


def grid(samples: np.ndarray, channels: int = 1, pad: int = 2) -> np.ndarray:
    """A uint8 mosaic (H, W) or (H, W, 3) of ``samples`` in [0, 1], shape (N, channels*784), ~square."""
    n = samples.shape[0]
    if n == 0 or samples.shape[1] != channels * SIDE * SIDE:
        raise ValueError(f"samples shape {samples.shape} does not hold {channels} x 28 x 28 images")
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell = SIDE + pad
    canvas = np.full((rows * cell + pad, cols * cell + pad, channels), 255, dtype=np.uint8)
    pix = (np.clip(samples, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(n, channels, SIDE, SIDE)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * cell, pad + c * cell
        canvas[y : y + SIDE, x : x + SIDE] = pix[i].transpose(1, 2, 0)
    return canvas[..., 0] if channels == 1 else canvas


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 6, shade: int = 128) -> np.ndarray:
    """Two mosaics of the same height in one image, split by a ``gap``-pixel grey (``shade``) bar."""
    if left.shape[0] != right.shape[0] or left.shape[2:] != right.shape[2:]:
        raise ValueError(f"mosaics of shapes {left.shape} and {right.shape} cannot sit side by side")
    bar = np.full((left.shape[0], gap, *left.shape[2:]), shade, dtype=np.uint8)
    return np.concatenate([left, bar, right], axis=1)


def save_png(mosaic: np.ndarray, path: Path, scale: int = 2) -> Path:
    """Write a mosaic, enlarged ``scale`` times (nearest neighbour) so digits read at a glance."""
    img = Image.fromarray(mosaic)
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    img.save(path, format="PNG")
    return path


def save_gif(frames: Sequence[np.ndarray], path: Path, ms_per_frame: int = 400, scale: int = 2) -> Path:
    """An animated GIF of the mosaics in order (the training progression); the last frame lingers."""
    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(f) for f in frames]
    images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    durations = [ms_per_frame] * (len(images) - 1) + [ms_per_frame * 4]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, format="GIF")
    return path
