"""Training the evaluator's digit classifier: minibatch Adam on softmax cross-entropy with shift augmentation.

Deterministic for a given seed: every draw (initialisation, shuffling, shifts) comes from one
``np.random.Generator``. The recipe (Adam, Kingma & Ba 2015; random ±2-pixel translations as in
Simard et al. 2003, "Best practices for convolutional neural networks applied to visual document
analysis"; a cosine learning-rate decay, Loshchilov & Hutter 2017) takes the default 784-512-256-10
MLP to 99.02 % MNIST test accuracy in 20 epochs: about 40 s on two idle CPU cores (seed 0).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from gansweep.metrics.classifier import DEFAULT_HIDDEN, NUM_CLASSES, DigitClassifier, init_params, softmax


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the classifier's training (all recorded beside the weights)."""

    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    final_lr: float = 2e-5
    weight_decay: float = 0.0
    max_shift: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"epochs must be > 0; got {self.epochs}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0; got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        if not 0 <= self.final_lr <= self.lr:
            raise ValueError(f"final_lr must lie in [0, lr]; got {self.final_lr}")
        if self.max_shift < 0 or self.max_shift > 8:
            raise ValueError(f"max_shift must lie in [0, 8]; got {self.max_shift}")

    def to_dict(self) -> dict:
        """JSON-safe form."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each 28x28 image by its own integer offset in ``[-max_shift, max_shift]``² (zero fill)."""
    n = images.shape[0]
    if max_shift == 0:
        return images
    pad = max_shift
    padded = np.zeros((n, 28 + 2 * pad, 28 + 2 * pad), dtype=images.dtype)
    padded[:, pad : pad + 28, pad : pad + 28] = images.reshape(n, 28, 28)
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    ar = np.arange(28)
    rows = (dy[:, None] + ar[None, :])[:, :, None]
    cols = (dx[:, None] + ar[None, :])[:, None, :]
    return padded[np.arange(n)[:, None, None], rows, cols].reshape(n, 784)


class _Adam:
    """Adam (Kingma & Ba 2015), bias-corrected, with decoupled weight decay (Loshchilov & Hutter 2019)."""

    def __init__(self, params: dict[str, np.ndarray], weight_decay: float) -> None:
        self.params = params
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0
        self.wd = weight_decay

    def step(self, grads: dict[str, np.ndarray], lr: float, b1: float = 0.9, b2: float = 0.999) -> None:
        self.t += 1
        c1 = 1.0 - b1**self.t
        c2 = 1.0 - b2**self.t
        for k, p in self.params.items():
            g = grads[k]
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            if self.wd and k.startswith("W"):
                p -= lr * self.wd * p
            p -= (lr / c1) * m / (np.sqrt(v / c2) + 1e-8)


def _forward_backward(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, n_layers: int
) -> tuple[float, dict[str, np.ndarray]]:
    acts = [x]
    h = x
    for i in range(n_layers - 1):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        np.maximum(h, 0.0, out=h)
        acts.append(h)
    logits = h @ params[f"W{n_layers - 1}"] + params[f"b{n_layers - 1}"]
    p = softmax(logits)
    b = x.shape[0]
    loss = float(-np.mean(np.log(p[np.arange(b), y] + 1e-12)))
    grad = p
    grad[np.arange(b), y] -= 1.0
    grad /= b
    grads: dict[str, np.ndarray] = {}
    for i in range(n_layers - 1, -1, -1):
        a = acts[i]
        grads[f"W{i}"] = a.T @ grad
        grads[f"b{i}"] = grad.sum(axis=0)
        if i > 0:
            grad = grad @ params[f"W{i}"].T
            grad *= a > 0
    return loss, grads


def _progress_printer(stream=None) -> Callable[[str, bool], None]:
    """Prints progress: an updating line on a terminal, plain lines (only final ones) otherwise."""
    out = stream if stream is not None else sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())

    def show(msg: str, final: bool) -> None:
        if tty:
            out.write("\r\033[K" + msg + ("\n" if final else ""))
            out.flush()
        elif final:
            out.write(msg + "\n")
            out.flush()

    return show


def train_classifier(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    *,
    config: TrainConfig | None = None,
    eval_images: np.ndarray | None = None,
    eval_labels: np.ndarray | None = None,
    progress: bool | Callable[[str, bool], None] = True,
) -> tuple[DigitClassifier, dict]:
    """Train a :class:`DigitClassifier` on float images in ``[0, 1]`` and integer labels.

    Returns the classifier and a record: per-epoch loss (and accuracy on ``eval_images`` when given),
    wall-clock seconds. ``progress``: ``True`` prints to stderr, ``False`` is silent, or a callable
    ``(message, final_line)``.
    """
    # ~60 lines on purpose: one flat loop (epochs, batches, progress), as the GAN's own training loop.
    cfg = config or TrainConfig()
    x = np.ascontiguousarray(train_images, dtype=np.float32)
    y = np.asarray(train_labels).astype(np.int64)
    if x.ndim != 2 or x.shape[1] != 784:
        raise ValueError(f"train_images must have shape (N, 784); got {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"train_labels must have shape ({x.shape[0]},); got {y.shape}")
    if y.min() < 0 or y.max() >= NUM_CLASSES:
        raise ValueError(f"train_labels must lie in [0, {NUM_CLASSES - 1}]; got [{y.min()}, {y.max()}]")
    show = _progress_printer() if progress is True else progress if callable(progress) else None

    rng = np.random.default_rng(cfg.seed)
    params = init_params(cfg.hidden, rng=rng)
    n_layers = len(cfg.hidden) + 1
    opt = _Adam(params, cfg.weight_decay)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    history: list[dict] = []
    t0 = time.perf_counter()
    step = 0
    for epoch in range(cfg.epochs):
        order = rng.permutation(n)
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            xb = random_shift(x[idx], cfg.max_shift, rng)
            loss, grads = _forward_backward(params, xb, y[idx], n_layers)
            lr = cfg.final_lr + 0.5 * (cfg.lr - cfg.final_lr) * (1.0 + math.cos(math.pi * step / total))
            opt.step(grads, lr)
            losses.append(loss)
            step += 1
            if show is not None and s % 50 == 0:
                show(
                    f"evaluator epoch {epoch + 1}/{cfg.epochs} step {s}/{steps_per_epoch} "
                    f"loss {np.mean(losses[-50:]):.4f} ({time.perf_counter() - t0:.0f} s)",
                    False,
                )
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
        if eval_images is not None and eval_labels is not None:
            rec["eval_accuracy"] = DigitClassifier(params).accuracy(eval_images, eval_labels)
        history.append(rec)
        if show is not None:
            acc = f" test acc {rec['eval_accuracy']:.4f}" if "eval_accuracy" in rec else ""
            show(
                f"evaluator epoch {epoch + 1}/{cfg.epochs} loss {rec['loss']:.4f}{acc} "
                f"({rec['seconds']:.0f} s)",
                True,
            )
    return DigitClassifier(params), {"history": history, "train_seconds": time.perf_counter() - t0}


def hidden_from_arg(text: str | Sequence[int]) -> tuple[int, ...]:
    """Parse ``"512,256"`` (or pass a sequence through) into a tuple of widths."""
    if isinstance(text, str):
        try:
            return tuple(int(t) for t in text.split(",") if t.strip())
        except ValueError as exc:
            raise ValueError(f"hidden must be comma-separated integers; got {text!r}") from exc
    return tuple(int(t) for t in text)
