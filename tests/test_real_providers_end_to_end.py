"""Real collectors, run by the real runner as child processes, against providers on localhost.

A local HTTP server speaks Alpaca's and Massive's formats; the tasks' providers
point at it through their ``*_url`` settings, so what is tested is what a
trader runs: config, context file, collector child, HTTP layer, store,
sentinel. Alpaca lists two of the configured symbols; Massive knows a third
and not the fourth, so the fallback chain and the quarantine both show.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import run_once
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orchestrator.config import build_config
from orchestrator.market_calendar import MarketCalendar
from orchestrator.pipeline import Period

NEW_YORK = ZoneInfo("America/New_York")
SESSION = date(2026, 11, 20)  # a Friday
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=NEW_YORK)
KEYS = {
    "ALPACA_API_KEY_ID": "PKCANARY0000KEYID",
    "ALPACA_API_SECRET_KEY": "canarySecret000000000000",
    "MASSIVE_API_KEY": "canaryMassiveKey0000",
}
ALPACA_LISTS = ("AAPL", "MSFT")
MASSIVE_KNOWS = ("NVDA",)
UNIVERSE = ["AAPL", "MSFT", "NVDA", "ZZZZ"]


def _bar(symbol: str, day: date) -> dict[str, float]:
    base = 100.0 + 10 * UNIVERSE.index(symbol) + day.toordinal() % 7
    return {"o": base, "h": base + 2, "l": base - 1, "c": base + 1, "v": 1e6, "n": 900}


def _midnight(day: date) -> datetime:
    """Both APIs stamp a daily bar at midnight New York: 04:00Z or 05:00Z."""
    return datetime.combine(day, time(0), NEW_YORK).astimezone(UTC)


class FakeMarket:
    """Alpaca's and Massive's endpoints used here, from one made-up market."""

    def __init__(self, calendar: MarketCalendar) -> None:
        self.calendar = calendar

    def sessions(self, start: date, end: date) -> list[date]:
        return self.calendar.sessions_in_range(start, end)

    def alpaca_assets(self, _: Request) -> Response:
        assets = [
            {"symbol": s, "name": f"{s} Inc.", "exchange": "NASDAQ", "class": "us_equity",
             "status": "active", "tradable": True}
            for s in ALPACA_LISTS
        ]  # fmt: skip
        return Response(json.dumps(assets), content_type="application/json")

    def alpaca_bars(self, request: Request) -> Response:
        symbols = [s for s in request.args["symbols"].split(",") if s in ALPACA_LISTS]
        start = datetime.fromisoformat(request.args["start"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(request.args["end"].replace("Z", "+00:00"))
        bars = {
            symbol: [
                {"t": _midnight(day).strftime("%Y-%m-%dT%H:%M:%SZ"), **_bar(symbol, day)}
                for day in self.sessions(start.astimezone(NEW_YORK).date(), end.date())
                if start <= _midnight(day) <= end
            ]
            for symbol in symbols
        }
        body = {"bars": bars, "next_page_token": None}
        return Response(json.dumps(body), content_type="application/json")

    def massive_ticker(self, request: Request) -> Response:
        ticker = request.path.rsplit("/", 1)[1]
        if ticker not in MASSIVE_KNOWS:
            body = {"status": "NOT_FOUND", "message": "Ticker not found."}
            return Response(json.dumps(body), status=404, content_type="application/json")
        details = {"ticker": ticker, "name": f"{ticker} Corp", "primary_exchange": "XNAS"}
        return Response(json.dumps({"status": "OK", "results": details}))

    def massive_aggregates(self, request: Request) -> Response:
        parts = request.path.split("/")  # /v2/aggs/ticker/T/range/1/day/FROM/TO
        ticker, first, last = parts[4], parts[8], parts[9]
        days = self.sessions(_day(first), _day(last)) if ticker in MASSIVE_KNOWS else []
        results = [
            {"t": int(_midnight(day).timestamp() * 1000), **_bar(ticker, day)} for day in days
        ]
        body = {"ticker": ticker, "status": "OK", "resultsCount": len(results), "results": results}
        return Response(json.dumps(body), content_type="application/json")


def _day(text: str) -> date:
    if text.isdigit():  # milliseconds
        return datetime.fromtimestamp(int(text) / 1000, NEW_YORK).date()
    return date.fromisoformat(text)


@pytest.fixture
def market(httpserver: HTTPServer, calendar: MarketCalendar) -> HTTPServer:
    fake = FakeMarket(calendar)
    empty_reference = {"status": "OK", "results": []}
    httpserver.expect_request("/v2/assets").respond_with_handler(fake.alpaca_assets)
    httpserver.expect_request("/v2/stocks/bars").respond_with_handler(fake.alpaca_bars)
    httpserver.expect_request("/v1/corporate-actions").respond_with_json(
        {"corporate_actions": {}, "next_page_token": None}
    )
    for path in ("/v3/reference/splits", "/v3/reference/dividends"):
        httpserver.expect_request(path).respond_with_json(empty_reference)
    for ticker in UNIVERSE:
        httpserver.expect_request(f"/v3/reference/tickers/{ticker}").respond_with_handler(
            fake.massive_ticker
        )
    httpserver.expect_request(re.compile(r"^/v2/aggs/ticker/.+")).respond_with_handler(
        fake.massive_aggregates
    )
    return httpserver


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


def project(base: Path, server: HTTPServer) -> Any:
    url = server.url_for("").rstrip("/")
    chain = ["alpaca", "massive"]
    raw = {
        "providers": {
            "alpaca": {"data_url": url, "trading_url": url},
            "massive": {"base_url": url, "rate_per_minute": 600},
        },
        "universe": {"symbols": UNIVERSE},
        "tasks": {
            "assets": {"family": "daily", "collector": "assets", "provider": chain},
            "prices_daily": {
                "family": "daily",
                "collector": "prices_daily",
                "needs": ["assets"],
                "provider": chain,
                "options": {"history_sessions": 5},
                "retry": {"attempts": 1},
            },
        },
    }
    return build_config(raw, "test-config.yaml", base)


def test_the_chain_serves_each_symbol_from_the_first_provider_that_has_it(
    base: Path, market: HTTPServer, keys: None
) -> None:
    config = project(base, market)
    report, sentinel, _ = run_once(config, "assets", Period(SESSION), NOW.astimezone(UTC))
    assert report.status == "success", report
    record = json.loads(sentinel.read_text())
    assert record["served_by"] == {"alpaca": 2, "massive": 1}
    with sqlite3.connect(config.market_db) as connection:
        stored = [row[0] for row in connection.execute("SELECT symbol FROM assets ORDER BY 1")]
        quarantined = connection.execute(
            "SELECT natural_key, reason FROM quarantine WHERE table_name = 'assets'"
        ).fetchall()
    assert stored == ["AAPL", "MSFT", "NVDA"]
    assert quarantined == [("ZZZZ", "massive does not know ZZZZ")]

    report, sentinel, _ = run_once(config, "prices_daily", Period(SESSION), NOW.astimezone(UTC))
    assert report.status == "success", report
    record = json.loads(sentinel.read_text())
    assert record["served_by"] == {"alpaca": 2, "massive": 1}
    with sqlite3.connect(config.market_db) as connection:
        bars = connection.execute(
            "SELECT symbol, COUNT(*), MAX(session), MAX(available_ts) FROM prices_daily "
            "GROUP BY symbol ORDER BY symbol"
        ).fetchall()
    last_close = int(datetime(2026, 11, 19, 16, 0, tzinfo=NEW_YORK).timestamp())
    assert bars == [(s, 5, "2026-11-19", last_close) for s in ("AAPL", "MSFT", "NVDA")]
    assert record["records_processed"] == 15


def test_keys_travel_in_headers_and_never_reach_a_url_or_state(
    base: Path, market: HTTPServer, keys: None
) -> None:
    config = project(base, market)
    for task in ("assets", "prices_daily"):
        report, _, _ = run_once(config, task, Period(SESSION), NOW.astimezone(UTC))
        assert report.status == "success", report
    requests = [request for request, _ in market.log]
    assert requests, "the providers were called"
    for request in requests:
        assert not any(value in request.full_path for value in KEYS.values()), request.full_path
    alpaca_calls = [r for r in requests if r.path.startswith(("/v2/assets", "/v2/stocks"))]
    assert all(r.headers["APCA-API-KEY-ID"] == KEYS["ALPACA_API_KEY_ID"] for r in alpaca_calls)
    massive_calls = [r for r in requests if r.path.startswith(("/v3/", "/v2/aggs"))]
    expected = f"Bearer {KEYS['MASSIVE_API_KEY']}"
    assert all(r.headers["Authorization"] == expected for r in massive_calls)
    for path in config.state_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(value.encode() in data for value in KEYS.values()), path


def test_a_missing_key_fails_permanently_naming_the_variable(
    base: Path, market: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*KEYS, "POLYGON_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = project(base, market)
    report, _, _ = run_once(config, "assets", Period(SESSION), NOW.astimezone(UTC))
    assert report.status == "failed" and report.attempts == 1  # not retried
    assert "ALPACA_API_KEY_ID" in (report.error or "")
    assert not market.log, "nothing was sent without a key"


LIMITED_CALLS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pyrate_limiter import Duration, Rate
    from collectors.providers.http import ProviderHttp

    http = ProviderHttp(
        "massive", sys.argv[1], rates=[Rate(int(sys.argv[3]), Duration.SECOND)],
        limits_db=Path(sys.argv[2]),
    )
    for _ in range(int(sys.argv[4])):
        http.get_json("/v1/marketstatus/now")
    """
)


def test_the_shared_limiter_holds_the_rate_across_four_parallel_tasks(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    arrivals: list[float] = []

    def status(_: Request) -> Response:
        arrivals.append(datetime.now(UTC).timestamp())
        return Response(json.dumps({"market": "open"}), content_type="application/json")

    httpserver.expect_request("/v1/marketstatus/now").respond_with_handler(status)
    per_second, calls_each = 8, 6
    limits = tmp_path / "rate_limits.db"
    command = [sys.executable, "-c", LIMITED_CALLS, httpserver.url_for("")]
    tasks = [
        subprocess.Popen([*command, str(limits), str(per_second), str(calls_each)])
        for _ in range(4)
    ]
    assert [task.wait(timeout=120) for task in tasks] == [0, 0, 0, 0]
    assert len(arrivals) == 4 * calls_each
    arrivals.sort()
    # However the four interleave, no second ever saw more than the rate (a little
    # less than a second as the window absorbs the time a request takes to arrive).
    busiest = max(
        sum(1 for moment in arrivals if start <= moment < start + 0.9) for start in arrivals
    )
    assert busiest <= per_second
    assert arrivals[-1] - arrivals[0] >= timedelta(seconds=2).total_seconds()
