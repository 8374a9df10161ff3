"""Market hours: sessions, opens, closes and scopes from the exchange calendar.

The source of truth is ``exchange_calendars`` (holidays, early closes, DST,
unscheduled closures). Importing it costs about half a second (it pulls in
pandas), which the per-tick path and the health monitor cannot afford, so the
calendar is read once into a small JSON cache under ``state/cache`` and every
question afterwards is answered from plain lists with ``bisect``.

Scopes of a session, in exchange time:

- ``pre``: 04:00 to the open,
- ``regular``: the open to the close (13:00 on early-close days),
- ``post``: the close to four hours after it (20:00, or 17:00 on a half day).

Every ``now`` passed in must be timezone-aware; results are UTC-aware
datetimes, or ``date`` objects for sessions. A question outside the cached
range rebuilds the cache once (the package's range moves with the calendar
date), then raises ``CalendarRangeError`` with the covered range.
"""

from __future__ import annotations

import json
import os
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from orchestrator.clock import require_aware
from orchestrator.errors import CalendarRangeError
from orchestrator.files import write_atomically

SCOPES = ("pre", "regular", "post")
PRE_MARKET_START = time(4, 0)
POST_MARKET_LENGTH = timedelta(hours=4)
CACHE_FORMAT = 2


@dataclass(frozen=True)
class SessionHours:
    """The scope windows of one session, as UTC-aware datetimes."""

    session: date
    pre_start: datetime
    open: datetime
    close: datetime
    post_end: datetime

    def windows(self, hours: Iterable[str]) -> list[tuple[datetime, datetime]]:
        """Half-open ``[start, end)`` windows of the requested scopes, merged."""
        bounds = {
            "pre": (self.pre_start, self.open),
            "regular": (self.open, self.close),
            "post": (self.close, self.post_end),
        }
        merged: list[tuple[datetime, datetime]] = []
        for scope in SCOPES:
            if scope not in hours:
                continue
            start, end = bounds[scope]
            if merged and merged[-1][1] == start:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged


class MarketCalendar:
    """Answers "which session", "is it open", "is this task in scope" at a given time."""

    def __init__(
        self,
        name: str,
        timezone: str,
        sessions: list[date],
        opens: list[float],
        closes: list[float],
        rebuild: Callable[[], MarketCalendar] | None = None,
        pre_starts: list[float] | None = None,
    ) -> None:
        self.name = name
        self.tz = ZoneInfo(timezone)
        self._sessions = sessions
        self._opens = opens
        self._closes = closes
        self._pre_starts = pre_starts or _pre_market_starts(sessions, self.tz)
        # A callable returning a fresher MarketCalendar, tried once on a range miss.
        self._rebuild = rebuild

    # -- range handling -------------------------------------------------

    @property
    def first_session(self) -> date:
        return self._sessions[0]

    @property
    def last_session(self) -> date:
        return self._sessions[-1]

    def _out_of_range(self, what: str) -> CalendarRangeError:
        return CalendarRangeError(
            f"{what} is outside the {self.name} calendar's range "
            f"({self.first_session} to {self.last_session}); "
            "upgrade exchange_calendars for later dates"
        )

    def _refreshed(self) -> MarketCalendar | None:
        if self._rebuild is None:
            return None
        rebuild, self._rebuild = self._rebuild, None
        fresh = rebuild()
        self._sessions, self._opens, self._closes = fresh._sessions, fresh._opens, fresh._closes
        self._pre_starts = fresh._pre_starts
        return self

    def _check_day(self, day: date, what: str) -> None:
        if self.first_session <= day <= self.last_session:
            return
        if self._refreshed() is not None and self.first_session <= day <= self.last_session:
            return
        raise self._out_of_range(what)

    def _check_moment(self, moment: datetime) -> float:
        require_aware(moment)
        self._check_day(moment.astimezone(self.tz).date(), moment.isoformat())
        return moment.timestamp()

    # -- sessions --------------------------------------------------------

    def is_session(self, day: date) -> bool:
        self._check_day(day, day.isoformat())
        index = bisect_left(self._sessions, day)
        return index < len(self._sessions) and self._sessions[index] == day

    def sessions_in_range(self, start: date, end: date) -> list[date]:
        """Sessions from ``start`` to ``end``, both included."""
        self._check_day(start, start.isoformat())
        self._check_day(end, end.isoformat())
        return self._sessions[
            bisect_left(self._sessions, start) : bisect_right(self._sessions, end)
        ]

    def previous_session(self, day: date) -> date:
        self._check_day(day, day.isoformat())
        index = bisect_left(self._sessions, day) - 1
        if index < 0:
            raise self._out_of_range(f"the session before {day}")
        return self._sessions[index]

    def next_session(self, day: date) -> date:
        self._check_day(day, day.isoformat())
        index = bisect_right(self._sessions, day)
        if index >= len(self._sessions):
            raise self._out_of_range(f"the session after {day}")
        return self._sessions[index]

    def hours(self, session: date) -> SessionHours:
        """Scope windows of ``session``; ``CalendarRangeError`` if it is no session."""
        if not self.is_session(session):
            raise CalendarRangeError(f"{session} is not a {self.name} trading session")
        index = bisect_left(self._sessions, session)
        close = datetime.fromtimestamp(self._closes[index], UTC)
        return SessionHours(
            session=session,
            pre_start=datetime.fromtimestamp(self._pre_starts[index], UTC),
            open=datetime.fromtimestamp(self._opens[index], UTC),
            close=close,
            post_end=close + POST_MARKET_LENGTH,
        )

    def current_session(self, now: datetime) -> date:
        """The last session whose regular open is at or before ``now``.

        Before 09:30 ET, on weekends and on holidays that is the previous
        session; after the close it is still the day's session.
        """
        stamp = self._check_moment(now)
        index = bisect_right(self._opens, stamp) - 1
        if index < 0:
            raise self._out_of_range(now.isoformat())
        return self._sessions[index]

    def trading_day(self, now: datetime) -> date:
        """The session whose trading day (from 04:00 pre-market) has begun at ``now``.

        Equal to ``current_session`` except before the open, where it is
        already the coming session: pre-market data belongs to today.
        """
        stamp = self._check_moment(now)
        index = bisect_right(self._pre_starts, stamp) - 1
        if index < 0:
            raise self._out_of_range(now.isoformat())
        return self._sessions[index]

    # -- moments -----------------------------------------------------------

    def is_open(self, now: datetime) -> bool:
        """True during regular trading hours (open included, close excluded)."""
        return self.in_scope(now, ("regular",))

    def in_scope(self, now: datetime, hours: Iterable[str]) -> bool:
        """True when ``now`` falls in any of the ``hours`` scopes of a session."""
        try:
            session = self.trading_day(now)
        except CalendarRangeError:
            if now.timestamp() < self._pre_starts[0]:
                return False
            raise
        session_hours = self.hours(session)
        return any(start <= now < end for start, end in session_hours.windows(set(hours)))

    def slot_is_due(self, now: datetime, hours: Iterable[str], interval_seconds: int) -> bool:
        """Whether a task with these ``hours`` and slot length has a slot to build at ``now``.

        In scope, and also during the *closing slot*: the one that starts as a
        scope window ends. The last bar of the session (15:59) is complete
        only at 16:00, so this slot is what collects it.
        """
        if self.in_scope(now, hours):
            return True
        return self.in_scope(self.slot_start(now, interval_seconds) - timedelta(seconds=1), hours)

    def next_open(self, now: datetime) -> datetime:
        """The first regular open strictly after ``now``."""
        stamp = self._check_moment(now)
        index = bisect_right(self._opens, stamp)
        if index >= len(self._opens):
            raise self._out_of_range(f"the open after {now.isoformat()}")
        return datetime.fromtimestamp(self._opens[index], UTC)

    def next_close(self, now: datetime) -> datetime:
        """The first regular close strictly after ``now``."""
        stamp = self._check_moment(now)
        index = bisect_right(self._closes, stamp)
        if index >= len(self._closes):
            raise self._out_of_range(f"the close after {now.isoformat()}")
        return datetime.fromtimestamp(self._closes[index], UTC)

    def next_scope_start(self, now: datetime, hours: Iterable[str]) -> datetime:
        """The start of the next window of ``hours`` that begins after ``now``."""
        wanted = set(hours)
        day = self.current_session(now) if now.timestamp() >= self._opens[0] else self.first_session
        for _ in range(400):
            for start, _end in self.hours(day).windows(wanted):
                if start > now:
                    return start
            day = self.next_session(day)
        raise self._out_of_range(f"the next {sorted(wanted)} window after {now.isoformat()}")

    def scope_seconds_between(self, start: datetime, end: datetime, hours: Iterable[str]) -> float:
        """Seconds between ``start`` and ``end`` that fall inside ``hours`` scopes.

        This is the market-time age of data: Friday's close to Monday 09:35
        counts five minutes of regular hours.
        """
        require_aware(start)
        require_aware(end)
        if end <= start:
            return 0.0
        self._check_moment(end)  # beyond the range every session would be missing: not 0 s
        wanted = set(hours)
        first = bisect_right(self._sessions, start.astimezone(self.tz).date() - timedelta(days=1))
        last = bisect_right(self._sessions, end.astimezone(self.tz).date())
        total = 0.0
        for session in self._sessions[first:last]:
            for window_start, window_end in self.hours(session).windows(wanted):
                overlap = min(end, window_end) - max(start, window_start)
                total += max(overlap.total_seconds(), 0.0)
        return total

    def slot(self, now: datetime, interval_seconds: int) -> str:
        """``HHMM`` of ``now`` in exchange time, floored to the interval."""
        require_aware(now)
        local = now.astimezone(self.tz)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        floored = seconds - seconds % interval_seconds
        return f"{floored // 3600:02d}{floored // 60 % 60:02d}"

    def slot_start(self, now: datetime, interval_seconds: int) -> datetime:
        """When the slot of ``now`` began (exchange time floored to the interval), in UTC."""
        require_aware(now)
        local = now.astimezone(self.tz)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        into_slot = timedelta(seconds=seconds % interval_seconds, microseconds=local.microsecond)
        return (local - into_slot).astimezone(UTC)

    def slot_time(self, session: date, slot: str) -> datetime:
        """The UTC moment at which ``slot`` (``HHMM``) starts on ``session``'s date."""
        local = datetime.combine(session, time(int(slot[:2]), int(slot[2:])), self.tz)
        return local.astimezone(UTC)


# -- building and caching ---------------------------------------------------


def _pre_market_starts(sessions: list[date], tz: ZoneInfo) -> list[float]:
    return [datetime.combine(day, PRE_MARKET_START, tz).timestamp() for day in sessions]


def installed_version(distribution: str) -> str:
    """The installed version of ``distribution``, read from its ``.dist-info`` folder name.

    ``importlib.metadata`` gives the same answer but costs ~20 ms to import,
    a third of the health monitor's budget.
    """
    prefix = f"{distribution}-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.startswith(prefix) and folder.endswith(".dist-info"):
                return folder[len(prefix) : -len(".dist-info")]
    return "unknown"


def _cache_path(cache_dir: Path, name: str) -> Path:
    return cache_dir / f"calendar-{name}-{installed_version('exchange_calendars')}.json"


def _build_from_exchange_calendars(name: str) -> dict[str, object]:
    import exchange_calendars

    calendar = exchange_calendars.get_calendar(name)
    schedule = calendar.schedule
    sessions = [day.date() for day in schedule.index]
    return {
        "format": CACHE_FORMAT,
        "name": name,
        "timezone": str(calendar.tz),
        "built_on": datetime.now(UTC).date().isoformat(),
        "sessions": [day.isoformat() for day in sessions],
        "opens": [stamp.timestamp() for stamp in schedule["open"]],
        "closes": [stamp.timestamp() for stamp in schedule["close"]],
        "pre_starts": _pre_market_starts(sessions, ZoneInfo(str(calendar.tz))),
    }


def _from_payload(
    payload: dict[str, Any], rebuild: Callable[[], MarketCalendar] | None
) -> MarketCalendar:
    return MarketCalendar(
        name=payload["name"],
        timezone=payload["timezone"],
        sessions=[date.fromisoformat(day) for day in payload["sessions"]],
        opens=payload["opens"],
        closes=payload["closes"],
        rebuild=rebuild,
        pre_starts=payload["pre_starts"],
    )


def calendar_exists(name: str, cache_dir: Path) -> bool:
    """Whether ``name`` is an ``exchange_calendars`` calendar (or alias).

    A cached calendar answers at once; otherwise the package is asked, which
    costs its import, as building the cache would anyway.
    """
    if _cache_path(Path(cache_dir), name).is_file():
        return True
    import exchange_calendars

    return name in exchange_calendars.get_calendar_names(include_aliases=True)


def load_calendar(name: str, cache_dir: Path) -> MarketCalendar:
    """The calendar ``name`` (e.g. ``XNYS``), from the cache or built and cached.

    The cache file names the installed ``exchange_calendars`` version, so an
    upgrade (new holidays, a longer range) is picked up without a manual step.
    """
    path = _cache_path(Path(cache_dir), name)

    def rebuild() -> MarketCalendar:
        payload = _build_from_exchange_calendars(name)
        with suppress(OSError):  # a cache that cannot be written is built again next time
            write_atomically(path, json.dumps(payload))
        return _from_payload(payload, rebuild=None)

    try:
        payload = json.loads(path.read_text())
        if payload.get("format") != CACHE_FORMAT:
            raise ValueError("old cache format")
    except (OSError, ValueError):
        return rebuild()
    stale = payload["built_on"] != datetime.now(UTC).date().isoformat()
    return _from_payload(payload, rebuild=rebuild if stale else None)
