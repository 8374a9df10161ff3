"""The task runner: every rule's action, one task run with timeout and retries.

``python -m orchestrator.task_runner --task NAME --session D [--slot HHMM]``
is what each generated rule's ``shell:`` calls, told the task and period by
the rule's name and wildcards (a sharded task's shards add ``--shard I/N``,
its join runs ``--join``: ``orchestrator/sharding.py``); the inputs and the
sentinel it writes follow from the pipeline model. It reads the config and
the calendar once, and hands a built-in collector its whole context, so the
child reads neither. For one period of one task it:

1. notes which inputs (upstream sentinels) are not clean successes, so the
   run is marked ``degraded``;
2. records the start in the status store (counters untouched);
3. runs the task in a child process in its own process group, with a hard
   timeout that kills the whole group (grandchildren included);
4. retries transient failures (timeout, exit 75, a provider's 429/5xx, a
   locked database, an unknown exit code of a user script) after the
   configured backoff, or the provider's ``Retry-After`` when longer; bad
   input and bad configuration (exits 65, 70, 78) are not retried;
5. records every attempt and the run's outcome, and writes the sentinel last.

A critical task that fails writes no sentinel and exits 1: Snakemake skips its
dependents. A non-critical task that fails writes a ``failed`` sentinel and
exits 0, so its dependents run on the last good data, marked degraded; it
notes the sentinel under its Snakemake run's id (``$ORCHESTRATOR_RUN_ID``),
and that run's end hook removes it and makes the run exit 1.

The child reports what it did by writing a JSON object to the file named by
``ORCHESTRATOR_RESULT_FILE``: ``records_processed`` (int), optionally
``data_as_of`` (ISO 8601), ``rows_rejected``, and on failure ``error`` and
``retry_after_seconds``. A script that writes nothing counts 0 records.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import sentinel
from orchestrator.clock import Clock, Sleeper, clock_for, parse_time, real_sleep
from orchestrator.collector_forkserver import ForkedChild
from orchestrator.collector_forkserver import spawn as spawn_collector
from orchestrator.config import Config, read_effective_config
from orchestrator.errors import PERMANENT_TASK_EXITS, UsageError
from orchestrator.logs import CONSOLE, log_to_task_log_and_console
from orchestrator.pipeline import Period, TaskConfig, is_live
from orchestrator.secrets import load_dotenv, redact
from orchestrator.sentinel import SentinelStatus
from orchestrator.sharding import Shard
from orchestrator.status_store import Attempt, StatusStore, clean_error
from orchestrator.task_launcher import SOCKET_VARIABLE as FORKSERVER_SOCKET
from orchestrator.workflow_support import RUN_ID_VARIABLE, note_failed_sentinel

if TYPE_CHECKING:
    from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

KILL_GRACE_SECONDS = 2.0


class Outcome(StrEnum):
    """How one attempt ended (``task_attempts.outcome``)."""

    SUCCESS = "success"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    TIMEOUT = "timeout"


@dataclass
class AttemptOutcome:
    """How one attempt ended, and what it reported."""

    outcome: Outcome
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCESS

    @property
    def retryable(self) -> bool:
        return self.outcome in (Outcome.TRANSIENT, Outcome.TIMEOUT)


@dataclass
class RunReport:
    """What ``run_task`` did; ``exit_code`` is the process's exit status.

    A failed critical task has status ``failed`` too, but wrote no sentinel.
    """

    status: SentinelStatus
    attempts: int
    exit_code: int
    error: str | None = None


class _Interrupted(Exception):
    """The runner was asked to stop (SIGTERM/SIGINT) while a child ran."""


def _market_location(config: Config) -> str:
    """The market store as a collector or script is told it: its file, or its URL.

    A URL keeps its ``${VARIABLE}`` references: no password is written out.
    """
    store = config.market_store
    return str(store.path or store.url)


def write_collector_context(
    config: Config,
    task: TaskConfig,
    period: Period,
    as_of: datetime,
    folder: Path,
    shard: Shard | None = None,
) -> Path:
    """The context of a built-in collector's run, as the JSON file its child reads."""
    path = folder / "context.json"
    context: dict[str, Any] = {
        "task": task.name,
        "collector": task.collector,
        "session": str(period.session),
        "slot": period.slot,
        "as_of": as_of.isoformat(),
        "market_db": _market_location(config),
        "calendar": config.calendar_name,
        "calendar_cache": str(config.cache_dir),
        "provider": config.provider_settings(task),
        "options": dict(task.options),
    }
    if shard is not None:
        context["shard"] = [shard.index, shard.count]
    path.write_text(json.dumps(context))
    return path


def child_command(
    config: Config, task: TaskConfig, context_file: Path | None, now: datetime
) -> list[str]:
    """The command line of one attempt: the built-in collector or the user's script."""
    if task.collector is not None:
        assert context_file is not None
        return [
            sys.executable,
            "-m",
            "orchestrator.collector_process",
            "--context",
            str(context_file),
            "--now",
            now.isoformat(),
        ]
    assert task.script is not None
    script = Path(task.script)
    script = script if script.is_absolute() else config.base_dir / script
    prefix = [task.python or sys.executable] if script.suffix == ".py" else []
    return [*prefix, str(script), *task.args]


def script_folder(config: Config, task: TaskConfig) -> Path:
    """Where a user script runs: its ``workdir``, else the project."""
    return config.base_dir / task.workdir if task.workdir else config.base_dir


def script_environment(config: Config, task: TaskConfig, env: dict[str, str]) -> dict[str, str]:
    """A user script's environment: its folder first on ``PYTHONPATH``.

    Scripts moved from the Master Orchestrator import their own packages from
    their project root, as its runner let them.
    """
    paths = [str(script_folder(config, task)), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


# "Inserted 85 records", "Processed 1,204 rows": what the seed's scripts print and its
# later runner counted when a script reports nothing else.
_RECORDS_IN_OUTPUT = re.compile(
    r"\b(?:Processed|Inserted|Updated|Collected|Added|Saved|Stored)\s+([\d,]+)\b", re.I
)


def records_from_output(text: str) -> int | None:
    """The count of the last line saying "Inserted N ..." (its first count), or None."""
    for line in reversed(text.splitlines()):
        found = _RECORDS_IN_OUTPUT.search(line)
        if found:
            return int(found.group(1).replace(",", ""))
    return None


def _kill_group(process: subprocess.Popen[bytes] | ForkedChild) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            if sig == signal.SIGTERM:
                # The leader is gone; grandchildren may remain in the group.
                os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def _last_line(text: str) -> str | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def _forked_collector(
    command: list[str], env: dict[str, str], cwd: Path | None, stdout: Path, stderr: Path
) -> ForkedChild | None:
    """A built-in collector's attempt forked by the loop's fork server, when there is one.

    Same process group, environment, folder and output files as the
    interpreter it replaces, without its second of imports; None otherwise.
    """
    socket_path = env.get(FORKSERVER_SOCKET)
    if not socket_path or command[1:3] != ["-m", "orchestrator.collector_process"]:
        return None
    return spawn_collector(socket_path, command[3:], env, cwd, stdout, stderr)


def _wait(process: subprocess.Popen[bytes] | ForkedChild, timeout: float) -> int:
    """``process.wait(timeout)``, woken by the exit itself where Linux has pidfds.

    ``Popen.wait`` with a timeout polls, sleeping up to 50 ms between looks: a
    quick task's job would pay that on every attempt.
    """
    if not isinstance(process, subprocess.Popen) or not hasattr(os, "pidfd_open"):
        return process.wait(timeout=timeout)
    try:
        exited = os.pidfd_open(process.pid)
    except OSError:  # an older kernel
        return process.wait(timeout=timeout)
    try:
        ready, _, _ = select.select([exited], [], [], timeout)
    finally:
        os.close(exited)
    if not ready:
        raise subprocess.TimeoutExpired(process.args, timeout)
    return process.wait()


def run_attempt(
    command: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None
) -> AttemptOutcome:
    """Run ``command`` once in its own process group, killed at ``timeout`` seconds."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-attempt-") as scratch:
        result_file = Path(scratch) / "result.json"
        stdout_file = Path(scratch) / "stdout.txt"
        stderr_file = Path(scratch) / "stderr.txt"
        child_env = {**env, "ORCHESTRATOR_RESULT_FILE": str(result_file)}
        # The child's output reaches the task's log only after redaction (secrets).
        with stdout_file.open("wb") as stdout, stderr_file.open("wb") as stderr:
            process: subprocess.Popen[bytes] | ForkedChild | None = _forked_collector(
                command, child_env, cwd, stdout_file, stderr_file
            )
            try:
                process = process or subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=child_env,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            except OSError as error:  # not executable, no interpreter: retrying cannot help
                return AttemptOutcome(
                    Outcome.PERMANENT, f"cannot run {command[0]}: {error.strerror}"
                )
            try:
                code = _wait(process, timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                code = None
            except BaseException:
                _kill_group(process)
                raise
        error_text = redact(stderr_file.read_text(errors="replace"), env)
        output_text = redact(stdout_file.read_text(errors="replace"), env)
        sys.stderr.write(output_text + error_text)
        sys.stderr.flush()
        result, problem = read_result(result_file)
        if result_file.exists():
            result.setdefault("records_counted_from", "result file")
        elif code == 0:
            counted = records_from_output(output_text + "\n" + error_text)
            result = (
                {"records_processed": counted, "records_counted_from": "output"}
                if counted is not None
                else {"records_counted_from": "nothing reported"}
            )
    # A task that failed (or was killed half-way through writing it) fails for that.
    if problem is not None and code == 0:
        return AttemptOutcome(Outcome.PERMANENT, f"{RESULT_FILE_NAME}: {problem}")
    return classify_exit(code, result, error_text, timeout)


RESULT_FILE_NAME = "the result file ($ORCHESTRATOR_RESULT_FILE)"
MAX_RESULT_BYTES = 1_000_000
# Each field of the result protocol and the types it may have (bool is no number here).
_RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "records_processed": (int,),
    "rows_rejected": (int,),
    "data_as_of": (str,),
    "error": (str,),
    "retry_after_seconds": (int, float),
    "details": (dict,),
}


def read_result(path: Path) -> tuple[dict[str, Any], str | None]:
    """The task's result file, and what is wrong with it (``None`` when it is fine).

    No file is an empty result: a script need not report. A file that is not
    a JSON object, too large, or has a field of the wrong type is a problem
    naming the field: retrying the same script would write the same.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return {}, None
    if size > MAX_RESULT_BYTES:
        return {}, f"{size} bytes, more than the {MAX_RESULT_BYTES} a result may have"
    try:
        result = json.loads(path.read_text(errors="replace"))
    except ValueError as error:
        return {}, f"not JSON ({error})"
    if not isinstance(result, dict):
        return {}, f"must be a JSON object, not {type(result).__name__}"
    for name, types in _RESULT_FIELDS.items():
        value = result.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join("a whole number" if t is int else t.__name__ for t in types)
            return {}, f"{name} must be {wanted}, not {value!r}"[:300]
        if isinstance(value, int | float) and value < 0:
            return {}, f"{name} must not be negative, not {value!r}"
    if result.get("data_as_of") is not None:
        try:
            parse_time(result["data_as_of"])
        except ValueError:
            return {}, f"data_as_of must be an ISO 8601 time, not {result['data_as_of']!r}"
    return result, None


def classify_exit(
    code: int | None, result: dict[str, Any], stderr_text: str = "", timeout: float = 0.0
) -> AttemptOutcome:
    """An attempt's outcome from its exit status (``None``: timed out) and result file.

    The protocol of the module docstring: 0 success; 65, 70, 78 permanent;
    killed by a signal, 75 or any other status transient. The message is the
    result file's ``error``, else the last line the task wrote to stderr.
    """
    if code is None:
        return AttemptOutcome(
            Outcome.TIMEOUT, f"timed out after {timeout:g} s; process group killed"
        )
    message = result.get("error") or _last_line(stderr_text)
    if code == 0:
        return AttemptOutcome(Outcome.SUCCESS, result=result)
    if code < 0:
        return AttemptOutcome(Outcome.TRANSIENT, message or f"killed by signal {-code}", result)
    if code in PERMANENT_TASK_EXITS:
        return AttemptOutcome(Outcome.PERMANENT, message or f"exited with status {code}", result)
    retry_after = result.get("retry_after_seconds")
    return AttemptOutcome(
        Outcome.TRANSIENT,
        message or f"exited with status {code}",
        result,
        float(retry_after) if retry_after is not None else None,
    )


def as_of_for(
    calendar: MarketCalendar, task: TaskConfig, period: Period, now: datetime
) -> datetime:
    """The point-in-time cutoff of a run.

    Daily: the session's open (the moment the daily run is due), so a
    backfill sees what a live run saw. Intraday: the end of the slot, or
    now if the slot is still running.
    """
    if period.slot is None:
        return calendar.hours(period.session).open
    slot_end = calendar.slot_time(period.session, period.slot) + timedelta(
        seconds=task.interval_seconds
    )
    return min(now, slot_end)


def _degraded_inputs(inputs: list[Path]) -> list[str]:
    """Tasks whose sentinels among ``inputs`` are failed or themselves degraded."""
    degraded = []
    for path in inputs:
        record = sentinel.read_sentinel(path) or {}
        if record.get("status") != SentinelStatus.SUCCESS:
            degraded.append(str(record.get("task") or path.stem))
    return degraded


def _wait_until_not_before(
    calendar: MarketCalendar, task: TaskConfig, period: Period, clock: Clock, sleeper: Sleeper
) -> None:
    if task.not_before is None or period.slot is not None:
        return
    start = datetime.combine(period.session, task.not_before, calendar.tz)
    wait = (start - clock()).total_seconds()
    if wait > 0:
        logger.info(
            "%s: waiting %.0f s until its not-before time %s",
            task.name,
            wait,
            task.not_before,
            extra=CONSOLE,
        )
        sleeper(wait)


def run_task(
    config: Config,
    task_name: str,
    period: Period,
    calendar: MarketCalendar,
    clock: Clock | None = None,
    sleeper: Sleeper = real_sleep,
    run_id: str | None = None,
    shard: Shard | None = None,
) -> RunReport:
    """Run one period of one task to the end: attempts, status, sentinel.

    ``run_id`` names the Snakemake run whose end hook clears a non-critical
    failure's sentinel; without one (a direct call) the sentinel stays. Only a
    run of the task's current period changes its live status (its row of
    ``data_pipeline_status``); a backfill's attempts go to the history alone.
    A ``shard`` runs on its part of the universe and writes its shard sentinel,
    failed or not; its join counts the run (``orchestrator/sharding.py``).
    """
    clock = clock or clock_for(config.now)
    task = config.pipeline.task(task_name)
    target = (
        shard.target(task, period.session) if shard else task.target(period.session, period.slot)
    )
    output = config.base_dir / target
    inputs = [config.base_dir / path for path in config.pipeline.input_targets(task.name, period)]
    store = StatusStore(config.status_store)
    degraded_inputs = _degraded_inputs(inputs)
    _wait_until_not_before(calendar, task, period, clock, sleeper)
    started = clock()
    as_of = as_of_for(calendar, task, period, started)
    # A replay of an earlier moment (a pinned past `now`) leaves the live status
    # alone: it may only move forward in time.
    live = is_live(task, period, calendar, started) and store.mark_started(task.name, started)
    # A shard's run is counted by its join; a shard killed outright, by the join
    # after Snakemake's retry of it (or the health monitor's INTERRUPTED without one).
    counted = live and shard is None
    # Whatever happens from here on, the start is paired with an end.
    with _failure_recorded_on_crash(store if counted else None, task.name, clock):
        env = {
            **os.environ,
            "ORCHESTRATOR_TASK": task.name,
            "ORCHESTRATOR_SESSION": str(period.session),
            "ORCHESTRATOR_SLOT": period.slot or "",
            "ORCHESTRATOR_AS_OF": as_of.isoformat(),
            "ORCHESTRATOR_MARKET_DB": _market_location(config),
            "ORCHESTRATOR_STATE_DIR": str(config.state_dir),
            "ORCHESTRATOR_RUN_STARTED": started.isoformat(),
            **({"ORCHESTRATOR_SHARD": str(shard)} if shard else {}),
        }
        with tempfile.TemporaryDirectory(prefix="orchestrator-run-") as scratch:
            context_file = (
                write_collector_context(config, task, period, as_of, Path(scratch), shard)
                if task.collector
                else None
            )
            outcome, attempt_number = _attempts(
                task, period, context_file, config, env, store, clock, sleeper
            )

        finished = clock()
        record = {
            "task": task.name,
            "family": task.family,
            "period": str(period),
            "session": str(period.session),
            "slot": period.slot,
            "as_of": as_of.isoformat(),
            "started_at": started.isoformat(timespec="milliseconds"),
            "finished_at": finished.isoformat(timespec="milliseconds"),
            "duration_seconds": _recorded_duration(started, finished),
            "attempts": attempt_number,
            "degraded_inputs": degraded_inputs,
            **_slot_latency(calendar, period, finished, live),
            **(_shard_fields(shard, live, outcome.result) if shard else {}),
        }
        if outcome.ok:
            status = SentinelStatus.DEGRADED if degraded_inputs else SentinelStatus.SUCCESS
            records = int(outcome.result.get("records_processed") or 0)
            if counted:
                store.record_success(
                    task.name, started, finished, records, degraded=bool(degraded_inputs)
                )
            sentinel.write_sentinel(
                output,
                {
                    **record,
                    "status": status,
                    "records_processed": records,
                    "rows_rejected": int(outcome.result.get("rows_rejected") or 0),
                    "data_as_of": outcome.result.get("data_as_of"),
                    **_served_by(outcome.result),
                    "records_counted_from": outcome.result.get("records_counted_from"),
                },
            )
            logger.info(
                "%s %s: %s, %d records in %.1f s",
                task.name,
                period.label,
                status,
                records,
                record["duration_seconds"],
                extra=CONSOLE,
            )
            return RunReport(status, attempt_number, 0)

        error = clean_error(outcome.error or "failed")
        if counted:
            store.record_failure(task.name, finished, error)
        logger.error(
            "%s %s failed after %d attempt(s): %s",
            task.name,
            period.label,
            attempt_number,
            error,
            extra=CONSOLE,
        )
        if task.critical and shard is None:
            return RunReport(SentinelStatus.FAILED, attempt_number, 1, error)
        sentinel.write_sentinel(
            output,
            {**record, "status": SentinelStatus.FAILED, "error": error, "records_processed": 0},
        )
        if run_id:
            note_failed_sentinel(config, run_id, task.name, output, reported=shard is None)
        return RunReport(SentinelStatus.FAILED, attempt_number, 0, error)


def _recorded_duration(started: datetime, finished: datetime) -> float:
    """The seconds between the two moments as the sentinel writes them (to the millisecond).

    A sharded task's join computes its span from its shards' written moments: a
    shard's duration must not exceed what its own timestamps say.
    """

    def written(moment: datetime) -> datetime:
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    return round((written(finished) - written(started)).total_seconds(), 3)


def _slot_latency(
    calendar: MarketCalendar, period: Period, written: datetime, live: bool
) -> dict[str, Any]:
    """When an intraday slot became due (it began) and, if live, how long until now.

    The sentinel is written right after ``written``: the difference is the
    slot's latency (orchestrator/latency.py). A backfill's is not a latency.
    """
    if not period.slot:
        return {}
    due = calendar.slot_time(period.session, period.slot)
    record: dict[str, Any] = {"slot_due_at": due.isoformat(timespec="milliseconds")}
    if live:
        record["latency_seconds"] = round((written - due).total_seconds(), 3)
    return record


@contextmanager
def _failure_recorded_on_crash(
    store: StatusStore | None, task: str, clock: Clock
) -> Iterator[None]:
    """Record a failure if the block raises, so the task's status never stays RUNNING."""
    try:
        yield
    except _Interrupted as stop:
        if store is not None:
            store.record_failure(task, clock(), f"interrupted by {stop}")
        raise
    except Exception as error:
        if store is not None:
            message = f"the runner failed: {type(error).__name__}: {error}"
            store.record_failure(task, clock(), message)
        raise


def _attempts(
    task: TaskConfig,
    period: Period,
    context_file: Path | None,
    config: Config,
    env: dict[str, str],
    store: StatusStore,
    clock: Clock,
    sleeper: Sleeper,
) -> tuple[AttemptOutcome, int]:
    """Attempt ``task`` until it succeeds, fails permanently or runs out of attempts."""
    outcome = AttemptOutcome(Outcome.PERMANENT, "never attempted")
    attempt_number = 0
    for attempt_number in range(1, task.retry.attempts + 1):
        attempt_started = clock()
        command = child_command(config, task, context_file, attempt_started)
        attempt_env = {**env, "ORCHESTRATOR_ATTEMPT": str(attempt_number)}
        cwd = None
        if task.script is not None:
            attempt_env = script_environment(config, task, attempt_env)
            cwd = script_folder(config, task)
        outcome = run_attempt(command, attempt_env, task.max_runtime_seconds, cwd)
        store.record_attempt(
            Attempt(
                task_name=task.name,
                period=str(period),
                attempt=attempt_number,
                started_at=attempt_started,
                finished_at=clock(),
                outcome=outcome.outcome,
                error_message=outcome.error,
                records_processed=outcome.result.get("records_processed"),
                rows_rejected=outcome.result.get("rows_rejected"),
                data_as_of=_data_as_of(outcome.result.get("data_as_of")),
            )
        )
        if outcome.ok or not outcome.retryable or attempt_number == task.retry.attempts:
            break
        delay = max(task.retry.delay_before_retry(attempt_number), outcome.retry_after or 0.0)
        logger.warning(
            "%s attempt %d/%d failed (%s); retrying in %.0f s",
            task.name,
            attempt_number,
            task.retry.attempts,
            clean_error(outcome.error or ""),
            delay,
            extra=CONSOLE,
        )
        sleeper(delay)
    return outcome, attempt_number


def _shard_fields(shard: Shard, live: bool, result: dict[str, Any]) -> dict[str, Any]:
    """What a shard's sentinel adds for its join: which shard, its symbols, whether live."""
    details = result.get("details")
    symbols = details.get("symbols") if isinstance(details, dict) else None
    return {"shard": str(shard), "symbols": symbols, "live": live}


def _served_by(result: dict[str, Any]) -> dict[str, Any]:
    """``{"served_by": {provider: symbols}}`` when the collector reported it, else nothing."""
    details = result.get("details")
    served = details.get("served_by") if isinstance(details, dict) else None
    return {"served_by": served} if isinstance(served, dict) else {}


def _data_as_of(value: object) -> datetime | None:
    """A result file's ``data_as_of``; a value that is no time is dropped."""
    try:
        return parse_time(value)
    except (ValueError, OverflowError, OSError):
        return None


def _stop_on_signal(signum: int, _frame: object) -> None:
    raise _Interrupted(signal.Signals(signum).name)


def _shard_argument(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.task_runner",
        description="Run one period of one pipeline task (what each generated rule runs).",
    )
    parser.add_argument(
        "--config-json",
        type=Path,
        default=os.environ.get("ORCHESTRATOR_CONFIG_JSON"),
        help="the effective config (default: $ORCHESTRATOR_CONFIG_JSON, set by the workflow)",
    )
    parser.add_argument("--task", required=True, help="the task (its rule's name)")
    parser.add_argument("--session", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--slot", help="HHMM, for intraday tasks")
    parser.add_argument("--shard", type=_shard_argument, help="INDEX/COUNT: one shard of the task")
    parser.add_argument("--join", action="store_true", help="join the task's shards")
    args = parser.parse_args(argv)
    log_to_task_log_and_console()
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    if args.config_json is None:
        parser.error("no --config-json and no ORCHESTRATOR_CONFIG_JSON in the environment")
    config = read_effective_config(args.config_json)
    from orchestrator.market_calendar import load_calendar

    calendar = load_calendar(config.calendar_name, config.cache_dir)
    # Keys may live in .env: load them so the tasks get them and redaction knows them.
    load_dotenv(config.base_dir / ".env")
    period = Period(args.session, args.slot)
    run_id = os.environ.get(RUN_ID_VARIABLE)
    if args.join:
        from orchestrator.sharding import join_shards

        return join_shards(config, args.task, period, clock_for(config.now), run_id)
    try:
        report = run_task(config, args.task, period, calendar, run_id=run_id, shard=args.shard)
    except _Interrupted as stop:
        logger.error("%s %s interrupted by %s; no sentinel written", args.task, period, stop)
        return 1
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
