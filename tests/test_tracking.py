"""The run logger against a real sqlite MLflow store: metrics in batches, sample grids from a background
thread, and failures reported at flush."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gansweep import tracking


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    target = tracking.Target(uri, "t", tracking.ensure_experiment(uri, "t", str(tmp_path / "artifacts")))
    return uri, tracking.start_child(target, "t", {}, [])


def test_images_and_metrics_are_all_written_by_flush(run: tuple[str, str]) -> None:
    uri, run_id = run
    logger = tracking.MlflowRunLogger(uri, run_id)
    mosaic = np.zeros((30, 30), np.uint8)
    for step in range(3):
        mosaic[...] = 80 * step  # the caller reuses its array: each queued image keeps its own pixels
        logger.log_image(mosaic, "samples", step)
        logger.log_metrics({"loss_d": 1.0 / (step + 1)}, step)
    logger.flush()
    c = tracking.client(uri)
    history = c.get_metric_history(run_id, "loss_d")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    pngs = sorted(
        (a.path for a in c.list_artifacts(run_id, "images") if a.path.endswith(".png")),
        key=lambda p: int(p.split("+step+")[1].split("+")[0]),
    )
    assert len(pngs) == 3
    from PIL import Image

    for step, path in enumerate(pngs):
        local = c.download_artifacts(run_id, path)
        assert np.asarray(Image.open(local)).max() == 80 * step


def test_a_failed_image_write_is_raised_at_flush(run: tuple[str, str], monkeypatch) -> None:
    uri, run_id = run
    logger = tracking.MlflowRunLogger(uri, run_id)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(logger.client, "log_image", broken)
    logger.log_image(np.zeros((8, 8), np.uint8), "samples", 7)
    with pytest.raises(tracking.TrackingError, match=r"samples at step 7: OSError: disk full"):
        logger.flush()
    logger.flush()  # reported once; the logger stays usable
