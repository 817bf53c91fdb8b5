"""The one measuring helper every benchmark uses: timing, memory (RSS) and bandwidth, and the machine facts
and load a figure is printed with.

Timing: :func:`per_call` (seconds per call over whole calls for about a given time), :func:`rate` (items per
second from it), :func:`fastest` (the fastest of repeated calls), :func:`timed` (one call), and
:func:`interleaved`, which measures several things in alternating rounds so that a machine shared with other
work biases none of them (report the median round, :func:`median`). Memory: :func:`rss_mib` (now) and
:func:`peak_rss_mib` (the peak so far). Bandwidth: :class:`Bandwidth`, a large array copy (STREAM's "copy":
bytes read + written per second). Machine: :func:`machine`, :func:`load_average`, :func:`cores`,
:func:`busy` (the "contended" test every benchmark applies to the load average).
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
COPY_MIB = 512  # per array of the bandwidth copy: far beyond any last-level cache
median = statistics.median


# -------------------------------------------------------------------------------------------------- timing
def per_call(fn: Callable[[], object], seconds: float, min_calls: int = 1) -> float:
    """Seconds per call of ``fn`` over whole calls for about ``seconds`` (at least ``min_calls`` calls)."""
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= min_calls:
            return elapsed / n


def rate(fn: Callable[[], object], items: int, seconds: float) -> float:
    """Items per second of ``fn`` (each call handles ``items``) over about ``seconds``, at least 3 calls."""
    return items / per_call(fn, seconds, min_calls=3)


def fastest(fn: Callable[[], object], repeats: int = 1, seconds: float = 0.0) -> float:
    """Seconds of the fastest call of ``fn``, called ``repeats`` times and at least for ``seconds``."""
    best, n, end = float("inf"), 0, time.perf_counter() + seconds
    while n < repeats or time.perf_counter() < end:
        start = time.perf_counter()
        fn()
        best, n = min(best, time.perf_counter() - start), n + 1
    return best


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds one call of ``fn`` takes, its result)."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def interleaved(
    measures: dict[str, Callable[[], float]], rounds: int, alternate: bool = False
) -> dict[str, list[float]]:
    """Each of ``measures`` once per round, in order, for ``rounds`` rounds (``alternate``: the order reversed
    every other round, so a slow drift of the machine hits each alike): every measurement, by name."""
    out: dict[str, list[float]] = {name: [] for name in measures}
    for i in range(rounds):
        order = list(measures.items())
        for name, measure in reversed(order) if alternate and i % 2 else order:
            out[name].append(measure())
    return out


# -------------------------------------------------------------------------------------------------- memory
def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# ----------------------------------------------------------------------------------------------- bandwidth
class Bandwidth:
    """A ``mib`` MiB array copy on ``threads`` threads (each copies one contiguous slice; NumPy releases the
    GIL while it copies). Call :meth:`measure` for the best of ``rounds`` copies in bytes moved per second."""

    def __init__(self, threads: int = 1, mib: int = COPY_MIB) -> None:
        self.src = np.ones(mib * 2**20 // 8)
        self.dst = np.empty_like(self.src)
        np.copyto(self.dst, self.src)  # touch every page first
        bounds = np.linspace(0, self.src.size, threads + 1).astype(int)
        self.slices = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def _copy(self, part: slice) -> None:
        np.copyto(self.dst[part], self.src[part])

    def _copy_all(self) -> None:
        if self.pool is None:
            self._copy(self.slices[0])
        else:
            list(self.pool.map(self._copy, self.slices))

    def measure(self, rounds: int = 3) -> float:
        return 2 * self.src.nbytes / fastest(self._copy_all, rounds)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def memory_bandwidth(rounds: int = 5, mib: int = COPY_MIB, threads: int = 1) -> float:
    """Best of ``rounds`` copies of a ``mib`` MiB array on ``threads`` threads: (bytes read + written) / s."""
    copy = Bandwidth(threads, mib)
    try:
        return copy.measure(rounds)
    finally:
        copy.close()


# ------------------------------------------------------------------------------------------------- machine
def load_average() -> float | None:
    """1-minute load average (other processes competing for the cores make every figure lower)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> str:
    """CPU, CPU count and Python version, as the benchmarks print them."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def busy(loads: Iterable[float | None], own: int) -> str | None:
    """Why the machine was contended ("load average 3.10 on 2 CPUs"), or None: a 1-minute load average above
    the ``own`` threads the benchmark ran, plus 0.75, means other processes shared the cores."""
    for load in loads:
        if load is not None and load > own + 0.75:
            return f"load average {load:.2f} on {os.cpu_count()} CPUs"
    return None
