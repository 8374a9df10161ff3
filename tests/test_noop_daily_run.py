"""A daily run of a session already built skips Snakemake, unless Snakemake would run something.

Starting Snakemake costs about a second to find nothing to do. When every
daily sentinel of the session exists, none is older than what it needs, and
each built-in collector's data is still in the market database, the run
says so and prints its summary without starting it. Any other case runs
Snakemake as before: a missing sentinel, an upstream rebuilt later, lost data.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from workflow_project import (
    FRIDAY_MORNING,
    daily_sentinel,
    fake_tasks,
    make_project,
    orchestrator,
    project_config,
)

pytestmark = pytest.mark.slow
SESSION = "2026-11-27"
SKIPPED = "is built and its data is stored; nothing to run"


def snakemake_runs(project: Path) -> int:
    """How many Snakemake runs the project has seen (one log file each)."""
    folder = project / ".snakemake" / "log"
    return len(list(folder.iterdir())) if folder.is_dir() else 0


@pytest.fixture
def built(tmp_path: Path) -> Path:
    config = fake_tasks(project_config())
    config["now"] = FRIDAY_MORNING
    project = make_project(tmp_path / "p", config)
    first = orchestrator(project, "--daily")
    assert first.returncode == 0, first.stdout + first.stderr
    assert SKIPPED not in first.stderr
    return project


def test_a_built_session_is_not_handed_to_snakemake(built: Path) -> None:
    runs = snakemake_runs(built)
    again = orchestrator(built, "--daily")
    assert again.returncode == 0, again.stderr
    assert f"session {SESSION} {SKIPPED}" in again.stderr
    assert "12/12 tasks built" in again.stdout  # the summary still answers
    assert snakemake_runs(built) == runs


def test_a_missing_sentinel_runs_snakemake(built: Path) -> None:
    daily_sentinel(built, SESSION, "news").unlink()
    runs = snakemake_runs(built)
    again = orchestrator(built, "--daily")
    assert again.returncode == 0, again.stderr
    assert SKIPPED not in again.stderr
    assert snakemake_runs(built) == runs + 1
    assert daily_sentinel(built, SESSION, "news").is_file()


def test_a_sentinel_older_than_what_it_needs_runs_snakemake(built: Path) -> None:
    features = daily_sentinel(built, SESSION, "ml_features")
    needed = daily_sentinel(built, SESSION, "prices_daily")
    os.utime(needed, (features.stat().st_mtime + 60, features.stat().st_mtime + 60))
    runs = snakemake_runs(built)
    again = orchestrator(built, "--daily")
    assert again.returncode == 0, again.stderr
    assert SKIPPED not in again.stderr
    assert snakemake_runs(built) == runs + 1


def test_a_session_whose_data_was_lost_runs_snakemake(tmp_path: Path) -> None:
    config = project_config()
    config["now"] = FRIDAY_MORNING
    project = make_project(tmp_path / "p", config)  # the built-in collectors, real data
    assert orchestrator(project, "--daily").returncode == 0
    with sqlite3.connect(project / "state" / "market.db") as connection:
        connection.execute("DELETE FROM news")
    again = orchestrator(project, "--daily")
    assert again.returncode == 0, again.stderr
    assert SKIPPED not in again.stderr
    with sqlite3.connect(project / "state" / "market.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM news").fetchone()[0] > 0
