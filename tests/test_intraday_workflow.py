"""The intraday DAG and the loop around it, run for real with fake tasks.

Slots follow the exchange clock; outside the tasks' hours there is nothing
to build; one loop at a time; a daily run and intraday ticks overlap without
lock errors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from workflow_project import fake_tasks, make_project, orchestrator, project_config, snakemake

pytestmark = pytest.mark.slow
INTRADAY = ("price_data", "intraday_features", "intraday_signals")


def job_counts(dry_run_output):
    """The ``job  count`` rows of a dry run's job stats table."""
    rows = (line.split() for line in dry_run_output.splitlines())
    return {
        row[0]: int(row[1])
        for row in rows
        if len(row) == 2 and row[0] in INTRADAY and row[1].isdigit()
    }


def built(project):
    root = project / "state" / "targets" / "intraday"
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.json"))


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project", fake_tasks(project_config()))


def test_a_tick_builds_the_current_slot_of_each_task_floored_to_its_interval(project):
    result = snakemake(project, "intraday", now="2026-11-27T10:07:10-05:00")
    assert result.returncode == 0, result.stderr
    assert built(project) == [
        "2026-11-27/intraday_features/1005.json",
        "2026-11-27/intraday_signals/1005.json",
        "2026-11-27/price_data/1005.json",  # what the 1005 features read
        "2026-11-27/price_data/1007.json",
    ]
    # A minute later only the new price slot is due.
    later = snakemake(project, "intraday", "-n", now="2026-11-27T10:08:10-05:00")
    assert job_counts(later.stdout) == {"price_data": 1}


@pytest.mark.parametrize(
    "moment",
    [
        "2026-11-27T13:05:00-05:00",  # half day: closed at 13:00, closing slots over
        "2026-11-26T11:00:00-05:00",  # Thanksgiving
        "2026-11-28T11:00:00-05:00",  # Saturday
        "2026-11-30T09:29:59-05:00",  # a second before Monday's open
    ],
)
def test_outside_market_hours_a_tick_has_nothing_to_build(project, moment):
    result = snakemake(project, "intraday", now=moment)
    assert result.returncode == 0, result.stderr
    assert "rule price_data" not in result.stdout + result.stderr
    assert not (project / "state" / "targets" / "intraday").exists()


def test_the_closing_slot_collects_the_last_minute_of_the_session(project):
    result = snakemake(project, "intraday", now="2026-11-27T13:00:10-05:00")  # half day
    assert result.returncode == 0, result.stderr
    assert built(project) == [
        "2026-11-27/intraday_features/1300.json",
        "2026-11-27/intraday_signals/1300.json",
        "2026-11-27/price_data/1300.json",
    ]


def test_pre_market_tasks_build_slots_of_the_coming_session(tmp_path):
    config = fake_tasks(project_config())
    config["tasks"]["price_data"]["hours"] = ["pre", "regular"]
    project = make_project(tmp_path / "p", config)
    result = snakemake(project, "intraday", now="2026-11-30T08:01:00-05:00")
    assert result.returncode == 0, result.stderr
    assert built(project) == ["2026-11-30/price_data/0801.json"]


def test_a_daily_run_and_intraday_ticks_overlap_without_lock_errors(tmp_path):
    project = make_project(tmp_path / "p", fake_tasks(project_config(), sleep=0.5))
    daily = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            "daily",
            "--cores",
            "2",
            "--snakefile",
            str(project / "Snakefile"),
            "--config",
            "now=2026-11-27T10:00:00-05:00",
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ticks = [
        snakemake(project, "intraday", now=f"2026-11-27T10:0{minute}:05-05:00")
        for minute in range(5, 8)
    ]
    daily_output, _ = daily.communicate(timeout=300)
    assert daily.returncode == 0, daily_output
    for tick in ticks:
        assert tick.returncode == 0, tick.stdout + tick.stderr
        assert "cannot be locked" not in tick.stdout + tick.stderr
    assert "cannot be locked" not in daily_output
    assert "2026-11-27/price_data/1007.json" in built(project)
    assert len(list((project / "state/targets/daily/2026-11-27").glob("*.json"))) == 12


def loop_project(tmp_path, now):
    config = fake_tasks(project_config())
    config["now"] = now
    return make_project(tmp_path / "p", config)


def test_once_runs_one_tick_and_exits_with_its_status(tmp_path):
    project = loop_project(tmp_path, "2026-11-27T10:07:10-05:00")
    result = orchestrator(project, "--intraday", "--once")
    assert result.returncode == 0, result.stderr
    assert "2026-11-27/price_data/1007.json" in built(project)
    log = (project / "state" / "logs" / "orchestrator.log").read_text()
    assert " - INFO - ✓ intraday tick at 10:07" in log


def test_once_dry_run_shows_the_tick_and_builds_nothing(tmp_path):
    project = loop_project(tmp_path, "2026-11-27T10:07:10-05:00")
    result = orchestrator(project, "--intraday", "--once", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "rule price_data:" in result.stdout
    assert not (project / "state" / "targets" / "intraday").exists()


def test_once_when_closed_says_so_and_succeeds(tmp_path):
    project = loop_project(tmp_path, "2026-11-28T10:00:00-05:00")
    result = orchestrator(project, "--intraday", "--once")
    assert result.returncode == 0
    assert "no intraday task is in scope" in result.stderr


def test_a_second_loop_exits_at_once_naming_the_first_and_sigterm_stops_the_first(tmp_path):
    project = loop_project(tmp_path, "2026-11-28T10:00:00-05:00")  # closed: the loop sleeps
    first = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "--project", str(project), "--intraday"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holder = project / "state" / "locks" / "intraday-loop.holder"
    deadline = time.monotonic() + 30
    while not holder.exists() and time.monotonic() < deadline:
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = orchestrator(project, "--intraday")
    assert second.returncode == 3
    assert f"pid {first.pid}" in second.stderr
    assert "already running" in second.stderr

    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 0, stderr
    assert "intraday loop stopped" in stderr
    assert not holder.exists()


def test_a_tick_killed_mid_run_does_not_block_the_next(tmp_path):
    config = fake_tasks(project_config(), sleep=30)
    config["tasks"]["price_data"]["args"] = ["--sleep", "30"]
    project = make_project(tmp_path / "p", config)
    tick = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            "intraday",
            "--snakefile",
            str(project / "Snakefile"),
            "--config",
            "now=2026-11-27T10:07:10-05:00",
        ],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    locks = project / ".snakemake" / "locks"
    deadline = time.monotonic() + 60
    while not (locks.is_dir() and any(locks.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(tick.pid, signal.SIGKILL)
    tick.wait()
    assert any(locks.iterdir()), "the killed run should have left its lock behind"

    config["tasks"]["price_data"]["args"] = []
    config["now"] = "2026-11-27T10:07:20-05:00"
    for task in config["tasks"].values():
        task["args"] = []
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    result = orchestrator(project, "--intraday", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2026-11-27/price_data/1007.json" in built(project)


def test_a_tick_with_every_current_slot_built_does_not_start_snakemake(tmp_path):
    project = loop_project(tmp_path, "2026-11-27T10:07:10-05:00")
    assert orchestrator(project, "--intraday", "--once").returncode == 0
    runs_before = len(list((project / ".snakemake" / "log").iterdir()))

    config = yaml.safe_load((project / "config.yaml").read_text())
    config["now"] = "2026-11-27T10:07:40-05:00"  # same slots: nothing is due
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    assert orchestrator(project, "--intraday", "--once").returncode == 0
    assert len(list((project / ".snakemake" / "log").iterdir())) == runs_before

    config["now"] = "2026-11-27T10:08:05-05:00"  # a new price slot is due
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    assert orchestrator(project, "--intraday", "--once").returncode == 0
    assert "2026-11-27/price_data/1008.json" in built(project)
