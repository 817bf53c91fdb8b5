"""A run's figures: an eval point's scores of fresh samples (the evaluator's figures; with ``model.g_ema``
the trained G's as ``eval_raw/``), and at the end the imprint correlations of ``train.imprint_steps``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gansweep import images
from gansweep.metrics.diversity import contrast_stretch
from gansweep.metrics.evaluator import resolve_groups
from gansweep.metrics.imprint import mean_correlation
from gansweep.run import contract
from gansweep.run.build import Setup
from gansweep.run.config import get

STACKED_QUALITY = ("fd", "prdc")  # metric groups a Stacked-MNIST eval point computes on the channel images


def evaluate(setup: Setup, evaluator: Any, cfg: Mapping[str, Any], step: int) -> dict[str, float]:
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
        figures = contract.RAW_STACKED_FIGURES
    else:
        groups = [g for g in ("modes", "fd") if g in wanted]
        scores = (
            evaluator.evaluate(samples, metrics=groups, k=ev["k"], seed=0, mode_share=ev["mode_share"])
            if groups
            else {}
        )
        figures = contract.RAW_FIGURES
    return {contract.EVAL_RAW_PREFIX + k: float(scores[k]) for k in figures if k in scores}


def _score(setup: Setup, evaluator: Any, cfg: Mapping[str, Any], samples: np.ndarray) -> dict[str, float]:
    """The eval point's figures of ``samples`` (in [0, 1]): see :func:`evaluate`."""
    ev = get(cfg, "eval")
    finite = np.isfinite(samples).all(axis=1)
    if not finite.all():  # a diverged G kept training (train.stop_on_nan=false): nothing to score
        return {contract.NONFINITE: float(1.0 - finite.mean())}
    if setup.channels == 3:
        scores = evaluator.evaluate_stacked(samples)
        # Sample quality as for MNIST: FD, precision and recall of the channel images (each one digit), the
        # first eval.n_samples of them, against as many real digits
        wanted = [g for g in STACKED_QUALITY if g in resolve_groups(ev.get("metrics"))]
        if wanted:
            digits = samples.reshape(-1, 784)[: ev["n_samples"]]
            scores.update(evaluator.evaluate(digits, metrics=wanted, k=ev["k"], seed=0))
        return {contract.EVAL_PREFIX + k: float(v) for k, v in scores.items()}
    scores = evaluator.evaluate(
        samples, metrics=ev.get("metrics"), k=ev["k"], seed=0, mode_share=ev["mode_share"]
    )
    out = {contract.EVAL_PREFIX + k: float(v) for k, v in scores.items()}
    if ev.get("stretched"):
        # What the post saw: imshow stretches each image's contrast, so a digit drawn in the 5th decimal
        # of a grey square shows. Class figures of the stretched samples say which digit that is.
        stretched = evaluator.evaluate(
            contrast_stretch(samples), metrics=["modes"], mode_share=ev["mode_share"]
        )
        out.update({contract.STRETCHED_PREFIX + k: float(v) for k, v in stretched.items()})
    return out


def imprint_metrics(final: np.ndarray, imprints: Mapping[int, np.ndarray]) -> dict[str, float]:
    """``imprint/corr_<s>`` for each recorded iteration s: the mean over the fixed-noise samples of the
    Pearson correlation between the final sample and the one after s iterations, both contrast-stretched
    (as imshow shows them). A key is left out when every pair holds a flat sample (no correlation)."""
    out = {}
    for step in sorted(imprints):
        value = mean_correlation(contrast_stretch(final), contrast_stretch(imprints[step]))
        if math.isfinite(value):
            out[contract.imprint_key(step)] = value
    return out
