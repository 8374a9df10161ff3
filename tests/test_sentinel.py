"""Sentinels: atomic writes, tolerant reads (their paths: ``tests/test_pipeline.py``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator import sentinel


def test_write_then_read(tmp_path: Path) -> None:
    path = tmp_path / "daily" / "2026-11-20" / "assets.json"
    record = {"task": "assets", "status": sentinel.SentinelStatus.SUCCESS, "records_processed": 50}
    sentinel.write_sentinel(path, record)
    assert sentinel.read_sentinel(path) == record
    assert json.loads(path.read_text()) == record
    assert [p.name for p in path.parent.iterdir()] == ["assets.json"]  # no temp file left


def test_write_is_atomic_via_a_temp_file_in_the_same_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x" / "task.json"
    seen: list[tuple[Path, str]] = []
    real_replace = os.replace

    def spy(source: str, target: str) -> None:
        assert not Path(target).exists()  # the target appears only by the rename
        seen.append((Path(source), Path(source).read_text()))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    sentinel.write_sentinel(path, {"task": "t"})
    ((temp, text),) = seen
    assert temp.parent == path.parent
    assert json.loads(text) == {"task": "t"}


def test_failed_write_keeps_the_old_sentinel_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "task.json"
    sentinel.write_sentinel(path, {"status": "success"})
    with pytest.raises(TypeError):
        sentinel.write_sentinel(path, {"status": "success", "bad": object()})
    assert sentinel.read_sentinel(path) == {"status": "success"}
    assert [p.name for p in tmp_path.iterdir()] == ["task.json"]


@pytest.mark.parametrize("text", [None, "", '{"task": "t", "sta', "[1, 2]", "null"])
def test_missing_or_unreadable_sentinel_reads_as_none(tmp_path: Path, text: str | None) -> None:
    path = tmp_path / "task.json"
    if text is not None:
        path.write_text(text)
    assert sentinel.read_sentinel(path) is None
