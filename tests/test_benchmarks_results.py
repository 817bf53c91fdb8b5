"""benchmarks.results: ``--write-results`` replaces one section of RESULTS.md with what the run printed,
headed by the command, the date, the machine and the load; the other sections stay."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from benchmarks import measure, results


def test_a_run_writes_its_own_section_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "RESULTS.md"
    monkeypatch.setattr(results, "RESULTS", path)
    loads = itertools.chain([0.1, 5.0, 0.2, 0.3], itertools.repeat(0.1))
    monkeypatch.setattr(measure, "load_average", lambda: next(loads))
    with results.recording("regenerate", True, ["--write-results"]):
        print("regenerate: 3.40 s cold")
    with results.recording("adam", True, ["--repeats", "2"]):
        print("| `t = sqrt(v)` | 38.4 |")
    assert "regenerate: 3.40 s cold" in capsys.readouterr().out  # still printed
    text = path.read_text()
    assert text.startswith(results.HEADER) and text.index("## Adam's passes") < text.index("## Analysis")
    assert "`python -m benchmarks.regenerate --write-results`" in text
    assert "before, 5.00 after: **contended** (load average 5.00 on" in text
    assert "`python -m benchmarks.adam --repeats 2`" in text and "0.30 after: not contended" in text
    with results.recording("regenerate", True, []):
        print("regenerate: 2.00 s cold")
    with results.recording("regenerate", False, []):
        print("not written")
    again = path.read_text()
    assert "2.00 s cold" in again and "3.40 s cold" not in again and "not written" not in again
    assert again.count("<!-- section: adam -->") == 1 and "38.4" in again


def test_a_failed_run_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "RESULTS", tmp_path / "RESULTS.md")
    with pytest.raises(RuntimeError), results.recording("engine", True, []):
        print("half a table")
        raise RuntimeError("worker failed")
    assert not (tmp_path / "RESULTS.md").exists()
