"""The run logger against a real sqlite MLflow store: metrics buffered and sent in batches, sample grids
logged per step with their own pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gansweep.runner import tracking


def test_metrics_wait_for_flush_and_images_keep_their_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    target = tracking.Target(uri, "t", tracking.ensure_experiment(uri, "t", str(tmp_path / "artifacts")))
    run_id = tracking.start_child(target, "t", {}, [])
    logger = tracking.MlflowRunLogger(uri, run_id)
    c = tracking.client(uri)
    mosaic = np.zeros((30, 30), np.uint8)
    for step in range(3):
        mosaic[...] = 80 * step  # the caller reuses its array
        logger.log_image(mosaic, "samples", step)
        logger.log_metrics({"loss_d": 1.0 / (step + 1)}, step)
    assert c.get_metric_history(run_id, "loss_d") == []  # buffered: no database write per log line
    logger.flush()
    history = c.get_metric_history(run_id, "loss_d")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    pngs = sorted(
        (a.path for a in c.list_artifacts(run_id, "images") if a.path.endswith(".png")),
        key=lambda p: int(p.split("+step+")[1].split("+")[0]),
    )
    assert len(pngs) == 3
    for step, path in enumerate(pngs):
        assert np.asarray(Image.open(c.download_artifacts(run_id, path))).max() == 80 * step
