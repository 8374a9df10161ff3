"""Freshness: the pure status function, on a hand-made calendar and the real XNYS one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator.config import Freshness
from orchestrator.errors import CalendarRangeError
from orchestrator.freshness import (
    GREEN,
    RED,
    UNKNOWN,
    YELLOW,
    classify,
    freshness_status,
    human_age,
)
from orchestrator.market_calendar import MarketCalendar, load_calendar

ET = ZoneInfo("America/New_York")
REGULAR = ("regular",)
PRICE_DATA = Freshness(green=300, yellow=900, clock="market")  # 5m / 15m
PRICES_DAILY = Freshness(green=86400, yellow=172800, clock="market")  # 24h / 48h
WALL = Freshness(green=3600, yellow=7200)  # 1h / 2h


def et(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ET)


def november_2026() -> MarketCalendar:
    """XNYS from 2026-11-16 to 2026-12-04, by hand: Thanksgiving closed, the 27th a half day."""
    sessions, opens, closes = [], [], []
    day = date(2026, 11, 16)
    while day <= date(2026, 12, 4):
        if day.weekday() < 5 and day != date(2026, 11, 26):
            close_hour = 13 if day == date(2026, 11, 27) else 16
            sessions.append(day)
            opens.append(datetime(day.year, day.month, day.day, 9, 30, tzinfo=ET).timestamp())
            closes.append(datetime(day.year, day.month, day.day, close_hour, tzinfo=ET).timestamp())
        day += timedelta(days=1)
    return MarketCalendar("XNYS", "America/New_York", sessions, opens, closes)


@pytest.fixture()
def calendar() -> MarketCalendar:
    return november_2026()


@pytest.fixture(scope="module")
def xnys(calendar_cache: Path) -> MarketCalendar:
    return load_calendar("XNYS", calendar_cache)


# -- human_age and thresholds -------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-5, "0s"),
        (45, "45s"),
        (45.9, "45s"),
        (60, "1m"),
        (12 * 60 + 59, "12m"),
        (3600, "1h"),
        (3 * 3600 + 5 * 60, "3h 5m"),
        (86400, "1d"),
        (2 * 86400 + 5 * 3600 + 59 * 60, "2d 5h"),
        (400 * 86400, "400d"),
    ],
)
def test_human_age(seconds: float, text: str) -> None:
    assert human_age(seconds) == text


@pytest.mark.parametrize(
    ("age", "status"),
    [(0, GREEN), (3599.9, GREEN), (3600, YELLOW), (7200, YELLOW), (7200.1, RED), (1e9, RED)],
)
def test_classify_boundaries(age: float, status: str) -> None:
    assert classify(age, WALL) == status


# -- wall clock ------------------------------------------------------------------------


def test_wall_clock_ages_with_the_wall_clock(calendar: MarketCalendar) -> None:
    now = et(2026, 11, 30, 10)
    result = freshness_status(WALL, now - timedelta(minutes=30), now, calendar, REGULAR)
    assert (result.status, result.age_seconds) == (GREEN, 1800)
    assert result.message == "updated 30m ago"


@pytest.mark.parametrize(
    ("age", "status"), [(3599, GREEN), (3600, YELLOW), (7200, YELLOW), (7201, RED)]
)
def test_wall_clock_boundaries(calendar: MarketCalendar, age: int, status: str) -> None:
    now = et(2026, 11, 30, 10)
    result = freshness_status(WALL, now - timedelta(seconds=age), now, calendar, REGULAR)
    assert result.status == status


def test_wall_clock_ignores_weekends(calendar: MarketCalendar) -> None:
    result = freshness_status(
        PRICES_DAILY.__class__(green=86400, yellow=172800),  # same thresholds, wall clock
        et(2026, 11, 20, 16),
        et(2026, 11, 23, 10),
        calendar,
        REGULAR,
    )
    assert result.status == RED
    assert result.message == "updated 2d 18h ago"


def test_no_data_is_unknown(calendar: MarketCalendar) -> None:
    result = freshness_status(PRICE_DATA, None, et(2026, 11, 30, 10), calendar, REGULAR)
    assert (result.status, result.age_seconds, result.message) == (UNKNOWN, None, "no data yet")


def test_data_from_the_future_is_fresh(calendar: MarketCalendar) -> None:
    now = et(2026, 11, 30, 10)
    for freshness in (WALL, PRICE_DATA):
        result = freshness_status(freshness, now + timedelta(minutes=1), now, calendar, REGULAR)
        assert (result.status, result.age_seconds) == (GREEN, 0.0)


def test_naive_datetimes_are_refused(calendar: MarketCalendar) -> None:
    naive = datetime(2026, 11, 30, 10)  # noqa: DTZ001 - on purpose
    with pytest.raises(ValueError, match="naive"):
        freshness_status(WALL, naive, et(2026, 11, 30, 10), calendar, REGULAR)
    with pytest.raises(ValueError, match="naive"):
        freshness_status(WALL, et(2026, 11, 30, 10), naive, calendar, REGULAR)


# -- market clock ------------------------------------------------------------------------


def test_friday_close_is_green_all_weekend(calendar: MarketCalendar) -> None:
    friday_bar = et(2026, 11, 20, 15, 59)
    for now in (et(2026, 11, 20, 18), et(2026, 11, 21, 12), et(2026, 11, 23, 9, 29)):
        result = freshness_status(PRICE_DATA, friday_bar, now, calendar, REGULAR)
        assert (result.status, result.age_seconds) == (GREEN, 60)
    saturday = freshness_status(PRICE_DATA, friday_bar, et(2026, 11, 21, 12), calendar, REGULAR)
    assert saturday.message == "data as of Fri 15:59 ET, 1m of market time"


@pytest.mark.parametrize(
    ("minute", "status", "age"),
    [(33, GREEN, 240), (34, YELLOW, 300), (44, YELLOW, 900), (45, RED, 960)],
)
def test_after_monday_open_it_ages_normally(
    calendar: MarketCalendar, minute: int, status: str, age: int
) -> None:
    result = freshness_status(
        PRICE_DATA, et(2026, 11, 20, 15, 59), et(2026, 11, 23, 9, minute), calendar, REGULAR
    )
    assert (result.status, result.age_seconds) == (status, age)


def test_thanksgiving_does_not_age(calendar: MarketCalendar) -> None:
    wednesday_bar = et(2026, 11, 25, 15, 59)
    result = freshness_status(PRICE_DATA, wednesday_bar, et(2026, 11, 26, 12), calendar, REGULAR)
    assert (result.status, result.age_seconds) == (GREEN, 60)
    assert result.message == "data as of Wed 15:59 ET, 1m of market time"


def test_half_day_stops_ageing_at_the_early_close(calendar: MarketCalendar) -> None:
    # 2026-11-27 closes at 13:00 ET: a 12:59 bar is a minute old all afternoon.
    last_bar = et(2026, 11, 27, 12, 59)
    result = freshness_status(PRICE_DATA, last_bar, et(2026, 11, 27, 15), calendar, REGULAR)
    assert (result.status, result.age_seconds) == (GREEN, 60)
    assert result.message == "data as of 12:59 ET, 1m of market time"
    # A bar from 12:55 is exactly five minutes old at the close: yellow from then on.
    early = freshness_status(
        PRICE_DATA, et(2026, 11, 27, 12, 55), et(2026, 11, 28, 12), calendar, REGULAR
    )
    assert (early.status, early.age_seconds) == (YELLOW, 300)


def test_half_day_morning_ages_during_the_session(calendar: MarketCalendar) -> None:
    result = freshness_status(
        PRICE_DATA, et(2026, 11, 27, 12), et(2026, 11, 27, 12, 30), calendar, REGULAR
    )
    assert (result.status, result.age_seconds) == (RED, 1800)
    assert result.message == "data as of 12:00 ET"  # market age equals wall age: not repeated


def test_daily_market_source_stays_green_over_the_weekend(calendar: MarketCalendar) -> None:
    # Friday's daily prices, Monday 10:00: 30 minutes of regular hours, green (a
    # wall clock would say 2d 18h, red).
    result = freshness_status(
        PRICES_DAILY, et(2026, 11, 20, 16), et(2026, 11, 23, 10), calendar, REGULAR
    )
    assert (result.status, result.age_seconds) == (GREEN, 1800)


def test_daily_market_thresholds_count_session_hours(calendar: MarketCalendar) -> None:
    # 24h of market time on regular hours is about 3.7 sessions (6.5h each).
    data = et(2026, 11, 16, 16)
    three = freshness_status(PRICES_DAILY, data, et(2026, 11, 19, 16), calendar, REGULAR)
    assert (three.status, three.age_seconds) == (GREEN, 3 * 6.5 * 3600)
    seven = freshness_status(PRICES_DAILY, data, et(2026, 11, 25, 16), calendar, REGULAR)
    assert (seven.status, seven.age_seconds) == (YELLOW, 7 * 6.5 * 3600)
    # Thanksgiving adds nothing, the half day 3.5h: 49h at Friday's 13:00 close.
    half = freshness_status(PRICES_DAILY, data, et(2026, 11, 27, 15), calendar, REGULAR)
    assert (half.status, half.age_seconds) == (RED, 49 * 3600)


def test_extended_hours_count_for_extended_sources(calendar: MarketCalendar) -> None:
    everything = ("pre", "regular", "post")
    friday_post = et(2026, 11, 20, 19, 59)
    saturday = et(2026, 11, 21, 12)
    result = freshness_status(PRICE_DATA, friday_post, saturday, calendar, everything)
    assert (result.status, result.age_seconds) == (GREEN, 60)
    # The same bar judged on regular hours only has no market age at all.
    assert freshness_status(PRICE_DATA, friday_post, saturday, calendar, REGULAR).age_seconds == 0
    monday_pre = freshness_status(PRICE_DATA, friday_post, et(2026, 11, 23, 4, 10), calendar,
                                  everything)  # fmt: skip
    assert (monday_pre.status, monday_pre.age_seconds) == (YELLOW, 660)


def test_old_data_is_dated_in_full(calendar: MarketCalendar) -> None:
    result = freshness_status(
        PRICE_DATA, et(2026, 11, 16, 10), et(2026, 11, 30, 10), calendar, REGULAR
    )
    assert result.status == RED
    assert result.message.startswith("data as of 2026-11-16 10:00 ET, ")


def test_data_before_the_calendar_is_red_by_wall_age(calendar: MarketCalendar) -> None:
    result = freshness_status(
        PRICE_DATA, et(2026, 10, 1, 10), et(2026, 11, 30, 10), calendar, REGULAR
    )
    assert result.status == RED
    assert result.age_seconds == (et(2026, 11, 30, 10) - et(2026, 10, 1, 10)).total_seconds()
    assert "before the calendar's range" in result.message


def test_now_outside_the_calendar_is_an_error(calendar: MarketCalendar) -> None:
    with pytest.raises(CalendarRangeError, match="outside the XNYS calendar's range"):
        freshness_status(PRICE_DATA, et(2026, 12, 3, 10), et(2027, 1, 10, 10), calendar, REGULAR)


def test_utc_inputs_give_the_same_answer(calendar: MarketCalendar) -> None:
    bar, now = et(2026, 11, 20, 15, 59), et(2026, 11, 23, 9, 40)
    local = freshness_status(PRICE_DATA, bar, now, calendar, REGULAR)
    utc = freshness_status(PRICE_DATA, bar.astimezone(UTC), now.astimezone(UTC), calendar, REGULAR)
    assert local == utc


# -- the real exchange calendar agrees ------------------------------------------------------


@pytest.mark.parametrize(
    ("data_time", "now"),
    [
        (et(2026, 11, 20, 15, 59), et(2026, 11, 21, 12)),  # weekend
        (et(2026, 11, 25, 15, 59), et(2026, 11, 26, 12)),  # Thanksgiving
        (et(2026, 11, 27, 12, 59), et(2026, 11, 27, 15)),  # half day
        (et(2026, 11, 27, 12, 55), et(2026, 11, 30, 9, 45)),  # half day, then Monday's open
    ],
)
def test_real_calendar_agrees(xnys: MarketCalendar, data_time: datetime, now: datetime) -> None:
    expected = freshness_status(PRICE_DATA, data_time, now, november_2026(), REGULAR)
    assert freshness_status(PRICE_DATA, data_time, now, xnys, REGULAR) == expected
