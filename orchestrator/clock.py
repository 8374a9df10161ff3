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


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def fixed_clock(moment: datetime) -> Clock:
    """A clock stopped at ``moment`` (must be timezone-aware)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time")
    pinned = moment.astimezone(UTC)
    return lambda: pinned


def started_at_clock(start: datetime) -> Clock:
    """A clock that reads ``start`` now and runs at real speed from there.

    A run replayed at a pinned moment still measures real durations.
    """
    if start.tzinfo is None:
        raise ValueError(f"naive datetime {start!r}: pass a timezone-aware time")
    origin = start.astimezone(UTC)
    started = time.monotonic()
    return lambda: origin + timedelta(seconds=time.monotonic() - started)


def clock_for(pinned: datetime | None) -> Clock:
    """A clock starting at the pinned moment if a run was given one, else the wall clock."""
    return system_clock if pinned is None else started_at_clock(pinned)


real_sleep: Sleeper = time.sleep
