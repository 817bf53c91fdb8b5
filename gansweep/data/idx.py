"""The four canonical MNIST IDX files: their names, checksums, and reading/writing them. NumPy + stdlib.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values. MNIST uses unsigned bytes (type code 0x08):
``0x00000803`` for images (N, 28, 28) and ``0x00000801`` for labels (N,).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gansweep.data.errors import CorruptFileError

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
ROWS = COLS = 28
PIXELS = ROWS * COLS


@dataclass(frozen=True)
class CanonicalFile:
    """One canonical, uncompressed MNIST file: its name, what it holds, its SHA-256 and class counts."""

    name: str
    split: str
    kind: str  # "images" | "labels"
    count: int
    sha256: str

    @property
    def magic(self) -> int:
        return IMAGE_MAGIC if self.kind == "images" else LABEL_MAGIC

    @property
    def dims(self) -> tuple[int, ...]:
        return (self.count, ROWS, COLS) if self.kind == "images" else (self.count,)

    @property
    def header_size(self) -> int:
        return 4 + 4 * len(self.dims)

    @property
    def size(self) -> int:
        """Bytes of the whole uncompressed file."""
        return self.header_size + int(np.prod(self.dims))


FILES: dict[str, CanonicalFile] = {
    f.name: f
    for f in (
        CanonicalFile(
            "train-images-idx3-ubyte",
            "train",
            "images",
            60000,
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        CanonicalFile(
            "train-labels-idx1-ubyte",
            "train",
            "labels",
            60000,
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        CanonicalFile(
            "t10k-images-idx3-ubyte",
            "test",
            "images",
            10000,
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        CanonicalFile(
            "t10k-labels-idx1-ubyte",
            "test",
            "labels",
            10000,
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    )
}

SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# Images per digit 0-9 in the canonical files (a sanity figure; the checksums are the real check).
CLASS_COUNTS: dict[str, tuple[int, ...]] = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}


def header(spec: CanonicalFile) -> bytes:
    """The IDX header of ``spec``: magic number then one big-endian uint32 per dimension."""
    return np.array([spec.magic, *spec.dims], dtype=">u4").tobytes()


def parse(buf: bytes | bytearray | memoryview, spec: CanonicalFile, source: str) -> np.ndarray:
    """Check ``buf`` is an IDX file shaped like ``spec`` and return its values as a uint8 view.

    Images come back as (N, 784), labels as (N,). ``source`` names the file in error messages.
    Raises :class:`CorruptFileError` on a wrong magic number, wrong dimensions or wrong length.
    """
    if len(buf) < 4:
        raise CorruptFileError(source, f"only {len(buf)} bytes, too short for an IDX header")
    magic = int(np.frombuffer(buf, dtype=">u4", count=1)[0])
    if magic != spec.magic:
        raise CorruptFileError(
            source, f"wrong IDX magic number 0x{magic:08x} (expected 0x{spec.magic:08x} for {spec.kind})"
        )
    if len(buf) < spec.header_size:
        raise CorruptFileError(source, f"only {len(buf)} bytes, too short for its IDX header")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=len(spec.dims), offset=4))
    if dims != spec.dims:
        raise CorruptFileError(source, f"IDX dimensions {dims}, expected {spec.dims}")
    if len(buf) != spec.size:
        raise CorruptFileError(source, f"{len(buf)} bytes, expected {spec.size} (truncated or padded)")
    values = np.frombuffer(buf, dtype=np.uint8, offset=spec.header_size)
    return values.reshape(spec.count, PIXELS) if spec.kind == "images" else values


def sha256(buf: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of a buffer (hashlib releases the GIL and uses SHA extensions where present)."""
    return hashlib.sha256(buf).hexdigest()


def check(buf: bytes | bytearray | memoryview, spec: CanonicalFile, source: str) -> np.ndarray:
    """:func:`parse` then compare the SHA-256 to the canonical one; returns the uint8 view."""
    values = parse(buf, spec, source)
    digest = sha256(buf)
    if digest != spec.sha256:
        raise CorruptFileError(source, f"SHA-256 {digest} does not match the canonical {spec.sha256}")
    return values


def read_bytes(path: Path) -> bytearray:
    """The whole file in one writable buffer, read with a single ``readinto`` (no intermediate copies)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = bytearray(size)
        got = f.readinto(buf)
    if got != size:
        raise CorruptFileError(str(path), f"read {got} of {size} bytes (file changed while reading?)")
    return buf


def read_verified(path: Path, spec: CanonicalFile) -> np.ndarray:
    """Read one canonical file and return its values only if its SHA-256 matches (always re-hashed)."""
    size = path.stat().st_size
    if size != spec.size:
        raise CorruptFileError(str(path), f"{size} bytes, expected {spec.size} (truncated or padded)")
    return check(read_bytes(path), spec, str(path))


def encode(values: np.ndarray, spec: CanonicalFile) -> bytearray:
    """The canonical IDX bytes of ``values`` (uint8, N*784 images or N labels), checked against ``spec``."""
    if values.dtype != np.uint8 or values.size != int(np.prod(spec.dims)):
        raise ValueError(
            f"{spec.name}: need {int(np.prod(spec.dims))} uint8 values, got {values.size} {values.dtype}"
        )
    buf = bytearray(spec.size)  # one allocation: header, then the values copied in place
    head = header(spec)
    buf[: len(head)] = head
    np.frombuffer(buf, dtype=np.uint8, offset=len(head))[:] = values.reshape(-1)
    return buf


def write_atomic(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to a temp file in the same folder, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
