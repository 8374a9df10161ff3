"""Soak: a whole simulated trading day of intraday ticks, with faults, at accelerated time.

Every minute from the open to the close, and the closing slot at the close,
is one tick. A tick builds what the workflow's ``intraday`` target asks for
at that moment (``Pipeline.due_slots``): the current
``price_data`` slot, and every fifth minute the ``intraday_features`` and
``intraday_signals`` slots (their upstream slot first if it is missing,
dependents skipped when a critical upstream failed). Each task run goes through the real
runner, ``orchestrator.task_runner.run_task``, with an injected clock (the
tick's time, five seconds into the minute, as a 30 s loop would) and a no-op
sleeper (backoffs and ``Retry-After`` cost nothing). The provider wraps the
synthetic market in ``collectors.providers.faulty``: 5% of task attempts meet
a transient fault (connection reset, HTTP 429, HTTP 503) by default.

Modes: ``inprocess`` (default) runs each attempt's collector in this process
(``orchestrator.collector_process.main`` with the attempt's environment), so a
day takes well under a minute; ``subprocess`` uses the runner's real child
processes (about 1 s of interpreter start-up per attempt: ~10 min a day).
Real ``snakemake`` per tick costs ~1.5 s of planning and start-up, ~10 min a
day for the same task runs, which is why it is not a mode here; the
end-to-end tests cover Snakemake itself.

Reported: expected vs stored 1-minute bars (coverage), duplicate bars, bars
outside the session, quarantined rows, and whether the status counters add
up (runs = successes + failures per task; one ``task_attempts`` row per
attempt; every attempt that drew a fault is recorded as transient, every
other one succeeded).

    python bench/soak.py [--minutes N] [--rate 0.05] [--universe-size 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from collectors.providers.faulty import FaultSettings, fault_for
from orchestrator import task_runner
from orchestrator.config import Config, build_config, read_yaml
from orchestrator.market_calendar import MarketCalendar, load_calendar
from orchestrator.pipeline import Period
from orchestrator.status_store import StatusStore
from orchestrator.task_runner import AttemptOutcome, RunReport, run_task

PROJECT = Path(__file__).resolve().parent.parent

DEFAULT_SESSION = date(2026, 11, 20)  # a regular Friday: 390 minutes
TICK_OFFSET = timedelta(seconds=5)
PROVIDER_TASKS = {"assets", "price_data"}  # the others read only the market database


@dataclass
class SoakReport:
    session: str
    minutes: int
    universe_size: int
    fault_rate: float
    mode: str
    wall_seconds: float = 0.0
    ticks: int = 0
    task_runs: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    faults_injected: dict[str, int] = field(default_factory=dict)
    failed_runs: dict[str, int] = field(default_factory=dict)
    expected_bars: int = 0
    collectable_bars: int = 0
    stored_bars: int = 0
    coverage: float = 0.0
    coverage_of_collectable: float = 0.0
    duplicate_bars: int = 0
    bars_outside_session: int = 0
    quarantined_rows: int = 0
    counters_consistent: bool = False
    counter_problems: list[str] = field(default_factory=list)


def soak_config(base: Path, universe_size: int, faults: dict[str, Any]) -> Config:
    """The shipped ``assets`` and intraday tasks (timeouts, retries, criticality), faulty."""
    raw = read_yaml(PROJECT / "config.yaml")
    raw["provider"] = {"name": "synthetic", "seed": 42, "universe_size": universe_size}
    raw["provider"]["faults"] = faults
    raw["tasks"] = {
        name: task
        for name, task in raw["tasks"].items()
        if name == "assets" or task["family"] == "intraday"
    }
    return build_config(raw, "soak-config.yaml", base)


def in_process_attempt(
    command: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None
) -> AttemptOutcome:
    """``run_attempt`` without the child process: the collector runs here, same protocol.

    ``cwd`` is a user script's folder; the soak runs built-in collectors only.
    """
    from orchestrator import collector_process

    assert command[1:3] == ["-m", "orchestrator.collector_process"], command
    with tempfile.TemporaryDirectory(prefix="soak-attempt-") as scratch:
        result_file = Path(scratch) / "result.json"
        with _environment({**env, "ORCHESTRATOR_RESULT_FILE": str(result_file)}):
            code = collector_process.main(command[3:])
        try:
            result = json.loads(result_file.read_text())
        except (OSError, ValueError):
            result = {}
    return task_runner.classify_exit(code, result)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Day:
    """Runs the ticks of one session, like the intraday loop and Snakemake would."""

    def __init__(self, config: Config, calendar: MarketCalendar, session: date) -> None:
        self.config = config
        self.calendar = calendar
        self.session = session
        self.runs: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def target(self, task: str, slot: str | None) -> Path:
        return self.config.base_dir / self.config.pipeline.task(task).target(self.session, slot)

    def run(self, task: str, slot: str | None, now: datetime) -> RunReport:
        report = run_task(
            self.config,
            task,
            Period(self.session, slot),
            self.calendar,
            clock=lambda: now,
            sleeper=lambda _seconds: None,
        )
        self.runs[task] += 1
        if report.exit_code != 0:
            self.failed[task] += 1
        return report

    def ensure(self, task: str, slot: str, now: datetime) -> bool:
        """Build ``task``'s slot if missing, its upstream first; False if it is not built."""
        if self.target(task, slot).exists():
            return True
        pipeline = self.config.pipeline
        for upstream in pipeline.task(task).needs:
            if not self.ensure(upstream, pipeline.upstream_slot(upstream, slot), now):
                return False  # a critical upstream failed: Snakemake skips the dependent
        return self.run(task, slot, now).exit_code == 0

    def tick(self, now: datetime) -> None:
        """Build what the workflow's ``intraday`` target asks for at ``now``."""
        for task, period in self.config.pipeline.due_slots(self.calendar, now).items():
            self.ensure(task, str(period.slot), now)


def simulate(
    workdir: Path,
    session: date = DEFAULT_SESSION,
    minutes: int | None = None,
    fault_rate: float = 0.05,
    seed: int = 7,
    universe_size: int = 50,
    mode: str = "inprocess",
) -> SoakReport:
    """Run ``minutes`` ticks from the open (the whole session by default) and check the result."""
    faults = {"rate": fault_rate, "seed": seed, "kinds": ["reset", "http_429", "http_503"]}
    config = soak_config(workdir, universe_size, faults)
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    hours = calendar.hours(session)
    session_minutes = int((hours.close - hours.open).total_seconds() // 60)
    # The whole session is every minute of it plus the closing slot at the close.
    ticks = session_minutes + 1 if minutes is None else min(minutes, session_minutes)
    minutes = min(ticks, session_minutes)
    report = SoakReport(str(session), minutes, universe_size, fault_rate, mode)
    day = Day(config, calendar, session)
    started = time.monotonic()
    patch = (
        mock.patch.object(task_runner, "run_attempt", in_process_attempt)
        if mode == "inprocess"
        else mock.patch.object(task_runner, "run_attempt", task_runner.run_attempt)
    )
    with patch:
        if day.run("assets", None, hours.open).exit_code != 0:
            raise RuntimeError("the assets task failed on every attempt; no universe to soak")
        for number in range(ticks):
            day.tick(hours.open + timedelta(minutes=number) + TICK_OFFSET)
            report.ticks += 1
    report.wall_seconds = round(time.monotonic() - started, 1)
    report.task_runs = dict(day.runs)
    report.failed_runs = dict(day.failed)
    last_as_of = hours.open + timedelta(minutes=ticks - 1) + TICK_OFFSET
    _check_data(config, report, hours.open, hours.close, last_as_of)
    _check_counters(config, report, FaultSettings.from_mapping(faults), dict(day.runs))
    return report


def _check_data(
    config: Config, report: SoakReport, open_: datetime, close: datetime, last_as_of: datetime
) -> None:
    open_ts, close_ts = int(open_.timestamp()), int(close.timestamp())
    window_end = min(open_ts + 60 * report.minutes, close_ts)
    report.expected_bars = report.universe_size * (window_end - open_ts) // 60
    # A bar stamped t is served once t + 60 <= as_of.
    served = (int(last_as_of.timestamp()) - 60 - open_ts) // 60 + 1
    report.collectable_bars = report.universe_size * min(served, (window_end - open_ts) // 60)
    with sqlite3.connect(config.market_db) as connection:
        stored, distinct = connection.execute(
            "SELECT COUNT(*), COUNT(DISTINCT symbol || '@' || bar_ts) FROM intraday_bars "
            "WHERE session = ?",
            (report.session,),
        ).fetchone()
        report.bars_outside_session = connection.execute(
            "SELECT COUNT(*) FROM intraday_bars WHERE bar_ts < ? OR bar_ts >= ?",
            (open_ts, close_ts),
        ).fetchone()[0]
        report.quarantined_rows = connection.execute("SELECT COUNT(*) FROM quarantine").fetchone()[
            0
        ]
    report.stored_bars = stored
    report.duplicate_bars = stored - distinct
    report.coverage = round(stored / report.expected_bars, 5) if report.expected_bars else 0.0
    report.coverage_of_collectable = (
        round(stored / report.collectable_bars, 5) if report.collectable_bars else 0.0
    )


def _check_counters(
    config: Config, report: SoakReport, faults: FaultSettings, runs: dict[str, int]
) -> None:
    store = StatusStore(config.status_db)
    problems = []
    statuses = store.task_statuses()
    for task, count in runs.items():
        row = statuses.get(task, {})
        if row.get("total_runs") != count:
            problems.append(f"{task}: total_runs {row.get('total_runs')} != {count} runs")
        if row.get("total_runs") != row.get("total_successes", 0) + row.get("total_failures", 0):
            problems.append(f"{task}: runs != successes + failures")
    attempts = store.attempts()
    report.attempts = len(attempts)
    injected: Counter[str] = Counter()
    for attempt in attempts:
        period = attempt["period"]
        session, _, slot = period.partition("/")
        # The soak's clock stands still within a tick: an attempt started when its run did.
        run_started = datetime.fromisoformat(attempt["started_at"]).isoformat()
        kind = (
            fault_for(
                faults,
                attempt["task_name"],
                session,
                slot or None,
                attempt["attempt"],
                run_started,
            )
            if attempt["task_name"] in PROVIDER_TASKS
            else None
        )
        expected = "success" if kind is None else "transient"
        if kind:
            injected[kind] += 1
        if attempt["outcome"] != expected:
            problems.append(
                f"{attempt['task_name']} {period} attempt {attempt['attempt']}: "
                f"{attempt['outcome']}, expected {expected} ({attempt['error_message']})"
            )
    successes = sum(row.get("total_successes", 0) for row in statuses.values())
    if successes != sum(1 for attempt in attempts if attempt["outcome"] == "success"):
        problems.append("successful runs != successful attempts")
    report.faults_injected = dict(injected)
    report.counter_problems = problems[:20]
    report.counters_consistent = not problems


def render(report: SoakReport) -> str:
    faults = sum(report.faults_injected.values())
    lines = [
        f"Soak: session {report.session}, {report.ticks} ticks ({report.minutes} min), "
        f"{report.universe_size} symbols, fault rate {report.fault_rate:.0%}, "
        f"{report.mode}, {report.wall_seconds:.0f} s",
        f"  task runs          {report.task_runs} (failed after retries: {report.failed_runs})",
        f"  attempts           {report.attempts}, faults injected {faults} "
        f"{report.faults_injected}",
        f"  1-minute bars      {report.stored_bars} stored / {report.expected_bars} expected "
        f"= {report.coverage:.3%} ({report.coverage_of_collectable:.3%} of the "
        f"{report.collectable_bars} collectable by the last tick)",
        f"  duplicates         {report.duplicate_bars}",
        f"  outside session    {report.bars_outside_session}",
        f"  quarantined rows   {report.quarantined_rows}",
        f"  counters add up    {'yes' if report.counters_consistent else 'NO'}",
        *(f"    {problem}" for problem in report.counter_problems),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--session", type=date.fromisoformat, default=DEFAULT_SESSION)
    parser.add_argument("--minutes", type=int, help="ticks from the open (default: the session)")
    parser.add_argument("--rate", type=float, default=0.05, help="share of attempts with a fault")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--universe-size", type=int, default=50)
    parser.add_argument("--mode", choices=("inprocess", "subprocess"), default="inprocess")
    parser.add_argument("--workdir", type=Path, help="keep the state here (default: a temp dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        workdir = args.workdir or Path(scratch)
        report = simulate(
            workdir, args.session, args.minutes, args.rate, args.seed, args.universe_size, args.mode
        )
    print(json.dumps(asdict(report), indent=2) if args.json else render(report))
    ok = report.duplicate_bars == 0 and report.counters_consistent and report.coverage >= 0.999
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
