"""gansweep.runner.sweep: the sweep's summary travels from the supervisor to ``main`` through a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gansweep.runner.sweep import SUMMARY_ENV, read_summary, write_summary


def test_the_summary_file_collects_what_the_supervisor_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.json"
    assert read_summary(summary) == {}  # a single run writes none
    monkeypatch.setenv(SUMMARY_ENV, str(summary))
    write_summary(signal=15)
    write_summary(counts={"FINISHED": 2, "FAILED": 1}, failed=["  job 2: FAILED boom"], sweep_dir="/s")
    assert read_summary(summary) == {
        "signal": 15,
        "counts": {"FINISHED": 2, "FAILED": 1},
        "failed": ["  job 2: FAILED boom"],
        "sweep_dir": "/s",
    }


def test_without_a_named_file_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SUMMARY_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    write_summary(failed=["x"])
    assert list(tmp_path.iterdir()) == []
