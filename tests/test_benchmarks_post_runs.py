"""benchmarks.post_runs: a cell timed in fresh processes; bad input refused."""

from __future__ import annotations

import pytest


def test_post_bench_times_a_cell_in_fresh_processes_and_refuses_bad_input() -> None:
    from benchmarks import post_runs as bench_post

    report = bench_post.measure(["failed6"], ["float32"], rounds=2, seconds=0.05, instances=2)
    (cell,) = report["runs"]
    assert report["instances"] == cell["instances"] == 2
    # the fastest round over both processes, the slowest process's fastest round, the median of all rounds
    assert 0 < cell["ms_per_iteration"] <= cell["ms_per_iteration_slowest_instance"]
    assert cell["ms_per_iteration"] <= cell["ms_per_iteration_median"]
    assert "failed6 | float32" in bench_post.render(report)
    for kwargs, named in (({"instances": 0}, "instances"), ({"rounds": 0}, "rounds")):
        with pytest.raises(ValueError, match=named):
            bench_post.measure(["failed6"], ["float32"], **kwargs)
    with pytest.raises(ValueError, match="failed9"):
        bench_post.measure(["failed9"], ["float32"])
