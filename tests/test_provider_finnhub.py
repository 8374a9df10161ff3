"""The Finnhub provider against a local server replaying Finnhub's documented responses.

The fixtures under ``tests/fixtures/finnhub/`` follow the formats of
``/stock/recommendation``, ``/calendar/earnings``, ``/company-news`` and
``/quote`` (URLs scrubbed); the handlers filter them by ``symbol`` and the
``from``/``to`` dates as Finnhub does. Nothing here reaches the network (only
127.0.0.1) and nothing sleeps: the provider's sleeper records the waits, and
its wall clock is injected, so a live run and a backfill are both replayed.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from collectors.market_store import TABLES, validate
from collectors.providers.base import Provider
from collectors.providers.finnhub import SNAPSHOT_TOLERANCE, FinnhubProvider
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

FIXTURES = Path(__file__).parent / "fixtures" / "finnhub"
KEY = "cq0fake0finnhub0key0for0tests00"
# A daily run of Wednesday 2024-07-31: as_of is the open, the run starts five minutes later.
OPEN = datetime(2024, 7, 31, 13, 30, tzinfo=UTC)
LIVE_CLOCK = OPEN + timedelta(minutes=5)
BACKFILL_CLOCK = datetime(2024, 9, 10, 12, 0, tzinfo=UTC)  # the same day replayed later
SINCE = date(2024, 4, 1)
EARNINGS_SYMBOLS = ["AAPL", "MSFT", "MA", "NVDA", "BRK.B", "SNAP", "KO"]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def epoch(text: str) -> int:
    return int(utc(text).timestamp())


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINNHUB_API_KEY", KEY)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_provider(
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
    clock: datetime = LIVE_CLOCK,
    **settings: Any,
) -> FinnhubProvider:
    return FinnhubProvider.from_settings(
        {
            "name": "finnhub",
            "base_url": httpserver.url_for("/api/v1"),
            "symbols": ["AAPL", "MSFT"],
            "limits_db": str(tmp_path / "limits.sqlite"),
            "cache_dir": str(tmp_path / "cache"),
            **settings,
        },
        calendar,
        sleeper=sleeps.append,
        clock=lambda: clock,
    )


@pytest.fixture
def provider(
    key: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
) -> FinnhubProvider:
    return make_provider(httpserver, tmp_path, calendar, sleeps)


@pytest.fixture
def backfill_provider(
    key: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
) -> FinnhubProvider:
    return make_provider(httpserver, tmp_path, calendar, sleeps, clock=BACKFILL_CLOCK)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def serve_by_symbol(
    httpserver: HTTPServer, path: str, answers: dict[str, Any], default: Any
) -> None:
    """``path`` answering each ``symbol`` with its body (a ``Response`` as is), else ``default``."""

    def handler(request: Request) -> Response:
        answer = answers.get(request.args["symbol"], default)
        return answer if isinstance(answer, Response) else json_response(answer)

    httpserver.expect_request(f"/api/v1{path}").respond_with_handler(handler)


def serve_earnings(httpserver: HTTPServer) -> None:
    """``/calendar/earnings`` filtered by ``symbol`` and the ``from``/``to`` dates."""
    entries = fixture("earnings_calendar.json")["earningsCalendar"]

    def handler(request: Request) -> Response:
        start, end, symbol = request.args["from"], request.args["to"], request.args["symbol"]
        kept = [e for e in entries if e["symbol"] == symbol and start <= e["date"] <= end]
        return json_response({"earningsCalendar": kept})

    httpserver.expect_request("/api/v1/calendar/earnings").respond_with_handler(handler)


def utc_day(item: dict[str, Any]) -> str:
    return datetime.fromtimestamp(item["datetime"], UTC).date().isoformat()


def serve_news(httpserver: HTTPServer) -> None:
    """``/company-news`` of each fixture's symbol, items whose UTC date is in [from, to]."""
    lists = {symbol: fixture(f"company_news_{symbol}.json") for symbol in ("AAPL", "MSFT")}

    def handler(request: Request) -> Response:
        start, end = request.args["from"], request.args["to"]
        items = lists.get(request.args["symbol"], [])
        return json_response([item for item in items if start <= utc_day(item) <= end])

    httpserver.expect_request("/api/v1/company-news").respond_with_handler(handler)


def requests_to(httpserver: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == f"/api/v1{path}"]


def assert_stores_cleanly(table: str, frame: pd.DataFrame, as_of: datetime) -> None:
    """Every row passes the store's checks; the columns are the table's."""
    assert list(frame.columns) == list(TABLES[table].column_names)
    good, rejects = validate(table, frame, as_of_ts=int(as_of.timestamp()))
    assert rejects.empty, rejects["reason"].tolist()
    assert len(good) == len(frame)


# -- construction, check, errors ---------------------------------------------------------


def test_is_a_provider_and_a_missing_key_names_the_variable(
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FINNHUB_API_KEY", raising=False)
    with pytest.raises(PermanentError, match="FINNHUB_API_KEY"):
        make_provider(httpserver, tmp_path, calendar, [])
    monkeypatch.setenv("FINNHUB_API_KEY", KEY)
    provider = make_provider(httpserver, tmp_path, calendar, [], symbols=["aapl", " brk.b "])
    assert isinstance(provider, Provider)
    assert provider.symbols == ["AAPL", "BRK.B"]


def test_bad_settings_are_permanent(
    key: None, httpserver: HTTPServer, tmp_path: Path, calendar: MarketCalendar
) -> None:
    with pytest.raises(PermanentError, match=r"provider\.rate_per_minute"):
        make_provider(httpserver, tmp_path, calendar, [], rate_per_minute=0)
    with pytest.raises(PermanentError, match=r"provider\.rate_per_minute"):
        make_provider(httpserver, tmp_path, calendar, [], rate_per_minute="fast")
    with pytest.raises(PermanentError, match=r"provider\.symbols"):
        make_provider(httpserver, tmp_path, calendar, [], symbols="AAPL")


def test_kinds_finnhub_does_not_serve_name_the_providers_that_do(
    provider: FinnhubProvider,
) -> None:
    with pytest.raises(PermanentError, match=r"finnhub does not serve daily_bars; .*alpaca"):
        provider.daily_bars(["AAPL"], [date(2024, 7, 31)])
    with pytest.raises(PermanentError, match=r"does not serve fundamentals; .*sec"):
        provider.fundamentals(["AAPL"], SINCE, OPEN)
    with pytest.raises(PermanentError, match="finnhub does not serve universe"):
        provider.universe(OPEN)
    assert provider.http.requests_made == 0


def test_check_is_one_quote_call(provider: FinnhubProvider, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/quote", query_string={"symbol": "AAPL"}).respond_with_json(
        fixture("quote_AAPL.json")
    )
    assert provider.check() == "finnhub: key accepted (AAPL last 218.36)"
    assert provider.http.requests_made == 1


def test_429_with_retry_after_waits_then_succeeds(
    provider: FinnhubProvider, httpserver: HTTPServer, sleeps: list[float]
) -> None:
    httpserver.expect_oneshot_request("/api/v1/quote").respond_with_json(
        fixture("rate_limited.json"), status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_request("/api/v1/quote").respond_with_json(fixture("quote_AAPL.json"))
    assert "218.36" in provider.check()
    assert provider.http.requests_made == 2
    assert sleeps and sleeps[0] >= 7  # the server's wait, recorded, not slept


def test_an_invalid_key_stops_the_call_at_once_and_names_the_variable(
    provider: FinnhubProvider, httpserver: HTTPServer, sleeps: list[float]
) -> None:
    serve_by_symbol(
        httpserver,
        "/stock/recommendation",
        {},
        json_response(fixture("invalid_key.json"), status=401),
    )
    with pytest.raises(PermanentError, match="FINNHUB_API_KEY"):
        provider.analyst_trends(["AAPL", "MSFT"], OPEN)
    assert provider.http.requests_made == 1  # not retried, and MSFT is not asked
    assert sleeps == []


def test_the_key_travels_in_the_header_and_never_in_a_url(
    provider: FinnhubProvider, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/api/v1/quote").respond_with_json(fixture("quote_AAPL.json"))
    serve_by_symbol(
        httpserver, "/stock/recommendation", {"AAPL": fixture("recommendation_AAPL.json")}, []
    )
    serve_earnings(httpserver)
    serve_news(httpserver)
    provider.check()
    provider.analyst_trends(["AAPL"], OPEN)
    provider.earnings_calendar(["AAPL"], SINCE, OPEN)
    provider.news(["AAPL"], date(2024, 7, 30), OPEN)
    assert len(httpserver.log) == 4
    for request, _ in httpserver.log:
        assert request.headers["X-Finnhub-Token"] == KEY
        assert KEY not in request.url
        assert "token" not in request.args


# -- recommendation trends and ratings ------------------------------------------------------


def test_trends_of_a_live_run_are_stamped_at_as_of(
    provider: FinnhubProvider, httpserver: HTTPServer
) -> None:
    serve_by_symbol(
        httpserver,
        "/stock/recommendation",
        {
            "AAPL": fixture("recommendation_AAPL.json"),
            "MSFT": fixture("recommendation_MSFT.json"),
        },
        [],  # Finnhub's answer for a symbol it has no coverage of
    )
    frame = provider.analyst_trends(["AAPL", "MSFT", "ZZZZ"], OPEN)
    assert frame[frame["symbol"] == "AAPL"].to_dict(orient="records")[-1] == {
        "symbol": "AAPL",
        "period": "2024-07-01",
        "strong_buy": 13,
        "buy": 22,
        "hold": 12,
        "sell": 1,
        "strong_sell": 0,
        "available_ts": int(OPEN.timestamp()),
    }
    assert frame.groupby("symbol")["period"].apply(list).to_dict() == {
        "AAPL": ["2024-04-01", "2024-05-01", "2024-06-01", "2024-07-01"],
        "MSFT": ["2024-06-01", "2024-07-01"],
    }
    assert set(frame["available_ts"]) == {int(OPEN.timestamp())}  # as_of, not the wall clock
    assert provider.symbol_errors == {}  # no coverage is no error
    assert [r.args["symbol"] for r in requests_to(httpserver, "/stock/recommendation")] == [
        "AAPL",
        "MSFT",
        "ZZZZ",
    ]
    assert_stores_cleanly("analyst_trends", frame, OPEN)


def test_trends_are_refused_in_a_backfill_without_a_request(
    backfill_provider: FinnhubProvider,
) -> None:
    frame = backfill_provider.analyst_trends(["AAPL", "MSFT"], OPEN)
    assert frame.empty and list(frame.columns) == list(TABLES["analyst_trends"].column_names)
    assert set(backfill_provider.symbol_errors) == {"AAPL", "MSFT"}
    reason = backfill_provider.symbol_errors["AAPL"]
    assert "a snapshot of today (2024-09-10) cannot stand for 2024-07-31T13:30:00+00:00" in reason
    assert backfill_provider.http.requests_made == 0


@pytest.mark.parametrize(
    ("late", "live"),
    [(SNAPSHOT_TOLERANCE, True), (SNAPSHOT_TOLERANCE + timedelta(seconds=1), False)],
)
def test_a_snapshot_is_live_only_within_the_tolerance(
    key: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    late: timedelta,
    live: bool,
) -> None:
    provider = make_provider(httpserver, tmp_path, calendar, [], clock=OPEN + late)
    serve_by_symbol(
        httpserver, "/stock/recommendation", {"AAPL": fixture("recommendation_AAPL.json")}, []
    )
    frame = provider.analyst_trends(["AAPL"], OPEN)
    assert (len(frame) == 4) is live
    assert ("AAPL" in provider.symbol_errors) is not live


def test_a_symbol_outside_the_plan_is_reported_and_the_others_served(
    provider: FinnhubProvider, httpserver: HTTPServer
) -> None:
    serve_by_symbol(
        httpserver,
        "/stock/recommendation",
        {
            "AAPL": fixture("recommendation_AAPL.json"),
            "SHOP.TO": json_response(fixture("no_access.json"), status=403),
            "BAD SYMBOL": json_response({"error": "Invalid symbol."}, status=422),
        },
        [],
    )
    frame = provider.analyst_trends(["SHOP.TO", "AAPL", "BAD SYMBOL"], OPEN)
    assert set(frame["symbol"]) == {"AAPL"}
    assert sorted(provider.symbol_errors) == ["BAD SYMBOL", "SHOP.TO"]
    assert "finnhub refused SHOP.TO (HTTP 403)" in provider.symbol_errors["SHOP.TO"]
    assert "(HTTP 422)" in provider.symbol_errors["BAD SYMBOL"]
    assert provider.http.requests_made == 3  # a refusal is not retried


def test_every_symbol_refused_raises(provider: FinnhubProvider, httpserver: HTTPServer) -> None:
    serve_by_symbol(
        httpserver,
        "/stock/recommendation",
        {},
        json_response(fixture("no_access.json"), status=403),
    )
    with pytest.raises(PermanentError, match=r"refused every symbol asked \(2\)"):
        provider.analyst_trends(["SHOP.TO", "RY.TO"], OPEN)


def test_rating_changes_are_empty_without_a_request(provider: FinnhubProvider) -> None:
    frame = provider.analyst_ratings(["AAPL"], SINCE, OPEN)
    assert frame.empty
    assert_stores_cleanly("analyst_ratings", frame, OPEN)
    assert provider.http.requests_made == 0


# -- earnings ----------------------------------------------------------------------------


def test_a_live_run_splits_the_calendar_into_scheduled_reports_and_results(
    provider: FinnhubProvider, httpserver: HTTPServer
) -> None:
    serve_earnings(httpserver)
    scheduled = provider.earnings_calendar(EARNINGS_SYMBOLS, SINCE, OPEN)
    results = provider.earnings_results(EARNINGS_SYMBOLS, SINCE, OPEN)

    # Not delivered by the open: a snapshot stamped at as_of, estimates as known now.
    assert scheduled.drop(columns="available_ts").to_dict(orient="records") == [
        {
            "symbol": "AAPL",
            "fiscal_period": "2024Q3",  # reported tomorrow after the close: not a result yet
            "report_date": "2024-08-01",
            "timing": "amc",
            "eps_estimate": 1.35,
            "revenue_estimate": 84457000000.0,
        },
        {
            "symbol": "BRK.B",
            "fiscal_period": "2024Q2",
            "report_date": "2024-08-03",
            "timing": "dmh",
            "eps_estimate": 5.21,
            "revenue_estimate": pytest.approx(float("nan"), nan_ok=True),
        },
        {
            "symbol": "NVDA",
            "fiscal_period": "2025Q2",  # Finnhub's fiscal year, not the calendar year
            "report_date": "2024-08-28",
            "timing": "unknown",  # Finnhub's empty hour
            "eps_estimate": 0.64,
            "revenue_estimate": 28740000000.0,
        },
        {
            "symbol": "SNAP",
            "fiscal_period": "2024Q2",
            "report_date": "2024-08-01",
            "timing": "amc",
            "eps_estimate": 0.02,
            "revenue_estimate": 1250000000.0,
        },
    ]  # AAPL 2024Q4 (2024-10-31) is past the 90 days asked for
    assert set(scheduled["available_ts"]) == {int(OPEN.timestamp())}

    # Delivered by the open, each at its documented moment (amc 17:00, bmo 09:30 New York).
    assert results.to_dict(orient="records") == [
        {
            "symbol": "AAPL",
            "fiscal_period": "2024Q2",
            "report_date": "2024-05-02",
            "eps_actual": 1.53,
            "eps_estimate": 1.5,
            "surprise_pct": pytest.approx(2.0),
            "available_ts": epoch("2024-05-02T21:00:00"),
        },
        {
            "symbol": "MA",
            "fiscal_period": "2024Q1",
            "report_date": "2024-05-01",
            "eps_actual": 3.31,
            "eps_estimate": 3.23,
            "surprise_pct": pytest.approx((3.31 - 3.23) / 3.23 * 100),
            "available_ts": epoch("2024-05-01T13:30:00"),
        },
        {
            "symbol": "MA",
            "fiscal_period": "2024Q2",  # before this morning's open: known at the open
            "report_date": "2024-07-31",
            "eps_actual": 3.59,
            "eps_estimate": 3.51,
            "surprise_pct": pytest.approx((3.59 - 3.51) / 3.51 * 100),
            "available_ts": int(OPEN.timestamp()),
        },
        {
            "symbol": "MSFT",
            "fiscal_period": "2024Q3",
            "report_date": "2024-04-25",
            "eps_actual": 2.94,
            "eps_estimate": 2.82,
            "surprise_pct": pytest.approx((2.94 - 2.82) / 2.82 * 100),
            "available_ts": epoch("2024-04-25T21:00:00"),
        },
        {
            "symbol": "MSFT",
            "fiscal_period": "2024Q4",
            "report_date": "2024-07-30",
            "eps_actual": 2.95,
            "eps_estimate": 2.93,
            "surprise_pct": pytest.approx((2.95 - 2.93) / 2.93 * 100),
            "available_ts": epoch("2024-07-30T21:00:00"),
        },
    ]  # KO has no estimate and SNAP 2024Q1 an estimate of 0: no surprise, left out
    assert provider.symbol_errors == {}

    # One request per symbol serves both: from since to 90 days after as_of's date.
    requests = requests_to(httpserver, "/calendar/earnings")
    assert [r.args["symbol"] for r in requests] == EARNINGS_SYMBOLS
    assert {(r.args["from"], r.args["to"]) for r in requests} == {("2024-04-01", "2024-10-29")}
    assert_stores_cleanly("earnings_calendar", scheduled, OPEN)
    assert_stores_cleanly("earnings_results", results, OPEN)


def test_the_earnings_calendar_is_refused_in_a_backfill_without_a_request(
    backfill_provider: FinnhubProvider,
) -> None:
    frame = backfill_provider.earnings_calendar(EARNINGS_SYMBOLS, SINCE, OPEN)
    assert frame.empty
    assert set(backfill_provider.symbol_errors) == set(EARNINGS_SYMBOLS)
    assert "cannot stand for 2024-07-31" in backfill_provider.symbol_errors["MA"]
    assert backfill_provider.http.requests_made == 0


@pytest.mark.parametrize(
    ("as_of", "last_known"),
    [
        # MSFT reported 2024-07-30 after the close: known from 17:00 New York (21:00Z).
        (utc("2024-07-30T20:59:59"), ("AAPL", "2024Q2")),
        (utc("2024-07-30T21:00:00"), ("MSFT", "2024Q4")),
        # MA reported 2024-07-31 before the open: known from 09:30 New York (13:30Z).
        (utc("2024-07-31T13:29:59"), ("MSFT", "2024Q4")),
        (utc("2024-07-31T13:30:00"), ("MA", "2024Q2")),
    ],
)
def test_a_backfill_serves_results_only_once_reported(
    backfill_provider: FinnhubProvider,
    httpserver: HTTPServer,
    as_of: datetime,
    last_known: tuple[str, str],
) -> None:
    serve_earnings(httpserver)
    frame = backfill_provider.earnings_results(EARNINGS_SYMBOLS, SINCE, as_of)
    newest = frame.sort_values("available_ts").iloc[-1]
    assert (newest["symbol"], newest["fiscal_period"]) == last_known
    assert frame["available_ts"].max() <= as_of.timestamp()
    # AAPL's 2024Q3 actual is in Finnhub's answer today, yet unknown on 2024-07-31.
    assert "2024Q3" not in set(frame.loc[frame["symbol"] == "AAPL", "fiscal_period"])
    # A backfill asks nothing dated after as_of.
    ends = {r.args["to"] for r in requests_to(httpserver, "/calendar/earnings")}
    assert ends == {as_of.date().isoformat()}
    assert_stores_cleanly("earnings_results", frame, as_of)


# -- news --------------------------------------------------------------------------------


def test_news_is_stamped_at_publication_and_nothing_after_as_of(
    provider: FinnhubProvider, httpserver: HTTPServer
) -> None:
    serve_news(httpserver)
    as_of = utc("2024-07-31T15:00:00")
    frame = provider.news(["AAPL", "MSFT", "ZZZZ"], date(2024, 7, 30), as_of)
    assert frame["updated_ts"].isna().all()  # Finnhub gives no edit time
    assert frame.drop(columns="updated_ts").to_dict(orient="records") == [
        {
            "article_id": "finnhub:129397002:AAPL",
            "symbol": "AAPL",
            "headline": "Apple Cuts iPhone Prices In China Ahead Of Earnings",
            "source": "Reuters",
            "available_ts": epoch("2024-07-30T13:05:00"),
        },
        {
            "article_id": "finnhub:129398001:MSFT",
            "symbol": "MSFT",
            "headline": "Microsoft Fiscal Q4 Revenue Tops Estimates As Cloud Sales Rise",
            "source": "Reuters",
            "available_ts": epoch("2024-07-30T20:05:00"),
        },
        {
            "article_id": "finnhub:129398777:AAPL",  # one article listed for both symbols
            "symbol": "AAPL",
            "headline": "Microsoft Azure Growth Slows, Megacaps Slip After The Bell",
            "source": "MarketWatch",
            "available_ts": epoch("2024-07-30T20:10:00"),
        },
        {
            "article_id": "finnhub:129398777:MSFT",
            "symbol": "MSFT",
            "headline": "Microsoft Azure Growth Slows, Megacaps Slip After The Bell",
            "source": "MarketWatch",
            "available_ts": epoch("2024-07-30T20:10:00"),
        },
        {
            "article_id": "finnhub:129399410:AAPL",
            "symbol": "AAPL",
            "headline": "Apple Intelligence Beta Reaches Developers Ahead Of iOS 18.1",
            "source": "MarketWatch",
            "available_ts": epoch("2024-07-31T14:12:00"),
        },
    ]  # left out: 15:00:01 (after as_of), 2024-07-29 23:40Z (before since), no headline
    assert provider.symbol_errors == {}
    requests = requests_to(httpserver, "/company-news")
    assert [r.args["symbol"] for r in requests] == ["AAPL", "MSFT", "ZZZZ"]
    # From the day before since (Finnhub's dates have no documented zone) to as_of's date.
    assert {(r.args["from"], r.args["to"]) for r in requests} == {("2024-07-29", "2024-07-31")}
    assert_stores_cleanly("news", frame, as_of)


def test_news_of_a_window_after_as_of_makes_no_request(provider: FinnhubProvider) -> None:
    frame = provider.news(["AAPL"], date(2024, 8, 1), OPEN)
    assert frame.empty and list(frame.columns) == list(TABLES["news"].column_names)
    assert provider.http.requests_made == 0
