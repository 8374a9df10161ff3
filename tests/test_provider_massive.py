"""The Massive provider against a local HTTP server serving documented response formats.

Fixtures under ``tests/fixtures/massive/`` are small responses in the shapes
the Massive (formerly Polygon.io) docs give, with made-up request ids and no
keys. Every request goes to ``pytest-httpserver`` on loopback; the sleeper
records waits instead of sleeping; the rate limiter's SQLite file lives in
``tmp_path``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from collectors.market_store import epoch, validate
from collectors.providers import get_provider
from collectors.providers.base import Provider
from collectors.providers.massive import MassiveProvider
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

FIXTURES = Path(__file__).parent / "fixtures" / "massive"
KEY = "massive-test-key-7f3a9c"
AGGREGATES_QUERY = {"adjusted": "false", "sort": "asc", "limit": "50000"}

MakeProvider = Callable[..., MassiveProvider]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ts(text: str) -> int:
    return epoch(utc(text))


def paths(httpserver: HTTPServer) -> list[str]:
    return [request.path for request, _ in httpserver.log]


def no_rejects(table: str, frame: pd.DataFrame, as_of: datetime, **checks: Any) -> None:
    good, rejects = validate(table, frame, as_of_ts=epoch(as_of), **checks)
    assert rejects.empty, rejects.to_dict(orient="records")
    assert len(good) == len(frame)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.setenv("MASSIVE_API_KEY", KEY)
    return KEY


@pytest.fixture
def settings(httpserver: HTTPServer, tmp_path: Path) -> dict[str, Any]:
    return {
        "base_url": httpserver.url_for("/"),
        "symbols": ["AAPL"],
        "limits_db": str(tmp_path / "rate_limits.db"),
        # High enough that the shared limiter never waits (it would really sleep).
        "rate_per_minute": 6000,
    }


@pytest.fixture
def make_provider(
    settings: dict[str, Any], calendar: MarketCalendar, key: str, sleeps: list[float]
) -> MakeProvider:
    def make(**overrides: Any) -> MassiveProvider:
        return MassiveProvider.from_settings(
            {**settings, **overrides}, calendar, sleeper=sleeps.append
        )

    return make


def serve_aapl_march(httpserver: HTTPServer) -> None:
    """AAPL day bars 2024-03-07..12 in two pages; no splits or dividends."""
    httpserver.expect_request(
        "/v2/aggs/ticker/AAPL/range/1/day/2024-03-07/2024-03-12", query_string=AGGREGATES_QUERY
    ).respond_with_json(fixture("aggs_day_AAPL_page1.json"))
    # next_url names https://api.massive.com; the provider must come here instead.
    httpserver.expect_request(
        "/v2/aggs/ticker/AAPL/range/1/day/1710129600000/2024-03-12",
        query_string={"cursor": "bGltaXQ9MiZzb3J0PWFzYw"},
    ).respond_with_json(fixture("aggs_day_AAPL_page2.json"))
    for path, field in (
        ("/v3/reference/splits", "execution_date"),
        ("/v3/reference/dividends", "ex_dividend_date"),
    ):
        httpserver.expect_request(
            path,
            query_string={
                "ticker": "AAPL",
                f"{field}.gte": "2024-03-07",
                f"{field}.lte": "2024-03-12",
                "limit": "1000",
            },
        ).respond_with_json(fixture("empty_reference.json"))


MARCH_SESSIONS = [date(2024, 3, 7), date(2024, 3, 8), date(2024, 3, 11), date(2024, 3, 12)]


# -- construction and keys ---------------------------------------------------------


def test_the_registry_builds_a_massive_provider_that_is_a_provider(
    settings: dict[str, Any], calendar: MarketCalendar, key: str
) -> None:
    provider = get_provider({**settings, "name": "massive"}, calendar)
    assert isinstance(provider, MassiveProvider)
    assert isinstance(provider, Provider)
    assert provider.name == "massive"
    assert provider.delay_seconds == 15 * 60  # Starter plans: 15 minutes delayed


def test_a_missing_key_is_a_permanent_error_naming_massive_api_key(
    settings: dict[str, Any], calendar: MarketCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    with pytest.raises(PermanentError, match="MASSIVE_API_KEY"):
        MassiveProvider.from_settings(settings, calendar)


def test_polygon_api_key_is_accepted_as_the_key(
    httpserver: HTTPServer,
    settings: dict[str, Any],
    calendar: MarketCalendar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
    monkeypatch.setenv("POLYGON_API_KEY", "polygon-era-key-1234")
    httpserver.expect_request("/v1/marketstatus/now").respond_with_json(
        fixture("marketstatus_now.json")
    )
    provider = MassiveProvider.from_settings(settings, calendar, sleeper=[].append)
    assert provider.check() == "massive: key accepted (market open)"
    ((request, _),) = httpserver.log
    assert request.headers["Authorization"] == "Bearer polygon-era-key-1234"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"history": "weekly"}, "provider.history"),
        ({"limits_db": ""}, "provider.limits_db"),
        ({"rate_per_minute": 0}, "provider.rate_per_minute"),
        ({"delay_minutes": -1}, "provider.delay_minutes"),
        ({"symbols": "AAPL"}, "provider.symbols"),
    ],
)
def test_bad_settings_are_permanent_errors_naming_the_setting(
    make_provider: MakeProvider, overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(PermanentError, match=problem):
        make_provider(**overrides)


def test_the_key_travels_in_the_authorization_header_and_in_no_url(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    serve_aapl_march(httpserver)
    make_provider().daily_bars(["AAPL"], MARCH_SESSIONS)
    assert len(httpserver.log) == 4  # two pages of bars, splits, dividends
    for request, response in httpserver.log:
        assert response.status_code == 200
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        assert KEY not in request.url
        assert "apikey" not in request.url.lower()


# -- errors and retries -------------------------------------------------------------


def test_a_429_with_retry_after_is_waited_out_then_succeeds(
    httpserver: HTTPServer, make_provider: MakeProvider, sleeps: list[float]
) -> None:
    httpserver.expect_oneshot_request("/v1/marketstatus/now").respond_with_json(
        fixture("rate_limited.json"), status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_request("/v1/marketstatus/now").respond_with_json(
        fixture("marketstatus_now.json")
    )
    assert make_provider().check() == "massive: key accepted (market open)"
    assert [response.status_code for _, response in httpserver.log] == [429, 200]
    # The retry waits the server's 7 s (longer than the first backoff), then the
    # limiter's pause for every process: what is left of the same 7 s.
    assert sleeps[0] == 7.0
    assert len(sleeps) == 2 and 6.0 < sleeps[1] <= 7.0


def test_a_503_is_retried_after_a_backoff_then_succeeds(
    httpserver: HTTPServer, make_provider: MakeProvider, sleeps: list[float]
) -> None:
    httpserver.expect_oneshot_request("/v1/marketstatus/now").respond_with_json(
        {"status": "ERROR", "error": "service unavailable"}, status=503
    )
    httpserver.expect_request("/v1/marketstatus/now").respond_with_json(
        fixture("marketstatus_now.json")
    )
    assert make_provider().check() == "massive: key accepted (market open)"
    assert [response.status_code for _, response in httpserver.log] == [503, 200]
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 2.0  # first backoff: 1 s plus jitter


def test_a_401_is_a_permanent_error_naming_massive_api_key_without_retrying(
    httpserver: HTTPServer, make_provider: MakeProvider, sleeps: list[float]
) -> None:
    httpserver.expect_request("/v1/marketstatus/now").respond_with_json(
        fixture("unknown_api_key.json"), status=401
    )
    with pytest.raises(PermanentError, match="MASSIVE_API_KEY") as raised:
        make_provider().check()
    assert "Unknown API Key" in str(raised.value)
    assert KEY not in str(raised.value)
    assert len(httpserver.log) == 1
    assert sleeps == []


# -- universe -----------------------------------------------------------------------


def test_universe_serves_known_tickers_and_records_an_unknown_one(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    as_of = utc("2024-07-01T13:00:00")
    for symbol in ("AAPL", "MSFT", "SPY"):
        httpserver.expect_request(
            f"/v3/reference/tickers/{symbol}", query_string={"date": "2024-07-01"}
        ).respond_with_json(fixture(f"ticker_{symbol}.json"))
    httpserver.expect_request(
        "/v3/reference/tickers/NOPE", query_string={"date": "2024-07-01"}
    ).respond_with_json(fixture("not_found.json"), status=404)
    provider = make_provider(symbols=["AAPL", "NOPE", "MSFT", "SPY"])
    frame = provider.universe(as_of)
    assert frame.to_dict(orient="records") == [
        {
            "symbol": "AAPL",
            "name": "Apple Inc.",
            "sector": "ELECTRONIC COMPUTERS",
            "industry": "Unknown",
            "exchange": "XNAS",
            "available_ts": epoch(as_of),
        },
        {
            "symbol": "MSFT",
            "name": "Microsoft Corp",
            "sector": "SERVICES-PREPACKAGED SOFTWARE",
            "industry": "Unknown",
            "exchange": "XNAS",
            "available_ts": epoch(as_of),
        },
        {
            "symbol": "SPY",
            "name": "SPDR S&P 500 ETF Trust",
            "sector": "Unknown",
            "industry": "Unknown",
            "exchange": "ARCX",
            "available_ts": epoch(as_of),
        },
    ]
    assert provider.symbol_errors == {"NOPE": "massive does not know NOPE"}
    no_rejects("assets", frame.assign(confirmed_ts=epoch(as_of)), as_of)


def test_symbol_errors_are_reset_by_every_call(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    httpserver.expect_request("/v3/reference/tickers/NOPE").respond_with_json(
        fixture("not_found.json"), status=404
    )
    provider = make_provider(symbols=["NOPE"])
    assert provider.universe(utc("2024-07-01T13:00:00")).empty
    assert provider.symbol_errors == {"NOPE": "massive does not know NOPE"}
    # Before the open nothing can be asked for, and the old error is gone.
    frame = provider.intraday_bars(
        ["NOPE"], date(2024, 7, 1), utc("2024-07-01T12:00:00"), utc("2024-07-01T13:00:00")
    )
    assert frame.empty
    assert provider.symbol_errors == {}
    assert len(httpserver.log) == 1


# -- daily bars -----------------------------------------------------------------------


def test_next_url_pagination_follows_the_second_page_on_the_local_server(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    serve_aapl_march(httpserver)
    frame = make_provider().daily_bars(["AAPL"], MARCH_SESSIONS)
    assert "/v2/aggs/ticker/AAPL/range/1/day/1710129600000/2024-03-12" in paths(httpserver)
    assert frame["close"].tolist() == [169.0, 170.73, 172.75, 173.23]  # both pages' bars


def test_many_sessions_of_one_symbol_take_one_per_ticker_request(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    serve_aapl_march(httpserver)
    frame = make_provider().daily_bars(["AAPL"], MARCH_SESSIONS)
    requested = paths(httpserver)
    assert not [path for path in requested if path.startswith("/v2/aggs/grouped/")]
    bar_requests = [path for path in requested if path.startswith("/v2/aggs/ticker/")]
    assert bar_requests == [
        "/v2/aggs/ticker/AAPL/range/1/day/2024-03-07/2024-03-12",
        "/v2/aggs/ticker/AAPL/range/1/day/1710129600000/2024-03-12",  # its second page
    ]
    assert len(frame) == 4


def test_day_bars_stamped_midnight_new_york_land_on_their_session(
    httpserver: HTTPServer, make_provider: MakeProvider, calendar: MarketCalendar
) -> None:
    serve_aapl_march(httpserver)
    stamps = [
        bar["t"]
        for page in ("aggs_day_AAPL_page1.json", "aggs_day_AAPL_page2.json")
        for bar in fixture(page)["results"]
    ]
    # The fixture straddles the DST change: 05:00Z in winter, 04:00Z in summer.
    assert [datetime.fromtimestamp(t / 1000, UTC).hour for t in stamps] == [5, 5, 4, 4]
    frame = make_provider().daily_bars(["AAPL"], MARCH_SESSIONS)
    assert frame["session"].tolist() == ["2024-03-07", "2024-03-08", "2024-03-11", "2024-03-12"]
    assert frame["open"].tolist() == [169.15, 169.0, 172.94, 173.15]
    assert frame["available_ts"].tolist() == [
        ts("2024-03-07T21:00:00"),  # 16:00 EST
        ts("2024-03-08T21:00:00"),
        ts("2024-03-11T20:00:00"),  # 16:00 EDT
        ts("2024-03-12T20:00:00"),
    ]
    assert frame["available_ts"].tolist() == [
        epoch(calendar.hours(day).close) for day in MARCH_SESSIONS
    ]
    no_rejects(
        "prices_daily",
        frame,
        utc("2024-03-13T00:00:00"),
        known_symbols=["AAPL"],
        sessions=[day.isoformat() for day in MARCH_SESSIONS],
    )


def test_only_requested_sessions_are_kept(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    serve_aapl_march(httpserver)
    # The range still spans 03-07..03-12, but 03-08 and 03-11 were not asked for.
    frame = make_provider().daily_bars(["AAPL"], [date(2024, 3, 12), date(2024, 3, 7)])
    assert frame["session"].tolist() == ["2024-03-07", "2024-03-12"]


def test_one_session_of_many_symbols_takes_one_grouped_request(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    httpserver.expect_request(
        "/v2/aggs/grouped/locale/us/market/stocks/2024-07-01", query_string={"adjusted": "false"}
    ).respond_with_json(fixture("grouped_2024-07-01.json"))
    for path, field in (
        ("/v3/reference/splits", "execution_date"),
        ("/v3/reference/dividends", "ex_dividend_date"),
    ):
        # No ticker.any_of on these endpoints: one listing of the symbols' ticker range.
        httpserver.expect_request(
            path,
            query_string={
                "ticker.gte": "AAPL",
                "ticker.lte": "NVDA",
                f"{field}.gte": "2024-07-01",
                f"{field}.lte": "2024-07-01",
                "limit": "1000",
            },
        ).respond_with_json(fixture("empty_reference.json"))
    provider = make_provider()
    frame = provider.daily_bars(["NVDA", "AAPL", "MSFT", "GONE"], [date(2024, 7, 1)])
    requested = paths(httpserver)
    assert requested == [
        "/v2/aggs/grouped/locale/us/market/stocks/2024-07-01",
        "/v3/reference/splits",
        "/v3/reference/dividends",
    ]
    assert frame["symbol"].tolist() == ["AAPL", "MSFT", "NVDA"]  # not KIMpL, SPY: not asked for
    assert set(frame["session"]) == {"2024-07-01"}
    assert frame["open"].tolist() == [212.09, 448.66, 123.47]
    assert frame["close"].tolist() == [216.75, 456.73, 124.30]
    assert frame["volume"].tolist() == [60402929.0, 17662810.0, 284993500.0]
    assert set(frame["available_ts"]) == {ts("2024-07-01T20:00:00")}
    assert set(frame["split_ratio"]) == {1.0} and set(frame["dividend"]) == {0.0}
    assert list(provider.symbol_errors) == ["GONE"]
    assert "GONE" in provider.symbol_errors["GONE"]


def test_a_split_day_is_raw_with_its_ratio_and_a_dividend_on_its_ex_date(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    httpserver.expect_request(
        "/v2/aggs/ticker/NVDA/range/1/day/2024-06-06/2024-06-11", query_string=AGGREGATES_QUERY
    ).respond_with_json(fixture("aggs_day_NVDA.json"))
    for path, field, name in (
        ("/v3/reference/splits", "execution_date", "splits_NVDA.json"),
        ("/v3/reference/dividends", "ex_dividend_date", "dividends_NVDA.json"),
    ):
        httpserver.expect_request(
            path,
            query_string={
                "ticker": "NVDA",
                f"{field}.gte": "2024-06-06",
                f"{field}.lte": "2024-06-11",
                "limit": "1000",
            },
        ).respond_with_json(fixture(name))
    sessions = [date(2024, 6, 6), date(2024, 6, 7), date(2024, 6, 10), date(2024, 6, 11)]
    frame = make_provider().daily_bars(["NVDA"], sessions)
    assert frame["session"].tolist() == ["2024-06-06", "2024-06-07", "2024-06-10", "2024-06-11"]
    # Raw prices: the ten-fold drop is the split, not a crash.
    assert frame["close"].tolist() == [1209.98, 1208.88, 121.79, 120.91]
    assert frame["split_ratio"].tolist() == [1.0, 1.0, 10.0, 1.0]
    assert frame["dividend"].tolist() == [0.0, 0.0, 0.0, 0.01]
    no_rejects("prices_daily", frame, utc("2024-06-12T00:00:00"), known_symbols=["NVDA"])


def test_daily_bars_refuse_non_sessions(make_provider: MakeProvider) -> None:
    with pytest.raises(PermanentError, match="non-sessions"):
        make_provider().daily_bars(["AAPL"], [date(2024, 7, 4)])  # Independence Day


# -- intraday bars ---------------------------------------------------------------------


def test_minute_bars_outside_regular_hours_are_dropped_and_gaps_not_filled(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    as_of = utc("2024-07-01T21:00:00")
    # From the open (later than since) to the last bar before the close (earlier
    # than as_of minus the delay).
    path = "/v2/aggs/ticker/AAPL/range/1/minute/1719840600000/1719863940000"
    httpserver.expect_request(path, query_string=AGGREGATES_QUERY).respond_with_json(
        fixture("aggs_minute_AAPL_2024-07-01.json")
    )
    frame = make_provider().intraday_bars(
        ["AAPL"], date(2024, 7, 1), utc("2024-07-01T13:00:00"), as_of
    )
    assert paths(httpserver) == [path]
    starts = ["13:30", "13:31", "13:33", "19:59"]  # no 13:28/29 (pre), 20:00/01 (post), 13:32
    assert frame["bar_ts"].tolist() == [ts(f"2024-07-01T{start}:00") for start in starts]
    assert frame["close"].tolist() == [212.45, 212.72, 212.98, 216.75]
    assert (frame["available_ts"] == frame["bar_ts"] + 60 + 15 * 60).all()
    assert set(frame["session"]) == {"2024-07-01"}
    no_rejects(
        "intraday_bars",
        frame,
        as_of,
        session_bounds=(ts("2024-07-01T13:30:00"), ts("2024-07-01T20:00:00")),
    )


def test_minute_bars_wait_for_the_plans_delay(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    as_of = utc("2024-07-01T13:50:00")  # minus 15 minutes: bars ended by 13:35
    path = "/v2/aggs/ticker/AAPL/range/1/minute/1719840600000/1719840840000"  # 13:30..13:34
    httpserver.expect_request(path, query_string=AGGREGATES_QUERY).respond_with_json(
        fixture("aggs_minute_AAPL_2024-07-01.json")  # more than asked for: filtered anyway
    )
    frame = make_provider().intraday_bars(
        ["AAPL"], date(2024, 7, 1), utc("2024-07-01T13:30:00"), as_of
    )
    assert paths(httpserver) == [path]
    assert frame["bar_ts"].tolist() == [
        ts("2024-07-01T13:30:00"),
        ts("2024-07-01T13:31:00"),
        ts("2024-07-01T13:33:00"),
    ]
    assert frame["available_ts"].max() <= epoch(as_of)


# -- news ------------------------------------------------------------------------------


def test_news_has_one_row_per_article_and_symbol_and_nothing_after_as_of(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    as_of = utc("2024-07-01T21:00:00")
    window = {
        "published_utc.gte": "2024-06-28T00:00:00Z",
        "published_utc.lte": "2024-07-01T21:00:00Z",
        "order": "asc",
        "sort": "published_utc",
        "limit": "1000",
    }
    httpserver.expect_request(
        "/v2/reference/news", query_string={"ticker": "AAPL", **window}
    ).respond_with_json(fixture("news_AAPL_page1.json"))
    httpserver.expect_request(
        "/v2/reference/news",
        query_string={"cursor": "YXA9MjAyNC0wNy0wMVQxNSUzQTAyJTNBNDBaJmFzPWExYjJj"},
    ).respond_with_json(fixture("news_AAPL_page2.json"))
    shared_article = fixture("news_AAPL_page1.json")["results"][1]  # names AAPL and MSFT
    httpserver.expect_request(
        "/v2/reference/news", query_string={"ticker": "MSFT", **window}
    ).respond_with_json({"results": [shared_article], "status": "OK", "count": 1})
    frame = make_provider().news(["AAPL", "MSFT"], date(2024, 6, 28), as_of)
    assert len(httpserver.log) == 3
    shared = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
    rows = {row["article_id"]: row for row in frame.to_dict(orient="records")}
    assert sorted(rows) == sorted(
        [
            "massive:5d7c4f3a2e1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d:AAPL",
            f"massive:{shared}:AAPL",
            f"massive:{shared}:MSFT",
            "massive:f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f:AAPL",
        ]
    )  # not the 21:05Z article of page 2: published after as_of
    assert rows[f"massive:{shared}:MSFT"] == {
        "article_id": f"massive:{shared}:MSFT",
        "symbol": "MSFT",
        "headline": "Apple vs. Microsoft: Which Megacap Is the Better Buy for July?",
        "source": "The Motley Fool",
        "available_ts": ts("2024-07-01T15:02:40"),
        "updated_ts": None,  # Massive does not say when an article was edited
    }
    assert frame["available_ts"].max() == ts("2024-07-01T20:50:00")
    no_rejects("news", frame, as_of, known_symbols=["AAPL", "MSFT"])


# -- backfills -------------------------------------------------------------------------


def test_a_backfill_never_asks_for_data_after_its_as_of(
    httpserver: HTTPServer, make_provider: MakeProvider
) -> None:
    as_of = utc("2024-07-01T14:00:00")  # a past morning, replayed
    httpserver.expect_request("/v3/reference/tickers/AAPL").respond_with_json(
        fixture("ticker_AAPL.json")
    )
    httpserver.expect_request(
        re.compile(r"^/v2/aggs/ticker/AAPL/range/1/minute/")
    ).respond_with_json(fixture("aggs_minute_AAPL_2024-07-01.json"))
    httpserver.expect_request(re.compile(r"^/v2/aggs/ticker/AAPL/range/1/day/")).respond_with_json(
        {"ticker": "AAPL", "results": [], "status": "OK", "resultsCount": 0}
    )
    httpserver.expect_request(re.compile(r"^/v3/reference/")).respond_with_json(
        fixture("empty_reference.json")
    )
    news_page = fixture("news_AAPL_page1.json")
    del news_page["next_url"]
    httpserver.expect_request("/v2/reference/news").respond_with_json(news_page)

    provider = make_provider()
    frames = [
        provider.universe(as_of),
        provider.daily_bars(["AAPL"], [date(2024, 6, 27), date(2024, 6, 28)]),
        provider.intraday_bars(["AAPL"], date(2024, 7, 1), utc("2024-07-01T13:30:00"), as_of),
        provider.news(["AAPL"], date(2024, 6, 28), as_of),
    ]
    for frame in frames:
        assert (frame["available_ts"] <= epoch(as_of)).all()
    assert len(frames[2]) == 3  # 13:30, 13:31, 13:33: ended by 13:45

    cutoff_ms = (epoch(as_of) - 15 * 60) * 1000
    checked = 0
    for request, _ in httpserver.log:
        query = {name: values[0] for name, values in parse_qs(urlsplit(request.url).query).items()}
        parts = request.path.split("/")
        if "/range/1/minute/" in request.path:
            assert int(parts[-2]) <= int(parts[-1]) <= cutoff_ms
        elif "/range/1/day/" in request.path:
            assert parts[-1] <= "2024-06-28"
        elif request.path.startswith("/v3/reference/tickers/"):
            assert query["date"] == "2024-07-01"
        elif request.path == "/v2/reference/news":
            assert query["published_utc.lte"] <= "2024-07-01T14:00:00Z"
        else:
            assert request.path in ("/v3/reference/splits", "/v3/reference/dividends")
            lte = next(value for name, value in query.items() if name.endswith(".lte"))
            assert lte <= "2024-06-28"
        checked += 1
    assert checked == 6  # ticker, day bars, splits, dividends, minute bars, news


# -- kinds Massive does not serve ------------------------------------------------------

SINCE, AS_OF = date(2024, 1, 1), utc("2024-07-01T13:00:00")


@pytest.mark.parametrize(
    ("method", "arguments", "kind"),
    [
        ("fundamentals", (["AAPL"], SINCE, AS_OF), "fundamentals"),
        ("insider_trades", (["AAPL"], SINCE, AS_OF), "insider_trades"),
        ("analyst_ratings", (["AAPL"], SINCE, AS_OF), "analyst_ratings"),
        ("economic_series", (SINCE, AS_OF), "economic_series"),
        ("options_chain", (["AAPL"], date(2024, 7, 1), AS_OF), "options_chain"),
        ("earnings_calendar", (["AAPL"], SINCE, AS_OF), "earnings"),
        ("earnings_results", (["AAPL"], SINCE, AS_OF), "earnings"),
    ],
)
def test_kinds_massive_does_not_serve_are_permanent_errors(
    httpserver: HTTPServer,
    make_provider: MakeProvider,
    method: str,
    arguments: tuple[Any, ...],
    kind: str,
) -> None:
    with pytest.raises(PermanentError, match=f"^massive does not serve {kind}; "):
        getattr(make_provider(), method)(*arguments)
    assert httpserver.log == []
