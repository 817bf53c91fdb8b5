"""The figure registry: what each evaluator figure is, in one place. Standard library only.

A :class:`Figure` states its evaluator group, the range it can take, which direction is better, the smallest
difference that counts as a finding (``mmd``: a difference below it is no finding, and an interval inside
``±mmd`` is an equivalence), the words a report uses for it, and its caption. The evaluator builds its metric
groups from it (:func:`group_figures`), the analysis its ranges, verdicts, table columns, plot titles and
captions (``analysis.catalog``). Adding a figure touches one record here.

The minimum meaningful differences are judgement calls, stated once: one digit of ten; 50 of 1,000
Stacked-MNIST modes; 0.05 nats of KL to uniform (the project's "covers the digits evenly" bar); 10 FD units
(runs here span 30–500); 0.1 of precision, recall, density, coverage, NDB and contrast (all in [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf
EVAL_PREFIX = "eval/"
STRETCHED_PREFIX = "eval_stretched/"
# train.imprint_steps: at the end of a run, per recorded iteration s, the Pearson correlation between each
# final fixed-noise sample and the same sample after s iterations (both contrast-stretched, as imshow shows
# them), averaged over the samples: IMPRINT_PREFIX + str(s), e.g. "imprint/corr_41" (:func:`imprint_figure`).
IMPRINT_PREFIX = "imprint/corr_"


@dataclass(frozen=True)
class Figure:
    """One figure an eval point logs (``eval/<name>``)."""

    name: str  # the evaluator's name ("modes_covered")
    group: str  # the evaluator group that computes it (gansweep.metrics.evaluator.GROUPS)
    low: float  # the attainable range (a diverged generator aside)
    high: float
    better: str  # "higher" | "lower" | "" (no better direction: a diagnostic)
    mmd: float  # minimum meaningful difference (> 0)
    short: str  # a column / panel name ("digits")
    more: str  # a positive difference in words ("more digits")
    fewer: str  # a negative difference in words ("fewer digits")
    caption: str  # what it measures, for a reader
    prefix: str = EVAL_PREFIX  # the metric key is prefix + name

    @property
    def key(self) -> str:
        return self.prefix + self.name


def _shares() -> tuple[Figure, ...]:
    return tuple(
        Figure(
            f"class_share_{d}",
            "modes",
            0.0,
            1.0,
            "",
            0.05,
            f"share of {d}s",
            f"more {d}s",
            f"fewer {d}s",
            f"share of the samples the evaluator classifies as digit {d}",
        )
        for d in range(10)
    )


# In the evaluator's group order; within a group, in the order the group returns them.
FIGURES: tuple[Figure, ...] = (
    # modes_covered: a digit is covered at >= eval.mode_share (2 %) of the samples; with at most 10 % one
    # digit always reaches it, so 1 is the floor.
    Figure(
        "modes_covered", "modes", 1.0, 10.0, "higher", 1.0, "digits", "more digits", "fewer digits",
        "digits (of 10) that get at least 2 % of the samples, as the NumPy evaluator classifies them",
    ),
    Figure(
        "kl_to_uniform", "modes", 0.0, math.log(10), "lower", 0.05, "KL", "larger KL", "smaller KL",
        "KL divergence of the samples' digit distribution to uniform over 10 digits (nats; 0 is even)",
    ),
    Figure(
        "kl_from_uniform", "modes", 0.0, INF, "lower", 0.05, "KL from uniform", "larger reverse KL",
        "smaller reverse KL", "KL divergence of uniform to the samples' digit distribution (nats)",
    ),
    Figure(
        "entropy", "modes", 0.0, math.log(10), "higher", 0.05, "entropy", "higher entropy", "lower entropy",
        "entropy of the samples' digit distribution (nats; ln 10 = 2.30 is even)",
    ),
    Figure(
        "mnist_score", "modes", 1.0, 10.0, "higher", 0.5, "MNIST score", "higher MNIST score",
        "lower MNIST score", "the Inception score with the NumPy evaluator as the classifier (1 to 10)",
    ),
    *_shares(),
    Figure(
        "fd", "fd", 0.0, INF, "lower", 10.0, "FD", "larger FD", "smaller FD",
        "Fréchet distance between the evaluator's features of the samples and of real training digits",
    ),
    Figure(
        "ndb_k", "ndb", 0.0, 1.0, "lower", 0.1, "NDB", "more NDB bins", "fewer NDB bins",
        "share of k-means bins whose sample proportion differs from the real one (Richardson & Weiss)",
    ),
    Figure(
        "precision", "prdc", 0.0, 1.0, "higher", 0.1, "precision", "higher precision", "lower precision",
        "share of samples inside the real digits' k-NN manifold (sample fidelity; Kynkäänniemi et al.)",
    ),
    Figure(
        "recall", "prdc", 0.0, 1.0, "higher", 0.1, "recall", "higher recall", "lower recall",
        "share of real digits inside the samples' k-NN manifold (coverage of the data)",
    ),
    Figure(
        "density", "prdc", 0.0, INF, "higher", 0.1, "density", "higher density", "lower density",
        "density (Naeem et al.): like precision, counting how many real neighbourhoods hold a sample",
    ),
    Figure(
        "coverage", "prdc", 0.0, 1.0, "higher", 0.1, "coverage", "higher coverage", "lower coverage",
        "coverage (Naeem et al.): share of real neighbourhoods that hold a sample",
    ),
    Figure(
        "nn_train_dist", "memorisation", 0.0, INF, "", 1.0, "NN distance", "farther from the training set",
        "closer to the training set", "mean pixel distance of a sample to its nearest training digit",
    ),
    Figure(
        "nn_train_ratio", "memorisation", 0.0, INF, "", 0.1, "NN ratio", "higher NN ratio",
        "lower NN ratio", "that distance over held-out real digits' own (below 1: memorising)",
    ),
    Figure(
        "diversity_ratio", "diversity", 0.0, INF, "", 0.1, "diversity", "more diverse", "less diverse",
        "pixel spread of the samples over the real digits' spread (0: G ignores z)",
    ),
    Figure(
        "contrast", "diversity", 0.0, 1.0, "higher", 0.1, "contrast", "more contrast", "less contrast",
        "mean per-sample pixel range (real digits about 1; a flat grey square 0)",
    ),
    Figure(
        "stacked_modes_covered", "stacked", 0.0, 1000.0, "higher", 50.0, "Stacked modes",
        "more Stacked-MNIST modes", "fewer Stacked-MNIST modes",
        "Stacked-MNIST modes (of 1,000: three digits per sample) that the samples cover",
    ),
    Figure(
        "stacked_kl_to_uniform", "stacked", 0.0, math.log(1000), "lower", 0.25, "Stacked KL",
        "larger Stacked-MNIST KL", "smaller Stacked-MNIST KL",
        "KL of the samples' Stacked-MNIST mode distribution to uniform over 1,000 modes (nats)",
    ),
)  # fmt: skip

BY_NAME: dict[str, Figure] = {f.name: f for f in FIGURES}
# The contrast-stretched samples (eval.stretched) are scored by the "modes" group again, under this prefix.
STRETCHED: dict[str, Figure] = {
    f.name: Figure(
        f.name,
        f.group,
        f.low,
        f.high,
        f.better,
        f.mmd,
        f"stretched {f.short}",
        f"{f.more} once stretched",
        f"{f.fewer} once stretched",
        f"{f.caption}, scored on the samples contrast-stretched as imshow shows them",
    )
    for f in FIGURES
    if f.group == "modes"
}
# Every figure by the metric key a run logs.
BY_KEY: dict[str, Figure] = {
    **{f.key: f for f in FIGURES},
    **{STRETCHED_PREFIX + f.name: f for f in STRETCHED.values()},
}


def imprint_figure(step: int) -> Figure:
    """The figure ``train.imprint_steps`` entry ``step`` logs (``imprint/corr_<step>``): how much the final
    samples still look like G's samples after ``step`` iterations."""
    step = int(step)
    return Figure(
        f"corr_{step}",
        "imprint",
        -1.0,
        1.0,
        "",
        0.1,
        f"corr. with iteration {step}",
        f"samples closer to iteration {step}'s",
        f"samples farther from iteration {step}'s",
        f"mean Pearson correlation of each final fixed-noise sample with the same sample after {step} "
        "iterations, both contrast-stretched as imshow shows them (1: the final samples are iteration "
        f"{step}'s)",
        prefix=IMPRINT_PREFIX.removesuffix("corr_"),
    )


def by_key(key: str) -> Figure | None:
    """The figure metric key ``key`` logs (``eval/fd``, ``eval_stretched/modes_covered``,
    ``imprint/corr_41``), or None."""
    digits = key.removeprefix(IMPRINT_PREFIX)
    if key.startswith(IMPRINT_PREFIX) and digits.isdigit():
        return imprint_figure(int(digits))
    return BY_KEY.get(key)


def group_figures(group: str) -> tuple[str, ...]:
    """The names of the figures of evaluator group ``group``, in registry order."""
    return tuple(f.name for f in FIGURES if f.group == group)


def figure(key: str) -> Figure:
    """The figure a metric key (``eval/fd``, ``eval_stretched/modes_covered``, ``imprint/corr_41``) or a
    bare name (``fd``) logs; KeyError naming the known ones otherwise."""
    found = by_key(key) or BY_NAME.get(key)
    if found is not None:
        return found
    raise KeyError(
        f"unknown figure {key!r}; known: {', '.join(sorted(BY_NAME))}, {IMPRINT_PREFIX}<iteration>"
    )
