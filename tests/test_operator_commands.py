"""The operator's commands beside ``--daily``: backfill, forcerun, logs; one lock each.

Real ``orchestrator`` runs on a temp project with fake tasks, the clock pinned
to the Friday after Thanksgiving.
"""

from __future__ import annotations

import json

import pytest
from workflow_project import (
    FRIDAY_MORNING,
    daily_sentinel,
    fake_tasks,
    make_project,
    orchestrator,
    project_config,
)

from orchestrator.snakemake_runs import exclusive, family_lock_path

pytestmark = pytest.mark.slow
SESSION = "2026-11-27"


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "p", {**fake_tasks(project_config()), "now": FRIDAY_MORNING})


def mtimes(project, session, tasks):
    return {t: daily_sentinel(project, session, t).stat().st_mtime_ns for t in tasks}


def test_backfill_builds_every_session_oldest_first_and_resumes(project):
    result = orchestrator(project, "backfill", "--from", "2026-11-24", "--to", "2026-11-27")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "] session " in line]
    # Thanksgiving (the 26th) is no session.
    assert lines == [
        "[1/3] session 2026-11-24: building",
        "[1/3] session 2026-11-24: built",
        "[2/3] session 2026-11-25: building",
        "[2/3] session 2026-11-25: built",
        "[3/3] session 2026-11-27: building",
        "[3/3] session 2026-11-27: built",
    ]
    assert "backfill 2026-11-24 to 2026-11-27: 3/3 sessions built" in result.stdout
    signals = json.loads(daily_sentinel(project, "2026-11-25", "signals").read_text())
    assert signals["as_of"] == "2026-11-25T14:30:00+00:00"  # that session's open

    again = orchestrator(project, "backfill", "--from", "2026-11-24", "--to", "2026-11-27")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(": already built") == 3
    assert "building" not in again.stdout


def test_backfill_dry_run_says_what_it_would_build_and_builds_nothing(project):
    result = orchestrator(
        project, "backfill", "--from", "2026-11-20", "--to", "2026-11-24", "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert "[1/3] session 2026-11-20: would be built" in result.stdout
    assert not (project / "state" / "targets").exists()


def test_backfill_refuses_a_range_past_the_current_session(project):
    result = orchestrator(project, "backfill", "--from", "2026-11-25", "--to", "2026-12-04")
    assert result.returncode == 2
    assert "has not started yet" in result.stderr


def test_forcerun_reruns_the_task_and_its_downstream_only_with_a_summary(project):
    assert orchestrator(project, "--daily").returncode == 0
    daily = [t for t, spec in project_config()["tasks"].items() if spec["family"] == "daily"]
    before = mtimes(project, SESSION, daily)
    result = orchestrator(project, "forcerun", "sentiment")
    assert result.returncode == 0, result.stderr
    after = mtimes(project, SESSION, daily)
    assert {t for t in daily if after[t] != before[t]} == {"sentiment", "ml_features", "signals"}
    assert "12/12 tasks built" in result.stdout
    assert "forcing sentiment and downstream" in result.stderr


def test_forcerun_of_an_unknown_task_names_the_tasks(project):
    result = orchestrator(project, "forcerun", "sentimnet")
    assert result.returncode == 2
    assert "no task 'sentimnet' in the config (tasks: assets," in result.stderr


def test_logs_prints_that_runs_task_log(project):
    assert orchestrator(project, "--daily").returncode == 0
    result = orchestrator(project, "logs", "prices_daily", "--session", SESSION)
    assert result.returncode == 0, result.stderr
    log = project / "state" / "logs" / "daily" / SESSION / "prices_daily.log"
    assert result.stdout == log.read_text()
    assert "prices_daily 2026-11-27: success" in result.stdout
    assert orchestrator(project, "logs", "prices_daily").stdout == result.stdout  # current

    assert orchestrator(project, "--intraday", "--once").returncode == 0
    tick = orchestrator(project, "logs", "price_data")  # the latest slot
    assert "price_data 10:00: success" in tick.stdout

    missing = orchestrator(project, "logs", "prices_daily", "--session", "2026-11-20")
    assert missing.returncode == 2
    assert "has not run for that period" in missing.stderr


def test_a_second_daily_run_says_it_is_already_running_before_announcing_a_run(project):
    lock = family_lock_path(project / "state", "daily")
    with exclusive(lock, "a daily run"):
        result = orchestrator(project, "--daily")
    assert result.returncode == 3
    assert "a daily run is already running" in result.stderr
    assert "daily pipeline for session" not in result.stderr


def test_the_console_shows_retries_and_what_each_run_built_as_it_happens(tmp_path):
    config = fake_tasks({**project_config(), "now": "2026-11-27T10:07:10-05:00"})
    config["tasks"]["news"]["args"] += ["--exit", "75"]  # transient: retried
    config["tasks"]["news"]["retry"] = {"attempts": 2, "backoff_seconds": [0]}
    project = make_project(tmp_path / "p", config)

    daily = orchestrator(project, "--daily")
    console = daily.stdout + daily.stderr
    assert "news attempt 1/2 failed (fake failure of news (exit 75)); retrying in 0 s" in console
    assert f"assets {SESSION}: success, 7 records" in console
    assert f"news {SESSION} failed after 2 attempt(s)" in console

    tick = orchestrator(project, "--intraday", "--once")
    assert "price_data 10:07: success, 7 records" in tick.stdout + tick.stderr
