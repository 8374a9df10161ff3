"""Sentinels never claim data that is gone: a replaced market.db or an emptied table is rebuilt.

Real collectors on a 5-symbol synthetic market, real ``orchestrator`` and
``snakemake`` runs, the clock pinned to the Friday after Thanksgiving.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import pytest
import yaml
from workflow_project import (
    FRIDAY_MORNING,
    daily_sentinel,
    make_project,
    orchestrator,
    project_config,
    snakemake,
)

pytestmark = pytest.mark.slow
SESSION = "2026-11-27"


@pytest.fixture
def built(tmp_path):
    config = {**project_config(), "now": FRIDAY_MORNING}
    config["provider"]["universe_size"] = 5
    config["tasks"]["earnings"].pop("not_before")
    project = make_project(tmp_path / "p", config)
    result = orchestrator(project, "--daily")
    assert result.returncode == 0, result.stdout + result.stderr
    return project


def count(project, table):
    with sqlite3.connect(project / "state" / "market.db") as connection:
        return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_a_deleted_market_database_is_rebuilt_not_reported_built(built):
    (built / "state" / "market.db").unlink()
    result = orchestrator(built, "--daily")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "has no data for assets" in result.stdout + result.stderr
    assert "12/12 tasks built" in result.stdout
    assert count(built, "prices_daily") > 0 and count(built, "signals") == 5

    again = snakemake(built, "daily", now=FRIDAY_MORNING)
    assert "Nothing to be done" in again.stdout + again.stderr  # consistent again


def test_an_emptied_table_rebuilds_its_task_and_what_needs_it(built):
    with sqlite3.connect(built / "state" / "market.db") as connection:
        connection.execute("DELETE FROM news")
    before = {t: daily_sentinel(built, SESSION, t).stat().st_mtime_ns for t in ("assets", "news")}
    result = snakemake(built, "daily", now=FRIDAY_MORNING)
    assert result.returncode == 0, result.stderr
    assert "has no data for news" in result.stderr
    assert daily_sentinel(built, SESSION, "assets").stat().st_mtime_ns == before["assets"]
    assert daily_sentinel(built, SESSION, "news").stat().st_mtime_ns != before["news"]
    assert count(built, "news") > 0
    assert "localrule sentiment" in result.stdout + result.stderr  # downstream followed


def health(project):
    result = orchestrator(project, "--health", "--json")
    return result.returncode, {s["task"]: s for s in json.loads(result.stdout)["sources"]}


def test_a_source_with_no_stored_rows_is_unknown_however_recently_it_ran(built):
    _, sources = health(built)
    assert sources["economic"]["status"] == "GREEN"
    assert sources["economic"]["basis"] == "data"
    with sqlite3.connect(built / "state" / "market.db") as connection:
        connection.execute("DELETE FROM economic_series")
    _, sources = health(built)
    assert sources["economic"]["status"] == "UNKNOWN"
    assert sources["economic"]["message"] == "no data stored yet"


def test_a_check_at_a_replayed_moment_ignores_rows_stored_after_it(built):
    config_file = built / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["now"] = "2026-11-25T12:00:00-05:00"  # Wednesday, before Friday's build
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    _, sources = health(built)
    wednesday_noon = datetime.fromisoformat(config["now"])
    for source in sources.values():
        if source["data_time"] is not None:
            assert datetime.fromisoformat(source["data_time"]) <= wednesday_noon, source
    assert sources["signals"]["status"] == "UNKNOWN"  # Friday's signals are its future
