"""The intraday loop: the thin wrapper that asks for the current slots every tick.

Each tick runs ``snakemake intraday``; the workflow decides which slots are
current and Snakemake runs only what is due (a new 1-minute price slot, every
fifth minute features and signals). When every current slot's sentinel
already exists the tick skips Snakemake altogether: nothing is due.

The loop ticks as slots begin: it sleeps until the next slot of any in-scope
task starts, plus ``settle_seconds`` for the provider to finalise the bar that
just closed, so a bar becomes a signal within seconds instead of waiting for
a fixed wake-up. ``loop_interval_seconds`` is only the longest sleep (a
suspended laptop or a moved clock is noticed within it), and how soon a
failed tick is tried again. A tick that overruns a slot boundary is followed
at once by one tick for the slots current then: missed slots are caught up
once, never replayed one by one. Ticks never overlap because they run one
after another. While no intraday task is in scope the loop sleeps until the
next scope window opens.

Invariants:

- one loop at a time: ``state/locks/intraday-loop.lock``; a second loop
  raises ``AlreadyRunning`` naming the first;
- a failed tick is logged and the loop goes on; a killed tick's stale
  Snakemake lock is cleared by ``snakemake_runs.run_snakemake``;
- a stop request (SIGTERM, Ctrl+C) lets the running tick finish; a second
  one cuts it (the runners record the interruption, nothing is half-written);
- intraday sentinels and logs of sessions older than ``keep_sessions`` are
  pruned once per session.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from orchestrator.alerts import evaluate_safely
from orchestrator.clock import Clock, Sleeper
from orchestrator.config import Config
from orchestrator.market_calendar import MarketCalendar
from orchestrator.pipeline import Period
from orchestrator.pruning import prune_intraday
from orchestrator.snakemake_runs import (
    SnakemakeCall,
    configfile_of,
    exclusive,
    family_lock_path,
    run_snakemake,
)
from orchestrator.snakemake_worker import SnakemakeWorker

logger = logging.getLogger(__name__)

MAX_CLOSED_SLEEP_SECONDS = 3600.0
TICK_CORES = 2
TICK_MARGIN_SECONDS = 60.0  # Snakemake's own planning and dispatch, beyond the tasks' limits


@dataclass
class LoopControl:
    """Stop requests from signal handlers: first ``finish``, then ``cut``."""

    finish: threading.Event = field(default_factory=threading.Event)
    cut: threading.Event = field(default_factory=threading.Event)

    def request_stop(self) -> None:
        if self.finish.is_set():
            self.cut.set()
            logger.warning("second stop request: cutting the running tick")
        else:
            logger.warning("stop requested: stopping after the current tick (again to cut it)")
        self.finish.set()


@dataclass(frozen=True)
class TickResult:
    started: datetime
    exit_code: int
    seconds: float


def any_slot_due(config: Config, calendar: MarketCalendar, now: datetime) -> bool:
    """Whether some intraday task has a slot to build at ``now`` (its closing slot included)."""
    return any(
        calendar.slot_is_due(now, task.hours, task.interval_seconds)
        for task in config.pipeline.family("intraday")
    )


def next_scope_start(config: Config, calendar: MarketCalendar, now: datetime) -> datetime:
    """When the next intraday task comes into scope."""
    return min(
        calendar.next_scope_start(now, task.hours) for task in config.pipeline.family("intraday")
    )


def next_slot_start(config: Config, calendar: MarketCalendar, now: datetime) -> datetime:
    """When the next slot some intraday task will build begins, after ``now``."""
    starts = []
    for task in config.pipeline.family("intraday"):
        interval = timedelta(seconds=task.interval_seconds)
        boundary = calendar.slot_start(now, task.interval_seconds) + interval
        if calendar.slot_is_due(boundary, task.hours, task.interval_seconds):
            starts.append(boundary)
        else:
            starts.append(calendar.next_scope_start(now, task.hours))
    return min(starts)


def latest_slot_start(config: Config, calendar: MarketCalendar, now: datetime) -> datetime:
    """When the newest slot due at ``now`` began."""
    return max(
        calendar.slot_start(now, task.interval_seconds)
        for task in config.pipeline.family("intraday")
        if calendar.slot_is_due(now, task.hours, task.interval_seconds)
    )


class IntradayLoop:
    """Runs ticks until stopped; ``once`` runs a single tick."""

    def __init__(
        self,
        config: Config,
        calendar: MarketCalendar,
        clock: Clock,
        interval: float,
        dry_run: bool = False,
        control: LoopControl | None = None,
        run_tick: Callable[[], int] | None = None,
        sleeper: Sleeper | None = None,
        worker: bool = False,
    ) -> None:
        self.config = config
        self.calendar = calendar
        self.clock = clock
        self.interval = interval
        self.dry_run = dry_run
        self.control = control or LoopControl()
        # Injected in tests; by default a real `snakemake intraday`.
        self._run_tick = run_tick or self._snakemake_tick
        self._pruned_for: date | None = None
        # Ticks built by one living Snakemake (the loop), or a `snakemake` process each.
        self._worker = (
            SnakemakeWorker(config.base_dir, configfile_of(config))
            if worker and not dry_run
            else None
        )
        self._settle = timedelta(seconds=config.settle_seconds)
        # What the last tick was for, to tell a new slot from a retry.
        self._last_periods: dict[str, Period] | None = None
        self._last_tick: TickResult | None = None
        # Waking early on a stop request; tests pass a sleeper that moves their clock.
        self._sleeper = sleeper or (lambda seconds: self.control.finish.wait(timeout=seconds))

    def _current_slots_built(self) -> bool:
        """Whether the current slot of every in-scope task already has its sentinel.

        Then nothing is due, and starting Snakemake (about a second) would
        only say so: half the ticks of a 30 s loop over 1-minute slots.
        """
        targets = self.config.pipeline.intraday_targets(self.calendar, self.clock())
        return bool(targets) and all((self.config.base_dir / t).is_file() for t in targets)

    def _snakemake_tick(self) -> int:
        if not self.dry_run and self._current_slots_built():
            logger.debug("every current intraday slot is built; nothing is due")
            return 0
        overrides: dict[str, str] = {}
        if self.config.now is not None:
            overrides["now"] = self.clock().isoformat()
        if self._worker is not None:
            with exclusive(family_lock_path(self.config.state_dir, "intraday"), "an intraday run"):
                return self._worker.run(
                    ("intraday",), overrides, TICK_CORES, self._tick_time_limit(), self.control.cut
                )
        call = SnakemakeCall(
            targets=("intraday",),
            cores=TICK_CORES,
            dry_run=self.dry_run,
            config_overrides=tuple(f"{key}={value}" for key, value in overrides.items()),
            configfile=configfile_of(self.config),
            quiet=() if self.dry_run else ("progress", "rules", "host"),
        )
        with exclusive(family_lock_path(self.config.state_dir, "intraday"), "an intraday run"):
            return run_snakemake(call, self.config.base_dir, stop_requested=self.control.cut)

    def _tick_time_limit(self) -> float:
        """The longest a tick can take: every intraday task at its longest, one after another."""
        tasks = self.config.pipeline.family("intraday")
        return sum(task.longest_run.total_seconds() for task in tasks) + TICK_MARGIN_SECONDS

    def close(self) -> None:
        """End the worker, if there is one (the loop has stopped)."""
        if self._worker is not None:
            self._worker.close()

    def tick(self) -> TickResult:
        started = self.clock()
        self._last_periods = self.config.pipeline.due_slots(self.calendar, started)
        try:
            code = int(self._run_tick())
        except Exception as error:  # a failed tick must not end the loop
            logger.error("✗ tick at %s crashed: %s", started.isoformat(timespec="seconds"), error)
            code = 1
        seconds = (self.clock() - started).total_seconds()
        mark = "✓" if code == 0 else "✗"
        level = logging.INFO if code == 0 else logging.ERROR
        logger.log(
            level,
            "%s intraday tick at %s finished in %.1f s (exit %d)",
            mark,
            started.astimezone(self.calendar.tz).strftime("%H:%M:%S"),
            seconds,
            code,
        )
        self._prune_once_per_session(started)
        if not self.dry_run:
            # After every tick, so a failure alerts within one tick; never raises.
            evaluate_safely(self.config, self.clock(), self.calendar)
        self._last_tick = TickResult(started, code, seconds)
        return self._last_tick

    def _prune_once_per_session(self, now: datetime) -> None:
        session = self.calendar.trading_day(now)
        if session != self._pruned_for and not self.dry_run:
            if self._worker is not None and self._pruned_for is not None:
                self._worker.recycle()  # a fresh worker each session
            removed = prune_intraday(self.config, self.calendar, now)
            if removed:
                logger.info("pruned intraday sentinels of %d old session(s)", len(removed))
            self._pruned_for = session

    def run(self, once: bool = False) -> int:
        """Tick until stopped; returns the last tick's exit code (0 if none ran)."""
        last_code = 0
        while not self.control.finish.is_set():
            now = self.clock()
            if not any_slot_due(self.config, self.calendar, now):
                if once:
                    logger.info(
                        "• no intraday task is in scope at %s; nothing to run",
                        now.astimezone(self.calendar.tz).strftime("%Y-%m-%d %H:%M %Z"),
                    )
                    return 0
                wake = next_scope_start(self.config, self.calendar, now)
                logger.info(
                    "• market closed; sleeping until %s",
                    wake.astimezone(self.calendar.tz).strftime("%Y-%m-%d %H:%M %Z"),
                )
                self._sleep(min((wake - now).total_seconds(), MAX_CLOSED_SLEEP_SECONDS))
                continue
            if once:
                return self.tick().exit_code
            if not self._tick_due(now):
                self._sleep(self._seconds_to_next_slot(now))
                continue
            settling = latest_slot_start(self.config, self.calendar, now) + self._settle - now
            if settling.total_seconds() > 0:
                self._sleep(settling.total_seconds())
                continue
            # No sleep after a tick: if it overran a slot boundary, the next one
            # runs at once for the slots current then.
            last_code = self.tick().exit_code
        logger.info("• intraday loop stopped")
        return last_code

    def _tick_due(self, now: datetime) -> bool:
        """A slot began since the last tick, or the last tick failed an interval ago."""
        last_periods = self._last_periods or {}
        due = self.config.pipeline.due_slots(self.calendar, now)
        if any(last_periods.get(name) != period for name, period in due.items()):
            return True
        last = self._last_tick
        return (
            last is not None
            and last.exit_code != 0
            and (now - last.started).total_seconds() >= self.interval
        )

    def _seconds_to_next_slot(self, now: datetime) -> float:
        """Until the next slot begins and settles, never longer than the interval."""
        wake = next_slot_start(self.config, self.calendar, now) + self._settle
        return min((wake - now).total_seconds(), self.interval)

    def _sleep(self, seconds: float) -> None:
        self._sleeper(max(seconds, 0.0))
