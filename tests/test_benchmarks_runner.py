"""benchmarks.runner: the tracking overhead measured in interleaved off/on pairs."""

from __future__ import annotations

import pytest


def test_tracking_benchmark_measures_both_arms(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner benchmark times real off/on runs in pairs and the direct cost of the tracking calls."""
    from benchmarks import runner as bench_tracking

    monkeypatch.setenv("CI", "true")
    row = bench_tracking.tracking_overhead("post", "dense", repeats=2, iterations=40)
    assert row["batch"] == 1 and len(row["seconds_off"]) == len(row["seconds_on"]) == 2
    # the study's cadence (failed_architectures), with the dense variant's metrics every 10 iterations
    assert (row["log_every"], row["sample_every"], row["checkpoint_every"]) == (10, 1000, 1000)
    pairs = [100 * (b / a - 1) for a, b in zip(row["seconds_off"], row["seconds_on"], strict=True)]
    assert row["overhead_pct_range"] == [min(pairs), max(pairs)]
    assert min(pairs) <= row["overhead_pct"] <= max(pairs)
    # a real MLflow run logs metrics, 2 sample grids, a checkpoint and the final files: that takes time,
    # all of it inside the run's wall time
    assert 0 < row["direct_seconds"] < min(row["seconds_on"])
