"""The cached evaluator classifier: where it lives, how it is verified, and the idempotent ``train``.

Layout under ``gansweep.paths.cache_dir()/evaluator/`` (beside the MNIST cache)::

    classifier.npz    the weights (W0, b0, W1, b1, ...)
    classifier.json   {"checksum": sha256 of the weights, "test_accuracy": ..., "config": ..., ...}

A classifier is *valid* when both files exist, the weights hash to the recorded checksum and the
recorded MNIST test accuracy reaches :data:`ACCURACY_THRESHOLD`. Anything else is refused with
:class:`EvaluatorUnavailable`, whose message names the command that fixes it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gansweep import paths
from gansweep.metrics.classifier import DigitClassifier, params_checksum
from gansweep.metrics.training import TrainConfig, train_classifier

ACCURACY_THRESHOLD = 0.985
FORMAT_VERSION = 1
FIX_COMMAND = "gansweep-evaluator train"


class EvaluatorUnavailable(RuntimeError):
    """The cached classifier is missing, corrupted (checksum mismatch) or below the accuracy threshold."""


def evaluator_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/evaluator``; ``cache_dir`` defaults to :func:`gansweep.paths.cache_dir`."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else paths.cache_dir()
    return base / "evaluator"


def _files(cache_dir: str | os.PathLike | None) -> tuple[Path, Path]:
    d = evaluator_dir(cache_dir)
    return d / "classifier.npz", d / "classifier.json"


def _fix_hint(cache_dir: str | os.PathLike | None, force: bool) -> str:
    cmd = FIX_COMMAND + (" --force" if force else "")
    if cache_dir is not None:
        cmd += f" --cache-dir {Path(cache_dir).expanduser()}"
    return f"run `{cmd}` to train it (a few minutes on 2 CPU cores)"


def save_classifier(
    clf: DigitClassifier, meta: dict, cache_dir: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """Write weights and metadata atomically (temp file + rename); ``meta`` gains the checksum."""
    npz_path, json_path = _files(cache_dir)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "checksum": clf.checksum, "format_version": FORMAT_VERSION}
    tmp_npz = npz_path.with_name(f".{npz_path.name}.{os.getpid()}.tmp.npz")
    with open(tmp_npz, "wb") as f:
        np.savez(f, **clf.params)
    tmp_json = json_path.with_name(f".{json_path.name}.{os.getpid()}.tmp")
    tmp_json.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_npz, npz_path)
    os.replace(tmp_json, json_path)
    return npz_path, json_path


def read_metadata(cache_dir: str | os.PathLike | None = None) -> dict | None:
    """The recorded metadata, or ``None`` when absent or unreadable."""
    _, json_path = _files(cache_dir)
    try:
        return json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None


def load_classifier(
    cache_dir: str | os.PathLike | None = None, *, threshold: float = ACCURACY_THRESHOLD
) -> tuple[DigitClassifier, dict]:
    """Load and verify the cached classifier; raise :class:`EvaluatorUnavailable` if it cannot be trusted."""
    npz_path, json_path = _files(cache_dir)
    if not npz_path.is_file() or not json_path.is_file():
        raise EvaluatorUnavailable(
            f"no evaluator classifier at {npz_path.parent} (missing {npz_path.name} or {json_path.name}); "
            + _fix_hint(cache_dir, force=False)
        )
    meta = read_metadata(cache_dir)
    if not isinstance(meta, dict) or "checksum" not in meta or "test_accuracy" not in meta:
        raise EvaluatorUnavailable(
            f"unreadable evaluator metadata {json_path}; " + _fix_hint(cache_dir, True)
        )
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            params = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise EvaluatorUnavailable(
            f"unreadable evaluator weights {npz_path} ({exc}); " + _fix_hint(cache_dir, True)
        ) from exc
    actual = params_checksum(params)
    if actual != meta["checksum"]:
        raise EvaluatorUnavailable(
            f"evaluator checksum mismatch for {npz_path}: recorded {meta['checksum'][:16]}…, "
            f"weights hash to {actual[:16]}… (corrupted or edited); " + _fix_hint(cache_dir, True)
        )
    acc = float(meta["test_accuracy"])
    if not acc >= threshold:
        raise EvaluatorUnavailable(
            f"evaluator classifier at {npz_path} reached {acc:.2%} MNIST test accuracy, below the "
            f"{threshold:.2%} threshold; " + _fix_hint(cache_dir, True)
        )
    try:
        clf = DigitClassifier(params)
    except ValueError as exc:
        raise EvaluatorUnavailable(
            f"malformed evaluator weights {npz_path}: {exc}; " + _fix_hint(cache_dir, True)
        ) from exc
    return clf, meta


def _unit(images_uint8: np.ndarray) -> np.ndarray:
    return images_uint8.astype(np.float32) / np.float32(255.0)


def ensure_classifier(
    cache_dir: str | os.PathLike | None = None,
    *,
    force: bool = False,
    config: TrainConfig | None = None,
    progress: bool | Callable[[str, bool], None] = True,
    log: Callable[[str], None] | None = print,
) -> tuple[DigitClassifier, dict, bool]:
    """Idempotent training: return the cached valid classifier, or train, verify and cache a new one.

    Returns ``(classifier, metadata, trained)`` where ``trained`` tells whether training ran.
    ``force`` retrains even when a valid classifier is cached. Raises :class:`EvaluatorUnavailable`
    when a freshly trained classifier stays below :data:`ACCURACY_THRESHOLD` (it is still written,
    so ``gansweep-evaluator info`` can show it).
    """
    # ~60 lines on purpose: the cache hit, the training and the record it keeps read in the order they happen.
    if not force:
        try:
            clf, meta = load_classifier(cache_dir)
        except EvaluatorUnavailable as exc:
            if log is not None and evaluator_dir(cache_dir).exists():
                log(f"cached evaluator not usable ({exc}); retraining")
        else:
            if log is not None:
                log(
                    f"valid evaluator already cached at {evaluator_dir(cache_dir)} "
                    f"(test accuracy {meta['test_accuracy']:.2%}); use --force to retrain"
                )
            return clf, meta, False

    from gansweep.data import load_mnist  # imported here: only training needs MNIST labels

    cfg = config or TrainConfig()
    xtr, ytr = load_mnist("train", cache_dir=cache_dir)
    xte, yte = load_mnist("test", cache_dir=cache_dir)
    if log is not None:
        log(f"training the evaluator classifier {list(cfg.hidden)} for {cfg.epochs} epochs (seed {cfg.seed})")
    clf, record = train_classifier(
        _unit(xtr), ytr, config=cfg, eval_images=_unit(xte), eval_labels=yte, progress=progress
    )
    acc = clf.accuracy(_unit(xte), yte)
    meta = {
        "test_accuracy": acc,
        "threshold": ACCURACY_THRESHOLD,
        "train_seconds": record["train_seconds"],
        "history": record["history"],
        "config": cfg.to_dict(),
        "architecture": {"input": 784, "hidden": list(clf.hidden), "classes": 10, "activation": "relu"},
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    _, json_path = save_classifier(clf, meta, cache_dir)
    meta = read_metadata(cache_dir) or meta
    if log is not None:
        log(f"test accuracy {acc:.2%} after {record['train_seconds']:.0f} s; saved to {json_path.parent}")
    if acc < ACCURACY_THRESHOLD:
        raise EvaluatorUnavailable(
            f"the trained classifier reached {acc:.2%} MNIST test accuracy, below the "
            f"{ACCURACY_THRESHOLD:.2%} threshold; retrain with more epochs "
            "(`gansweep-evaluator train --force --epochs N`)"
        )
    return clf, meta, True
