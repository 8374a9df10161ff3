"""Freshness of one data source: data plus one pure function, dbt style.

``freshness_status`` turns the newest data time of a source into GREEN,
YELLOW, RED or UNKNOWN against the source's thresholds (``Freshness``, in
seconds). The dashboard and ``--update-stale`` only display and act on it.

Invariants:

- green below ``green``; yellow from ``green`` up to and including ``yellow``;
  red beyond ``yellow``; unknown when there is no data time at all;
- a ``wall`` clock source ages with the wall clock;
- a ``market`` clock source ages only while it is in scope (the ``hours``
  scopes of a session: pre, regular, post), so Friday's closing bars are still
  green on Saturday, on a holiday and before Monday's open, and age normally
  from the open on; a half day stops ageing at its 13:00 ET close;
- data stamped after ``now`` (clock skew) has age zero;
- every datetime is timezone-aware; a naive one is a ``ValueError``.

This module imports nothing heavy: it is on the ``orchestrator --health`` path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orchestrator.clock import require_aware
from orchestrator.errors import CalendarRangeError
from orchestrator.market_calendar import MarketCalendar
from orchestrator.pipeline import Freshness


class FreshnessStatus(StrEnum):
    GREEN = "GREEN"
    YELLOW = "YELLOW"
    RED = "RED"
    UNKNOWN = "UNKNOWN"


GREEN, YELLOW, RED, UNKNOWN = FreshnessStatus
# Worst first: the order of the dashboard and of exit codes.
SEVERITY = (RED, YELLOW, GREEN, UNKNOWN)
WALL = "wall"
MARKET = "market"


@dataclass(frozen=True)
class FreshnessResult:
    """The verdict on one source at one moment."""

    status: FreshnessStatus
    age_seconds: float | None
    message: str


def human_age(seconds: float) -> str:
    """A short age: ``45s``, ``12m``, ``3h 5m``, ``2d 5h`` (two units at most, floored)."""
    whole = max(int(seconds), 0)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def classify(age_seconds: float, freshness: Freshness) -> FreshnessStatus:
    """GREEN below ``green``, YELLOW up to ``yellow`` included, RED beyond."""
    if age_seconds < freshness.green:
        return GREEN
    if age_seconds <= freshness.yellow:
        return YELLOW
    return RED


def zone_label(calendar: MarketCalendar, moment: datetime) -> str:
    """``ET`` for New York, else the zone's abbreviation at ``moment`` (``CET``, ``JST``)."""
    if getattr(calendar.tz, "key", None) == "America/New_York":
        return "ET"
    return moment.astimezone(calendar.tz).tzname() or str(calendar.tz)


def as_of_text(data_time: datetime, now: datetime, calendar: MarketCalendar) -> str:
    """``15:59 ET`` today, ``Fri 15:59 ET`` within a week, else ``2026-11-20 15:59 ET``."""
    local = data_time.astimezone(calendar.tz)
    today = now.astimezone(calendar.tz).date()
    label = zone_label(calendar, data_time)
    if local.date() == today:
        return f"{local:%H:%M} {label}"
    if 0 < (today - local.date()).days < 7:
        return f"{local:%a %H:%M} {label}"
    return f"{local:%Y-%m-%d %H:%M} {label}"


def freshness_status(
    freshness: Freshness,
    data_time: datetime | None,
    now: datetime,
    calendar: MarketCalendar,
    hours: Iterable[str],
) -> FreshnessResult:
    """Judge a source whose newest data is stamped ``data_time``, at ``now``.

    ``hours`` are the scopes in which a ``market`` clock source ages (an
    intraday task's configured hours; ``("regular",)`` for daily sources);
    they are ignored for ``wall`` clock sources. Edge cases:

    - no data (``data_time`` is None): UNKNOWN, age None;
    - data newer than ``now``: age 0, GREEN;
    - market clock, data older than the calendar's first session: the market
      age cannot be counted, so the wall age is shown and the source is RED;
    - market clock, ``now`` outside the calendar's range:
      ``CalendarRangeError`` (the calendar package needs an upgrade).
    """
    require_aware(now, "now")
    if data_time is None:
        return FreshnessResult(UNKNOWN, None, "no data yet")
    require_aware(data_time, "data_time")
    wall_age = max((now - data_time).total_seconds(), 0.0)
    if freshness.clock != MARKET:
        return FreshnessResult(
            classify(wall_age, freshness), wall_age, f"updated {human_age(wall_age)} ago"
        )
    calendar.current_session(now)  # raises CalendarRangeError when `now` is out of range
    try:
        calendar.is_session(data_time.astimezone(calendar.tz).date())
    except CalendarRangeError:
        if data_time > now:
            raise
        return FreshnessResult(
            RED, wall_age, f"updated {human_age(wall_age)} ago, before the calendar's range"
        )
    age = calendar.scope_seconds_between(data_time, now, tuple(hours)) if wall_age else 0.0
    status = classify(age, freshness)
    message = f"data as of {as_of_text(data_time, now, calendar)}"
    if age != wall_age:
        message += f", {human_age(age)} of market time"
    return FreshnessResult(status, age, message)
