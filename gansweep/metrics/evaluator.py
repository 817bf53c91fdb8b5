"""The evaluator: one interface, samples in, named figures out.

``load_evaluator()`` verifies the cached classifier (see :mod:`gansweep.metrics.store`) and returns
an :class:`Evaluator`; ``Evaluator.evaluate(samples)`` returns a flat ``dict[str, float]`` whose keys
are the figure names (the runner logs them as ``eval/<name>``). Reference statistics are built on first
use and cached in memory and on disk, so repeated calls at training eval points only pay for the samples.

The metric groups (``metrics=``; a figure name selects its group) are declared once, in :data:`GROUPS`:
each group's name, the function that computes it, and its figures, which the figure registry
(:mod:`gansweep.figures`: ranges, better direction, words, captions) lists. The dispatch, the config
check (``eval.metrics``, through :func:`resolve_groups`) and the table in docs/ARCHITECTURE.md
(:func:`groups_table`, checked by a test) all follow from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gansweep.figures import group_figures
from gansweep.metrics.classifier import DigitClassifier, check_images
from gansweep.metrics.diversity import diversity_figures, pixel_spread
from gansweep.metrics.frechet import frechet_distance, gaussian_stats
from gansweep.metrics.memorisation import memorisation_figures
from gansweep.metrics.mode_collapse import mode_figures
from gansweep.metrics.ndb import ndb
from gansweep.metrics.prdc import prdc
from gansweep.metrics.reference import (
    BinStats,
    FeatureStats,
    assign_bins,
    bin_cache_file,
    build_bin_stats,
    build_feature_stats,
    feature_cache_file,
)
from gansweep.metrics.stacked import stacked_figures, stacked_modes
from gansweep.metrics.store import evaluator_dir, load_classifier


@dataclass(frozen=True)
class _Batch:
    """What every group's function gets: the samples, the classifier's features and class probabilities of
    them, and the options of the call."""

    x: np.ndarray
    feats: np.ndarray
    probs: np.ndarray
    n_reference: int
    k: int
    seed: int
    mode_share: float
    alpha: float


@dataclass(frozen=True)
class MetricGroup:
    """A group of figures computed together: ``compute(evaluator, batch)`` returns exactly ``figures``."""

    name: str
    figures: tuple[str, ...]
    compute: Callable[[Evaluator, _Batch], dict[str, float]]


def _modes(ev: Evaluator, b: _Batch) -> dict[str, float]:
    return mode_figures(b.probs, min_share=b.mode_share)


def _fd(ev: Evaluator, b: _Batch) -> dict[str, float]:
    ref = ev.feature_stats(b.n_reference, b.seed)
    return {"fd": frechet_distance(*gaussian_stats(b.feats), ref.mu, ref.sigma)}


def _ndb(ev: Evaluator, b: _Batch) -> dict[str, float]:
    bins = ev.bin_stats()
    count, _ = ndb(assign_bins(b.x, bins), bins.props, bins.n_train, alpha=b.alpha)
    return {"ndb_k": count / bins.centres.shape[0]}


def _prdc(ev: Evaluator, b: _Batch) -> dict[str, float]:
    ref, m = ev.feature_stats(b.n_reference, b.seed), min(b.x.shape[0], b.n_reference)
    return prdc(ref.features[:m], b.feats, k=b.k, real_radii=ref.prdc_radii(m, b.k))


def _memorisation(ev: Evaluator, b: _Batch) -> dict[str, float]:
    return memorisation_figures(b.x, ev.train_images, ev.bin_stats().held_out_nn_mean)


def _diversity(ev: Evaluator, b: _Batch) -> dict[str, float]:
    return diversity_figures(b.x, ev.real_spread())


GROUPS: tuple[MetricGroup, ...] = tuple(
    MetricGroup(name, group_figures(name), compute)
    for name, compute in (
        ("modes", _modes),
        ("fd", _fd),
        ("ndb", _ndb),
        ("prdc", _prdc),
        ("memorisation", _memorisation),
        ("diversity", _diversity),
    )
)
METRIC_GROUPS: dict[str, tuple[str, ...]] = {g.name: g.figures for g in GROUPS}
STACKED_FIGURES = group_figures("stacked")
_BY_NAME = {g.name: g for g in GROUPS}
_FIGURE_GROUP = {fig: group for group, figs in METRIC_GROUPS.items() for fig in figs}


def groups_table() -> str:
    """The metric groups as a Markdown table (group, figures), as docs/ARCHITECTURE.md shows it."""
    rows = [f"| `{g.name}` | {', '.join(f'`{f}`' for f in g.figures)} |" for g in GROUPS]
    return "\n".join(["| group | figures |", "| --- | --- |", *rows]) + "\n"


def resolve_groups(metrics: Sequence[str] | None) -> list[str]:
    """Metric groups to compute, in canonical order, from group or figure names (``None``: all)."""
    if metrics is None:
        return list(METRIC_GROUPS)
    if isinstance(metrics, str):
        metrics = [metrics]
    wanted = set()
    for name in metrics:
        if name in METRIC_GROUPS:
            wanted.add(name)
        elif name in _FIGURE_GROUP:
            wanted.add(_FIGURE_GROUP[name])
        else:
            raise ValueError(
                f"unknown metric {name!r}; choose groups {sorted(METRIC_GROUPS)} or figure names "
                f"{sorted(_FIGURE_GROUP)}"
            )
    return [g for g in METRIC_GROUPS if g in wanted]


class Evaluator:
    """Scores generated MNIST samples with a verified classifier and cached real-data references.

    ``train_images`` / ``test_images`` (uint8 or [0, 1] floats, ``(N, 784)``) default to
    ``gansweep.data.load_mnist`` and are loaded on first need. ``disk_cache`` writes reference
    statistics beside the classifier (``<cache_dir>/evaluator/reference-*.npz``).
    """

    def __init__(
        self,
        classifier: DigitClassifier,
        metadata: dict | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        disk_cache: bool = True,
        ndb_bins: int = 100,
        train_images: np.ndarray | None = None,
        test_images: np.ndarray | None = None,
    ) -> None:
        if ndb_bins < 2:
            raise ValueError(f"ndb_bins must be >= 2; got {ndb_bins}")
        self.classifier = classifier
        self.metadata = dict(metadata or {})
        self.checksum = classifier.checksum
        self.cache_dir = cache_dir
        self.disk_dir: Path | None = evaluator_dir(cache_dir) if disk_cache else None
        self.ndb_bins = int(ndb_bins)
        self._train = None if train_images is None else _as_unit(train_images, "train_images")
        self._test = None if test_images is None else _as_unit(test_images, "test_images")
        self._bins: BinStats | None = None
        self._features: dict[tuple[int, int], FeatureStats] = {}
        self._real_spread: float | None = None

    # -- real data and references ---------------------------------------------------------------
    def _mnist(self, split: str) -> np.ndarray:
        from gansweep.data import load_mnist  # the data package is only needed once references are built

        return _as_unit(load_mnist(split, cache_dir=self.cache_dir)[0], f"MNIST {split}")

    @property
    def train_images(self) -> np.ndarray:
        """MNIST training images as float32 in [0, 1] (loaded once)."""
        if self._train is None:
            self._train = self._mnist("train")
        return self._train

    @property
    def test_images(self) -> np.ndarray:
        """MNIST test images as float32 in [0, 1] (loaded once)."""
        if self._test is None:
            self._test = self._mnist("test")
        return self._test

    def bin_stats(self) -> BinStats:
        """NDB bins and the held-out nearest-training distance (built once)."""
        if self._bins is None:
            path = (
                None if self.disk_dir is None else bin_cache_file(self.disk_dir, self.checksum, self.ndb_bins)
            )
            self._bins = build_bin_stats(
                self.train_images, self.test_images, n_bins=self.ndb_bins, cache_file=path
            )
        return self._bins

    def feature_stats(self, n_reference: int = 10000, seed: int = 0) -> FeatureStats:
        """Reference features of ``n_reference`` seeded training digits (once per ``n_reference, seed``)."""
        key = (int(n_reference), int(seed))
        if key not in self._features:
            path = (
                None
                if self.disk_dir is None
                else feature_cache_file(self.disk_dir, self.checksum, n_reference, seed)
            )
            self._features[key] = build_feature_stats(
                self.classifier, self.train_images, n_reference=n_reference, seed=seed, cache_file=path
            )
        return self._features[key]

    def real_spread(self) -> float:
        """The pixel spread of the MNIST test images, the diversity figures' reference (computed once)."""
        if self._real_spread is None:
            self._real_spread = pixel_spread(self.test_images)
        return self._real_spread

    def prepare(
        self, *, n_reference: int = 10000, k: int = 5, seed: int = 0, n_samples: int | None = None
    ) -> None:
        """Build every reference statistic now (else the first ``evaluate`` call pays for it)."""
        self.bin_stats()
        fs = self.feature_stats(n_reference, seed)
        fs.prdc_radii(min(n_samples or n_reference, n_reference), k)

    # -- scoring --------------------------------------------------------------------------------
    def evaluate(
        self,
        samples: np.ndarray,
        *,
        metrics: Sequence[str] | None = None,
        n_reference: int = 10000,
        k: int = 5,
        seed: int = 0,
        mode_share: float = 0.02,
        alpha: float = 0.05,
    ) -> dict[str, float]:
        """Score generated samples ``(N, 784)`` in [0, 1]; return ``{figure name: value}``.

        ``metrics``: groups or figure names (see :data:`GROUPS`; ``None``: all).
        ``n_reference``: real training images drawn by ``default_rng(seed)`` for FD and PRDC.
        ``k``: neighbours for the PRDC radii. ``mode_share``: the share a digit needs to count as
        covered. ``alpha``: NDB significance level. PRDC compares equal-sized sets — the samples
        against the first ``min(N, n_reference)`` reference features — as recommended by
        Kynkäänniemi et al. 2019 and Naeem et al. 2020 (coverage is biased low otherwise).
        """
        groups = resolve_groups(metrics)
        x = check_images(samples, name="samples")
        if not 0.0 < mode_share < 1.0:
            raise ValueError(f"mode_share must lie in (0, 1); got {mode_share}")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1); got {alpha}")
        if not 2 <= n_reference <= 60000:
            raise ValueError(f"n_reference must lie in [2, 60000]; got {n_reference}")
        if "prdc" in groups and not 1 <= k < min(x.shape[0], n_reference):
            raise ValueError(
                f"k must lie in [1, {min(x.shape[0], n_reference) - 1}] for {x.shape[0]} samples; got {k}"
            )
        if "fd" in groups and x.shape[0] < 2:
            raise ValueError(f"fd needs at least 2 samples; got {x.shape[0]}")

        feats, probs = self.classifier.features_and_probs(x)
        batch = _Batch(x, feats, probs, n_reference, k, seed, mode_share, alpha)
        out: dict[str, float] = {}
        for name in groups:
            out.update(_BY_NAME[name].compute(self, batch))
        return out

    def evaluate_stacked(self, samples: np.ndarray, *, min_count: int = 1) -> dict[str, float]:
        """Score Stacked MNIST samples ``(N, 3 * 784)`` (channel-major, in [0, 1]): 1,000 modes."""
        x = check_images(samples, name="samples", dim=3 * 784)
        digits = self.classifier.predict(x.reshape(-1, 784)).reshape(-1, 3)
        return stacked_figures(stacked_modes(digits), min_count=min_count)


def _as_unit(images: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    return check_images(arr, name=name)


def load_evaluator(cache_dir: str | os.PathLike | None = None, **kwargs) -> Evaluator:
    """Load the verified cached classifier and wrap it in an :class:`Evaluator` (``kwargs`` go to it).

    Raises :class:`gansweep.metrics.store.EvaluatorUnavailable` for a missing, checksum-mismatching
    or below-threshold classifier; its message names the command that fixes it.
    """
    clf, meta = load_classifier(cache_dir)
    return Evaluator(clf, meta, cache_dir=cache_dir, **kwargs)
