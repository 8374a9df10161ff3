"""Faults around the whole workflow: killed runs, stops, critical failures on the dashboard,
bad config, a daily run overlapping intraday ticks with the real collectors.

Cases 2, 6, 7, 9 and 11 of the reliability suite. Each runs the real
``orchestrator``/``snakemake`` in a temp project (``workflow_project``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_project import (
    DAILY_TASKS,
    daily_sentinel,
    fake_tasks,
    make_project,
    orchestrator,
    project_config,
    snakemake,
)

from tests.helpers import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SESSION = "2026-11-27"
MORNING = "2026-11-27T10:00:00-05:00"


def fake_project(tmp_path: Path, now: str = MORNING, sleep: float = 0.0, **args: list[str]):
    config = fake_tasks(project_config(), args=args, sleep=sleep)
    config["now"] = now
    for task in config["tasks"].values():
        task.get("freshness", {}).pop("data_time_sql", None)  # no market.db with fake tasks
    return make_project(tmp_path / "p", config), config


def start_cli(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "--project", str(project), *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies count as gone.
    return any(_state(pid) not in ("Z", "X", None) for pid in _group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == pgid:
                members.append(int(stat.parent.name))
    return members


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def snakemake_child(cli: subprocess.Popen[str]) -> int:
    found: list[int] = []

    def spawned() -> bool:
        found[:] = [
            pid
            for pid in children(cli.pid)
            if "snakemake" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        ]
        return bool(found)

    wait_for(spawned, what="snakemake to start")
    return found[0]


def sentinels(project: Path, session: str = SESSION) -> dict[str, dict[str, Any]]:
    root = project / "state" / "targets" / "daily" / session
    return {path.stem: json.loads(path.read_text()) for path in sorted(root.glob("*.json"))}


def statuses(project: Path) -> dict[str, dict[str, Any]]:
    connection = sqlite3.connect(f"file:{project / 'state' / 'status.db'}?mode=ro", uri=True)
    try:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM data_pipeline_status")
        return {row["task_name"]: dict(row) for row in rows}
    finally:
        connection.close()


HOLD_UNTIL_GO = """\
import os, sys, time
deadline = time.monotonic() + 540  # under its 600 s timeout
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.02)
"""


def _task_status(project: Path, task: str) -> str | None:
    try:
        return statuses(project).get(task, {}).get("status")
    except sqlite3.Error:  # not created yet, or busy: ask again
        return None


def tier_one_running(project: Path) -> bool:
    try:
        rows = statuses(project)
    except sqlite3.Error:  # not created yet, or busy: ask again
        return False
    # Tier 1 needs the universe; economic (tier 0, beside assets) may be about to finish.
    tier_one = {n for n, t in project_config()["tasks"].items() if t.get("needs") == ["assets"]}
    return any(row["status"] == "RUNNING" for name, row in rows.items() if name in tier_one)


def finish(process: subprocess.Popen[str], within: float) -> tuple[int | None, str, str]:
    """Wait for ``process``; kill it (and say so) if it outlives ``within`` seconds."""
    try:
        out, err = process.communicate(timeout=within)
        return process.returncode, out, err
    except subprocess.TimeoutExpired:
        stack, family = [process.pid], []
        while stack:
            pid = stack.pop()
            family.append(pid)
            stack += children(pid)
        for pid in reversed(family):  # its children too, or they hold our pipes open
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        out, err = process.communicate()
        return None, out, err


# -- case 2: the snakemake process killed mid-run -------------------------------------------


def test_daily_after_snakemake_was_killed_mid_run_recovers_without_unlock(tmp_path: Path) -> None:
    project, config = fake_project(tmp_path, sleep=1.5)
    cli = start_cli(project, "--daily", "--cores", "2")
    smk = snakemake_child(cli)
    wait_for(lambda: tier_one_running(project), what="a tier-1 task to run")
    os.kill(smk, signal.SIGKILL)  # Snakemake alone: its running jobs are orphaned
    code, _, _ = finish(cli, 60)
    assert code == 1
    wait_for(lambda: not group_alive(smk), what="the orphaned jobs to end")
    assert any((project / ".snakemake" / "locks").iterdir()), "a stale lock should be left"
    orphaned = {name: record["finished_at"] for name, record in sentinels(project).items()}
    orphaned.pop("assets")
    assert orphaned, "orphaned jobs finished their outputs after Snakemake died"

    for task in config["tasks"].values():
        task["args"] = ["--sleep", "0"]
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    result = orchestrator(project, "--daily")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "stale Snakemake lock" in result.stderr  # cleared by us, no manual --unlock
    built = sentinels(project)
    assert set(built) == set(DAILY_TASKS)
    assert {record["status"] for record in built.values()} == {"success"}
    # What the orphans finished after the kill is whole (sentinel last, atomic); Snakemake
    # keeps it or, when it had marked the job incomplete, re-runs it: both end in success.


# -- case 6: critical and non-critical failures, and the dashboard ---------------------------


def test_a_critical_failure_skips_dependents_exits_1_and_the_dashboard_shows_why(
    tmp_path: Path,
) -> None:
    project, _ = fake_project(tmp_path, prices_daily=["--exit", "65"])
    result = orchestrator(project, "--daily")
    assert result.returncode == 1
    built = set(sentinels(project))
    assert built == {
        "assets",
        "fundamentals",
        "insider",
        "analyst",
        "economic",
        "news",
        "sentiment",
    }

    health = orchestrator(project, "--health", "--json")
    # A critical task's last run failed: exit 2, though its never-built dependents'
    # sources are only UNKNOWN (not RED): see README case 6.
    assert health.returncode == 2, health.stdout + health.stderr
    report = json.loads(health.stdout)
    tasks = {task["task"]: task for task in report["tasks"]}
    failed = tasks["prices_daily"]
    assert (failed["status"], failed["consecutive_failures"]) == ("FAILED", 1)
    assert failed["last_error"] == "fake failure of prices_daily (exit 65)"
    for skipped in ("options", "earnings", "ml_features", "signals"):
        assert tasks[skipped]["runs"] == 0, skipped  # never started
        assert tasks[skipped]["status"] == "SKIPPED", skipped
        assert tasks[skipped]["last_error"] == "upstream prices_daily failed", skipped
    sources = {source["task"]: source for source in report["sources"]}
    assert sources["prices_daily"]["status"] == sources["signals"]["status"] == "UNKNOWN"
    assert sources["signals"]["message"].endswith("; upstream prices_daily failed")
    assert sources["fundamentals"]["status"] == "GREEN"
    text = orchestrator(project, "--health").stdout
    assert "fake failure of prices_daily (exit 65)" in text
    assert "upstream prices_daily failed" in text


def test_a_non_critical_failure_runs_dependents_degraded_and_the_dashboard_shows_it(
    tmp_path: Path,
) -> None:
    project, _ = fake_project(tmp_path, analyst=["--exit", "65"])
    result = orchestrator(project, "--daily")
    assert result.returncode == 1
    built = sentinels(project)
    assert "analyst" not in built
    assert built["ml_features"]["status"] == "degraded"
    assert built["ml_features"]["degraded_inputs"] == ["analyst"]
    report = json.loads(orchestrator(project, "--health", "--json").stdout)
    tasks = {task["task"]: task for task in report["tasks"]}
    assert tasks["analyst"]["status"] == "FAILED"
    assert tasks["analyst"]["last_error"] == "fake failure of analyst (exit 65)"
    assert tasks["ml_features"]["status"] == "DEGRADED"
    assert tasks["signals"]["status"] == "DEGRADED"


# -- case 7: SIGTERM / Ctrl+C to --full and to the loop --------------------------------------


def _assert_nothing_half_written(project: Path) -> None:
    for name, record in sentinels(project).items():
        assert record["status"] in ("success", "degraded"), name
        assert record["task"] == name
    root = project / "state" / "targets"
    assert not [p for p in root.rglob("*") if p.is_file() and p.suffix != ".json"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_during_the_daily_phase_of_full_stops_everything(
    tmp_path: Path, signum: int
) -> None:
    # Tasks long enough that the stop surely finds tier 1 running on a loaded machine.
    project, _ = fake_project(tmp_path, now="2026-11-28T10:00:00-05:00", sleep=4.0)
    cli = start_cli(project, "--full")
    smk = snakemake_child(cli)
    wait_for(lambda: daily_sentinel(project, SESSION, "assets").exists(), what="assets")
    cli.send_signal(signum)
    code, _, err = finish(cli, 15)
    wait_for(lambda: not group_alive(smk), within=15, what="snakemake and its jobs to stop")
    assert code is not None, "--full kept running after the stop request: " + err[-500:]
    assert "intraday loop every" not in err
    _assert_nothing_half_written(project)


def test_sigterm_to_full_stops_the_running_daily_tasks_and_records_them(tmp_path: Path) -> None:
    # Tasks long enough that the stop surely finds tier 1 running on a loaded machine.
    project, _ = fake_project(tmp_path, now="2026-11-28T10:00:00-05:00", sleep=4.0)
    cli = start_cli(project, "--full")
    smk = snakemake_child(cli)
    wait_for(lambda: daily_sentinel(project, SESSION, "assets").exists(), what="assets")
    # Signal only once a tier-1 task runs: between tiers there is nothing to interrupt.
    wait_for(lambda: tier_one_running(project), what="a tier-1 task to start")
    cli.send_signal(signal.SIGTERM)
    wait_for(lambda: not group_alive(smk), within=20, what="snakemake and its jobs to stop")
    cli.send_signal(signal.SIGTERM)  # the loop (if --full started it) stops too
    code, _, err = finish(cli, 25)
    assert code is not None, err[-500:]
    _assert_nothing_half_written(project)
    interrupted = {
        name
        for name, row in statuses(project).items()
        if "interrupted by SIGTERM" in (row["last_error_message"] or "")
    }
    assert interrupted, "the running tasks record the interruption"
    assert not interrupted & set(sentinels(project))
    # The next run finishes the session, with no manual step.
    assert orchestrator(project, "--daily").returncode == 0


def test_sigterm_to_the_loop_during_a_tick_lets_the_tick_finish(tmp_path: Path) -> None:
    project, _ = fake_project(tmp_path, now="2026-11-27T10:07:10-05:00", sleep=2.0)
    loop = start_cli(project, "--intraday")
    slot = project / "state" / "logs" / "intraday" / SESSION / "price_data" / "1007.log"
    wait_for(slot.exists, what="the tick to start")
    loop.send_signal(signal.SIGTERM)
    code, _, err = finish(loop, 30)
    assert code == 0, err[-800:]
    assert "intraday loop stopped" in err
    done = project / "state" / "targets" / "intraday" / SESSION / "price_data" / "1007.json"
    assert json.loads(done.read_text())["status"] == "success"


def test_a_second_sigterm_cuts_the_tick_and_nothing_is_half_written(tmp_path: Path) -> None:
    project, _ = fake_project(tmp_path, now="2026-11-27T10:07:10-05:00", sleep=20.0)
    loop = start_cli(project, "--intraday")
    slot = project / "state" / "logs" / "intraday" / SESSION / "price_data" / "1007.log"
    wait_for(slot.exists, what="the tick to start")
    wait_for(lambda: _task_status(project, "price_data") == "RUNNING", what="price_data to run")
    log = project / "state" / "logs" / "orchestrator.log"
    loop.send_signal(signal.SIGTERM)
    # Signals do not queue: send the second only once the first was handled.
    wait_for(lambda: "stop requested" in log.read_text(), what="the first stop request")
    loop.send_signal(signal.SIGTERM)
    code, _, err = finish(loop, 30)
    assert code is not None and code != 0, err[-800:]
    assert "intraday loop stopped" in err
    targets = project / "state" / "targets" / "intraday"
    assert not (targets / SESSION / "price_data" / "1007.json").exists()
    row = statuses(project)["price_data"]
    assert (row["status"], row["last_error_message"]) == ("FAILED", "interrupted by SIGTERM")


# -- case 9: a bad config through `orchestrator --daily` --------------------------------------


def test_a_bad_config_stops_orchestrator_daily_before_any_task_with_exit_2(tmp_path: Path) -> None:
    config = fake_tasks(project_config())
    config["tasks"]["sentiment"]["retry"] = {"attempts": 0}
    project = make_project(tmp_path / "p", config)
    result = orchestrator(project, "--daily")
    assert result.returncode == 2
    assert "config.yaml: tasks.sentiment.retry.attempts" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    state = project / "state"
    assert not (state / "targets").exists()
    assert not (state / "status.db").exists()
    assert not (project / ".snakemake").exists()  # snakemake never started


# -- case 11: a daily run and intraday ticks overlap, real collectors ---------------------------


def test_a_daily_run_and_ten_minutes_of_ticks_overlap_with_real_collectors(tmp_path: Path) -> None:
    config = project_config()
    config["now"] = MORNING
    config["provider"]["universe_size"] = 5
    config["tasks"]["earnings"].pop("not_before", None)
    # A daily task that stays RUNNING until the ticks are done, so every tick overlaps it.
    go = tmp_path / "go"
    holder = tmp_path / "hold_until_go.py"
    holder.write_text(HOLD_UNTIL_GO)
    config["tasks"]["holder"] = {
        "family": "daily", "needs": ["assets"], "script": str(holder), "args": [str(go)],
    }  # fmt: skip
    project = make_project(tmp_path / "p", config)
    daily = start_cli(project, "--daily", "--cores", "2")
    # The intraday side reads the universe the daily assets task stores (on a live
    # system, from an earlier session); the ticks overlap everything after it.
    wait_for(lambda: daily_sentinel(project, SESSION, "assets").exists(), what="assets")
    wait_for(lambda: _task_status(project, "holder") == "RUNNING", what="the holder to run")
    ticks = []
    for minute in range(1, 11):
        now = f"2026-11-27T10:{minute:02d}:05-05:00"
        ticks.append(snakemake(project, "intraday", "--cores", "2", now=now))
        assert _task_status(project, "holder") == "RUNNING"  # the tick ran beside it
    go.touch()
    code, out, err = finish(daily, 240)
    assert code == 0, out + err
    assert "cannot be locked" not in out + err
    for tick in ticks:
        assert tick.returncode == 0, tick.stdout + tick.stderr
        assert "cannot be locked" not in tick.stdout + tick.stderr

    market = project / "state" / "market.db"
    with sqlite3.connect(market) as connection:
        bars, distinct = connection.execute(
            "SELECT COUNT(*), COUNT(DISTINCT symbol || '@' || bar_ts) FROM intraday_bars"
        ).fetchone()
        prices_daily = connection.execute("SELECT COUNT(*) FROM prices_daily").fetchone()[0]
        features = connection.execute(
            "SELECT COUNT(DISTINCT bar_ts) FROM intraday_features"
        ).fetchone()[0]
    assert bars == distinct == 5 * 40  # 09:30..10:09, every minute, every symbol
    assert features >= 1
    built = sentinels(project)
    assert set(built) == {*DAILY_TASKS, "holder"}
    assert {record["status"] for record in built.values()} == {"success"}
    assert built["assets"]["records_processed"] == 5
    assert prices_daily >= built["prices_daily"]["records_processed"] > 0
