"""benchmarks.adam: Adam's kernel passes timed one by one give the kernel's bits; its figures and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from gansweep.engine.optim import Adam


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_adam_bench_times_the_kernels_own_passes(dtype) -> None:
    """benchmarks.adam names and times Adam's passes one by one: run in its order they give the
    kernel's bits, so the bench cannot drift from the kernel it explains."""
    from benchmarks import adam as B

    arrays = B._arrays(1000, np.dtype(dtype), seed=3)
    mine = [a.copy() for a in arrays]
    for _, fn in B.kernel_passes(*mine):
        fn()
    theirs = [a.copy() for a in arrays]
    opt = Adam({"w": theirs[0]}, lr=1.0)
    opt._kernel([tuple(theirs)], B.B1, B.B2, B.STEP, B.EPS)
    for a, b in zip(mine[:4], theirs[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(B.kernel_passes(*mine)) == 10


def test_the_adam_bench_prints_its_figures_and_refuses_bad_input(capsys) -> None:
    import json

    from benchmarks import adam as B

    assert B.main(["--params", "5000", "--repeats", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["dtype"] for r in rows] == ["float64", "float32"]
    for r in rows:
        assert len(r["pass_us"]) == 10 and all(v > 0 for v in r["pass_us"].values())
        assert r["step_ms"] > 0 and 0 < r["bandwidth_share"]
    assert "t = sqrt(v)" in B.render(rows)
    with pytest.raises(SystemExit):
        B.main(["--dtypes", "float16"])
    assert "unknown or no dtypes ['float16']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        B.main(["--params", "0"])
    assert "params must be an integer >= 1; got 0" in capsys.readouterr().err
