"""benchmarks.measure: the one timing, memory and bandwidth helper of the benchmarks."""

from __future__ import annotations

from benchmarks import measure


def test_interleaved_rounds_alternate_and_keep_every_measurement() -> None:
    calls: list[str] = []

    def probe(name: str):
        return lambda: calls.append(name) or float(len(calls))

    out = measure.interleaved({"a": probe("a"), "b": probe("b")}, rounds=3, alternate=True)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert out == {"a": [1.0, 4.0, 5.0], "b": [2.0, 3.0, 6.0]}
    assert measure.interleaved({"a": probe("a")}, rounds=2) == {"a": [7.0, 8.0]}


def test_timing_counts_whole_calls() -> None:
    calls = []
    assert measure.per_call(lambda: calls.append(1), seconds=0.0, min_calls=3) >= 0 and len(calls) == 3
    assert measure.rate(lambda: None, items=10, seconds=0.001) > 0
    n = []
    assert 0 <= measure.fastest(lambda: n.append(1), repeats=4) and len(n) == 4
    seconds, out = measure.timed(lambda: 42)
    assert out == 42 and seconds >= 0


def test_memory_bandwidth_and_machine_facts() -> None:
    assert 0 < measure.rss_mib() and 0 < measure.peak_rss_mib()
    assert measure.memory_bandwidth(rounds=1, mib=8, threads=2) > 0
    assert measure.cores() >= 1 and "CPUs, Python" in measure.machine()
    assert measure.busy([None, 0.5], own=1) is None
    assert measure.busy([0.5, 3.0], own=2) == measure.busy([3.0], own=2)
    assert measure.busy([3.0], own=2).startswith("load average 3.00 on ")
