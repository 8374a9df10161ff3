"""The Alpaca provider: Market Data v2 bars, the trading API's asset list, and news.

Serves ``universe``, ``daily_bars``, ``intraday_bars`` and ``news``; every
other kind raises ``PermanentError``. All calls go through ``ProviderHttp``
(shared rate limit, retries, error mapping); the keys come from the
environment (``ALPACA_API_KEY_ID``, ``ALPACA_API_SECRET_KEY``) and travel in
the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers, never in a URL.

Settings (the config's ``provider`` section; defaults in the registry):
``feed`` (``iex`` free and real-time, or ``sip``, whose free plan withholds
the last 15 minutes), ``delay_minutes`` (0 for iex, 15 for sip), ``data_url``,
``trading_url``, ``symbols`` (the universe), ``limits_db`` (the shared
limiter's SQLite file) and ``rate_per_minute`` (200, Alpaca's free limit).

Invariants, beyond those of ``collectors.providers.base``:

- bars are stored raw (``adjustment=raw``); a split shows as ``split_ratio``
  (new shares per old, on the ex-date session) and a cash dividend as
  ``dividend`` on its ex-date, both from the corporate-actions endpoint;
- a minute bar is available once it has ended and the feed's delay has passed
  (``bar_ts + 60 + delay``), and no request asks for data after ``as_of``
  minus that delay, so a backfill never sees what came later;
- missing minutes (IEX is sparse) are not filled in: no trade, no bar;
- problems with single symbols do not fail the call: they are collected in
  ``symbol_errors`` (reset by every call), the other symbols are served.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import pandas as pd

from collectors.market_store import TABLES, epoch
from collectors.providers.http import ProviderHttp, Sleeper, per_minute
from collectors.providers.partial import ServesSome
from collectors.providers.registry import PROVIDERS
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

INFO = PROVIDERS["alpaca"]
# Minutes the feed holds data back: the free SIP plan refuses the latest 15 minutes.
DEFAULT_DELAY_MINUTES = {"iex": 0, "sip": 15}
DEFAULT_RATE_PER_MINUTE = 200
# Symbols per request: Alpaca documents no cap (its page limit counts bars across
# symbols); 500 keeps the URL near 3 KB, so a 5,000-symbol tick is 10 requests.
SYMBOLS_PER_REQUEST = 500
BARS_PAGE_LIMIT = 10_000  # the documented maximum of /v2/stocks/bars
NEWS_PAGE_LIMIT = 50  # the documented maximum of /v1beta1/news
CORPORATE_ACTIONS_PAGE_LIMIT = 1000  # the documented maximum of /v1/corporate-actions
# /v1/corporate-actions filters on process_date, which for a cash dividend is its
# payable date, weeks after the ex-date; the window reaches this far past the last
# session so a dividend going ex on it is found.
DIVIDEND_PROCESS_WINDOW = timedelta(days=90)
UNKNOWN = "Unknown"  # Alpaca's asset object has no sector or industry
MINUTE_SECONDS = 60
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")

# The assets table less ``confirmed_ts``, which the assets collector adds.
ASSET_COLUMNS = ("symbol", "name", "sector", "industry", "exchange", "available_ts")


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PermanentError(f"{what} must be timezone-aware, got {moment!r}")


def rfc3339(moment: datetime) -> str:
    """``moment`` as Alpaca's RFC-3339 UTC text, floored to the second (never later)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(value: object, what: str) -> datetime:
    """An RFC-3339 time from a response (``...Z``, maybe with nanoseconds) as aware UTC."""
    if not isinstance(value, str):
        raise PermanentError(f"alpaca: {what} is not a time: {value!r}")
    try:
        moment = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", value))
    except ValueError:
        raise PermanentError(f"alpaca: {what} is not a time: {value!r}") from None
    if moment.tzinfo is None:
        raise PermanentError(f"alpaca: {what} has no time zone: {value!r}")
    return moment.astimezone(UTC)


def _batches(symbols: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(symbols))
    for start in range(0, len(unique), SYMBOLS_PER_REQUEST):
        yield unique[start : start + SYMBOLS_PER_REQUEST]


def _field(record: Any, name: str, where: str) -> Any:
    """``record[name]``, or a ``PermanentError`` saying the response format changed."""
    if not isinstance(record, Mapping) or name not in record:
        raise PermanentError(f"alpaca: {where}: a response item lacks {name!r} ({record!r:.200})")
    return record[name]


def _number(record: Any, name: str, where: str) -> float:
    value = _field(record, name, where)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PermanentError(f"alpaca: {where}: {name} is not a number: {value!r}") from None


class AlpacaProvider(ServesSome):
    """Implements ``collectors.providers.base.Provider`` on Alpaca's APIs."""

    name = "alpaca"

    def __init__(
        self,
        *,
        calendar: MarketCalendar,
        symbols: Sequence[str],
        limits_db: Path,
        feed: str = "iex",
        data_url: str = str(INFO.defaults["data_url"]),
        trading_url: str = str(INFO.defaults["trading_url"]),
        delay_minutes: int | None = None,
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
        sleeper: Sleeper = time.sleep,
    ) -> None:
        if feed not in DEFAULT_DELAY_MINUTES:
            raise PermanentError(f"provider.feed: must be iex or sip, got {feed!r}")
        key_id_variable, secret_variable = INFO.credentials
        key_id, secret = key_id_variable.require(self.name), secret_variable.require(self.name)
        self.calendar = calendar
        self.symbols = list(dict.fromkeys(symbols))
        self.feed = feed
        self.delay_seconds = 60 * (
            DEFAULT_DELAY_MINUTES[feed] if delay_minutes is None else delay_minutes
        )
        self.trading_url = trading_url.rstrip("/")
        self.http = ProviderHttp(
            self.name,
            data_url,
            rates=per_minute(rate_per_minute),
            limits_db=Path(limits_db),
            headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret},
            credentials=INFO.credentials,
            sleeper=sleeper,
        )
        self.symbol_errors: dict[str, str] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        calendar: MarketCalendar,
        *,
        sleeper: Sleeper = time.sleep,
    ) -> AlpacaProvider:
        """Build from the config's ``provider`` section; bad values raise ``PermanentError``."""
        merged = {**INFO.defaults, **settings}
        feed = str(merged["feed"]).lower()
        symbols = merged.get("symbols")
        if not isinstance(symbols, Sequence) or isinstance(symbols, str) or not symbols:
            raise PermanentError("provider.symbols: list the symbols to collect from alpaca")
        if not merged.get("limits_db"):
            raise PermanentError("provider.limits_db: the rate limiter's SQLite file is not set")
        try:
            delay = merged.get("delay_minutes")
            delay_minutes = None if delay is None else int(delay)
            rate = int(merged.get("rate_per_minute", DEFAULT_RATE_PER_MINUTE))
        except (TypeError, ValueError) as error:
            raise PermanentError(
                f"provider: delay_minutes and rate_per_minute must be integers ({error})"
            ) from None
        if delay_minutes is not None and delay_minutes < 0:
            raise PermanentError(f"provider.delay_minutes: must be >= 0, got {delay_minutes}")
        if rate < 1:
            raise PermanentError(f"provider.rate_per_minute: must be >= 1, got {rate}")
        return cls(
            calendar=calendar,
            symbols=[str(symbol).strip().upper() for symbol in symbols],
            limits_db=Path(str(merged["limits_db"])),
            feed=feed,
            data_url=str(merged["data_url"]),
            trading_url=str(merged["trading_url"]),
            delay_minutes=delay_minutes,
            rate_per_minute=rate,
            sleeper=sleeper,
        )

    def check(self) -> str:
        """One cheap authenticated call; a refused key raises ``PermanentError`` naming it."""
        account = self.http.get_json(f"{self.trading_url}/v2/account")
        status = account.get("status") if isinstance(account, Mapping) else None
        return f"alpaca: keys accepted (account {status or 'status unknown'}), feed {self.feed}"

    # -- served kinds ---------------------------------------------------------------

    def universe(self, as_of: datetime) -> pd.DataFrame:
        """The configured symbols that Alpaca lists as active US equities."""
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        where = "GET /v2/assets"
        listed = self.http.get_json(
            f"{self.trading_url}/v2/assets", {"status": "active", "asset_class": "us_equity"}
        )
        if not isinstance(listed, list):
            raise PermanentError(f"alpaca: {where} did not return a list of assets")
        assets = {str(_field(asset, "symbol", where)): asset for asset in listed}
        # Listing time is not in the asset object: a symbol counts as listed from now.
        available_ts = epoch(as_of)
        rows = []
        for symbol in self.symbols:
            asset = assets.get(symbol)
            if asset is None:
                self.symbol_errors[symbol] = f"alpaca does not list {symbol}"
                continue
            rows.append(
                {
                    "symbol": symbol,
                    "name": str(asset.get("name") or symbol),
                    "sector": UNKNOWN,
                    "industry": UNKNOWN,
                    "exchange": str(asset.get("exchange") or UNKNOWN),
                    "available_ts": available_ts,
                }
            )
        return _frame(rows, "assets")

    def daily_bars(self, symbols: Sequence[str], sessions: Sequence[date]) -> pd.DataFrame:
        """Raw daily bars of the sessions asked for, with each session's split and dividend.

        Alpaca stamps a daily bar at midnight New York (04:00Z in summer, 05:00Z
        in winter); the session is that stamp's date in exchange time.
        """
        self.symbol_errors = {}
        wanted = sorted(set(sessions))
        if not symbols or not wanted:
            return _frame([], "prices_daily")
        not_sessions = [day for day in wanted if not self.calendar.is_session(day)]
        if not_sessions:
            raise PermanentError(f"daily bars asked for non-sessions: {not_sessions[:3]}")
        closes = {day: epoch(self.calendar.hours(day).close) for day in wanted}
        first_midnight = datetime.combine(wanted[0], clock_time(0), self.calendar.tz)
        bar_window = {
            "timeframe": "1Day",
            "start": rfc3339(first_midnight),
            "end": rfc3339(self.calendar.hours(wanted[-1]).close),
        }
        split_ratios, dividends = self._corporate_actions(symbols, wanted[0], wanted[-1])
        rows = []
        for symbol, bar in self._bars(symbols, bar_window):
            stamp = parse_utc(_field(bar, "t", "/v2/stocks/bars"), "bar t")
            session = stamp.astimezone(self.calendar.tz).date()
            if session not in closes:
                continue
            rows.append(
                {
                    "symbol": symbol,
                    "session": session.isoformat(),
                    **_ohlcv(bar),
                    "split_ratio": split_ratios.get((symbol, session), 1.0),
                    "dividend": dividends.get((symbol, session), 0.0),
                    "available_ts": closes[session],
                }
            )
        served = {row["symbol"] for row in rows}
        for symbol in dict.fromkeys(symbols):
            if symbol not in served:
                self.symbol_errors[symbol] = "no daily bars from alpaca"
        return _frame(rows, "prices_daily")

    def intraday_bars(
        self, symbols: Sequence[str], session: date, since: datetime, as_of: datetime
    ) -> pd.DataFrame:
        """Regular-hours minute bars of ``session`` from ``since``, complete and released by
        ``as_of``.

        A bar stamped ``t`` covers ``[t, t + 60)`` and the feed releases it
        ``delay`` later, so it is served when ``t + 60 <= as_of - delay``.
        Pre- and post-market bars are dropped; minutes without trades stay
        missing (IEX sees a few percent of the volume, so gaps are normal).
        """
        _require_aware(since, "since")
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        hours = self.calendar.hours(session)
        released = as_of - timedelta(seconds=self.delay_seconds)
        start = max(since, hours.open)  # bars before the open are never kept
        end = min(released, hours.close)
        if not symbols or end <= start:
            return _frame([], "intraday_bars")
        open_ts, close_ts = epoch(hours.open), epoch(hours.close)
        since_ts, released_ts = since.timestamp(), released.timestamp()
        window = {"timeframe": "1Min", "start": rfc3339(start), "end": rfc3339(end)}
        rows = []
        for symbol, bar in self._bars(symbols, window):
            bar_ts = epoch(parse_utc(_field(bar, "t", "/v2/stocks/bars"), "bar t"))
            in_hours = open_ts <= bar_ts < close_ts
            if not in_hours or bar_ts < since_ts or bar_ts + MINUTE_SECONDS > released_ts:
                continue
            rows.append(
                {
                    "symbol": symbol,
                    "session": session.isoformat(),
                    "bar_ts": bar_ts,
                    **_ohlcv(bar),
                    "available_ts": bar_ts + MINUTE_SECONDS + self.delay_seconds,
                }
            )
        return _frame(rows, "intraday_bars")

    def news(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Headlines created from ``since`` (midnight UTC) up to ``as_of``, one row per symbol.

        An article about several symbols gives one row for each requested one;
        its ``article_id`` carries the symbol because the store keys news by
        ``article_id`` alone. ``available_ts`` is ``created_at``: an update of
        the article later does not make the headline known any earlier.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        start = datetime.combine(since, clock_time(0), UTC)
        if not symbols or start > as_of:
            return _frame([], "news")
        where = "/v1beta1/news"
        rows: dict[str, dict[str, Any]] = {}
        for batch in _batches(symbols):
            asked = set(batch)
            query = {
                "symbols": ",".join(batch),
                "start": rfc3339(start),
                "end": rfc3339(as_of),
                "limit": NEWS_PAGE_LIMIT,
                "sort": "asc",
            }
            for page in self.http.paginate_token(where, query):
                for article in _field(page, "news", where) or []:
                    created = parse_utc(_field(article, "created_at", where), "news created_at")
                    headline = article.get("headline")
                    if not start <= created <= as_of or not headline:
                        continue
                    article_id = _field(article, "id", where)
                    for symbol in article.get("symbols") or []:
                        if symbol not in asked:
                            continue
                        rows[f"alpaca:{article_id}:{symbol}"] = {
                            "article_id": f"alpaca:{article_id}:{symbol}",
                            "symbol": symbol,
                            "headline": str(headline),
                            "source": str(article.get("source") or "unknown"),
                            "available_ts": epoch(created),
                            # Kept beside it: an edit never moves when the item was known.
                            "updated_ts": _updated_ts(article, where),
                        }
        return _frame(list(rows.values()), "news")

    # -- kinds Alpaca does not serve ---------------------------------------------------

    # -- requests ---------------------------------------------------------------------

    def _bars(self, symbols: Sequence[str], window: Mapping[str, str]) -> Iterator[tuple[str, Any]]:
        """``(symbol, bar)`` over every batch and page of ``/v2/stocks/bars``."""
        where = "/v2/stocks/bars"
        for batch in _batches(symbols):
            query = {
                "symbols": ",".join(batch),
                **window,
                "adjustment": "raw",
                "feed": self.feed,
                "limit": BARS_PAGE_LIMIT,
            }
            for page in self.http.paginate_token(where, query):
                # A page holds bars sorted by symbol then time; one symbol may span pages.
                for symbol, bars in (_field(page, "bars", where) or {}).items():
                    for bar in bars or []:
                        yield str(symbol), bar

    def _corporate_actions(
        self, symbols: Sequence[str], first: date, last: date
    ) -> tuple[dict[tuple[str, date], float], dict[tuple[str, date], float]]:
        """Split ratios and cash dividends by ``(symbol, ex_date)`` around the sessions."""
        where = "/v1/corporate-actions"
        split_ratios: dict[tuple[str, date], float] = {}
        dividends: dict[tuple[str, date], float] = {}
        for batch in _batches(symbols):
            query = {
                "symbols": ",".join(batch),
                "types": "forward_split,reverse_split,cash_dividend",
                "start": first.isoformat(),
                "end": (last + DIVIDEND_PROCESS_WINDOW).isoformat(),
                "limit": CORPORATE_ACTIONS_PAGE_LIMIT,
            }
            for page in self.http.paginate_token(where, query):
                actions = _field(page, "corporate_actions", where) or {}
                splits = [*actions.get("forward_splits", []), *actions.get("reverse_splits", [])]
                for split in splits:
                    key = _action_key(split, where)
                    ratio = _number(split, "new_rate", where) / _number(split, "old_rate", where)
                    split_ratios[key] = split_ratios.get(key, 1.0) * ratio
                for cash in actions.get("cash_dividends", []):
                    # A special dividend on the same ex-date as a regular one adds to it.
                    key = _action_key(cash, where)
                    dividends[key] = dividends.get(key, 0.0) + _number(cash, "rate", where)
        return split_ratios, dividends


def _action_key(action: Any, where: str) -> tuple[str, date]:
    symbol = str(_field(action, "symbol", where))
    ex_date = _field(action, "ex_date", where)
    try:
        return symbol, date.fromisoformat(str(ex_date))
    except ValueError:
        raise PermanentError(f"alpaca: {where}: ex_date is not a date: {ex_date!r}") from None


def _ohlcv(bar: Any) -> dict[str, float]:
    where = "/v2/stocks/bars"
    return {
        "open": _number(bar, "o", where),
        "high": _number(bar, "h", where),
        "low": _number(bar, "l", where),
        "close": _number(bar, "c", where),
        "volume": _number(bar, "v", where),
    }


def _updated_ts(article: Mapping[str, Any], where: str) -> int | None:
    updated = article.get("updated_at")
    return epoch(parse_utc(updated, "news updated_at")) if updated else None


def _frame(rows: list[dict[str, Any]], table: str) -> pd.DataFrame:
    """Rows in the layout of the store's ``table``, sorted by its key, ``_ts`` as int64."""
    spec = TABLES[table]
    columns = ASSET_COLUMNS if table == "assets" else spec.column_names
    frame = pd.DataFrame(rows, columns=list(columns))
    for name in columns:
        if name.endswith("_ts"):
            frame[name] = frame[name].astype("Int64" if name in spec.nullable else "int64")
    return frame.sort_values(list(spec.key), kind="stable").reset_index(drop=True)
