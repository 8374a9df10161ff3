"""Where "now" comes from.

Code that depends on the time takes a ``Clock`` (a callable returning a
UTC-aware ``datetime``) instead of calling ``datetime.now()``, so tests move
time rather than sleep. ``--config now=...`` starts the clock of a whole
Snakemake run at a given moment, which is how end-to-end tests replay one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
Sleeper = Callable[[float], None]


def require_aware(moment: datetime, what: str = "time") -> datetime:
    """``moment`` itself, or ``ValueError`` when it is naive (every time here is aware)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime for {what}: {moment!r}; pass a timezone-aware time")
    return moment


def parse_time(value: object) -> datetime | None:
    """A stored time as an aware UTC datetime: ISO 8601 or epoch seconds; naive means UTC.

    ``None`` or ``""`` is ``None``; anything else that is no time is a ``ValueError``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except ValueError:
            pass
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    raise ValueError(f"{value!r} is not a time")


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def fixed_clock(moment: datetime) -> Clock:
    """A clock stopped at ``moment`` (must be timezone-aware)."""
    pinned = require_aware(moment, "the fixed clock").astimezone(UTC)
    return lambda: pinned


def started_at_clock(start: datetime) -> Clock:
    """A clock that reads ``start`` now and runs at real speed from there.

    A run replayed at a pinned moment still measures real durations.
    """
    origin = require_aware(start, "the clock's start").astimezone(UTC)
    started = time.monotonic()
    return lambda: origin + timedelta(seconds=time.monotonic() - started)


def clock_for(pinned: datetime | None) -> Clock:
    """A clock starting at the pinned moment if a run was given one, else the wall clock."""
    return system_clock if pinned is None else started_at_clock(pinned)


real_sleep: Sleeper = time.sleep
