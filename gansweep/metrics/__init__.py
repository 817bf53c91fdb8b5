"""Mode-collapse and sample-quality metrics for generated MNIST, computed with a NumPy digit classifier.

Train the classifier once (``gansweep-evaluator train``), then::

    from gansweep.metrics import load_evaluator
    ev = load_evaluator()                       # refuses a missing / corrupted / weak classifier
    figures = ev.evaluate(samples)              # samples: float (N, 784) in [0, 1]
    stacked = ev.evaluate_stacked(samples3)     # samples3: float (N, 3 * 784), channel-major

Figures and their references: :mod:`~gansweep.metrics.mode_collapse` (modes, KL, entropy, MNIST
score), :mod:`~gansweep.metrics.frechet` (FD), :mod:`~gansweep.metrics.ndb` (NDB/K),
:mod:`~gansweep.metrics.prdc` (precision, recall, density, coverage),
:mod:`~gansweep.metrics.memorisation` (nearest-training distance), :mod:`~gansweep.metrics.stacked`
(1,000 Stacked MNIST modes).
"""

from gansweep.metrics.classifier import DigitClassifier
from gansweep.metrics.evaluator import METRIC_GROUPS, STACKED_FIGURES, Evaluator, load_evaluator
from gansweep.metrics.store import (
    ACCURACY_THRESHOLD,
    EvaluatorUnavailable,
    ensure_classifier,
    load_classifier,
)
from gansweep.metrics.training import TrainConfig

__all__ = [
    "ACCURACY_THRESHOLD",
    "METRIC_GROUPS",
    "STACKED_FIGURES",
    "DigitClassifier",
    "Evaluator",
    "EvaluatorUnavailable",
    "TrainConfig",
    "ensure_classifier",
    "load_classifier",
    "load_evaluator",
]
