"""benchmarks.engine (``gansweep-bench``): FLOP accounting, a tiny run end to end, the remedies' and the
stabilisers' costs against the plain GAN."""

from __future__ import annotations

import pytest


def test_benchmark_runs_and_counts_the_iterations_flops(capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark's FLOP accounting matches the engine's matmuls, and a tiny run works end to end."""
    import json

    from benchmarks import engine as bench

    b = 3
    fwd_g = 2 * b * (100 * 200 + 200 * 560 + 560 * 784)
    fwd_d = 2 * b * (784 * 200 + 200 * 1)
    # D step: G fwd; D fwd, dW, dx (no dx for D's first layer) on 2B. G step: G fwd, D fwd, D dx, G dW, G dx
    # (no dx for G's first layer).
    d_step = fwd_g + 2 * (3 * fwd_d - 2 * b * 784 * 200)
    g_step = fwd_g + fwd_d + fwd_d + fwd_g + (fwd_g - 2 * b * 100 * 200)
    assert bench.iteration_flops(b) == d_step + g_step
    args = [
        "--json",
        "--no-torch",
        "--batches",
        "1,2",
        "--threads",
        "1",
        "--rounds",
        "1",
        "--seconds",
        "0.05",
        "--memory-iters",
        "20",
        "--post-instances",
        "1",
    ]
    assert bench.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    (worker,) = report["workers"]
    assert [r["batch"] for r in worker["results"]] == [1, 2]
    assert all(r["numpy_img_s"] > 0 and "ratio" not in r for r in worker["results"])
    assert worker["memory"]["iterations"] == 20 and worker["sgemm_peak_gflops"] > 0
    assert report["targets"]["ratio_b1"]["measured"] is None  # no PyTorch: nothing compared
    assert "numpy img/s" in bench.render(report)
    # the post's runs, each in float64 and float32, with the share of the bandwidth measured in the same run
    from benchmarks import post_runs as bench_post

    post = report["post_runs"]
    assert {(r["run"], r["dtype"]) for r in post["runs"]} == {
        (run, dtype) for run in bench_post.POST_RUNS for dtype in ("float64", "float32")
    }
    assert post["bandwidth_gb_per_s"]["cores"] >= 1 and post["bandwidth_gb_per_s"]["all_cores"] > 0
    for r in post["runs"]:
        assert r["batch"] == 1 and 0 < r["ms_per_iteration"] <= r["ms_per_iteration_median"]
        assert r["instances"] == 1 and r["ms_per_iteration_slowest_instance"] == r["ms_per_iteration"]
        # 12 passes over G's and D's parameters, each value 8 or 4 bytes
        assert r["bytes_per_iteration"] == 12 * r["params"] * (8 if r["dtype"] == "float64" else 4)
        assert (
            post["bandwidth_gb_per_s"]["min"] <= r["bandwidth_gb_per_s"] <= post["bandwidth_gb_per_s"]["max"]
        )
        share = r["bytes_per_iteration"] / (r["ms_per_iteration"] / 1e3) / (r["bandwidth_gb_per_s"] * 1e9)
        assert 0 < r["bandwidth_share"] and abs(r["bandwidth_share"] - share) < 1e-9


def test_the_benchmark_times_each_remedy_against_the_plain_gan(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from benchmarks import engine as bench

    args = ["--json", "--no-torch", "--no-post", "--batches", "2", "--threads", "1", "--rounds", "1"]
    assert bench.main([*args, "--seconds", "0.02", "--memory-iters", "0", "--remedy-batch", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    (worker,) = report["workers"]
    rows = {r["remedy"]: r for r in worker["remedies"]}
    assert list(rows) == list(bench.REMEDIES) and rows["plain"]["vs_plain"] == 1.0
    assert all(r["batch"] == 8 and r["ms_per_iteration"] > 0 for r in rows.values())
    text = bench.render(report)
    assert "mode-collapse remedies, 1 thread, B = 8" in text and "unrolled k=5" in text
    with pytest.raises(SystemExit):
        bench.main([*args, "--remedy-batch", "6"])


def test_the_benchmark_times_each_stabilizer_against_the_plain_gan(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from benchmarks import engine as bench

    args = ["--json", "--no-torch", "--no-post", "--no-remedies", "--batches", "2", "--threads", "1"]
    assert (
        bench.main(
            [*args, "--rounds", "1", "--seconds", "0.02", "--memory-iters", "0", "--remedy-batch", "8"]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    (worker,) = report["workers"]
    assert "remedies" not in worker
    rows = {r["stabilizer"]: r for r in worker["stabilizers"]}
    assert list(rows) == list(bench.STABILIZERS) and rows["plain"]["vs_plain"] == 1.0
    assert all(r["batch"] == 8 and r["ms_per_iteration"] > 0 for r in rows.values())
    text = bench.render(report)
    assert "stabilisers, 1 thread, B = 8" in text and "spectral norm D" in text
