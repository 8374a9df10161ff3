"""The Massive provider (formerly Polygon.io): tickers, daily and minute aggregates, news.

Serves ``universe``, ``daily_bars``, ``intraday_bars`` and ``news``; every
other kind raises ``PermanentError("massive does not serve <kind>")``. All
calls go through ``ProviderHttp`` (shared rate limit, retries, error mapping,
``next_url`` pagination re-targeted to the configured host). The key comes
from the environment (``MASSIVE_API_KEY``, or the older ``POLYGON_API_KEY``)
and travels as ``Authorization: Bearer <key>``, never in a URL.

Settings (the config's ``providers.massive`` section; defaults in the registry):
``base_url``, ``symbols`` (the configured universe), ``limits_db`` (the shared
limiter's SQLite file), ``rate_per_minute`` (default 5, the free plan),
``delay_minutes`` (default 15: Starter plans delay minute data by 15 minutes)
and ``history`` (how daily bars are fetched: ``auto``, the default, picks the
fewer requests; ``grouped`` or ``per_ticker`` force one way).

Endpoints used:

- ``/v3/reference/tickers/{ticker}?date=`` for the universe (a 404 is an
  unknown symbol, kept in ``symbol_errors``);
- daily bars either from grouped daily ``/v2/aggs/grouped/locale/us/market/
  stocks/{date}`` (one request per session, the whole market) or from
  ``/v2/aggs/ticker/{ticker}/range/1/day/{from}/{to}`` (one request per
  symbol, the whole range), whichever needs fewer requests; always
  ``adjusted=false`` (raw prices);
- ``/v3/reference/splits`` and ``/v3/reference/dividends`` for
  ``split_ratio`` (``split_to / split_from`` on the execution date) and
  ``dividend`` (``cash_amount`` on the ex-dividend date);
- ``/v2/aggs/ticker/{ticker}/range/1/minute/{from_ms}/{to_ms}`` for minute bars;
- ``/v2/reference/news`` for headlines.

Invariants, beyond those of ``collectors.providers.base``:

- a minute bar is available once it has ended and the plan's delay has passed
  (``bar_ts + 60 + delay``); only regular-hours bars are kept, and missing
  minutes are not filled in (no trade, no bar);
- no request asks for data after ``as_of`` (minus the delay for minute bars):
  a backfill sees what a live run on that day could have seen;
- problems with single symbols do not fail the call: they are collected in
  ``symbol_errors`` (reset by every call) and the other symbols are served.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from collectors.market_store import TABLES, epoch
from collectors.providers.http import NotFound, ProviderHttp, Sleeper, per_minute
from collectors.providers.partial import ServesSome
from collectors.providers.registry import PROVIDERS
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

__all__ = ["MassiveProvider", "parse_utc", "rfc3339"]

INFO = PROVIDERS["massive"]
DEFAULT_RATE_PER_MINUTE = 5  # the free plan
DEFAULT_DELAY_MINUTES = 15  # Starter plans: minute aggregates are 15 minutes delayed
HISTORY_CHOICES = ("auto", "grouped", "per_ticker")
AGGREGATES_LIMIT = 50_000  # the documented maximum of the aggregates endpoints
REFERENCE_LIMIT = 1000  # the documented maximum of /v3/reference/{splits,dividends}, news
# Rough market-wide counts per session, used only to guess how many pages a
# date-range listing of the whole market takes (see ``_corporate_actions``).
MARKET_DIVIDENDS_PER_SESSION = 200  # US stocks and ETFs: tens of thousands a year
MARKET_SPLITS_PER_SESSION = 10
MINUTE_SECONDS = 60
UNKNOWN = "Unknown"  # ticker details have no industry field; SIC text stands for sector

ASSET_COLUMNS = ("symbol", "name", "sector", "industry", "exchange", "available_ts")
# (``confirmed_ts`` of the assets table is added by the assets collector.)
DAILY_COLUMNS = TABLES["prices_daily"].column_names
INTRADAY_COLUMNS = TABLES["intraday_bars"].column_names
NEWS_COLUMNS = TABLES["news"].column_names


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PermanentError(f"{what} must be timezone-aware, got {moment!r}")


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC-3339 UTC text, floored to the second (so never later than it)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(value: object, what: str) -> datetime:
    """An RFC-3339 time from a response (``2024-06-24T18:33:53Z``) as aware UTC."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise PermanentError(f"massive: {what} is not a time: {value!r}") from None
    if moment.tzinfo is None:
        raise PermanentError(f"massive: {what} has no time zone: {value!r}")
    return moment.astimezone(UTC)


def _number(record: Mapping[str, Any], name: str, where: str) -> float:
    """``record[name]`` as a float, or a ``PermanentError`` saying the format changed."""
    try:
        return float(record[name])
    except (KeyError, TypeError, ValueError):
        raise PermanentError(
            f"massive: {where}: {name!r} missing or not a number in {dict(record)!r:.200}"
        ) from None


def _results(page: Any, where: str) -> list[Mapping[str, Any]]:
    """The ``results`` list of a response page (absent when nothing matched)."""
    if not isinstance(page, Mapping):
        raise PermanentError(f"massive: {where}: the response is not an object: {page!r:.200}")
    results = page.get("results") or []
    if not isinstance(results, list):
        raise PermanentError(f"massive: {where}: 'results' is not a list: {results!r:.200}")
    return [row for row in results if isinstance(row, Mapping)]


def _frame(rows: list[dict[str, Any]], columns: Sequence[str], key: Sequence[str]) -> pd.DataFrame:
    """Rows as a frame in the store's column order, sorted by its key."""
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in columns})
    frame = pd.DataFrame(rows, columns=list(columns))
    for name in columns:
        # An optional time (news updated_ts) Massive does not give stays a null integer.
        optional_ts = name.endswith("_ts") and frame[name].isna().any()
        frame[name] = frame[name].astype("Int64" if optional_ts else _dtype(name))
    return frame.sort_values(list(key), kind="stable").reset_index(drop=True)


def _dtype(column: str) -> str:
    if column.endswith("_ts"):
        return "int64"
    if column in ("open", "high", "low", "close", "volume", "split_ratio", "dividend"):
        return "float64"
    return "object"


class MassiveProvider(ServesSome):
    """Implements ``collectors.providers.base.Provider`` on the Massive REST API."""

    name = "massive"

    def __init__(
        self,
        *,
        calendar: MarketCalendar,
        symbols: Sequence[str],
        limits_db: Path,
        base_url: str = str(INFO.defaults["base_url"]),
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
        delay_minutes: int = DEFAULT_DELAY_MINUTES,
        history: str = "auto",
        sleeper: Sleeper = time.sleep,
    ) -> None:
        if history not in HISTORY_CHOICES:
            raise PermanentError(
                f"provider.history: must be one of {', '.join(HISTORY_CHOICES)}, got {history!r}"
            )
        key = INFO.credentials[0].require(self.name)
        self.calendar = calendar
        self.symbols = list(dict.fromkeys(symbols))
        self.delay_seconds = MINUTE_SECONDS * delay_minutes
        self.history = history
        self.http = ProviderHttp(
            self.name,
            base_url,
            rates=per_minute(rate_per_minute),
            limits_db=Path(limits_db),
            headers={"Authorization": f"Bearer {key}"},
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
    ) -> MassiveProvider:
        """Build from the config's provider settings; bad values raise ``PermanentError``."""
        merged = {**INFO.defaults, **settings}
        symbols = merged.get("symbols") or []
        if isinstance(symbols, str) or not isinstance(symbols, Sequence):
            raise PermanentError("provider.symbols: must be a list of symbols")
        if not merged.get("limits_db"):
            raise PermanentError("provider.limits_db: the rate limiter's SQLite file is not set")
        try:
            rate = int(merged.get("rate_per_minute", DEFAULT_RATE_PER_MINUTE))
            delay_minutes = int(merged.get("delay_minutes", DEFAULT_DELAY_MINUTES))
        except (TypeError, ValueError) as error:
            raise PermanentError(
                f"provider: rate_per_minute and delay_minutes must be integers ({error})"
            ) from None
        if rate < 1:
            raise PermanentError(f"provider.rate_per_minute: must be >= 1, got {rate}")
        if delay_minutes < 0:
            raise PermanentError(f"provider.delay_minutes: must be >= 0, got {delay_minutes}")
        return cls(
            calendar=calendar,
            # Massive tickers are case-sensitive (class shares such as BRK.B): kept as given.
            symbols=[str(symbol).strip() for symbol in symbols],
            limits_db=Path(str(merged["limits_db"])),
            base_url=str(merged["base_url"]),
            rate_per_minute=rate,
            delay_minutes=delay_minutes,
            history=str(merged.get("history", "auto")),
            sleeper=sleeper,
        )

    def check(self) -> str:
        """One cheap authenticated call; a refused key raises ``PermanentError`` naming it."""
        status = self.http.get_json("/v1/marketstatus/now")
        market = status.get("market") if isinstance(status, Mapping) else None
        return f"massive: key accepted (market {market or 'status unknown'})"

    # -- universe ---------------------------------------------------------------

    def universe(self, as_of: datetime) -> pd.DataFrame:
        """Ticker details of each configured symbol, as listed on ``as_of``'s date."""
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        if not self.symbols:
            raise PermanentError("provider.symbols: list the symbols to collect from massive")
        # ``date`` asks for the ticker as it was then: a backfill sees no later listing.
        as_of_date = as_of.astimezone(self.calendar.tz).date().isoformat()
        rows = []
        for symbol in self.symbols:
            try:
                page = self.http.get_json(
                    f"/v3/reference/tickers/{quote(symbol, safe='')}", {"date": as_of_date}
                )
            except NotFound:
                self.symbol_errors[symbol] = f"massive does not know {symbol}"
                continue
            details = page.get("results") if isinstance(page, Mapping) else None
            if not isinstance(details, Mapping):
                self.symbol_errors[symbol] = f"massive returned no details for {symbol}"
                continue
            rows.append(
                {
                    "symbol": symbol,
                    "name": details.get("name") or symbol,
                    "sector": details.get("sic_description") or UNKNOWN,
                    "industry": UNKNOWN,
                    "exchange": details.get("primary_exchange") or UNKNOWN,
                    "available_ts": epoch(as_of),
                }
            )
        return _frame(rows, ASSET_COLUMNS, ("symbol",))

    # -- daily bars -------------------------------------------------------------

    def daily_bars(self, symbols: Sequence[str], sessions: Sequence[date]) -> pd.DataFrame:
        """Raw daily OHLCV per (symbol, session), with split ratio and dividend."""
        self.symbol_errors = {}
        symbols = list(dict.fromkeys(symbols))
        wanted = sorted(set(sessions))
        not_sessions = [day for day in wanted if not self.calendar.is_session(day)]
        if not_sessions:
            raise PermanentError(f"daily bars asked for non-sessions: {not_sessions[:3]}")
        if not symbols or not wanted:
            return _frame([], DAILY_COLUMNS, ("symbol", "session"))
        grouped = self._use_grouped(len(symbols), len(wanted))
        logger.debug(
            "massive: daily bars of %d symbols x %d sessions, %s",
            len(symbols),
            len(wanted),
            "grouped daily per session" if grouped else "aggregates per ticker",
        )
        if grouped:
            bars = self._grouped_daily(symbols, wanted)
        else:
            bars = self._daily_per_ticker(symbols, wanted)
        splits = self._corporate_actions(
            "/v3/reference/splits", "execution_date", symbols, wanted, MARKET_SPLITS_PER_SESSION
        )
        dividends = self._corporate_actions(
            "/v3/reference/dividends",
            "ex_dividend_date",
            symbols,
            wanted,
            MARKET_DIVIDENDS_PER_SESSION,
        )
        split_ratio: dict[tuple[str, str], float] = {}
        for row in splits:
            key = (str(row["ticker"]), str(row["execution_date"]))
            ratio = _number(row, "split_to", "splits") / _number(row, "split_from", "splits")
            split_ratio[key] = split_ratio.get(key, 1.0) * ratio  # two splits on a day compound
        dividend: dict[tuple[str, str], float] = {}
        for row in dividends:
            key = (str(row["ticker"]), str(row["ex_dividend_date"]))
            dividend[key] = dividend.get(key, 0.0) + _number(row, "cash_amount", "dividends")
        rows = []
        for (symbol, session), bar in bars.items():
            day = session.isoformat()
            rows.append(
                {
                    "symbol": symbol,
                    "session": day,
                    "open": _number(bar, "o", "aggregates"),
                    "high": _number(bar, "h", "aggregates"),
                    "low": _number(bar, "l", "aggregates"),
                    "close": _number(bar, "c", "aggregates"),
                    "volume": _number(bar, "v", "aggregates"),
                    "split_ratio": split_ratio.get((symbol, day), 1.0),
                    "dividend": dividend.get((symbol, day), 0.0),
                    "available_ts": epoch(self.calendar.hours(session).close),
                }
            )
        served = {symbol for symbol, _ in bars}
        for symbol in symbols:
            if symbol not in served and symbol not in self.symbol_errors:
                self.symbol_errors[symbol] = (
                    f"massive has no daily bars for {symbol} from {wanted[0]} to {wanted[-1]}"
                )
        return _frame(rows, DAILY_COLUMNS, ("symbol", "session"))

    def _use_grouped(self, symbol_count: int, session_count: int) -> bool:
        """Grouped daily costs one request per session, per-ticker one per symbol."""
        if self.history != "auto":
            return self.history == "grouped"
        # On a tie per-ticker wins: the same request count, far smaller responses.
        return session_count < symbol_count

    def _grouped_daily(
        self, symbols: list[str], sessions: list[date]
    ) -> dict[tuple[str, date], Mapping[str, Any]]:
        """One grouped-daily request per session (the whole market), kept to ``symbols``."""
        wanted = set(symbols)
        bars: dict[tuple[str, date], Mapping[str, Any]] = {}
        for session in sessions:
            page = self.http.get_json(
                f"/v2/aggs/grouped/locale/us/market/stocks/{session.isoformat()}",
                {"adjusted": "false"},
            )
            for bar in _results(page, "grouped daily"):
                # The path names the session; ``t`` is only the window's stamp.
                if bar.get("T") in wanted:
                    bars[(str(bar["T"]), session)] = bar
        return bars

    def _daily_per_ticker(
        self, symbols: list[str], sessions: list[date]
    ) -> dict[tuple[str, date], Mapping[str, Any]]:
        """One per-ticker day-aggregates request per symbol over the sessions' range."""
        wanted = set(sessions)
        first, last = sessions[0].isoformat(), sessions[-1].isoformat()
        bars: dict[tuple[str, date], Mapping[str, Any]] = {}
        for symbol in symbols:
            path = f"/v2/aggs/ticker/{quote(symbol, safe='')}/range/1/day/{first}/{last}"
            try:
                for bar in self._all_results(path, self._aggregates_params(), "day aggregates"):
                    session = self._session_of(bar)
                    if session in wanted:
                        bars[(symbol, session)] = bar
            except NotFound:
                self.symbol_errors[symbol] = f"massive does not know {symbol}"
        return bars

    def _session_of(self, bar: Mapping[str, Any]) -> date:
        """The exchange-time date of a day bar: ``t`` is midnight New York in ms.

        That is 04:00Z in summer and 05:00Z in winter, so the UTC date would do
        too, but exchange time is right for any stamp within the day.
        """
        stamp = _number(bar, "t", "aggregates") / 1000
        return datetime.fromtimestamp(stamp, self.calendar.tz).date()

    def _corporate_actions(
        self,
        path: str,
        date_field: str,
        symbols: list[str],
        sessions: list[date],
        market_events_per_session: int,
    ) -> list[Mapping[str, Any]]:
        """Splits or dividends of ``symbols`` dated within the sessions' range.

        The v3 reference endpoints filter on one ``ticker`` or a ticker range
        (``ticker.gte`` / ``ticker.lte``), not a list (no ``ticker.any_of``).
        So either one request per symbol, or one paginated listing of the range
        from the first to the last symbol over the dates, filtered here. The
        listing's pages are guessed from market-wide counts per session; the
        cheaper way wins (a daily run: one listing; a year for one symbol: one
        per-ticker request).
        """
        first, last = sessions[0].isoformat(), sessions[-1].isoformat()
        dated = {f"{date_field}.gte": first, f"{date_field}.lte": last, "limit": REFERENCE_LIMIT}
        listing_pages = math.ceil(len(sessions) * market_events_per_session / REFERENCE_LIMIT)
        queries: list[dict[str, Any]]
        if len(symbols) <= listing_pages:
            queries = [{"ticker": symbol, **dated} for symbol in symbols]
        else:
            queries = [{"ticker.gte": min(symbols), "ticker.lte": max(symbols), **dated}]
        wanted = set(symbols)
        found = []
        for query in queries:
            for row in self._all_results(path, query, path):
                if row.get("ticker") in wanted and first <= str(row.get(date_field)) <= last:
                    found.append(row)
        return found

    def _all_results(
        self, path: str, params: Mapping[str, Any], where: str
    ) -> Iterable[Mapping[str, Any]]:
        """Every result of every page, following ``next_url``."""
        for page in self.http.paginate_next_url(path, params):
            yield from _results(page, where)

    @staticmethod
    def _aggregates_params() -> dict[str, Any]:
        return {"adjusted": "false", "sort": "asc", "limit": AGGREGATES_LIMIT}

    # -- intraday bars ----------------------------------------------------------

    def intraday_bars(
        self, symbols: Sequence[str], session: date, since: datetime, as_of: datetime
    ) -> pd.DataFrame:
        """Regular-hours minute bars ended by ``as_of`` minus the plan's delay."""
        _require_aware(since, "since")
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        if not self.calendar.is_session(session):
            raise PermanentError(f"intraday bars asked for a non-session: {session}")
        hours = self.calendar.hours(session)
        open_ts, close_ts = epoch(hours.open), epoch(hours.close)
        since_ts = math.ceil(since.timestamp())
        cutoff_ts = math.floor(as_of.timestamp()) - self.delay_seconds  # bars must end by this
        # Ask only for bar starts that can pass the filter below: from the first
        # whole minute at or after since/open to the last bar ended by the cutoff.
        first_start = max(since_ts, open_ts)
        first_start += -first_start % MINUTE_SECONDS
        last_start = min(cutoff_ts, close_ts) - MINUTE_SECONDS
        last_start -= last_start % MINUTE_SECONDS
        rows: list[dict[str, Any]] = []
        if last_start < first_start:
            return _frame(rows, INTRADAY_COLUMNS, ("symbol", "bar_ts"))
        for symbol in dict.fromkeys(symbols):
            path = (
                f"/v2/aggs/ticker/{quote(symbol, safe='')}/range/1/minute/"
                f"{first_start * 1000}/{last_start * 1000}"
            )
            try:
                bars = list(self._all_results(path, self._aggregates_params(), "minute bars"))
            except NotFound:
                self.symbol_errors[symbol] = f"massive does not know {symbol}"
                continue
            for bar in bars:
                bar_ts = int(_number(bar, "t", "minute bars")) // 1000
                if not (
                    since_ts <= bar_ts
                    and bar_ts + MINUTE_SECONDS <= cutoff_ts
                    and open_ts <= bar_ts < close_ts
                ):
                    continue
                rows.append(
                    {
                        "symbol": symbol,
                        "session": session.isoformat(),
                        "bar_ts": bar_ts,
                        "open": _number(bar, "o", "minute bars"),
                        "high": _number(bar, "h", "minute bars"),
                        "low": _number(bar, "l", "minute bars"),
                        "close": _number(bar, "c", "minute bars"),
                        "volume": _number(bar, "v", "minute bars"),
                        "available_ts": bar_ts + MINUTE_SECONDS + self.delay_seconds,
                    }
                )
        frame = _frame(rows, INTRADAY_COLUMNS, ("symbol", "bar_ts"))
        return frame.drop_duplicates(["symbol", "bar_ts"]).reset_index(drop=True)

    # -- news -------------------------------------------------------------------

    def news(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Headlines per symbol published from ``since`` (00:00 UTC) up to ``as_of``."""
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        start = datetime.combine(since, clock_time(0), UTC)
        rows: list[dict[str, Any]] = []
        if start > as_of:
            return _frame(rows, NEWS_COLUMNS, ("article_id",))
        start_ts, as_of_ts = epoch(start), math.floor(as_of.timestamp())
        for symbol in dict.fromkeys(symbols):
            # ``ticker`` takes one symbol (no list filter), so one paginated query each;
            # an article naming several symbols is found once per symbol, one row each.
            params = {
                "ticker": symbol,
                "published_utc.gte": rfc3339(start),
                "published_utc.lte": rfc3339(as_of),
                "order": "asc",
                "sort": "published_utc",
                "limit": REFERENCE_LIMIT,
            }
            try:
                articles = list(self._all_results("/v2/reference/news", params, "news"))
            except NotFound:
                self.symbol_errors[symbol] = f"massive does not know {symbol}"
                continue
            for article in articles:
                if not article.get("id"):
                    continue  # no id, no key: nothing to store it under
                published_ts = epoch(parse_utc(article.get("published_utc"), "published_utc"))
                if not start_ts <= published_ts <= as_of_ts:
                    continue
                publisher = article.get("publisher")
                source = publisher.get("name") if isinstance(publisher, Mapping) else None
                rows.append(
                    {
                        "article_id": f"massive:{article['id']}:{symbol}",
                        "symbol": symbol,
                        "headline": str(article.get("title") or "").strip(),
                        "source": source or UNKNOWN,
                        "available_ts": published_ts,
                    }
                )
        frame = _frame(rows, NEWS_COLUMNS, ("article_id",))
        return frame.drop_duplicates(["article_id"]).reset_index(drop=True)

    # -- kinds Massive does not serve here --------------------------------------
