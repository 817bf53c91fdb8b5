"""Sample mosaics: where each digit lands, the two-panel image the UI's slider shows, PNG and GIF files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gansweep import images


def test_grid_puts_each_sample_in_its_cell_on_a_white_canvas() -> None:
    samples = np.stack([np.full(784, v) for v in (0.0, 0.25, 0.5, 1.0, 0.75)])  # 5 samples: 3 x 2 cells
    mosaic = images.grid(samples, pad=2)
    assert mosaic.shape == (2 * 30 + 2, 3 * 30 + 2) and mosaic.dtype == np.uint8
    for i, v in enumerate((0, 64, 128, 255, 191)):
        r, c = divmod(i, 3)
        assert (mosaic[2 + 30 * r : 30 + 30 * r, 2 + 30 * c : 30 + 30 * c] == v).all(), i
    assert (mosaic[32:60, 62:90] == 255).all()  # the unused sixth cell stays white
    with pytest.raises(ValueError, match="does not hold 1 x 28 x 28"):
        images.grid(np.zeros((4, 783)))


def test_side_by_side_keeps_both_mosaics_and_splits_them_with_a_grey_bar() -> None:
    left = images.grid(np.zeros((4, 784)))
    right = images.grid(np.ones((4, 784)))
    both = images.side_by_side(left, right, gap=6, shade=128)
    w = left.shape[1]
    assert both.shape == (left.shape[0], 2 * w + 6)
    assert (both[:, :w] == left).all() and (both[:, w + 6 :] == right).all()
    assert (both[:, w : w + 6] == 128).all()
    rgb = images.side_by_side(images.grid(np.zeros((4, 3 * 784)), 3), images.grid(np.ones((4, 3 * 784)), 3))
    assert rgb.shape == (left.shape[0], 2 * w + 6, 3)
    with pytest.raises(ValueError, match="cannot sit side by side"):
        images.side_by_side(left, images.grid(np.zeros((9, 784))))


def test_png_is_enlarged_and_gif_holds_every_frame(tmp_path: Path) -> None:
    frames = [images.grid(np.full((4, 784), v)) for v in (0.0, 0.5, 1.0)]
    png = Image.open(images.save_png(frames[1], tmp_path / "s.png", scale=2))
    assert png.size == (2 * frames[1].shape[1], 2 * frames[1].shape[0])
    gif = Image.open(images.save_gif(frames, tmp_path / "p.gif"))
    assert gif.n_frames == 3
    with pytest.raises(ValueError, match="no frames"):
        images.save_gif([], tmp_path / "empty.gif")
