"""The task runner: attempts, retries, timeouts, outcomes and sentinels.

Tasks are the fake scripts in ``tests/fixtures``; time is a fixed clock and
waits go to a recording sleeper, so only the timeout cases take real seconds.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator import sentinel
from orchestrator.collector_forkserver import ForkServer
from orchestrator.config import Config, build_config, write_effective_config
from orchestrator.market_calendar import load_calendar
from orchestrator.pipeline import Period
from orchestrator.status_store import StatusStore
from orchestrator.task_launcher import SOCKET_VARIABLE as FORKSERVER_SOCKET
from orchestrator.task_runner import RunReport, run_task
from orchestrator.workflow_support import finish_run
from tests.helpers import RecordingSleeper, daily_config, fixture, process_gone, run_once, wait_for

ROOT = Path(__file__).resolve().parent.parent
ET = ZoneInfo("America/New_York")
SESSION = date(2026, 11, 20)  # a Friday
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 10:00 ET


def run(
    config: Config,
    task: str,
    *,
    period: Period | None = None,
    now: datetime = NOW,
    sleeper: RecordingSleeper | None = None,
    run_id: str | None = None,
) -> tuple[RunReport, Path, RecordingSleeper]:
    return run_once(config, task, period or Period(SESSION), now, sleeper, run_id)


def status_of(config: Config, task: str) -> dict[str, Any]:
    return StatusStore(config.status_db).task_statuses()[task]


def outcomes(config: Config, task: str) -> list[str]:
    return [a["outcome"] for a in StatusStore(config.status_db).attempts(task)]


# -- success -----------------------------------------------------------------------


def test_success_writes_a_complete_sentinel_last(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dump = base / "env.json"
    config = daily_config(
        base, assets={"script": fixture("succeed.py"), "args": ["7", str(env_dump)]}
    )
    status_when_written: list[str] = []
    real_replace = os.replace

    def spy(source: str, target: str) -> None:
        if Path(target) == config.targets_dir / "daily" / "2026-11-20" / "assets.json":
            status_when_written.append(status_of(config, "assets")["status"])
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    report, output, sleeper = run(config, "assets")

    assert (report.status, report.attempts, report.exit_code) == ("success", 1, 0)
    assert sleeper.calls == []
    assert status_when_written == ["SUCCESS"]  # the sentinel is the last thing written
    record = json.loads(output.read_text())
    assert record == {
        "task": "assets",
        "family": "daily",
        "period": "2026-11-20",
        "session": "2026-11-20",
        "slot": None,
        "as_of": "2026-11-20T14:30:00+00:00",  # the session's open
        "started_at": record["started_at"],
        "finished_at": record["finished_at"],
        "duration_seconds": 0.0,
        "attempts": 1,
        "degraded_inputs": [],
        "status": "success",
        "records_processed": 7,
        "rows_rejected": 2,
        "data_as_of": "2026-11-20T14:30:00+00:00",
        "records_counted_from": "result file",
    }
    assert datetime.fromisoformat(record["started_at"]) == NOW
    assert datetime.fromisoformat(record["finished_at"]) == NOW
    assert [p.name for p in output.parent.iterdir()] == ["assets.json"]

    status = status_of(config, "assets")
    assert (status["total_runs"], status["total_successes"], status["total_failures"]) == (1, 1, 0)
    assert status["last_records_processed"] == 7
    assert outcomes(config, "assets") == ["success"]

    env = json.loads(env_dump.read_text())
    assert env["ORCHESTRATOR_TASK"] == "assets"
    assert env["ORCHESTRATOR_SESSION"] == "2026-11-20"
    assert env["ORCHESTRATOR_AS_OF"] == "2026-11-20T14:30:00+00:00"
    assert env["ORCHESTRATOR_MARKET_DB"] == str(config.market_db)


def test_intraday_slot_period(base: Path) -> None:
    raw = {
        "tasks": {
            "price_data": {"family": "intraday", "script": fixture("succeed.py"), "interval": "5m"}
        }
    }
    config = build_config(raw, "test-config.yaml", base)
    in_slot = datetime(2026, 11, 20, 10, 7, tzinfo=ET)
    report, output, _ = run(config, "price_data", period=Period(SESSION, "1005"), now=in_slot)
    record = json.loads(output.read_text())
    assert report.status == "success"
    assert output == config.targets_dir / "intraday" / "2026-11-20" / "price_data" / "1005.json"
    assert (record["period"], record["slot"]) == ("2026-11-20/1005", "1005")
    assert datetime.fromisoformat(record["as_of"]) == in_slot  # slot still running: now

    later = datetime(2026, 11, 20, 10, 20, tzinfo=ET)
    _, output, _ = run(config, "price_data", period=Period(SESSION, "1005"), now=later)
    assert datetime.fromisoformat(json.loads(output.read_text())["as_of"]) == datetime(
        2026, 11, 20, 10, 10, tzinfo=ET
    )  # a past slot: its end


def test_an_intraday_sentinel_records_when_its_slot_became_due_and_its_latency(
    base: Path,
) -> None:
    raw = {
        "tasks": {
            "price_data": {"family": "intraday", "script": fixture("succeed.py"), "interval": "5m"}
        }
    }
    config = build_config(raw, "test-config.yaml", base)
    written = datetime(2026, 11, 20, 10, 5, 2, 500000, tzinfo=ET)  # the fixed clock: also the end
    _, output, _ = run(config, "price_data", period=Period(SESSION, "1005"), now=written)
    record = json.loads(output.read_text())
    assert datetime.fromisoformat(record["slot_due_at"]) == datetime(2026, 11, 20, 10, 5, tzinfo=ET)
    assert record["latency_seconds"] == 2.5

    # A backfill of that slot a day later is no measurement of latency.
    _, output, _ = run(
        config, "price_data", period=Period(SESSION, "1005"), now=written + timedelta(days=3)
    )
    record = json.loads(output.read_text())
    assert "slot_due_at" in record
    assert "latency_seconds" not in record


def test_a_sentinels_duration_is_the_difference_of_the_moments_it_records(base: Path) -> None:
    # Each reading of the clock is 0.6005 s after the one before: rounding each
    # moment to the millisecond must not let the duration say more than they do
    # (a sharded task's join spans its shards' written moments).
    readings = (NOW + timedelta(seconds=0.6005 * i) for i in itertools.count())
    config = daily_config(base, assets={"script": fixture("succeed.py")})
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    run_task(
        config, "assets", Period(SESSION), calendar, lambda: next(readings), RecordingSleeper()
    )
    record = json.loads((base / config.pipeline.task("assets").target(SESSION)).read_text())
    span = datetime.fromisoformat(record["finished_at"]) - datetime.fromisoformat(
        record["started_at"]
    )
    assert record["duration_seconds"] == span.total_seconds() > 0


def test_not_before_waits_through_the_sleeper(base: Path) -> None:
    config = daily_config(base, earnings={"script": fixture("succeed.py"), "not_before": "10:30"})
    report, _, sleeper = run(config, "earnings")  # clock at 10:00 ET
    assert report.status == "success"
    assert sleeper.calls == [1800]
    _, _, sleeper = run(config, "earnings", now=datetime(2026, 11, 20, 11, 0, tzinfo=ET))
    assert sleeper.calls == []


# -- retries ------------------------------------------------------------------------


def test_transient_failures_are_retried_with_the_configured_backoff(base: Path) -> None:
    counter = base / "counter"
    config = daily_config(
        base,
        prices={
            "script": fixture("flaky.py"),
            "args": [str(counter), "2", "75"],
            "retry": {"attempts": 3, "backoff_seconds": [10, 30]},
        },
    )
    report, output, sleeper = run(config, "prices")

    assert (report.status, report.attempts, report.exit_code) == ("success", 3, 0)
    assert counter.read_text() == "3"
    assert sleeper.calls == [10, 30]
    assert json.loads(output.read_text())["attempts"] == 3
    assert outcomes(config, "prices") == ["transient", "transient", "success"]
    status = status_of(config, "prices")
    assert (status["total_runs"], status["total_successes"], status["total_failures"]) == (1, 1, 0)


def test_retry_after_longer_than_the_backoff_is_honoured(base: Path) -> None:
    counter = base / "counter"
    config = daily_config(
        base,
        prices={
            "script": fixture("flaky.py"),
            "args": [str(counter), "2", "75", "120", "HTTP 429"],
            "retry": {"attempts": 3, "backoff_seconds": [10, 300]},
        },
    )
    report, _, sleeper = run(config, "prices")
    assert report.status == "success"
    assert sleeper.calls == [120, 300]  # the hint when longer, the backoff otherwise


def test_transient_failure_on_every_attempt(base: Path) -> None:
    config = daily_config(
        base,
        prices={
            "script": fixture("flaky.py"),
            "args": [str(base / "counter"), "99", "75", "", "upstream 503"],
            "critical": True,
            "retry": {"attempts": 3, "backoff_seconds": [10]},
        },
    )
    report, output, sleeper = run(config, "prices")
    assert (report.status, report.attempts, report.exit_code) == ("failed", 3, 1)
    assert sleeper.calls == [10, 10]  # the last backoff repeats
    assert report.error == "upstream 503"
    assert not output.exists()
    status = status_of(config, "prices")
    assert (status["total_runs"], status["total_failures"], status["consecutive_failures"]) == (
        1,
        1,
        1,
    )


@pytest.mark.parametrize("code", [65, 70, 78])
def test_permanent_failure_is_not_retried_and_keeps_its_message(base: Path, code: int) -> None:
    counter = base / "counter"
    config = daily_config(
        base,
        fundamentals={
            "script": fixture("flaky.py"),
            "args": [str(counter), "99", str(code), "", "bad symbol file: row 3"],
            "critical": True,
        },
    )
    report, output, sleeper = run(config, "fundamentals")
    assert (report.status, report.attempts, report.exit_code) == ("failed", 1, 1)
    assert counter.read_text() == "1"
    assert sleeper.calls == []
    assert report.error == "bad symbol file: row 3"
    assert not output.exists()
    assert outcomes(config, "fundamentals") == ["permanent"]
    assert status_of(config, "fundamentals")["last_error_message"] == "bad symbol file: row 3"


def test_error_falls_back_to_the_last_line_of_stderr(base: Path) -> None:
    config = daily_config(
        base,
        news={
            "script": fixture("flaky.py"),
            "args": [str(base / "c"), "99", "65"],
            "critical": True,
        },
    )
    report, _, _ = run(config, "news")
    assert report.error == "attempt 1: failing with 65"


def test_secrets_in_errors_are_redacted(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_API_KEY", "canary-123456")
    config = daily_config(
        base,
        news={
            "script": fixture("flaky.py"),
            "args": [str(base / "c"), "99", "65", "", "401 for key=canary-123456"],
        },
    )
    report, output, _ = run(config, "news")
    assert report.error == "401 for key=***"
    assert "canary" not in output.read_text()
    assert "canary" not in json.dumps(StatusStore(config.status_db).attempts("news"))
    assert "canary" not in status_of(config, "news")["last_error_message"]


# -- timeouts and kills -------------------------------------------------------------------


def test_hung_task_is_killed_with_its_grandchild_and_retried(base: Path) -> None:
    pids = base / "pids"
    config = daily_config(
        base,
        options={
            "script": fixture("hang.py"),
            "args": [str(pids)],
            "critical": True,
            "max_runtime_seconds": 1,
            "retry": {"attempts": 2, "backoff_seconds": [5]},
        },
    )
    started = time.monotonic()
    report, output, sleeper = run(config, "options")
    elapsed = time.monotonic() - started

    assert (report.status, report.attempts, report.exit_code) == ("failed", 2, 1)
    assert "timed out after 1 s" in (report.error or "")
    assert sleeper.calls == [5]
    assert outcomes(config, "options") == ["timeout", "timeout"]
    assert not output.exists()
    assert elapsed < 8
    lines = pids.read_text().split("\n")[:-1]
    assert len(lines) == 2
    for line in lines:
        child, grandchild = (int(pid) for pid in line.split())
        assert process_gone(child), f"child {child} survived"
        assert process_gone(grandchild), f"grandchild {grandchild} survived"


def test_sigkilled_script_leaves_no_sentinel(base: Path) -> None:
    data = base / "prices.csv"
    config = daily_config(
        base,
        prices_daily={
            "script": fixture("partial_then_sigkill.py"),
            "args": [str(data)],
            "critical": True,
            "retry": {"attempts": 2, "backoff_seconds": [1]},
        },
    )
    report, output, sleeper = run(config, "prices_daily")
    assert (report.status, report.exit_code) == ("failed", 1)
    assert report.error == "killed by signal 9"
    assert outcomes(config, "prices_daily") == ["transient", "transient"]  # retried
    assert sleeper.calls == [1]
    assert not output.exists()
    assert not output.parent.exists() or list(output.parent.iterdir()) == []
    attempts = StatusStore(config.status_db).attempts("prices_daily")
    assert [a["records_processed"] for a in attempts] == [None, None]  # half a result is none


def test_unstartable_script_is_a_recorded_permanent_failure(base: Path) -> None:
    script = base / "collect.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    config = daily_config(base, insider={"script": str(script), "critical": True})
    script.chmod(0o644)  # no longer executable once the config was checked
    report, output, sleeper = run(config, "insider")
    assert (report.status, report.attempts, report.exit_code) == ("failed", 1, 1)
    assert "collect.sh" in (report.error or "")
    assert sleeper.calls == []
    assert not output.exists()
    status = status_of(config, "insider")
    assert (status["status"], status["total_failures"]) == ("FAILED", 1)


# -- critical and non-critical failures ------------------------------------------------


def test_non_critical_failure_writes_a_failed_sentinel_removed_at_the_end(base: Path) -> None:
    config = daily_config(
        base,
        analyst={
            "script": fixture("flaky.py"),
            "args": [str(base / "c"), "99", "65", "", "feed schema changed"],
            "critical": False,
        },
    )
    report, output, _ = run(config, "analyst")
    assert (report.status, report.exit_code) == ("failed", 0)
    record = json.loads(output.read_text())
    assert (record["status"], record["error"], record["records_processed"]) == (
        "failed",
        "feed schema changed",
        0,
    )
    assert list(config.runs_dir.glob("*/*.failed")) == []  # no run id: nobody clears it

    report, output, _ = run(config, "analyst", run_id="run-1")
    assert list((config.runs_dir / "run-1").glob("*.failed")) != []
    assert finish_run(config, "run-2") == []  # another run's end leaves it alone
    assert output.exists()
    assert finish_run(config, "run-1") == ["analyst"]
    assert not output.exists()
    assert not (config.runs_dir / "run-1").exists()
    assert finish_run(config, "run-1") == []


def test_degraded_inputs_are_listed(base: Path) -> None:
    succeed = {"script": fixture("succeed.py")}
    config = daily_config(
        base,
        analyst=succeed,
        news=succeed,
        assets=succeed,
        signals={**succeed, "needs": ["assets", "analyst", "news"]},
        signals_on_clean={**succeed, "needs": ["assets"]},
    )
    statuses = {"analyst": "failed", "news": "degraded", "assets": "success"}
    for task, status in statuses.items():
        path = config.base_dir / config.pipeline.task(task).target(SESSION)
        sentinel.write_sentinel(path, {"task": task, "status": status})

    report, output, _ = run(config, "signals")
    record = json.loads(output.read_text())
    assert report.status == "degraded"
    assert report.exit_code == 0
    assert record["status"] == "degraded"
    assert record["degraded_inputs"] == ["analyst", "news"]
    assert status_of(config, "signals")["status"] == "DEGRADED"

    report, output, _ = run(config, "signals_on_clean")
    assert report.status == "success"
    assert json.loads(output.read_text())["degraded_inputs"] == []


# -- the command line, as Snakemake runs it ------------------------------------------------
# Each case three ways: the runner in its own interpreter; the launcher every rule runs,
# with no fork server (it becomes the runner); and the launcher handing the run to a
# fork server's runner child.

LAUNCHER = [sys.executable, "-I", "-S", str(ROOT / "orchestrator" / "task_launcher.py")]


@dataclass
class Launch:
    """How a test starts the runner, as Snakemake would."""

    head: list[str]
    server: ForkServer | None = None

    def command(self, config: Config, task: str) -> tuple[list[str], Path]:
        """The command line and the sentinel it writes."""
        output = config.base_dir / config.pipeline.task(task).target(SESSION)
        command = [
            *self.head,
            "--config-json", str(write_effective_config(config)),
            "--task", task, "--session", str(SESSION),
        ]  # fmt: skip
        return command, output

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != FORKSERVER_SOCKET}
        return env | ({FORKSERVER_SOCKET: self.server.socket_path} if self.server else {})

    def run(self, command: list[str]) -> int:
        return subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True).returncode

    def start(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, cwd=ROOT, env=self.env, stderr=subprocess.DEVNULL)


@pytest.fixture(params=["runner", "launcher", "launcher+forkserver"])
def launch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Launch]:
    if request.param == "runner":
        yield Launch([sys.executable, "-m", "orchestrator.task_runner"])
    elif request.param == "launcher":
        yield Launch(LAUNCHER)
    else:
        server = ForkServer(tmp_path)
        assert server.wait_ready(), "the fork server did not start listening"
        yield Launch(LAUNCHER, server)
        server.close()


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def the_runner(launch: Launch, launched: subprocess.Popen[bytes], task_pid: int) -> int:
    """The pid of the runner of ``task_pid``, checked to be where ``launch`` puts it."""
    runner = parent_of(task_pid)
    if launch.server:
        assert parent_of(runner) == launch.server.process.pid  # forked ready-imported
    else:
        assert runner == launched.pid  # the launcher became the runner
    return runner


@pytest.mark.parametrize(("critical", "code"), [(True, 1), (False, 0)])
def test_main_exit_codes(base: Path, launch: Launch, critical: bool, code: int) -> None:
    config = daily_config(
        base,
        good={"script": fixture("succeed.py")},
        bad={"script": fixture("flaky.py"), "args": [str(base / "c"), "9", "65"],
             "critical": critical},
    )  # fmt: skip
    command, output = launch.command(config, "good")
    assert launch.run(command) == 0
    assert json.loads(output.read_text())["status"] == "success"

    command, output = launch.command(config, "bad")
    assert launch.run(command) == code
    assert output.exists() is (not critical)


def test_a_launched_runner_writes_to_the_launchers_streams(base: Path, launch: Launch) -> None:
    config = daily_config(base, good={"script": fixture("succeed.py")})
    command, _ = launch.command(config, "good")
    log = base / "runner.log"
    with log.open("w") as stderr:  # as a rule's `2> {log}`
        subprocess.run(command, cwd=ROOT, env=launch.env, stderr=stderr, check=True)
    assert "good" in log.read_text() and "success" in log.read_text()


def _wait_for(path: Path, timeout: float = 10.0) -> str:
    return str(wait_for(lambda: path.exists() and path.read_text().strip(), timeout, f"{path}"))


def test_sigterm_to_the_runner_kills_the_task_and_records_the_failure(
    base: Path, launch: Launch
) -> None:
    pids = base / "pids"
    hang = {"script": fixture("hang.py"), "args": [str(pids)]}
    config = daily_config(base, now=NOW, options=hang)  # the session is live at NOW
    command, output = launch.command(config, "options")
    launched = launch.start(command)
    child, grandchild = (int(pid) for pid in _wait_for(pids).split())
    runner = the_runner(launch, launched, child)
    launched.send_signal(signal.SIGTERM)
    assert launched.wait(timeout=10) == 1
    assert process_gone(child) and process_gone(grandchild) and process_gone(runner)
    assert not output.exists()
    status = status_of(config, "options")
    assert (status["status"], status["total_failures"]) == ("FAILED", 1)
    assert "interrupted by SIGTERM" in status["last_error_message"]


def test_sigkilled_runner_leaves_no_sentinel(base: Path, launch: Launch) -> None:
    started = base / "started"
    config = daily_config(base, news={"script": fixture("slow.py"), "args": [str(started)]})
    command, output = launch.command(config, "news")
    launched = launch.start(command)
    child = int(_wait_for(started))
    try:
        runner = the_runner(launch, launched, child)
        launched.send_signal(signal.SIGKILL)
        assert launched.wait(timeout=10) == -signal.SIGKILL
        assert process_gone(runner)  # a forked runner dies with its launcher
        assert not output.exists()
        assert not output.parent.exists() or list(output.parent.iterdir()) == []
    finally:
        # The task runs in its own session, so it outlives a SIGKILLed runner; end it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child, signal.SIGKILL)


# -- a result file that breaks the protocol ----------------------------------------------

BAD_RESULT = """\
import os, sys
with open(os.environ["ORCHESTRATOR_RESULT_FILE"], "w") as out:
    out.write(sys.argv[1] * int(sys.argv[2]))
"""


@pytest.mark.parametrize(
    ("text", "repeat", "problem"),
    [
        (
            '{"records_processed": "lots"}',
            1,
            "records_processed must be a whole number, not 'lots'",
        ),
        ('{"records_processed": true}', 1, "records_processed must be a whole number"),
        ('{"data_as_of": "yesterday"}', 1, "data_as_of must be an ISO 8601 time"),
        ("Processed 85 records", 1, "not JSON"),
        ("[1, 2]", 1, "must be a JSON object, not list"),
        ("x", 2_000_000, "more than the 1000000 a result may have"),
    ],
)
@pytest.mark.parametrize("critical", [True, False])
def test_a_result_file_breaking_the_protocol_fails_permanently_naming_the_field(
    base: Path, text: str, repeat: int, problem: str, critical: bool
) -> None:
    script = base / "bad_result.py"
    script.write_text(BAD_RESULT)
    config = daily_config(
        base, news={"script": str(script), "args": [text, str(repeat)], "critical": critical}
    )
    report, output, sleeper = run(config, "news")
    assert (report.status, report.attempts) == ("failed", 1)  # permanent: not retried
    assert sleeper.calls == []
    assert report.error is not None
    assert report.error.startswith("the result file ($ORCHESTRATOR_RESULT_FILE): ")
    assert problem in report.error
    status = status_of(config, "news")
    assert (status["status"], status["total_failures"]) == ("FAILED", 1)
    # Non-critical semantics hold: a failed sentinel lets dependents go on; critical: none.
    assert report.exit_code == (1 if critical else 0)
    assert output.exists() is (not critical)


def test_a_runner_crash_never_leaves_the_task_running(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = daily_config(base, news={"script": fixture("succeed.py")})

    def broken_write(path: Path, record: dict[str, Any]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sentinel, "write_sentinel", broken_write)
    with pytest.raises(OSError, match="No space left"):
        run(config, "news")
    status = status_of(config, "news")
    assert status["status"] == "FAILED"
    assert "the runner failed: OSError" in status["last_error_message"]


# -- backfills are history, not live status ----------------------------------------------


def test_a_backfill_run_leaves_the_live_status_alone_and_is_kept_in_the_history(
    base: Path,
) -> None:
    config = daily_config(
        base,
        news={"script": fixture("succeed.py")},
        analyst={"script": fixture("flaky.py"), "args": [str(base / "c"), "9", "65"]},
    )
    run(config, "news")  # the live session, 2026-11-20
    live = status_of(config, "news")
    backfill = Period(date(2026, 11, 19))
    report, output, _ = run(config, "news", period=backfill)
    assert report.status == "success" and output.exists()
    assert status_of(config, "news") == live  # unchanged: same counters, same last success
    failed, _, _ = run(config, "analyst", period=backfill)
    assert failed.status == "failed"
    assert "analyst" not in StatusStore(config.status_db).task_statuses()
    periods = [a["period"] for a in StatusStore(config.status_db).attempts()]
    assert periods == ["2026-11-20", "2026-11-19", "2026-11-19"]


def test_a_replay_at_an_earlier_moment_of_the_session_leaves_the_live_status_alone(
    base: Path,
) -> None:
    config = daily_config(base, news={"script": fixture("succeed.py")})
    run(config, "news", now=NOW + timedelta(hours=2))  # the live run, at noon
    live = status_of(config, "news")
    report, output, _ = run(config, "news", now=NOW)  # replayed at 10:00, same session
    assert report.status == "success" and output.exists()
    assert status_of(config, "news") == live
    assert len(StatusStore(config.status_db).attempts("news")) == 2  # both in the history


# -- scripts moved in from the Master Orchestrator -------------------------------------


def test_a_script_that_only_prints_its_count_is_counted_from_its_output(base: Path) -> None:
    script = base / "collector.py"
    script.write_text(
        "print('Connecting...')\n"
        "print('Inserted 1,204 records into prices')\n"
        "print('Processed 85 symbols, updated 3')\n"
        "print('Elapsed 2.0 s')\n"
    )
    config = daily_config(base, assets={"script": str(script)})
    report, output, _ = run(config, "assets")
    assert report.status == "success"
    record = json.loads(output.read_text())
    assert (record["records_processed"], record["records_counted_from"]) == (85, "output")


def test_a_script_runs_with_the_project_on_its_path_and_the_interpreter_named(
    base: Path,
) -> None:
    (base / "mylib").mkdir()
    (base / "mylib" / "__init__.py").write_text("ANSWER = 42\n")
    script = base / "collectors_old" / "01_prices.py"
    script.parent.mkdir()
    script.write_text(
        "import json, os\n"
        "import mylib  # the project's own package, as the seed's runner allowed\n"
        "with open(os.environ['ORCHESTRATOR_RESULT_FILE'], 'w') as out:\n"
        "    json.dump({'records_processed': mylib.ANSWER}, out)\n"
    )
    used = base / "their-python-ran"
    interpreter = base / "their-python"
    interpreter.write_text(f'#!/bin/sh\ntouch "{used}"\nexec "{sys.executable}" "$@"\n')
    interpreter.chmod(0o755)
    config = daily_config(base, assets={"script": str(script), "python": str(interpreter)})
    report, output, _ = run(config, "assets")
    assert report.status == "success", report
    assert json.loads(output.read_text())["records_processed"] == 42
    assert used.exists()


def test_a_script_that_prints_no_count_reports_zero_and_says_so(base: Path) -> None:
    script = base / "quiet.py"
    script.write_text("print('done')\n")
    config = daily_config(base, assets={"script": str(script)})
    _, output, _ = run(config, "assets")
    record = json.loads(output.read_text())
    assert (record["records_processed"], record["records_counted_from"]) == (
        0,
        "nothing reported",
    )


def test_a_script_with_a_workdir_runs_in_its_own_project_root(base: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "their_project"
    (theirs / "their_lib").mkdir(parents=True)
    (theirs / "their_lib" / "__init__.py").write_text("ANSWER = 7\n")
    (theirs / "data.txt").write_text("opened by a relative path\n")
    script = theirs / "data_collectors" / "03_news.py"
    script.parent.mkdir()
    script.write_text(
        "import json, os\n"
        "import their_lib\n"
        "assert open('data.txt').read().startswith('opened')\n"
        "with open(os.environ['ORCHESTRATOR_RESULT_FILE'], 'w') as out:\n"
        "    json.dump({'records_processed': their_lib.ANSWER}, out)\n"
    )
    config = daily_config(base, news={"script": str(script), "workdir": str(theirs)})
    report, output, _ = run(config, "news")
    assert report.status == "success", report
    assert json.loads(output.read_text())["records_processed"] == 7
