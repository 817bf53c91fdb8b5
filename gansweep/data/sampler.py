"""Which training images each step uses. Draws only from the ``np.random.Generator`` it is given."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

MODES: tuple[str, ...] = ("epoch", "post_random")
# The post's ``np.random.randint(len(images) - k)`` never draws the last k images: k = 10 in
# f_Generator_Multilayer.py and g_multi_multi_layer.py, 5 in h_multi_last.py (``holdout``; 5 by default).
POST_HOLDOUT = 5


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{what} must be an integer > 0, got {value!r}")
    return int(value)


class BatchSampler:
    """Minibatch indices into a dataset of ``n`` images.

    ``epoch``: the index stream is a concatenation of fresh permutations of ``range(n)``, cut into
    batches of ``batch_size``; every image appears once per epoch (a batch that straddles two epochs
    takes the tail of one permutation and the head of the next, so every batch has ``batch_size``).
    ``post_random``: as the post did, each step draws ``batch_size`` independent indices uniformly from
    ``range(n - holdout)`` (with replacement), so the last ``holdout`` images are never used.

    :meth:`state_dict` holds the permutation and position as plain arrays (npz-safe). The Generator's
    own state is the caller's to save and restore; with both restored the stream continues bit-identically.
    """

    def __init__(
        self, n: int, batch_size: int, mode: str, rng: np.random.Generator, *, holdout: int = POST_HOLDOUT
    ):
        if mode not in MODES:
            raise ValueError(f"unknown sampling mode {mode!r}; expected one of {MODES}")
        self.n = _positive_int(n, "n")
        self.batch_size = _positive_int(batch_size, "batch_size")
        if mode == "epoch" and self.batch_size > self.n:
            raise ValueError(f"batch_size={batch_size} exceeds the {n} images (mode 'epoch')")
        if isinstance(holdout, bool) or not isinstance(holdout, int | np.integer) or holdout < 0:
            raise ValueError(f"holdout must be an integer >= 0, got {holdout!r}")
        self.holdout = int(holdout)
        if mode == "post_random" and self.n <= self.holdout:
            raise ValueError(f"n={n}: 'post_random' needs more than holdout={holdout} images")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.mode = mode
        self.rng = rng
        self._perm = np.empty(0, dtype=np.int64)  # drawn lazily: building a sampler draws nothing
        self._pos = 0
        self.epochs_completed = 0

    def next_indices(self) -> np.ndarray:
        """The next batch: int64 indices, shape (batch_size,)."""
        if self.mode == "post_random":
            return self.rng.integers(0, self.n - self.holdout, size=self.batch_size, dtype=np.int64)
        out = np.empty(self.batch_size, dtype=np.int64)
        filled = 0
        while filled < self.batch_size:
            if self._pos == len(self._perm):
                if len(self._perm):
                    self.epochs_completed += 1
                self._perm = self.rng.permutation(self.n).astype(np.int64)
                self._pos = 0
            take = min(self.batch_size - filled, self.n - self._pos)
            out[filled : filled + take] = self._perm[self._pos : self._pos + take]
            filled += take
            self._pos += take
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays only (``np.savez`` / ``np.load(allow_pickle=False)`` safe)."""
        return {
            "mode": np.asarray(self.mode),
            "n": np.asarray(self.n, dtype=np.int64),
            "batch_size": np.asarray(self.batch_size, dtype=np.int64),
            "permutation": self._perm.copy(),
            "position": np.asarray(self._pos, dtype=np.int64),
            "epochs_completed": np.asarray(self.epochs_completed, dtype=np.int64),
        }

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` output; refuses a state from a different mode, n or batch size."""
        missing = {"mode", "n", "batch_size", "permutation", "position", "epochs_completed"} - set(state)
        if missing:
            raise ValueError(f"sampler state lacks {sorted(missing)}")
        mode, n, batch = str(state["mode"]), int(state["n"]), int(state["batch_size"])
        if (mode, n, batch) != (self.mode, self.n, self.batch_size):
            raise ValueError(
                f"sampler state is for mode={mode!r} n={n} batch_size={batch}, "
                f"this sampler is mode={self.mode!r} n={self.n} batch_size={self.batch_size}"
            )
        perm = np.asarray(state["permutation"], dtype=np.int64)
        pos = int(state["position"])
        if len(perm) and not np.array_equal(np.sort(perm), np.arange(self.n)):
            raise ValueError(f"sampler state permutation is not a permutation of range({self.n})")
        if not 0 <= pos <= len(perm):
            raise ValueError(f"sampler state position {pos} outside [0, {len(perm)}]")
        self._perm, self._pos = perm.copy(), pos
        self.epochs_completed = int(state["epochs_completed"])
