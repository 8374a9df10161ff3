"""Bar-to-signal latency: how long after a slot begins its signals are written.

A slot becomes due when it begins (the bar before it has just closed); the
runner records that moment in every intraday sentinel (``slot_due_at``) and,
for a live run, ``latency_seconds``: from then until the sentinel was written.
The latency that traders feel is that of the intraday family's last tasks
(those nothing intraday reads, ``intraday_signals`` in the default pipeline):
this module gathers it over a session for ``--health --json``, ``/metrics``
and the dashboard. Backfilled slots record no latency and are not counted.

Reading a session's sentinels is cheap (a few hundred small files) and
imports nothing heavy: it is on the ``--health`` path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from orchestrator.config import Config
from orchestrator.errors import CalendarRangeError
from orchestrator.market_calendar import MarketCalendar


@dataclass(frozen=True)
class SessionLatency:
    """One session's bar-to-signal latencies, per slot of the last intraday tasks."""

    session: date
    tasks: tuple[str, ...]
    seconds_by_slot: tuple[tuple[str, float], ...]  # (HHMM, seconds), in slot order

    @property
    def count(self) -> int:
        return len(self.seconds_by_slot)

    def quantile(self, fraction: float) -> float | None:
        """The ``fraction`` quantile (0.5: the median), inclusive; None without slots."""
        values = sorted(seconds for _slot, seconds in self.seconds_by_slot)
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        import statistics  # only when there is something to measure: off the bare --health path

        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return cuts[round(fraction * 100) - 1]

    @property
    def last_seconds(self) -> float | None:
        return self.seconds_by_slot[-1][1] if self.seconds_by_slot else None

    def as_dict(self) -> dict[str, object]:
        return {
            "session": str(self.session),
            "tasks": list(self.tasks),
            "slots": self.count,
            "p50_seconds": self.quantile(0.5),
            "p95_seconds": self.quantile(0.95),
            "last_seconds": self.last_seconds,
        }


def last_intraday_tasks(config: Config) -> tuple[str, ...]:
    """The intraday tasks no other intraday task reads: where a tick's work ends."""
    intraday = {task.name for task in config.pipeline.family("intraday")}
    return tuple(
        name
        for name in sorted(intraday)
        if not any(child in intraday for child in config.pipeline.downstream(name))
    )


def _slot_latencies(folder: Path) -> dict[str, float]:
    latencies = {}
    for path in folder.glob("*.json"):
        try:
            seconds = json.loads(path.read_text()).get("latency_seconds")
        except (OSError, ValueError):
            continue  # being replaced, or not a sentinel: not a measurement
        if isinstance(seconds, int | float):
            latencies[path.stem] = float(seconds)
    return latencies


def session_latency(config: Config, calendar: MarketCalendar, now: datetime) -> SessionLatency:
    """Latencies of the trading day of ``now``; a slot counts once all last tasks wrote it.

    With several last tasks a slot's latency is the slowest of them: the
    signal is complete only then.
    """
    tasks = last_intraday_tasks(config)
    try:
        session = calendar.trading_day(now)
    except CalendarRangeError:
        return SessionLatency(now.date(), tasks, ())
    per_task = []
    for name in tasks:
        sample_target = config.pipeline.task(name).target(session, "0000")
        per_task.append(_slot_latencies((config.base_dir / sample_target).parent))
    slots = set.intersection(*(set(found) for found in per_task)) if per_task else set()
    return SessionLatency(
        session,
        tasks,
        tuple((slot, max(found[slot] for found in per_task)) for slot in sorted(slots)),
    )
