"""Pixel diversity, contrast and contrast stretching, on real MNIST and on the post's kind of sample."""

from __future__ import annotations

import numpy as np
import pytest

from gansweep.data import load_mnist
from gansweep.metrics.diversity import contrast_stretch, diversity_figures, pixel_spread


@pytest.fixture(scope="module")
def test_digits() -> np.ndarray:
    return load_mnist("test")[0].astype(np.float32) / 255.0


def test_real_digits_are_as_diverse_as_real_digits(test_digits: np.ndarray) -> None:
    spread = pixel_spread(test_digits)
    half = diversity_figures(test_digits[::2], spread)
    assert half["diversity_ratio"] == pytest.approx(1.0, abs=0.02)
    assert half["contrast"] > 0.95


def test_one_repeated_digit_has_no_diversity(test_digits: np.ndarray) -> None:
    same = np.repeat(test_digits[:1], 100, axis=0)
    figs = diversity_figures(same, pixel_spread(test_digits))
    assert figs["diversity_ratio"] == 0.0 and figs["contrast"] > 0.95


def test_a_digit_in_the_fifth_decimal_is_flat_until_stretched(test_digits: np.ndarray) -> None:
    faint = 0.5 + 4e-5 * (test_digits[:50].astype(np.float64) - 0.5)  # like the decay trick's samples
    figs = diversity_figures(faint, pixel_spread(test_digits))
    assert figs["contrast"] == pytest.approx(4e-5, rel=0.05) and figs["diversity_ratio"] < 1e-4
    stretched = contrast_stretch(faint)
    assert stretched.min() == 0.0 and stretched.max() == pytest.approx(1.0)
    assert np.allclose(stretched, contrast_stretch(test_digits[:50]), atol=1e-3)


def test_stretch_of_flat_samples_is_zero_and_bad_input_is_refused() -> None:
    assert not contrast_stretch(np.full((3, 784), 0.5)).any()
    with pytest.raises(ValueError, match="N >= 2"):
        pixel_spread(np.zeros((1, 784)))
    with pytest.raises(ValueError, match="real_spread"):
        diversity_figures(np.zeros((2, 784)), 0.0)
