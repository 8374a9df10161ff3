"""The XNYS calendar: sessions, hours, scopes, DST, holidays, half days, range.

2026 facts used here: Thanksgiving is Thursday 2026-11-26 (closed), Friday
2026-11-27 closes at 13:00 ET; DST starts Sunday 2026-03-08 and ends Sunday
2026-11-01, so the regular open is 13:30 UTC from March 9 and 14:30 UTC again
from November 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator import market_calendar
from orchestrator.errors import CalendarRangeError
from orchestrator.market_calendar import MarketCalendar, calendar_exists, load_calendar

ROOT = Path(__file__).resolve().parent.parent
ET = ZoneInfo("America/New_York")


def et(*args: int) -> datetime:
    return datetime(*args, tzinfo=ET)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def cal(calendar_cache: Path) -> MarketCalendar:
    return load_calendar("XNYS", calendar_cache)


# -- sessions and hours ------------------------------------------------------------


def test_regular_day(cal: MarketCalendar) -> None:
    hours = cal.hours(date(2026, 11, 20))
    assert hours.open == et(2026, 11, 20, 9, 30)
    assert hours.close == et(2026, 11, 20, 16, 0)
    assert hours.pre_start == et(2026, 11, 20, 4, 0)
    assert hours.post_end == et(2026, 11, 20, 20, 0)
    assert hours.open.tzinfo is not None and hours.open.utcoffset() == timedelta(0)


def test_thanksgiving_is_no_session(cal: MarketCalendar) -> None:
    assert cal.is_session(date(2026, 11, 26)) is False
    assert cal.is_session(date(2026, 11, 25)) is True
    with pytest.raises(CalendarRangeError, match="2026-11-26 is not a XNYS trading session"):
        cal.hours(date(2026, 11, 26))
    assert cal.is_open(et(2026, 11, 26, 12, 0)) is False
    assert cal.in_scope(et(2026, 11, 26, 5, 0), ["pre", "regular", "post"]) is False
    assert cal.sessions_in_range(date(2026, 11, 23), date(2026, 11, 29)) == [
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
        date(2026, 11, 27),
    ]


def test_day_after_thanksgiving_closes_at_one(cal: MarketCalendar) -> None:
    hours = cal.hours(date(2026, 11, 27))
    assert hours.close == et(2026, 11, 27, 13, 0) == utc(2026, 11, 27, 18, 0)
    assert hours.post_end == et(2026, 11, 27, 17, 0)
    assert cal.is_open(et(2026, 11, 27, 12, 59, 59)) is True
    assert cal.is_open(et(2026, 11, 27, 13, 0)) is False
    assert cal.in_scope(et(2026, 11, 27, 15, 0), ["post"]) is True
    assert cal.in_scope(et(2026, 11, 27, 17, 0), ["post"]) is False
    assert cal.next_close(et(2026, 11, 27, 10, 0)) == utc(2026, 11, 27, 18, 0)


@pytest.mark.parametrize(
    ("days", "open_utc_hour", "close_utc_hour"),
    [
        pytest.param(range(2, 7), 14, 21, id="march-before-dst"),
        pytest.param(range(9, 14), 13, 20, id="march-first-dst-week"),
    ],
)
def test_march_dst_switch(
    cal: MarketCalendar, days: range, open_utc_hour: int, close_utc_hour: int
) -> None:
    for day in days:
        hours = cal.hours(date(2026, 3, day))
        assert hours.open == utc(2026, 3, day, open_utc_hour, 30), day
        assert hours.close == utc(2026, 3, day, close_utc_hour, 0), day
        assert hours.open.astimezone(ET).hour == 9


@pytest.mark.parametrize(
    ("month", "days", "open_utc_hour"),
    [
        pytest.param(10, range(26, 31), 13, id="october-last-dst-week"),
        pytest.param(11, range(2, 7), 14, id="november-first-standard-week"),
    ],
)
def test_november_dst_switch(
    cal: MarketCalendar, month: int, days: range, open_utc_hour: int
) -> None:
    for day in days:
        hours = cal.hours(date(2026, month, day))
        assert hours.open == utc(2026, month, day, open_utc_hour, 30), day
        assert cal.is_open(utc(2026, month, day, open_utc_hour, 30)) is True
        assert cal.is_open(utc(2026, month, day, open_utc_hour, 29, 59)) is False


def test_dst_sunday_is_no_session_and_monday_slots_are_in_exchange_time(
    cal: MarketCalendar,
) -> None:
    assert cal.is_session(date(2026, 3, 8)) is False
    assert cal.slot(utc(2026, 3, 9, 13, 30), 60) == "0930"
    assert cal.slot(utc(2026, 11, 2, 14, 30), 60) == "0930"
    assert cal.slot_time(date(2026, 3, 9), "0930") == utc(2026, 3, 9, 13, 30)
    assert cal.slot_time(date(2026, 11, 2), "0930") == utc(2026, 11, 2, 14, 30)


def test_weekend(cal: MarketCalendar) -> None:
    saturday = et(2026, 11, 21, 12, 0)
    assert cal.is_session(date(2026, 11, 21)) is False
    assert cal.is_session(date(2026, 11, 22)) is False
    assert cal.is_open(saturday) is False
    assert cal.in_scope(saturday, ["pre", "regular", "post"]) is False
    assert cal.current_session(saturday) == date(2026, 11, 20)
    assert cal.trading_day(saturday) == date(2026, 11, 20)
    assert cal.next_session(date(2026, 11, 20)) == date(2026, 11, 23)
    assert cal.previous_session(date(2026, 11, 23)) == date(2026, 11, 20)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (et(2026, 11, 20, 9, 29, 59), False),
        (et(2026, 11, 20, 9, 30, 0), True),
        (et(2026, 11, 20, 15, 59, 59), True),
        (et(2026, 11, 20, 16, 0, 0), False),
        (utc(2026, 11, 20, 14, 30), True),  # any timezone, same instant
        (et(2026, 11, 20, 12, 0).astimezone(ZoneInfo("Asia/Tokyo")), True),
    ],
)
def test_is_open_boundaries(cal: MarketCalendar, moment: datetime, expected: bool) -> None:
    assert cal.is_open(moment) is expected


@pytest.mark.parametrize(
    ("moment", "session"),
    [
        pytest.param(et(2026, 11, 23, 9, 29, 59), date(2026, 11, 20), id="before-open-monday"),
        pytest.param(et(2026, 11, 23, 9, 30), date(2026, 11, 23), id="at-open"),
        pytest.param(et(2026, 11, 23, 18, 0), date(2026, 11, 23), id="after-close"),
        pytest.param(et(2026, 11, 22, 12, 0), date(2026, 11, 20), id="sunday"),
        pytest.param(et(2026, 11, 26, 12, 0), date(2026, 11, 25), id="thanksgiving"),
        pytest.param(et(2026, 11, 27, 8, 0), date(2026, 11, 25), id="before-half-day-open"),
    ],
)
def test_current_session(cal: MarketCalendar, moment: datetime, session: date) -> None:
    assert cal.current_session(moment) == session


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        pytest.param(et(2026, 11, 23, 3, 59, 59), date(2026, 11, 20), id="before-pre-market"),
        pytest.param(et(2026, 11, 23, 4, 0), date(2026, 11, 23), id="pre-market-start"),
        pytest.param(et(2026, 11, 23, 8, 0), date(2026, 11, 23), id="pre-market"),
        pytest.param(et(2026, 11, 23, 19, 0), date(2026, 11, 23), id="post-market"),
        pytest.param(et(2026, 11, 27, 5, 0), date(2026, 11, 27), id="half-day-pre-market"),
    ],
)
def test_trading_day(cal: MarketCalendar, moment: datetime, day: date) -> None:
    assert cal.trading_day(moment) == day


def test_trading_day_leads_current_session_in_pre_market(cal: MarketCalendar) -> None:
    moment = et(2026, 11, 23, 8, 0)
    assert cal.current_session(moment) == date(2026, 11, 20)
    assert cal.trading_day(moment) == date(2026, 11, 23)


@pytest.mark.parametrize(
    ("moment", "hours", "expected"),
    [
        (et(2026, 11, 20, 3, 59, 59), ["pre"], False),
        (et(2026, 11, 20, 4, 0), ["pre"], True),
        (et(2026, 11, 20, 9, 29, 59), ["pre"], True),
        (et(2026, 11, 20, 9, 29, 59), ["regular"], False),
        (et(2026, 11, 20, 9, 30), ["pre"], False),
        (et(2026, 11, 20, 9, 30), ["pre", "regular"], True),
        (et(2026, 11, 20, 16, 0), ["regular"], False),
        (et(2026, 11, 20, 16, 0), ["post"], True),
        (et(2026, 11, 20, 19, 59, 59), ["post"], True),
        (et(2026, 11, 20, 20, 0), ["post"], False),
        (et(2026, 11, 20, 12, 0), ["pre", "post"], False),
        (et(2026, 11, 20, 12, 0), ("regular",), True),
    ],
)
def test_in_scope(cal: MarketCalendar, moment: datetime, hours: list[str], expected: bool) -> None:
    assert cal.in_scope(moment, hours) is expected


def test_windows_merge_adjacent_scopes(cal: MarketCalendar) -> None:
    hours = cal.hours(date(2026, 11, 20))
    assert hours.windows(["pre", "regular", "post"]) == [(hours.pre_start, hours.post_end)]
    assert hours.windows(["pre", "post"]) == [
        (hours.pre_start, hours.open),
        (hours.close, hours.post_end),
    ]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(et(2026, 11, 20, 8, 0), et(2026, 11, 20, 9, 30), id="before-open"),
        pytest.param(et(2026, 11, 20, 9, 30), et(2026, 11, 23, 9, 30), id="at-open-is-strict"),
        pytest.param(et(2026, 11, 20, 17, 0), et(2026, 11, 23, 9, 30), id="over-the-weekend"),
        pytest.param(et(2026, 11, 25, 17, 0), et(2026, 11, 27, 9, 30), id="over-thanksgiving"),
        pytest.param(et(2026, 3, 6, 17, 0), utc(2026, 3, 9, 13, 30), id="over-dst-start"),
    ],
)
def test_next_open(cal: MarketCalendar, moment: datetime, expected: datetime) -> None:
    assert cal.next_open(moment) == expected


def test_next_scope_start(cal: MarketCalendar) -> None:
    assert cal.next_scope_start(et(2026, 11, 20, 17, 0), ["pre"]) == et(2026, 11, 23, 4, 0)
    assert cal.next_scope_start(et(2026, 11, 20, 12, 0), ["post"]) == et(2026, 11, 20, 16, 0)


@pytest.mark.parametrize(
    ("moment", "interval", "slot"),
    [
        (et(2026, 11, 20, 10, 7, 59), 60, "1007"),
        (et(2026, 11, 20, 10, 7, 59), 300, "1005"),
        (et(2026, 11, 20, 10, 5, 0), 300, "1005"),
        (et(2026, 11, 20, 10, 4, 59), 300, "1000"),
        (et(2026, 11, 20, 10, 59, 0), 900, "1045"),
        (et(2026, 11, 20, 15, 59, 59), 3600, "1500"),
        (utc(2026, 11, 20, 15, 12, 30), 300, "1010"),  # converted to exchange time
    ],
)
def test_slot_floors_to_the_interval(
    cal: MarketCalendar, moment: datetime, interval: int, slot: str
) -> None:
    assert cal.slot(moment, interval) == slot


def test_slot_time_is_the_start_of_the_slot(cal: MarketCalendar) -> None:
    assert cal.slot_time(date(2026, 11, 20), "1005") == et(2026, 11, 20, 10, 5)


@pytest.mark.parametrize(
    ("start", "end", "hours", "seconds"),
    [
        pytest.param(
            et(2026, 11, 20, 15, 55), et(2026, 11, 23, 9, 35), ["regular"], 600, id="weekend"
        ),
        pytest.param(
            et(2026, 11, 25, 15, 0),
            et(2026, 11, 27, 10, 0),
            ["regular"],
            3600 + 1800,
            id="thanksgiving",
        ),
        pytest.param(
            et(2026, 11, 27, 12, 0),
            et(2026, 11, 30, 9, 31),
            ["regular"],
            3600 + 60,
            id="half-day-then-weekend",
        ),
        pytest.param(
            et(2026, 11, 20, 16, 0),
            et(2026, 11, 23, 4, 30),
            ["pre", "regular", "post"],
            4 * 3600 + 1800,
            id="post-and-pre",
        ),
        pytest.param(
            et(2026, 11, 20, 10, 0), et(2026, 11, 20, 11, 0), ["regular"], 3600, id="same-day"
        ),
        pytest.param(
            et(2026, 11, 21, 10, 0), et(2026, 11, 22, 11, 0), ["regular"], 0, id="all-weekend"
        ),
        pytest.param(
            et(2026, 11, 20, 11, 0), et(2026, 11, 20, 10, 0), ["regular"], 0, id="end-before-start"
        ),
    ],
)
def test_scope_seconds_between(
    cal: MarketCalendar, start: datetime, end: datetime, hours: list[str], seconds: float
) -> None:
    assert cal.scope_seconds_between(start, end, hours) == seconds


NAIVE = datetime(2026, 11, 20, 12, 0)  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.is_open(NAIVE), id="is_open"),
        pytest.param(lambda c: c.in_scope(NAIVE, ["regular"]), id="in_scope"),
        pytest.param(lambda c: c.current_session(NAIVE), id="current_session"),
        pytest.param(lambda c: c.trading_day(NAIVE), id="trading_day"),
        pytest.param(lambda c: c.next_open(NAIVE), id="next_open"),
        pytest.param(lambda c: c.slot(NAIVE, 60), id="slot"),
        pytest.param(
            lambda c: c.scope_seconds_between(NAIVE, utc(2026, 11, 21), ["regular"]),
            id="scope_seconds_between",
        ),
    ],
)
def test_naive_datetime_is_refused(cal: MarketCalendar, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="naive datetime"):
        call(cal)


FAR = utc(2100, 1, 4, 15, 0)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.is_open(FAR), id="is_open"),
        pytest.param(lambda c: c.current_session(FAR), id="current_session"),
        pytest.param(lambda c: c.trading_day(FAR), id="trading_day"),
        pytest.param(lambda c: c.next_open(FAR), id="next_open"),
        pytest.param(lambda c: c.is_session(FAR.date()), id="is_session"),
        pytest.param(lambda c: c.hours(FAR.date()), id="hours"),
        pytest.param(
            lambda c: c.scope_seconds_between(utc(2026, 11, 20), FAR, ["regular"]),
            id="scope_seconds_between",
        ),
    ],
)
def test_beyond_the_range_is_a_clear_error(cal: MarketCalendar, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CalendarRangeError) as caught:
        call(cal)
    message = str(caught.value)
    assert "2100-01-04" in message
    assert f"outside the XNYS calendar's range ({cal.first_session} to {cal.last_session})" in (
        message
    )


def test_next_open_after_the_last_session_is_a_range_error(cal: MarketCalendar) -> None:
    last_close = cal.hours(cal.last_session).close
    with pytest.raises(CalendarRangeError, match="the open after"):
        cal.next_open(last_close)


def test_range_covers_the_coming_year(cal: MarketCalendar) -> None:
    assert cal.first_session <= date(2026, 1, 2)
    assert cal.last_session >= date(2026, 12, 31)


# -- the cache ------------------------------------------------------------------


def test_cached_calendar_loads_without_exchange_calendars(calendar_cache: Path) -> None:
    code = (
        "import sys\n"
        "from datetime import datetime, timezone\n"
        "from pathlib import Path\n"
        "from orchestrator.market_calendar import calendar_exists, load_calendar\n"
        f"cal = load_calendar('XNYS', Path({str(calendar_cache)!r}))\n"
        "assert cal.is_open(datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc))\n"
        f"assert calendar_exists('XNYS', Path({str(calendar_cache)!r}))\n"
        "print('exchange_calendars' in sys.modules, 'pandas' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_cache_file_names_the_package_version(calendar_cache: Path) -> None:
    from importlib.metadata import version

    files = sorted(path.name for path in calendar_cache.glob("calendar-XNYS-*.json"))
    assert files == [f"calendar-XNYS-{version('exchange_calendars')}.json"]


def _full_payload(calendar_cache: Path) -> dict:
    (path,) = calendar_cache.glob("calendar-XNYS-*.json")
    return json.loads(path.read_text())


def test_stale_cache_is_rebuilt_once_on_a_range_miss(
    calendar_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = _full_payload(calendar_cache)
    cut = full["sessions"].index("2026-06-30") + 1
    old = {
        **full,
        "built_on": "2025-01-02",
        "sessions": full["sessions"][:cut],
        "opens": full["opens"][:cut],
        "closes": full["closes"][:cut],
    }
    cache_file = market_calendar._cache_path(tmp_path, "XNYS")
    cache_file.write_text(json.dumps(old))
    builds: list[str] = []

    def fake_build(name: str) -> dict:
        builds.append(name)
        return full

    monkeypatch.setattr(market_calendar, "_build_from_exchange_calendars", fake_build)
    cal = load_calendar("XNYS", tmp_path)
    assert cal.is_open(et(2026, 6, 30, 10, 0)) is True
    assert builds == []  # in range: no rebuild
    assert cal.is_open(et(2026, 11, 20, 10, 0)) is True
    assert builds == ["XNYS"]
    assert json.loads(cache_file.read_text())["sessions"][-1] == full["sessions"][-1]
    with pytest.raises(CalendarRangeError):
        cal.is_open(FAR)
    assert builds == ["XNYS"]  # only once


def test_unreadable_cache_is_rebuilt(
    calendar_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = _full_payload(calendar_cache)
    market_calendar._cache_path(tmp_path, "XNYS").write_text('{"format": 1, "sess')
    monkeypatch.setattr(market_calendar, "_build_from_exchange_calendars", lambda name: full)
    assert load_calendar("XNYS", tmp_path).is_session(date(2026, 11, 20))
    assert json.loads(market_calendar._cache_path(tmp_path, "XNYS").read_text()) == full


def test_calendar_exists(calendar_cache: Path, tmp_path: Path) -> None:
    assert calendar_exists("XNYS", calendar_cache)
    assert calendar_exists("XNYS", tmp_path)  # no cache: asks the package
    assert calendar_exists("NYSE", tmp_path)  # an alias
    assert not calendar_exists("XMARS", tmp_path)


@pytest.mark.parametrize(
    ("local_time", "interval", "due"),
    [
        ("09:29:59", 60, False),
        ("09:30:00", 60, True),
        ("15:59:59", 60, True),
        ("16:00:00", 60, True),  # the closing slot: the 15:59 bar is complete now
        ("16:00:59", 60, True),
        ("16:01:00", 60, False),
        ("16:04:59", 300, True),  # a 5-minute task's closing slot lasts 5 minutes
        ("16:05:00", 300, False),
    ],
)
def test_a_slot_is_due_in_scope_and_in_the_closing_slot(
    cal: MarketCalendar, local_time: str, interval: int, due: bool
) -> None:
    now = datetime.fromisoformat(f"2026-11-24T{local_time}").replace(tzinfo=ET)
    assert cal.slot_is_due(now, ("regular",), interval) is due
