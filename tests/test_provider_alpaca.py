"""The Alpaca provider against a local server replaying Alpaca's documented responses.

The fixtures under ``tests/fixtures/alpaca/`` follow the formats of
``/v2/assets``, ``/v2/stocks/bars``, ``/v1/corporate-actions``,
``/v1beta1/news`` and ``/v2/account`` (keys and account numbers scrubbed).
Nothing here reaches the network (only 127.0.0.1) and nothing sleeps: the
provider's sleeper records the waits instead.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, date, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from collectors.market_store import validate
from collectors.providers.alpaca import AlpacaProvider
from collectors.providers.base import Provider
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

FIXTURES = Path(__file__).parent / "fixtures" / "alpaca"
KEY_ID = "PKFAKE00TEST00KEY00ID"
SECRET = "fakeSecretForTests0000000000000000000000"
SYMBOLS = ["AAPL", "NVDA", "MSFT"]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def epoch(text: str) -> int:
    return int(utc(text).timestamp())


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_provider(
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
    **settings: Any,
) -> AlpacaProvider:
    base = httpserver.url_for("")
    return AlpacaProvider.from_settings(
        {
            "name": "alpaca",
            "feed": "iex",
            "data_url": base,
            "trading_url": base,
            "symbols": SYMBOLS,
            "limits_db": str(tmp_path / "limits.sqlite"),
            **settings,
        },
        calendar,
        sleeper=sleeps.append,
    )


@pytest.fixture
def provider(
    keys: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
) -> AlpacaProvider:
    return make_provider(httpserver, tmp_path, calendar, sleeps)


def serve_pages(httpserver: HTTPServer, path: str, names: list[str]) -> None:
    """Serve fixture pages chained by ``next_page_token`` / ``page_token``, as Alpaca does."""
    pages = [fixture(name) for name in names]
    by_token: dict[str | None, Any] = {None: pages[0]}
    for previous, page in itertools.pairwise(pages):
        by_token[previous["next_page_token"]] = page

    def handler(request: Request) -> Response:
        page = by_token[request.args.get("page_token")]
        return Response(json.dumps(page), content_type="application/json")

    httpserver.expect_request(path).respond_with_handler(handler)


def serve_corporate_actions(httpserver: HTTPServer, name: str) -> None:
    """Corporate actions filtered on ``process_date`` by ``start``/``end``, as Alpaca does."""
    body = fixture(name)

    def handler(request: Request) -> Response:
        start, end = request.args["start"], request.args["end"]
        kept = {
            kind: [item for item in items if start <= item["process_date"] <= end]
            for kind, items in body["corporate_actions"].items()
        }
        page = {"corporate_actions": kept, "next_page_token": None}
        return Response(json.dumps(page), content_type="application/json")

    httpserver.expect_request("/v1/corporate-actions").respond_with_handler(handler)


def requests_to(httpserver: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


# -- construction and errors ---------------------------------------------------------


def test_is_a_provider_and_missing_key_names_the_variable(
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.delenv("ALPACA_API_SECRET_KEY", raising=False)
    with pytest.raises(PermanentError, match="ALPACA_API_SECRET_KEY"):
        make_provider(httpserver, tmp_path, calendar, [])
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
    provider = make_provider(httpserver, tmp_path, calendar, [])
    assert isinstance(provider, Provider)
    assert provider.delay_seconds == 0
    assert make_provider(httpserver, tmp_path, calendar, [], feed="sip").delay_seconds == 900


def test_bad_settings_are_permanent(
    keys: None, httpserver: HTTPServer, tmp_path: Path, calendar: MarketCalendar
) -> None:
    with pytest.raises(PermanentError, match=r"provider\.feed"):
        make_provider(httpserver, tmp_path, calendar, [], feed="otc")
    with pytest.raises(PermanentError, match=r"provider\.symbols"):
        make_provider(httpserver, tmp_path, calendar, [], symbols=[])


def test_kinds_alpaca_does_not_serve_are_permanent_errors(provider: AlpacaProvider) -> None:
    as_of = utc("2024-07-01T15:00:00")
    with pytest.raises(PermanentError, match=r"alpaca does not serve fundamentals; .*synthetic"):
        provider.fundamentals(["AAPL"], date(2024, 6, 1), as_of)
    with pytest.raises(PermanentError, match="alpaca does not serve options_chain"):
        provider.options_chain(["AAPL"], date(2024, 7, 1), as_of)
    with pytest.raises(PermanentError, match="alpaca does not serve earnings"):
        provider.earnings_results(["AAPL"], date(2024, 6, 1), as_of)


def test_check_calls_the_account_once(provider: AlpacaProvider, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/account").respond_with_json(fixture("account.json"))
    assert provider.check() == "alpaca: keys accepted (account ACTIVE), feed iex"
    assert provider.http.requests_made == 1


def test_401_is_permanent_and_names_the_variables(
    provider: AlpacaProvider, httpserver: HTTPServer, sleeps: list[float]
) -> None:
    httpserver.expect_request("/v2/account").respond_with_json(
        {"code": 40110000, "message": "request is not authorized"}, status=401
    )
    with pytest.raises(PermanentError, match="ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY"):
        provider.check()
    assert provider.http.requests_made == 1  # a refused key is not retried
    assert sleeps == []


def test_429_with_retry_after_seconds_waits_then_succeeds(
    provider: AlpacaProvider, httpserver: HTTPServer, sleeps: list[float]
) -> None:
    httpserver.expect_oneshot_request("/v2/account").respond_with_json(
        {"message": "too many requests."}, status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_request("/v2/account").respond_with_json(fixture("account.json"))
    assert "ACTIVE" in provider.check()
    assert provider.http.requests_made == 2
    assert max(sleeps) >= 7


def test_429_with_retry_after_as_http_date(
    provider: AlpacaProvider, httpserver: HTTPServer, sleeps: list[float]
) -> None:
    later = formatdate(time.time() + 40, usegmt=True)
    httpserver.expect_oneshot_request("/v2/account").respond_with_json(
        {"message": "too many requests."}, status=429, headers={"Retry-After": later}
    )
    httpserver.expect_request("/v2/account").respond_with_json(fixture("account.json"))
    assert "ACTIVE" in provider.check()
    assert provider.http.requests_made == 2
    assert max(sleeps) >= 35  # the date was about 40 s ahead; a few seconds may have passed


def test_503_then_success_is_retried_inside_the_call(
    provider: AlpacaProvider, httpserver: HTTPServer, sleeps: list[float]
) -> None:
    httpserver.expect_oneshot_request("/v2/assets").respond_with_data(
        "upstream unavailable", status=503
    )
    httpserver.expect_request("/v2/assets").respond_with_json(fixture("assets.json"))
    frame = provider.universe(utc("2024-07-01T13:00:00"))
    assert frame["symbol"].tolist() == ["AAPL", "MSFT", "NVDA"]
    assert provider.http.requests_made == 2
    assert len(sleeps) == 1 and sleeps[0] > 0  # one backoff, recorded, not slept


# -- universe ------------------------------------------------------------------------


def test_universe_lists_configured_symbols_and_reports_unknown_ones(
    keys: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
) -> None:
    provider = make_provider(httpserver, tmp_path, calendar, sleeps, symbols=["aapl", "KO", "ZZZZ"])
    httpserver.expect_request(
        "/v2/assets", query_string={"status": "active", "asset_class": "us_equity"}
    ).respond_with_json(fixture("assets.json"))
    as_of = utc("2024-07-01T13:00:00")
    frame = provider.universe(as_of)
    assert frame.to_dict(orient="records") == [
        {
            "symbol": "AAPL",
            "name": "Apple Inc. Common Stock",
            "sector": "Unknown",
            "industry": "Unknown",
            "exchange": "NASDAQ",
            "available_ts": int(as_of.timestamp()),
        },
        {
            "symbol": "KO",
            "name": "Coca-Cola Company (The) Common Stock",
            "sector": "Unknown",
            "industry": "Unknown",
            "exchange": "NYSE",
            "available_ts": int(as_of.timestamp()),
        },
    ]
    assert provider.symbol_errors == {"ZZZZ": "alpaca does not list ZZZZ"}
    assert provider.http.requests_made == 1
    # The assets collector adds confirmed_ts; with it every row passes the store's checks.
    stored = frame.assign(confirmed_ts=frame["available_ts"])
    good, rejects = validate("assets", stored, as_of_ts=int(as_of.timestamp()))
    assert rejects.empty and len(good) == 2


# -- daily bars ----------------------------------------------------------------------


def test_daily_bars_paginate_and_carry_the_split_raw_with_its_ratio(
    provider: AlpacaProvider, httpserver: HTTPServer, calendar: MarketCalendar
) -> None:
    serve_pages(
        httpserver,
        "/v2/stocks/bars",
        ["bars_daily_split_page1.json", "bars_daily_split_page2.json"],
    )
    serve_corporate_actions(httpserver, "corporate_actions.json")
    sessions = [date(2024, 6, 7), date(2024, 6, 10), date(2024, 6, 11)]
    frame = provider.daily_bars(SYMBOLS, sessions)

    nvda = frame[frame["symbol"] == "NVDA"].set_index("session")
    # Raw prices: the 10-for-1 split shows as a price drop and a ratio, not adjusted away.
    assert nvda["close"].to_dict() == {
        "2024-06-07": 1208.88,
        "2024-06-10": 121.79,
        "2024-06-11": 120.91,
    }
    assert nvda["split_ratio"].to_dict() == {
        "2024-06-07": 1.0,
        "2024-06-10": 10.0,
        "2024-06-11": 1.0,
    }
    # The dividend going ex on 06-11 is processed (paid) on 06-28, after the last session.
    assert nvda["dividend"].to_dict() == {"2024-06-07": 0.0, "2024-06-10": 0.0, "2024-06-11": 0.01}
    aapl = frame[frame["symbol"] == "AAPL"]
    assert aapl["dividend"].tolist() == [0.0, 0.0, 0.0]  # its ex-dates fall outside the sessions
    closes = {day.isoformat(): int(calendar.hours(day).close.timestamp()) for day in sessions}
    assert frame.set_index(["symbol", "session"])["available_ts"].to_dict() == {
        (symbol, day): closes[day] for symbol in ("AAPL", "NVDA") for day in closes
    }
    assert list(frame.columns) == [
        "symbol", "session", "open", "high", "low", "close", "volume",
        "split_ratio", "dividend", "available_ts",
    ]  # fmt: skip

    # MSFT has no bar at all: reported, the others served.
    assert provider.symbol_errors == {"MSFT": "no daily bars from alpaca"}
    bar_requests = requests_to(httpserver, "/v2/stocks/bars")
    assert [request.args.get("page_token") for request in bar_requests] == [
        None,
        fixture("bars_daily_split_page1.json")["next_page_token"],
    ]
    first = bar_requests[0].args
    assert first["symbols"] == "AAPL,NVDA,MSFT"
    assert (first["timeframe"], first["adjustment"], first["feed"], first["limit"]) == (
        "1Day",
        "raw",
        "iex",
        "10000",
    )
    assert (first["start"], first["end"]) == ("2024-06-07T04:00:00Z", "2024-06-11T20:00:00Z")
    (actions,) = requests_to(httpserver, "/v1/corporate-actions")
    assert actions.args["types"] == "forward_split,reverse_split,cash_dividend"
    good, rejects = validate("prices_daily", frame, as_of_ts=closes["2024-06-11"])
    assert rejects.empty and len(good) == 6


def test_daily_bars_stamped_at_new_york_midnight_land_on_their_session(
    provider: AlpacaProvider, httpserver: HTTPServer, calendar: MarketCalendar
) -> None:
    serve_pages(httpserver, "/v2/stocks/bars", ["bars_daily_dst.json"])
    serve_corporate_actions(httpserver, "corporate_actions_none.json")
    winter, summer = date(2024, 1, 2), date(2024, 7, 1)
    frame = provider.daily_bars(["AAPL"], [summer, winter])
    # 05:00Z in January and 04:00Z in July are both midnight in New York; 2024-01-03
    # was served but not asked for, so it is left out.
    assert frame[["session", "close", "available_ts"]].to_dict(orient="records") == [
        {"session": "2024-01-02", "close": 185.64, "available_ts": epoch("2024-01-02T21:00:00")},
        {"session": "2024-07-01", "close": 216.75, "available_ts": epoch("2024-07-01T20:00:00")},
    ]
    assert frame["split_ratio"].tolist() == [1.0, 1.0]
    assert provider.symbol_errors == {}


def test_daily_bars_refuse_a_day_that_is_no_session(provider: AlpacaProvider) -> None:
    with pytest.raises(PermanentError, match="non-sessions"):
        provider.daily_bars(["AAPL"], [date(2024, 7, 4)])
    assert provider.http.requests_made == 0


# -- intraday bars -------------------------------------------------------------------


def test_sparse_iex_minutes_are_not_filled_and_pre_market_is_dropped(
    provider: AlpacaProvider, httpserver: HTTPServer
) -> None:
    serve_pages(httpserver, "/v2/stocks/bars", ["bars_minute_sparse.json"])
    session = date(2024, 7, 1)
    as_of = utc("2024-07-01T13:35:30")
    since = utc("2024-07-01T13:00:00")  # before the open: pre-market bars must still go
    frame = provider.intraday_bars(["AAPL", "MSFT"], session, since, as_of)
    by_symbol = frame.groupby("symbol")["bar_ts"].apply(list).to_dict()
    # 13:28 and 13:29 are pre-market; 13:32 had no IEX trade and stays missing; 13:35 is
    # still forming at 13:35:30.
    assert by_symbol == {
        "AAPL": [epoch(f"2024-07-01T13:{minute}:00") for minute in (30, 31, 33, 34)],
        "MSFT": [epoch("2024-07-01T13:30:00"), epoch("2024-07-01T13:32:00")],
    }
    assert (frame["available_ts"] == frame["bar_ts"] + 60).all()  # iex: no delay
    assert set(frame["session"]) == {"2024-07-01"}
    assert frame.loc[frame["bar_ts"] == epoch("2024-07-01T13:30:00"), "open"].tolist() == [
        212.09,
        448.66,
    ]
    (request,) = requests_to(httpserver, "/v2/stocks/bars")
    assert request.args["timeframe"] == "1Min"
    assert (request.args["start"], request.args["end"]) == (
        "2024-07-01T13:30:00Z",
        "2024-07-01T13:35:30Z",
    )
    good, rejects = validate(
        "intraday_bars",
        frame,
        as_of_ts=int(as_of.timestamp()),
        session_bounds=(epoch("2024-07-01T13:30:00"), epoch("2024-07-01T20:00:00")),
    )
    assert rejects.empty and len(good) == 6


def test_post_market_bars_of_a_half_day_are_dropped(
    provider: AlpacaProvider, httpserver: HTTPServer
) -> None:
    serve_pages(httpserver, "/v2/stocks/bars", ["bars_minute_half_day.json"])
    half_day = date(2024, 7, 3)  # closes at 13:00 New York, 17:00Z
    frame = provider.intraday_bars(
        ["AAPL"], half_day, utc("2024-07-03T16:58:00"), utc("2024-07-03T17:30:00")
    )
    assert frame["bar_ts"].tolist() == [epoch("2024-07-03T16:58:00"), epoch("2024-07-03T16:59:00")]
    (request,) = requests_to(httpserver, "/v2/stocks/bars")
    assert request.args["end"] == "2024-07-03T17:00:00Z"  # the close, not as_of


def test_sip_bars_wait_out_the_feed_delay(
    keys: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
) -> None:
    provider = make_provider(httpserver, tmp_path, calendar, sleeps, feed="sip")
    serve_pages(httpserver, "/v2/stocks/bars", ["bars_minute_sip.json"])
    as_of = utc("2024-07-01T14:00:00")
    frame = provider.intraday_bars(["AAPL"], date(2024, 7, 1), utc("2024-07-01T13:30:00"), as_of)
    # Released by 14:00: what had ended by 13:45; 13:45 itself ends at 13:46.
    assert frame["bar_ts"].tolist() == [epoch("2024-07-01T13:43:00"), epoch("2024-07-01T13:44:00")]
    assert frame["available_ts"].tolist() == [
        epoch("2024-07-01T13:59:00"),
        epoch("2024-07-01T14:00:00"),
    ]
    (request,) = requests_to(httpserver, "/v2/stocks/bars")
    assert (request.args["feed"], request.args["end"]) == ("sip", "2024-07-01T13:45:00Z")


def test_intraday_before_anything_is_released_makes_no_request(
    provider: AlpacaProvider,
) -> None:
    open_ = utc("2024-07-01T13:30:00")
    frame = provider.intraday_bars(["AAPL"], date(2024, 7, 1), open_, open_)
    assert frame.empty and list(frame.columns)[:3] == ["symbol", "session", "bar_ts"]
    assert provider.http.requests_made == 0


# -- news ----------------------------------------------------------------------------


def test_news_paginates_one_row_per_article_and_symbol_never_after_as_of(
    provider: AlpacaProvider, httpserver: HTTPServer
) -> None:
    serve_pages(httpserver, "/v1beta1/news", ["news_page1.json", "news_page2.json"])
    as_of = utc("2024-07-01T15:00:00")
    frame = provider.news(["AAPL", "MSFT"], date(2024, 6, 30), as_of)
    assert frame.to_dict(orient="records") == [
        {
            "article_id": "alpaca:39551122:AAPL",
            "symbol": "AAPL",
            "headline": "Apple And Microsoft Lead Megacap Gains As Nasdaq Opens The Quarter Higher",
            "source": "benzinga",
            "available_ts": epoch("2024-07-01T13:41:07"),
            "updated_ts": epoch("2024-07-01T13:41:08"),
        },
        {
            "article_id": "alpaca:39551122:MSFT",
            "symbol": "MSFT",
            "headline": "Apple And Microsoft Lead Megacap Gains As Nasdaq Opens The Quarter Higher",
            "source": "benzinga",
            "available_ts": epoch("2024-07-01T13:41:07"),
            "updated_ts": epoch("2024-07-01T13:41:08"),
        },
        {
            "article_id": "alpaca:39551870:AAPL",  # TSLA was not asked for
            "symbol": "AAPL",
            "headline": (
                "Tesla Deliveries Preview: What Analysts Expect From Q2 Numbers, "
                "And Apple's Next Move"
            ),
            "source": "benzinga",
            "available_ts": epoch("2024-07-01T14:12:33"),  # created_at, not updated_at
            "updated_ts": epoch("2024-07-01T14:20:01"),
        },
        {
            "article_id": "alpaca:39552410:MSFT",
            "symbol": "MSFT",
            "headline": "Microsoft To Stop Observer Role On OpenAI Board, Report Says",
            "source": "benzinga",
            "available_ts": epoch("2024-07-01T14:58:59"),
            "updated_ts": epoch("2024-07-01T14:59:00"),
        },
    ]  # the 15:00:01 article is after as_of and left out
    requests = requests_to(httpserver, "/v1beta1/news")
    assert len(requests) == 2
    assert {key: requests[0].args[key] for key in ("symbols", "start", "limit", "sort")} == {
        "symbols": "AAPL,MSFT",
        "start": "2024-06-30T00:00:00Z",
        "limit": "50",
        "sort": "asc",
    }
    good, rejects = validate("news", frame, as_of_ts=int(as_of.timestamp()))
    assert rejects.empty and len(good) == 4


# -- what goes over the wire -----------------------------------------------------------


def test_a_backfill_never_asks_for_data_after_its_as_of(
    provider: AlpacaProvider, httpserver: HTTPServer
) -> None:
    serve_pages(httpserver, "/v2/stocks/bars", ["bars_minute_sparse.json"])
    serve_pages(httpserver, "/v1beta1/news", ["news_page1.json", "news_page2.json"])
    as_of = utc("2024-07-01T13:45:00")  # a past moment, replayed
    provider.intraday_bars(SYMBOLS, date(2024, 7, 1), utc("2024-07-01T13:30:00"), as_of)
    provider.news(SYMBOLS, date(2024, 6, 30), as_of)
    ends = [utc(request.args["end"].removesuffix("Z")) for request, _ in httpserver.log]
    assert len(ends) == 3 and max(ends) <= as_of
    assert ends[0] == as_of


def test_keys_travel_in_headers_and_never_in_urls(
    provider: AlpacaProvider, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/v2/assets").respond_with_json(fixture("assets.json"))
    serve_pages(httpserver, "/v2/stocks/bars", ["bars_minute_sparse.json"])
    serve_pages(httpserver, "/v1beta1/news", ["news_page1.json", "news_page2.json"])
    as_of = utc("2024-07-01T15:00:00")
    provider.universe(as_of)
    provider.intraday_bars(SYMBOLS, date(2024, 7, 1), utc("2024-07-01T13:30:00"), as_of)
    provider.news(SYMBOLS, date(2024, 6, 30), as_of)
    assert len(httpserver.log) == 4
    for request, _ in httpserver.log:
        assert request.headers["APCA-API-KEY-ID"] == KEY_ID
        assert request.headers["APCA-API-SECRET-KEY"] == SECRET
        assert KEY_ID not in request.url and SECRET not in request.url
