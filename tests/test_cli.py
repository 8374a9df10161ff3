"""The ``orchestrator`` command: usage errors, the daily run and its summary,
``--update-stale`` forcing exactly the stale sources, the health exit status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from workflow_project import (
    DAILY_TASKS,
    daily_sentinel,
    fake_tasks,
    make_project,
    orchestrator,
    project_config,
)

SESSION = "2026-11-20"  # a regular Friday


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--once"], "--once needs --intraday"),
        (["--interval", "5"], "--interval needs --intraday"),
        (["--daily", "--intraday"], "not allowed with argument"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--intraday", "--interval", "0"], "--interval must be a positive number"),
        (["--health", "--dry-run"], "--dry-run works with"),
        (["--cores", "2"], "--cores needs --daily"),
        (["--daily", "--json"], "--json needs --health"),
        (["--health", "--launchd"], "--launchd needs the schedule command"),
        (["--daily", "--cron"], "--cron needs the schedule command"),
        (["--daily", "--min-staleness", "red"], "--min-staleness needs --update-stale"),
        (["--daily", "--session", "20261120"], "--session '20261120' is not a date (YYYY-MM-DD)"),
        (["summary", "--session", "garbage"], "--session 'garbage' is not a date"),
        (["--intraday", "--interval", "0.01"], "at least 1"),
        (["schedule", "remove", "--cron"], "schedule needs one of: install, uninstall, status"),
        (["schedule", "status"], "schedule status needs exactly one of --launchd"),
    ],
)
def test_bad_command_lines_exit_2_with_one_clear_message(tmp_path, args, message):
    project = make_project(tmp_path / "p", fake_tasks(project_config()))
    result = orchestrator(project, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the message, and where to find help


def test_a_closed_output_pipe_ends_quietly(tmp_path):
    """As ``orchestrator graph | head -n 0``: the reader is gone before anything is written."""
    project = make_project(tmp_path / "p", fake_tasks(project_config()))
    command = [sys.executable, "-m", "orchestrator.cli", "--project", str(project), "graph"]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        writer = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert writer.returncode == 1
    assert writer.stderr == ""


def with_now(config, now):
    config["now"] = now
    return config


@pytest.mark.slow
@pytest.mark.parametrize(
    ("session", "message"),
    [
        ("2026-11-26", "session 2026-11-26 is not a XNYS trading day"),
        ("2026-13-01", "--session '2026-13-01' is not a date"),
        ("2026-12-01", "session 2026-12-01 has not started yet"),
    ],
)
def test_a_session_that_cannot_be_built_exits_2(tmp_path, session, message):
    config = with_now(fake_tasks(project_config()), "2026-11-27T10:00:00-05:00")
    project = make_project(tmp_path / "p", config)
    result = orchestrator(project, "--daily", "--session", session)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (project / "state" / "targets").exists()


def test_a_bad_config_exits_2_naming_file_key_and_problem(tmp_path):
    config = fake_tasks(project_config())
    config["tasks"]["news"]["max_runtime_seconds"] = 0
    project = make_project(tmp_path / "p", config)
    result = orchestrator(project, "--daily")
    assert result.returncode == 2
    assert "config.yaml: tasks.news.max_runtime_seconds" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_daily_runs_snakemake_and_prints_the_summary(tmp_path):
    config = with_now(fake_tasks(project_config()), "2026-11-20T10:00:00-05:00")
    project = make_project(tmp_path / "p", config)
    result = orchestrator(project, "--daily")
    assert result.returncode == 0, result.stderr
    assert f"Daily session {SESSION}:" in result.stdout
    assert "12/12 tasks built, 84 records" in result.stdout  # the fake task reports 7 each
    again = orchestrator(project, "--daily")
    assert again.returncode == 0
    assert f"session {SESSION} is built and its data is stored; nothing to run" in again.stderr


@pytest.mark.slow
def test_daily_with_a_failed_task_exits_1_and_says_which(tmp_path):
    config = with_now(
        fake_tasks(project_config(), args={"analyst": ["--exit", "65"]}),
        "2026-11-20T10:00:00-05:00",
    )
    project = make_project(tmp_path / "p", config)
    result = orchestrator(project, "--daily")
    assert result.returncode == 1
    assert "analyst       failed" in result.stdout
    assert "fake failure of analyst" in result.stdout
    assert "inputs failed: analyst" in result.stdout


def real_collectors_project(tmp_path, now):
    config = with_now(project_config(), now)
    config["provider"]["universe_size"] = 5
    # Stale within hours, so one session shows it.
    config["tasks"]["fundamentals"]["freshness"] = {"green": "1h", "yellow": "2h"}
    return make_project(tmp_path / "p", config)


@pytest.mark.slow
def test_update_stale_forces_exactly_the_stale_sources_and_their_dependents(tmp_path):
    project = real_collectors_project(tmp_path, "2026-11-20T10:00:00-05:00")
    assert orchestrator(project, "--daily").returncode == 0
    before = {t: daily_sentinel(project, SESSION, t).stat().st_mtime_ns for t in DAILY_TASKS}

    config = yaml.safe_load((project / "config.yaml").read_text())
    config["now"] = "2026-11-20T15:00:00-05:00"
    for task in ("price_data", "intraday_features", "intraday_signals"):
        config["tasks"][task]["hours"] = ["post"]  # out of scope at 15:00: not planned
    (project / "config.yaml").write_text(yaml.safe_dump(config))

    plan = orchestrator(project, "--update-stale", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "fundamentals (daily):" in plan.stdout
    assert "--forcerun fundamentals" in plan.stdout
    assert "analyst (daily)" not in plan.stdout
    unchanged = {t: daily_sentinel(project, SESSION, t).stat().st_mtime_ns for t in DAILY_TASKS}
    assert unchanged == before

    result = orchestrator(project, "--update-stale")
    assert result.returncode == 0, result.stdout + result.stderr
    after = {t: daily_sentinel(project, SESSION, t).stat().st_mtime_ns for t in DAILY_TASKS}
    assert {t for t in DAILY_TASKS if after[t] != before[t]} == {
        "fundamentals",
        "ml_features",
        "signals",
    }

    health = orchestrator(project, "--health", "--json")
    sources = {s["task"]: s["status"] for s in json.loads(health.stdout)["sources"]}
    assert sources["fundamentals"] == "GREEN"


@pytest.mark.slow
def test_health_exit_status_follows_the_worst_source(tmp_path):
    project = real_collectors_project(tmp_path, "2026-11-20T10:00:00-05:00")
    assert orchestrator(project, "--daily").returncode == 0
    config = yaml.safe_load((project / "config.yaml").read_text())
    for task in ("price_data", "intraday_features", "intraday_signals"):
        config["tasks"].pop(task)
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    # The workflow's rules still name the intraday tasks; health reads only the config.
    assert orchestrator(project, "--health").returncode == 0
    config["now"] = "2026-11-20T11:30:00-05:00"  # fundamentals 1.5 h old: yellow
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    assert orchestrator(project, "--health").returncode == 1
    config["now"] = "2026-11-20T12:30:00-05:00"  # 2.5 h: red
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    result = orchestrator(project, "--health")
    assert result.returncode == 2
    assert "fundamentals" in result.stdout.split("\n\n")[0]


@pytest.mark.parametrize(
    ("now", "message"),
    [
        ("2026-11-26T10:00:00-05:00", "2026-11-26 is not a XNYS session; nothing to do"),
        ("2026-11-28T10:00:00-05:00", "2026-11-28 is not a XNYS session; nothing to do"),
        ("2026-11-27T09:29:00-05:00", "before the daily start time 09:30; nothing to do"),
    ],
)
def test_the_scheduled_daily_run_does_nothing_when_no_session_has_started(tmp_path, now, message):
    project = make_project(tmp_path / "p", with_now(fake_tasks(project_config()), now))
    result = orchestrator(project, "--daily", "--scheduled")
    assert result.returncode == 0, result.stderr
    assert message in result.stderr
    assert not (project / "state" / "targets").exists()


@pytest.mark.slow
def test_the_scheduled_daily_run_builds_the_session_once_it_has_started(tmp_path):
    config = with_now(fake_tasks(project_config()), "2026-11-27T09:31:00-05:00")
    project = make_project(tmp_path / "p", config)
    result = orchestrator(project, "--daily", "--scheduled")
    assert result.returncode == 0, result.stderr
    assert "12/12 tasks built" in result.stdout
