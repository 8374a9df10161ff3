"""A local emulator of the Alpaca and Massive HTTP APIs, for the provider benchmark.

``bench/bench_providers.py`` points the real ``AlpacaProvider`` and
``MassiveProvider`` at this server (127.0.0.1 only) to count their requests
and time them against each API's documented rate limit. It serves, in each
API's documented JSON format, the endpoints the two providers call:

- Alpaca: ``/v2/account``, ``/v2/assets``, ``/v2/stocks/bars`` (``1Min`` and
  ``1Day``, bars sorted by symbol then time, at most ``limit`` bars per page
  across all symbols, ``limit`` 1..10,000 (default 1,000) or HTTP 422, more
  behind ``next_page_token``), ``/v1/corporate-actions`` (filtered on
  ``process_date``, ``limit`` 1..1,000), ``/v1beta1/news`` (``limit`` 1..50);
- Massive: ``/v1/marketstatus/now``, ``/v3/reference/tickers/{ticker}``,
  ``/v2/aggs/grouped/locale/us/market/stocks/{date}`` (the whole market, one
  page), ``/v2/aggs/ticker/{ticker}/range/1/{minute|day}/{from}/{to}``
  (``limit`` capped at 50,000, default 5,000, more behind ``next_url``),
  ``/v3/reference/splits`` and ``/v3/reference/dividends`` (``ticker`` or
  ``ticker.gte``/``ticker.lte``, date ranges, ``limit`` capped at 1,000),
  ``/v2/reference/news``. Its ``next_url`` names ``https://api.massive.com``
  as the real API does: a client must re-target it to the host it was given.

Data is synthetic and deterministic, computed per request (no fixture
files): a market of ``market_size`` tickers (``AAAA``, ``AAAB``, ...) trading
every minute from 04:00 to 20:00 New York on every session of the calendar,
about quarterly dividends for one ticker in three, and a split every two
years for one ticker in 25. Prices are not split-adjusted: a split shows
only in the corporate actions.
When ``now`` is set, nothing is served that had not happened by then (a bar
is served once it has ended, a daily bar once its session has closed), as
the real APIs serve no incomplete bars.

Each API's rate limit is enforced as a sliding window (no more than
``limit`` requests in any ``window_seconds``): a request over it gets HTTP 429
with ``Retry-After`` (whole seconds, as HTTP allows) and is not served. The
defaults are the documented free plans, Alpaca 200 per 60 s and Massive 5 per
60 s; a benchmark may scale the window down (e.g. Massive 5 per 1 s) to run
60x faster. A request without the API's credentials (Alpaca's two key
headers, Massive's bearer key) gets HTTP 401. Every request is counted by
endpoint and status.

Use in a thread (``with ProviderEmulator(calendar) as emulator: emulator.url``)
or as its own process, so its work does not share the client's GIL or
memory: ``python bench/provider_emulator.py --calendar-cache DIR`` prints
``listening on http://127.0.0.1:PORT`` and serves until its stdin closes.
Either way ``GET /_emulator/stats`` returns the counts and ``POST
/_emulator/reset`` (JSON body: ``alpaca_rate``, ``massive_rate`` as
``[limit, window_seconds]`` or null for no limit, and ``now`` as epoch
seconds or null) clears counts and windows; neither is rate limited.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from orchestrator.market_calendar import MarketCalendar, load_calendar  # noqa: E402

# Documented page limits.
ALPACA_BARS_MAX_LIMIT = 10_000
ALPACA_BARS_DEFAULT_LIMIT = 1_000
ALPACA_ACTIONS_MAX_LIMIT = 1_000
ALPACA_ACTIONS_DEFAULT_LIMIT = 100
ALPACA_NEWS_MAX_LIMIT = 50
ALPACA_NEWS_DEFAULT_LIMIT = 10
MASSIVE_AGGS_MAX_LIMIT = 50_000
MASSIVE_AGGS_DEFAULT_LIMIT = 5_000
MASSIVE_REFERENCE_MAX_LIMIT = 1_000
MASSIVE_REFERENCE_DEFAULT_LIMIT = 10
MASSIVE_PUBLIC_URL = "https://api.massive.com"

# Synthetic market: trading from 04:00 to 20:00 New York (extended hours included).
EXTENDED_OPEN = clock_time(4, 0)
EXTENDED_CLOSE = clock_time(20, 0)
# About quarterly; not 91 days (13 weeks), which would put every ex-date on one weekday.
DIVIDEND_EVERY_DAYS = 89
DIVIDEND_PAYS_DAYS = 21  # payable (Alpaca's process_date) three weeks after the ex-date
SPLIT_EVERY_DAYS = 730


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests in any ``window_seconds``."""

    limit: int
    window_seconds: float

    def floor_seconds(self, requests: int) -> float:
        """The least wall time ``requests`` requests can take under this limit.

        The first ``limit`` go at once; each further ``limit`` waits one more window.
        """
        return max(requests - 1, 0) // self.limit * self.window_seconds

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """``"200/60"`` (requests per seconds), or ``"none"`` for no limit."""
        if text.lower() == "none":
            return None
        limit, window = text.split("/")
        return cls(int(limit), float(window))


ALPACA_FREE_RATE = RateLimit(200, 60.0)
MASSIVE_FREE_RATE = RateLimit(5, 60.0)


class SlidingWindow:
    """One API's rate limit, as the server sees it: arrival times of the admitted requests."""

    def __init__(self, rate: RateLimit | None) -> None:
        self.rate = rate
        self.admitted: deque[float] = deque()

    def admit(self, now: float) -> float | None:
        """None when the request may be served, else the seconds until one may."""
        if self.rate is None:
            return None
        while self.admitted and self.admitted[0] <= now - self.rate.window_seconds:
            self.admitted.popleft()
        if len(self.admitted) < self.rate.limit:
            self.admitted.append(now)
            return None
        return self.admitted[0] + self.rate.window_seconds - now


# -- the synthetic market ---------------------------------------------------------------


def market_symbols(size: int) -> list[str]:
    """``size`` four-letter tickers in alphabetical order: AAAA, AAAB, ..."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    symbols = []
    for index in range(size):
        name = ""
        for _ in range(4):
            index, digit = divmod(index, 26)
            name = letters[digit] + name
        symbols.append(name)
    return symbols


def _mix(index: int, step: int) -> int:
    """A deterministic pseudo-random 32-bit number for (ticker, cycle): phases of actions."""
    return zlib.crc32(f"{index}:{step}".encode())


class JsonText(str):
    """A response body already encoded as JSON (the bulk bar endpoints build it directly:
    ``json.dumps`` of 10,000 bar objects would make the emulator, not the API, the
    bottleneck of a scaled run)."""


# One bar's fields after its stamp (and ticker); prices have two decimals.
BAR_FIELDS = '"o":%.2f,"h":%.2f,"l":%.2f,"c":%.2f,"v":%d,"n":%d,"vw":%.4f}'
_U32 = np.uint64(0xFFFFFFFF)


def bar_texts(heads: Sequence[str], indexes: Sequence[int], steps: Sequence[int]) -> list[str]:
    """Bars as JSON object texts: ``{`` + each head (its ``"t":...,`` fields) + OHLCV.

    Values are deterministic per (ticker index, day or minute) and valid for the
    store (0 < low <= open, close <= high), computed for all bars at once.
    """
    if not heads:
        return []
    index = np.asarray(indexes, dtype=np.uint64)
    step = np.asarray(steps, dtype=np.uint64)
    mixed = (index * np.uint64(0x9E3779B1) + step * np.uint64(0x85EBCA77)) & _U32
    mixed ^= mixed >> np.uint64(15)
    mixed = (mixed * np.uint64(0x2C1B3C6D)) & _U32
    mixed ^= mixed >> np.uint64(12)
    noise = mixed.astype(np.int64)
    base = 5 + (index.astype(np.int64) * 7919) % 995  # 5 to 999: every price stays positive
    close = np.round(base * (1 + 0.1 * np.sin((step.astype(np.float64) + index) / 17)), 2)
    open_ = np.round(close * (1 + ((noise % 201) - 100) / 10_000), 2)
    high = np.round(np.maximum(open_, close) * 1.01, 2)
    low = np.round(np.minimum(open_, close) * 0.99, 2)
    vwap = np.round((high + low + close) / 3, 4)
    rows = zip(
        heads,
        open_.tolist(),
        high.tolist(),
        low.tolist(),
        close.tolist(),
        (1_000 + noise % 1_000_000).tolist(),
        (10 + noise % 5_000).tolist(),
        vwap.tolist(),
        strict=True,
    )
    template = "{%s" + BAR_FIELDS
    return [template % row for row in rows]


def with_raw_field(head: Mapping[str, Any], name: str, raw: str) -> JsonText:
    """``head`` as JSON with one more field whose value is already JSON text."""
    text = json.dumps(head, separators=(",", ":"))
    return JsonText(f'{text[:-1]},"{name}":{raw}}}')


@dataclass(frozen=True)
class Dividend:
    symbol: str
    ex_date: date
    pay_date: date
    amount: float


@dataclass(frozen=True)
class Split:
    symbol: str
    ex_date: date
    old_rate: int
    new_rate: int


class Market:
    """The emulated market: tickers, sessions, bars, corporate actions and news."""

    def __init__(self, calendar: MarketCalendar, size: int) -> None:
        self.calendar = calendar
        self.symbols = market_symbols(size)
        self.index = {symbol: position for position, symbol in enumerate(self.symbols)}
        # One ticker in three pays dividends and one in 25 splits, each on its own phase
        # of the cycle (a hash, so any subset of the market has its share of both).
        phases = {symbol: _mix(position, -1) for symbol, position in self.index.items()}
        self.dividend_phase = {s: phase for s, phase in phases.items() if phase % 3 == 0}
        self.split_phase = {s: phase for s, phase in phases.items() if phase % 25 == 1}

    @lru_cache(maxsize=4096)  # noqa: B019 - one Market lives as long as its server
    def _session_times(self, day: date) -> tuple[bool, int, int, int, int]:
        """(is session, midnight, extended open, extended close, close) as epoch seconds."""
        if not self.calendar.is_session(day):
            return False, 0, 0, 0, 0
        tz = self.calendar.tz
        return (
            True,
            int(datetime.combine(day, clock_time(0), tz).timestamp()),
            int(datetime.combine(day, EXTENDED_OPEN, tz).timestamp()),
            int(datetime.combine(day, EXTENDED_CLOSE, tz).timestamp()),
            int(self.calendar.hours(day).close.timestamp()),
        )

    def sessions(self, first: date, last: date) -> list[date]:
        if last < first:
            return []
        return self.calendar.sessions_in_range(first, last)

    def local_date(self, epoch_seconds: float) -> date:
        return datetime.fromtimestamp(epoch_seconds, self.calendar.tz).date()

    def daily_stamps(self, start: int, end: int, now: float | None) -> list[tuple[date, int]]:
        """(session, midnight New York) of the sessions whose midnight is in [start, end]."""
        found = []
        for day in self.sessions(self.local_date(start), self.local_date(end)):
            _, midnight, _, _, close = self._session_times(day)
            if start <= midnight <= end and (now is None or close <= now):
                found.append((day, midnight))
        return found

    def minute_stamps(self, start: int, end: int, now: float | None) -> list[int]:
        """Start times of the minute bars in [start, end] that have ended by ``now``."""
        if now is not None:
            end = min(end, int(now) - 60)
        found: list[int] = []
        for day in self.sessions(self.local_date(start), self.local_date(end)):
            _, _, first, last, _ = self._session_times(day)
            low = max(first, start + (-start % 60))
            high = min(last - 60, end)
            found.extend(range(low, high + 1, 60))
        return found

    def session_close(self, day: date) -> int | None:
        is_session, *_, close = self._session_times(day)
        return close if is_session else None

    def _cycle_days(self, first: date, last: date, phase: int, period: int) -> list[date]:
        """Sessions from ``first`` to ``last`` whose ordinal plus ``phase`` is a multiple of
        ``period``: a ticker's ex-dates, stepped through directly (no scan of every day)."""
        start = first.toordinal() + (-(first.toordinal() + phase)) % period
        days = (date.fromordinal(ordinal) for ordinal in range(start, last.toordinal() + 1, period))
        return [day for day in days if self.calendar.is_session(day)]

    def dividends(self, symbols: Sequence[str], first: date, last: date) -> list[Dividend]:
        """Cash dividends going ex from ``first`` to ``last``, by ex-date then symbol."""
        found = []
        for symbol in symbols:
            phase = self.dividend_phase.get(symbol)
            if phase is None:
                continue
            amount = round(0.05 + (self.index[symbol] % 40) * 0.01, 2)
            for day in self._cycle_days(first, last, phase, DIVIDEND_EVERY_DAYS):
                pay_date = day + timedelta(days=DIVIDEND_PAYS_DAYS)
                found.append(Dividend(symbol, day, pay_date, amount))
        return sorted(found, key=lambda dividend: (dividend.ex_date, dividend.symbol))

    def splits(self, symbols: Sequence[str], first: date, last: date) -> list[Split]:
        """Splits effective from ``first`` to ``last``: 2-for-1, or 1-for-10 for a few."""
        found = []
        for symbol in symbols:
            phase = self.split_phase.get(symbol)
            if phase is None:
                continue
            old, new = (10, 1) if phase % 100 == 1 else (1, 2)
            for day in self._cycle_days(first, last, phase, SPLIT_EVERY_DAYS):
                found.append(Split(symbol, day, old, new))
        return sorted(found, key=lambda split: (split.ex_date, split.symbol))

    def processed_actions(
        self, symbols: Sequence[str], start: date, end: date
    ) -> tuple[list[Split], list[Dividend]]:
        """Splits and dividends by Alpaca's ``process_date`` from ``start`` to ``end``: a
        split's is its ex-date, a dividend's its payable date (weeks after the ex-date)."""
        lag = timedelta(days=DIVIDEND_PAYS_DAYS)
        return self.splits(symbols, start, end), self.dividends(symbols, start - lag, end - lag)

    def articles(self, symbols: Sequence[str], start: int, end: int) -> list[tuple[int, str]]:
        """(published, symbol) of one headline per symbol per session, at 12:00 New York."""
        found = []
        for day in self.sessions(self.local_date(start), self.local_date(end)):
            noon = int(datetime.combine(day, clock_time(12), self.calendar.tz).timestamp())
            if start <= noon <= end:
                found.extend((noon, symbol) for symbol in symbols)
        return found


# -- helpers for both APIs -------------------------------------------------------------


class ApiError(Exception):
    """An error response: status and JSON body."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def rfc3339(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_cursor(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()


def decode_cursor(text: str, fail: Callable[[str], ApiError]) -> dict[str, Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(text.encode()))
    except ValueError:
        raise fail(f"invalid page token or cursor {text!r}") from None


def page_limit(
    text: str | None, default: int, maximum: int, cap: bool, fail: Callable[[str], ApiError]
) -> int:
    """The page size asked for: over ``maximum`` is capped (Massive) or refused (Alpaca)."""
    if text is None:
        return default
    try:
        limit = int(text)
    except ValueError:
        raise fail(f"invalid limit {text!r}") from None
    if limit < 1 or (limit > maximum and not cap):
        raise fail(f"invalid limit {limit}: must be between 1 and {maximum}")
    return min(limit, maximum)


def alpaca_error(message: str) -> ApiError:
    return ApiError(422, {"code": 42210000, "message": message})


def massive_error(message: str) -> ApiError:
    return ApiError(400, {"status": "ERROR", "request_id": "emulator", "error": message})


# -- the server --------------------------------------------------------------------------

Query = dict[str, str]
Handler = Callable[[Query, Sequence[str]], Any]


@dataclass(frozen=True)
class Route:
    api: str  # "alpaca" or "massive": whose rate limit and auth apply
    name: str  # what the counts are kept under
    pattern: re.Pattern[str]
    handler: Handler


class ProviderEmulator:
    """The emulator: routes, rate windows, counts, and the HTTP server around them."""

    def __init__(
        self,
        calendar: MarketCalendar,
        *,
        market_size: int = 10_000,
        alpaca_rate: RateLimit | None = ALPACA_FREE_RATE,
        massive_rate: RateLimit | None = MASSIVE_FREE_RATE,
        now: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.market = Market(calendar, market_size)
        self.lock = threading.Lock()
        self.routes = self._routes()
        self.reset(alpaca_rate=alpaca_rate, massive_rate=massive_rate, now=now)
        self.address = (host, port)
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ProviderEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> str:
        """Serve in a background thread; returns the base URL."""
        self.server = ThreadingHTTPServer(self.address, _handler_class(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join()

    def reset(
        self,
        *,
        alpaca_rate: RateLimit | None,
        massive_rate: RateLimit | None,
        now: float | None,
    ) -> None:
        """New rate limits and clock; counts and windows start from zero."""
        with self.lock:
            self.windows = {
                "alpaca": SlidingWindow(alpaca_rate),
                "massive": SlidingWindow(massive_rate),
            }
            self.now = now
            self.counts: dict[str, dict[str, int]] = {}
            self.bytes_sent: dict[str, int] = {}

    def stats(self) -> dict[str, Any]:
        """Requests by endpoint and status, and response bytes by endpoint."""
        with self.lock:
            return {
                "requests": {name: dict(by_status) for name, by_status in self.counts.items()},
                "bytes": dict(self.bytes_sent),
            }

    # -- request handling ------------------------------------------------------------------

    def respond(
        self, path: str, query: Query, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes, str]:
        """(status, headers, body, endpoint name) of one GET."""
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            status, extra, body = self._serve(route, match.groups(), query, headers)
            if isinstance(body, JsonText):
                data = body.encode()
            else:
                data = json.dumps(body, separators=(",", ":")).encode()
            key = f"{route.api} {route.name}"
            with self.lock:
                by_status = self.counts.setdefault(key, {})
                by_status[str(status)] = by_status.get(str(status), 0) + 1
                self.bytes_sent[key] = self.bytes_sent.get(key, 0) + len(data)
            return status, extra, data, route.name
        return 404, {}, json.dumps({"message": f"no such endpoint {path}"}).encode(), "unknown"

    def _serve(
        self, route: Route, parts: Sequence[str], query: Query, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        refused = self._refuse_unauthenticated(route.api, query, headers)
        if refused is not None:
            return refused
        with self.lock:
            window = self.windows[route.api]
            wait = window.admit(time.monotonic())
        extra = self._rate_headers(route.api, window)
        if wait is not None:
            # Whole seconds, rounded up: the client must not come back early.
            extra["Retry-After"] = str(max(1, math.ceil(wait)))
            return 429, extra, self._rate_limited_body(route.api)
        try:
            return 200, extra, route.handler(query, parts)
        except ApiError as error:
            return error.status, extra, error.body

    @staticmethod
    def _refuse_unauthenticated(
        api: str, query: Query, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], Any] | None:
        if api == "alpaca":
            if headers.get("apca-api-key-id") and headers.get("apca-api-secret-key"):
                return None
            return 401, {}, {"code": 40110000, "message": "request is not authorized"}
        bearer = headers.get("authorization", "")
        if (bearer.startswith("Bearer ") and bearer.removeprefix("Bearer ")) or query.get("apiKey"):
            return None
        return 401, {}, {"status": "ERROR", "request_id": "emulator", "error": "Unknown API Key"}

    @staticmethod
    def _rate_headers(api: str, window: SlidingWindow) -> dict[str, str]:
        if api != "alpaca" or window.rate is None:
            return {}
        # Alpaca reports its limit on every response.
        remaining = max(window.rate.limit - len(window.admitted), 0)
        reset = int(time.time() + window.rate.window_seconds)
        return {
            "X-RateLimit-Limit": str(window.rate.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }

    @staticmethod
    def _rate_limited_body(api: str) -> dict[str, Any]:
        if api == "alpaca":
            return {"code": 42910000, "message": "rate limit exceeded"}
        return {
            "status": "ERROR",
            "request_id": "emulator",
            "error": "You've exceeded the maximum requests per minute, please wait or "
            "upgrade your subscription to continue. https://massive.com/pricing",
        }

    def _routes(self) -> list[Route]:
        def route(api: str, template: str, handler: Handler) -> Route:
            # "{name}" in a template matches one path segment.
            pattern = "^" + re.sub(r"\{\w+\}", "([^/]+)", template) + "$"
            return Route(api, template, re.compile(pattern), handler)

        return [
            route("alpaca", "/v2/account", self.alpaca_account),
            route("alpaca", "/v2/assets", self.alpaca_assets),
            route("alpaca", "/v2/stocks/bars", self.alpaca_bars),
            route("alpaca", "/v1/corporate-actions", self.alpaca_corporate_actions),
            route("alpaca", "/v1beta1/news", self.alpaca_news),
            route("massive", "/v1/marketstatus/now", self.massive_market_status),
            route("massive", "/v3/reference/tickers/{ticker}", self.massive_ticker),
            route(
                "massive",
                "/v2/aggs/grouped/locale/us/market/stocks/{date}",
                self.massive_grouped_daily,
            ),
            route(
                "massive",
                "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}",
                self.massive_aggregates,
            ),
            route("massive", "/v3/reference/splits", self.massive_splits),
            route("massive", "/v3/reference/dividends", self.massive_dividends),
            route("massive", "/v2/reference/news", self.massive_news),
        ]

    def _clock(self) -> float:
        """The emulated now: nothing later than this has happened."""
        return time.time() if self.now is None else self.now

    # -- Alpaca ------------------------------------------------------------------------------

    def alpaca_account(self, query: Query, parts: Sequence[str]) -> Any:
        return {"id": "00000000-0000-4000-8000-000000000000", "status": "ACTIVE", "currency": "USD"}

    def alpaca_assets(self, query: Query, parts: Sequence[str]) -> Any:
        return [
            {
                "id": f"asset-{index}",
                "class": "us_equity",
                "exchange": "NASDAQ" if index % 2 else "NYSE",
                "symbol": symbol,
                "name": f"{symbol} Synthetic Inc. Common Stock",
                "status": "active",
                "tradable": True,
            }
            for index, symbol in enumerate(self.market.symbols)
        ]

    def _alpaca_time(self, query: Query, name: str, default: float) -> int:
        text = query.get(name)
        if text is None:
            return int(default)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise alpaca_error(f"invalid {name}: {text!r}") from None
        if moment.tzinfo is None:
            raise alpaca_error(f"invalid {name}: {text!r} has no time zone")
        return int(moment.timestamp())

    def alpaca_bars(self, query: Query, parts: Sequence[str]) -> Any:
        asked = [symbol for symbol in query.get("symbols", "").split(",") if symbol]
        if not asked:
            raise ApiError(400, {"code": 40010001, "message": "missing symbols"})
        timeframe = query.get("timeframe")
        if timeframe not in ("1Min", "1Day"):
            raise alpaca_error(f"invalid timeframe {timeframe!r} (the emulator serves 1Min, 1Day)")
        if query.get("adjustment", "raw") != "raw":
            raise alpaca_error("the emulator serves adjustment=raw only")
        limit = page_limit(
            query.get("limit"),
            ALPACA_BARS_DEFAULT_LIMIT,
            ALPACA_BARS_MAX_LIMIT,
            False,
            alpaca_error,
        )
        now = self._clock()
        if "start" not in query:
            raise alpaca_error("the emulator needs start")
        start = self._alpaca_time(query, "start", now)
        end = self._alpaca_time(query, "end", now)
        # Sorted by symbol then time; unknown symbols have no bars.
        symbols = sorted(set(asked) & self.market.index.keys())
        market = self.market
        if timeframe == "1Day":
            stamps = [
                (rfc3339(midnight), day.toordinal())
                for day, midnight in market.daily_stamps(start, end, now)
            ]
        else:
            stamps = [(rfc3339(t), t // 60) for t in market.minute_stamps(start, end, now)]
        offset = 0
        if query.get("page_token"):
            offset = int(decode_cursor(query["page_token"], alpaca_error)["offset"])
        total = len(symbols) * len(stamps)
        stop = min(offset + limit, total)
        # Bar ``flat`` of the ordering is symbol flat // len(stamps), stamp flat % len(stamps).
        flats = range(offset, stop)
        positions = [divmod(flat, len(stamps)) for flat in flats]
        texts = bar_texts(
            [f'"t":"{stamps[stamp][0]}",' for _, stamp in positions],
            [market.index[symbols[symbol]] for symbol, _ in positions],
            [stamps[stamp][1] for _, stamp in positions],
        )
        by_symbol: dict[str, list[str]] = {}
        for (symbol, _), text in zip(positions, texts, strict=True):
            by_symbol.setdefault(symbols[symbol], []).append(text)
        bars = ",".join(f'"{symbol}":[{",".join(items)}]' for symbol, items in by_symbol.items())
        token = encode_cursor({"offset": stop}) if stop < total else None
        return with_raw_field({"next_page_token": token, "currency": "USD"}, "bars", f"{{{bars}}}")

    def alpaca_corporate_actions(self, query: Query, parts: Sequence[str]) -> Any:
        asked = [symbol for symbol in query.get("symbols", "").split(",") if symbol]
        symbols = [symbol for symbol in asked if symbol in self.market.index]
        limit = page_limit(
            query.get("limit"),
            ALPACA_ACTIONS_DEFAULT_LIMIT,
            ALPACA_ACTIONS_MAX_LIMIT,
            False,
            alpaca_error,
        )
        try:
            today = self.market.local_date(self._clock())
            start = date.fromisoformat(query.get("start", today.isoformat()))
            end = date.fromisoformat(query.get("end", today.isoformat()))
        except ValueError:
            raise alpaca_error("invalid start or end: dates are YYYY-MM-DD") from None
        types = set(query.get("types", "forward_split,reverse_split,cash_dividend").split(","))
        splits, dividends = self.market.processed_actions(symbols, start, end)
        actions: list[tuple[str, str, dict[str, Any]]] = []
        for split in splits:
            kind = "forward_splits" if split.new_rate > split.old_rate else "reverse_splits"
            if kind.removesuffix("s") not in types:
                continue
            day = split.ex_date.isoformat()
            record = (split.ex_date - timedelta(days=1)).isoformat()
            item = {
                "id": f"split-{split.symbol}-{day}",
                "symbol": split.symbol,
                "new_rate": split.new_rate,
                "old_rate": split.old_rate,
                "process_date": day,
                "ex_date": day,
                "record_date": record,
                "payable_date": record,
            }
            actions.append((day, kind, item))
        for dividend in dividends if "cash_dividend" in types else []:
            day = dividend.pay_date.isoformat()
            item = {
                "id": f"dividend-{dividend.symbol}-{dividend.ex_date}",
                "symbol": dividend.symbol,
                "rate": dividend.amount,
                "special": False,
                "foreign": False,
                "process_date": day,
                "ex_date": dividend.ex_date.isoformat(),
                "record_date": dividend.ex_date.isoformat(),
                "payable_date": day,
            }
            actions.append((day, "cash_dividends", item))
        actions.sort(key=lambda action: (action[0], action[2]["symbol"]))
        offset = 0
        if query.get("page_token"):
            offset = int(decode_cursor(query["page_token"], alpaca_error)["offset"])
        stop = min(offset + limit, len(actions))
        grouped: dict[str, list[dict[str, Any]]] = {}
        for _, kind, item in actions[offset:stop]:
            grouped.setdefault(kind, []).append(item)
        token = encode_cursor({"offset": stop}) if stop < len(actions) else None
        return {"corporate_actions": grouped, "next_page_token": token}

    def alpaca_news(self, query: Query, parts: Sequence[str]) -> Any:
        asked = [symbol for symbol in query.get("symbols", "").split(",") if symbol]
        symbols = [symbol for symbol in asked if symbol in self.market.index] or self.market.symbols
        limit = page_limit(
            query.get("limit"),
            ALPACA_NEWS_DEFAULT_LIMIT,
            ALPACA_NEWS_MAX_LIMIT,
            False,
            alpaca_error,
        )
        now = self._clock()
        start = self._alpaca_time(query, "start", now - 86_400)
        end = min(self._alpaca_time(query, "end", now), int(now))
        found = self.market.articles(symbols, start, end)
        if query.get("sort", "desc") == "desc":
            found.reverse()
        offset = 0
        if query.get("page_token"):
            offset = int(decode_cursor(query["page_token"], alpaca_error)["offset"])
        stop = min(offset + limit, len(found))
        news = [
            {
                "id": published // 60 * 100_000 + self.market.index[symbol],
                "headline": f"{symbol} shares move on synthetic news",
                "author": "Emulator Newsdesk",
                "created_at": rfc3339(published),
                "updated_at": rfc3339(published),
                "summary": "",
                "url": f"https://example.invalid/news/{symbol}/{published}",
                "images": [],
                "symbols": [symbol],
                "source": "emulator",
            }
            for published, symbol in found[offset:stop]
        ]
        token = encode_cursor({"offset": stop}) if stop < len(found) else None
        return {"news": news, "next_page_token": token}

    # -- Massive -------------------------------------------------------------------------

    def massive_market_status(self, query: Query, parts: Sequence[str]) -> Any:
        is_open = self.market.calendar.is_open(datetime.fromtimestamp(self._clock(), UTC))
        return {
            "market": "open" if is_open else "closed",
            "serverTime": rfc3339(int(self._clock())),
        }

    def massive_ticker(self, query: Query, parts: Sequence[str]) -> Any:
        symbol = unquote(parts[0])
        if symbol not in self.market.index:
            raise ApiError(
                404,
                {"status": "NOT_FOUND", "request_id": "emulator", "message": "Ticker not found."},
            )
        return {
            "request_id": "emulator",
            "status": "OK",
            "results": {
                "ticker": symbol,
                "name": f"{symbol} Synthetic Inc.",
                "market": "stocks",
                "locale": "us",
                "primary_exchange": "XNAS",
                "type": "CS",
                "active": True,
                "sic_description": "SYNTHETIC INDUSTRIES",
            },
        }

    def massive_grouped_daily(self, query: Query, parts: Sequence[str]) -> Any:
        try:
            day = date.fromisoformat(parts[0])
        except ValueError:
            raise massive_error(f"invalid date {parts[0]!r}") from None
        close = self.market.session_close(day)
        symbols: list[str] = []
        if close is not None and close <= self._clock():
            symbols = self.market.symbols  # the whole market, one page
        texts = bar_texts(
            [f'"T":"{symbol}","t":{close * 1000},' for symbol in symbols],
            range(len(symbols)),
            [day.toordinal()] * len(symbols),
        )
        head = {
            "queryCount": len(texts),
            "resultsCount": len(texts),
            "adjusted": query.get("adjusted", "true") == "true",
            "status": "OK",
            "request_id": "emulator",
        }
        return with_raw_field(head, "results", f"[{','.join(texts)}]")

    def _massive_bound(self, text: str, end_of_day: bool) -> int:
        """A from/to path segment (YYYY-MM-DD or epoch ms) as epoch ms."""
        if text.isdigit():
            return int(text)
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise massive_error(f"invalid from/to {text!r}") from None
        if end_of_day:
            day += timedelta(days=1)
        midnight = datetime.combine(day, clock_time(0), self.market.calendar.tz)
        return int(midnight.timestamp() * 1000) - (1 if end_of_day else 0)

    def massive_aggregates(self, query: Query, parts: Sequence[str]) -> Any:
        ticker, multiplier, timespan, first_text, last_text = (unquote(part) for part in parts)
        if query.get("cursor"):
            # The next page's query lives in the cursor; the path carries the next start.
            query = {**decode_cursor(query["cursor"], massive_error), **query}
        if multiplier != "1" or timespan not in ("minute", "day"):
            raise massive_error("the emulator serves range/1/minute and range/1/day only")
        limit = page_limit(
            query.get("limit"),
            MASSIVE_AGGS_DEFAULT_LIMIT,
            MASSIVE_AGGS_MAX_LIMIT,
            True,
            massive_error,
        )
        first_ms = self._massive_bound(first_text, end_of_day=False)
        last_ms = self._massive_bound(last_text, end_of_day=True)
        empty = {"ticker": ticker, "queryCount": 0, "resultsCount": 0, "status": "OK"}
        if ticker not in self.market.index:
            return {**empty, "request_id": "emulator"}
        now = self._clock()
        first, last = math.ceil(first_ms / 1000), last_ms // 1000
        if timespan == "day":
            stamps = [
                (midnight, day.toordinal())
                for day, midnight in self.market.daily_stamps(first, last, now)
            ]
        else:
            stamps = [(start, start // 60) for start in self.market.minute_stamps(first, last, now)]
        if query.get("sort", "asc") == "desc":
            stamps.reverse()
        page = stamps[:limit]
        texts = bar_texts(
            [f'"t":{stamp * 1000},' for stamp, _ in page],
            [self.market.index[ticker]] * len(page),
            [step for _, step in page],
        )
        head: dict[str, Any] = {
            "ticker": ticker,
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": query.get("adjusted", "true") == "true",
            "status": "OK",
            "request_id": "emulator",
        }
        if len(stamps) > limit and query.get("sort", "asc") == "asc":
            cursor = encode_cursor(
                {name: query[name] for name in ("adjusted", "sort", "limit") if name in query}
            )
            head["next_url"] = (
                f"{MASSIVE_PUBLIC_URL}/v2/aggs/ticker/{quote(ticker, safe='')}/range/1/"
                f"{timespan}/{stamps[limit][0] * 1000}/{last_text}?cursor={cursor}"
            )
        return with_raw_field(head, "results", f"[{','.join(texts)}]")

    def _massive_listing(
        self, path: str, query: Query, rows: Callable[[Query], list[dict[str, Any]]]
    ) -> Any:
        """One page of a v3 reference listing; the cursor carries the query and the offset."""
        offset = 0
        if query.get("cursor"):
            state = decode_cursor(query["cursor"], massive_error)
            offset = int(state.pop("offset"))
            query = state
        limit = page_limit(
            query.get("limit"),
            MASSIVE_REFERENCE_DEFAULT_LIMIT,
            MASSIVE_REFERENCE_MAX_LIMIT,
            True,
            massive_error,
        )
        found = rows(query)
        body: dict[str, Any] = {
            "results": found[offset : offset + limit],
            "status": "OK",
            "request_id": "emulator",
        }
        if offset + limit < len(found):
            cursor = encode_cursor({**query, "offset": offset + limit})
            body["next_url"] = f"{MASSIVE_PUBLIC_URL}{path}?cursor={cursor}"
        return body

    def _massive_tickers(self, query: Query) -> list[str]:
        """The tickers a reference query filters on: ``ticker`` or a ``.gte``/``.lte`` range."""
        if "ticker" in query:
            return [query["ticker"]] if query["ticker"] in self.market.index else []
        low, high = query.get("ticker.gte", ""), query.get("ticker.lte", "\uffff")
        return [symbol for symbol in self.market.symbols if low <= symbol <= high]

    def _massive_dates(self, query: Query, field: str) -> tuple[date, date]:
        try:
            first = date.fromisoformat(query.get(f"{field}.gte", "1990-01-01"))
            last = date.fromisoformat(query.get(f"{field}.lte", "2099-12-31"))
        except ValueError:
            raise massive_error(f"invalid {field} filter") from None
        calendar = self.market.calendar
        return max(first, calendar.first_session), min(last, calendar.last_session)

    def massive_splits(self, query: Query, parts: Sequence[str]) -> Any:
        def rows(query: Query) -> list[dict[str, Any]]:
            first, last = self._massive_dates(query, "execution_date")
            return [
                {
                    "execution_date": split.ex_date.isoformat(),
                    "id": f"split-{split.symbol}-{split.ex_date}",
                    "split_from": split.old_rate,
                    "split_to": split.new_rate,
                    "ticker": split.symbol,
                }
                for split in self.market.splits(self._massive_tickers(query), first, last)
            ]

        return self._massive_listing("/v3/reference/splits", query, rows)

    def massive_dividends(self, query: Query, parts: Sequence[str]) -> Any:
        def rows(query: Query) -> list[dict[str, Any]]:
            first, last = self._massive_dates(query, "ex_dividend_date")
            return [
                {
                    "cash_amount": dividend.amount,
                    "currency": "USD",
                    "dividend_type": "CD",
                    "ex_dividend_date": dividend.ex_date.isoformat(),
                    "frequency": 4,
                    "id": f"dividend-{dividend.symbol}-{dividend.ex_date}",
                    "pay_date": dividend.pay_date.isoformat(),
                    "record_date": dividend.ex_date.isoformat(),
                    "ticker": dividend.symbol,
                }
                for dividend in self.market.dividends(self._massive_tickers(query), first, last)
            ]

        return self._massive_listing("/v3/reference/dividends", query, rows)

    def massive_news(self, query: Query, parts: Sequence[str]) -> Any:
        def rows(query: Query) -> list[dict[str, Any]]:
            now = self._clock()
            start = query.get("published_utc.gte")
            end = query.get("published_utc.lte")
            start_ts = (
                int(datetime.fromisoformat(start).timestamp()) if start else int(now) - 86_400
            )
            end_ts = int(datetime.fromisoformat(end).timestamp()) if end else int(now)
            found = self.market.articles(
                self._massive_tickers(query), start_ts, min(end_ts, int(now))
            )
            if query.get("order", "desc") == "desc":
                found.reverse()
            return [
                {
                    "id": f"news-{symbol}-{published}",
                    "publisher": {"name": "Emulator Wire"},
                    "title": f"{symbol} shares move on synthetic news",
                    "author": "Emulator Newsdesk",
                    "published_utc": rfc3339(published),
                    "article_url": f"https://example.invalid/news/{symbol}/{published}",
                    "tickers": [symbol],
                }
                for published, symbol in found
            ]

        return self._massive_listing("/v2/reference/news", query, rows)


def _handler_class(emulator: ProviderEmulator) -> type[BaseHTTPRequestHandler]:
    class EmulatorHandler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps connections alive, as the real APIs (and requests' session) do.
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm the body waits for
        # the client's delayed ACK, 40 ms a response, which no real API adds.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would swamp the benchmark's output

        def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/_emulator/stats":
                self._send(200, {}, json.dumps(emulator.stats()).encode())
                return
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, extra, body, _ = emulator.respond(parts.path, query, headers)
            self._send(status, extra, body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if urlsplit(self.path).path != "/_emulator/reset":
                self._send(404, {}, b'{"message":"no such endpoint"}')
                return
            settings = json.loads(self.rfile.read(length) or b"{}")

            def rate(name: str) -> RateLimit | None:
                value = settings.get(name)
                return None if value is None else RateLimit(int(value[0]), float(value[1]))

            emulator.reset(
                alpaca_rate=rate("alpaca_rate"),
                massive_rate=rate("massive_rate"),
                now=settings.get("now"),
            )
            self._send(200, {}, b'{"reset":true}')

    return EmulatorHandler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--calendar-cache", type=Path, required=True)
    parser.add_argument("--market-size", type=int, default=10_000)
    parser.add_argument("--alpaca-rate", default="200/60", help="LIMIT/SECONDS, or none")
    parser.add_argument("--massive-rate", default="5/60", help="LIMIT/SECONDS, or none")
    args = parser.parse_args()
    emulator = ProviderEmulator(
        load_calendar("XNYS", args.calendar_cache),
        market_size=args.market_size,
        alpaca_rate=RateLimit.parse(args.alpaca_rate),
        massive_rate=RateLimit.parse(args.massive_rate),
        host=args.host,
        port=args.port,
    )
    print(f"listening on {emulator.start()}", flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin (or exits)
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
