"""The Finnhub provider: recommendation trends, the earnings calendar and company news.

Serves ``analyst_ratings`` (always empty, see below) with the extra
``analyst_trends``, ``earnings`` (``earnings_calendar`` and
``earnings_results``) and ``news``; every other kind raises
``PermanentError`` naming the providers that serve it. All calls go through
``ProviderHttp`` (shared rate limit, retries of 429/5xx honouring
``Retry-After``, error mapping); the key comes from the environment
(``FINNHUB_API_KEY``) and travels in the ``X-Finnhub-Token`` header, never in
a URL.

Settings (the config's ``providers.finnhub`` section; defaults in the registry):
``base_url``, ``symbols`` (the universe), ``limits_db`` (the shared limiter's
SQLite file), ``rate_per_minute`` (default 55: the free plan allows 60, the
margin absorbs other clients of the same key and clock drift between
processes) and ``cache_dir`` (given to every real provider; unused, nothing is
kept between runs).

Endpoints used, one request per symbol (each takes a single ``symbol``):

- ``/stock/recommendation?symbol=`` for the monthly recommendation counts;
- ``/calendar/earnings?from=&to=&symbol=`` for scheduled and delivered
  reports (the same answer serves the calendar and the results: it is asked
  once per symbol and run). Without ``symbol`` it answers for the whole
  market in one call, but that answer was reported cut at a few hundred rows,
  so each symbol is asked on its own;
- ``/company-news?symbol=&from=&to=`` for headlines;
- ``/quote?symbol=AAPL`` for ``check()``.

Point in time, beyond the invariants of ``collectors.providers.base``:

- recommendation trends and earnings estimates are *snapshots*: Finnhub
  answers with what it knows now and keeps no history of earlier answers.
  A snapshot can only be stamped with the time it was taken, so rows are
  stamped ``available_ts = as_of`` only in a live run, when the wall clock
  is within ``SNAPSHOT_TOLERANCE`` of ``as_of``. A backfill gets no snapshot
  rows: every symbol goes to ``symbol_errors`` ("a snapshot of today cannot
  stand for ..."), and today's data is never stamped with a past time;
- a delivered report (``epsActual`` given) is an event with its own time, so
  results are served in backfills too. Finnhub gives a report's date and
  ``hour`` but no clock time, so each is stamped at a conservative moment in
  New York, late enough for every release of its kind (``REPORT_TIMES``):
  ``bmo`` at the 09:30 open, ``dmh`` at the 16:00 close, ``amc`` and an
  unknown hour at 17:00. Only results with ``available_ts <= as_of`` are
  served;
- news is stamped with Finnhub's ``datetime`` (publication, epoch seconds);
  only items from ``since`` (00:00 UTC) to ``as_of`` are kept;
- problems with single symbols do not fail the call: unknown symbols (a 404)
  and symbols outside the key's plan (a 403 or 422; the free plan covers US
  listings only) go to ``symbol_errors``, reset by every call, and the other
  symbols are served. An empty answer is normal (no coverage, no news) and no
  error. When every symbol is refused the call raises: then it is the key or
  the endpoint, not the symbols. A key Finnhub calls invalid (401) raises at
  once.

``analyst_ratings`` returns an empty frame: Finnhub's rating changes
(``/stock/upgrade-downgrade``) are a premium endpoint. Its free analyst data
is the monthly trends, served by ``analyst_trends``, which the analyst
collector stores in the ``analyst_trends`` table.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from pyrate_limiter import Duration, Rate

from collectors.market_store import TABLES, epoch
from collectors.providers.http import NotFound, ProviderHttp, Sleeper, per_minute
from collectors.providers.partial import ServesSome
from collectors.providers.registry import PROVIDERS
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

__all__ = ["REPORT_TIMES", "SNAPSHOT_TOLERANCE", "FinnhubProvider"]

INFO = PROVIDERS["finnhub"]
DEFAULT_RATE_PER_MINUTE = 55  # the free plan's 60 calls/minute, less a margin
# On top of every plan's limit Finnhub allows 30 calls a second; kept below it.
PER_SECOND_LIMIT = 25
# How far the wall clock may be from as_of for a snapshot to be stamped at as_of.
# A daily run's as_of is the session's open and the run starts just after it; two
# hours cover a late start or a retry, and are far shorter than any backfill.
SNAPSHOT_TOLERANCE = timedelta(hours=2)
# How far ahead of as_of the earnings calendar is asked for.
CALENDAR_DAYS_AHEAD = 90
CHECK_SYMBOL = "AAPL"  # /quote of a US listing: free on every plan
NEW_YORK = ZoneInfo("America/New_York")
# When a report of each ``hour`` is taken as known, New York time on its date: the
# latest moment a release of that kind happens, so a result is never early.
REPORT_TIMES: Mapping[str, clock_time] = {
    "bmo": clock_time(9, 30),  # before market open: by the open at the latest
    "dmh": clock_time(16, 0),  # during market hours: by the close
    "amc": clock_time(17, 0),  # after market close: most at 16:00-16:30, a few later
    "unknown": clock_time(17, 0),  # no hour given: as late as an amc report
}
# Stored ``timing`` for an hour Finnhub leaves empty (or gives as anything else).
UNKNOWN_TIMING = "unknown"
UNKNOWN_SOURCE = "unknown"
TREND_COUNTS = {  # analyst_trends column: Finnhub field
    "strong_buy": "strongBuy",
    "buy": "buy",
    "hold": "hold",
    "sell": "sell",
    "strong_sell": "strongSell",
}
# 403: data outside the key's plan ("You don't have access to this resource.");
# 422: a symbol Finnhub does not take. Older answers gave that access text with a 401.
_STATUS = re.compile(r"HTTP (\d{3})\b")
_NO_ACCESS_TEXT = "have access to this resource"

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PermanentError(f"{what} must be timezone-aware, got {moment!r}")


def _rates(per_minute_limit: int) -> list[Rate]:
    """The shared limiter's rates: the per-minute limit, and Finnhub's per-second cap."""
    if per_minute_limit <= PER_SECOND_LIMIT:
        return per_minute(per_minute_limit)  # can never reach the per-second cap
    return [Rate(PER_SECOND_LIMIT, Duration.SECOND), Rate(per_minute_limit, Duration.MINUTE)]


def _field(record: Any, name: str, where: str) -> Any:
    """``record[name]`` (not null), or a ``PermanentError`` saying the format changed."""
    if not isinstance(record, Mapping) or record.get(name) is None:
        raise PermanentError(f"finnhub: {where}: a response item lacks {name!r} ({record!r:.200})")
    return record[name]


def _optional_number(record: Mapping[str, Any], name: str, where: str) -> float | None:
    """``record[name]`` as a float, None when Finnhub gives null (not known yet)."""
    value = record.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PermanentError(f"finnhub: {where}: {name} is not a number: {value!r}") from None


def _integer(record: Any, name: str, where: str) -> int:
    value = _field(record, name, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise PermanentError(f"finnhub: {where}: {name} is not an integer: {value!r}")
    return int(value)


def _report_date(record: Any, where: str) -> date:
    value = _field(record, "date", where)
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PermanentError(f"finnhub: {where}: date is not a date: {value!r}") from None


def timing(hour: object) -> str:
    """The stored ``timing`` of Finnhub's ``hour``: bmo, amc, dmh, or unknown."""
    text = str(hour or "").strip().lower()
    return text if text in ("bmo", "amc", "dmh") else UNKNOWN_TIMING


def report_available(report_date: date, report_timing: str) -> datetime:
    """When a report of ``report_timing`` on ``report_date`` counts as known (UTC)."""
    local = datetime.combine(report_date, REPORT_TIMES[report_timing], NEW_YORK)
    return local.astimezone(UTC)


def _refused_status(error: PermanentError) -> int | None:
    """The HTTP status of a per-symbol refusal (403, 422, 401 "no access"), else None.

    ``ProviderHttp`` raises one ``PermanentError`` for every refusal and names
    the status only in its message, so the status is read from there. A 401
    saying the key is invalid is not a refusal of the symbol: it stops the call.
    """
    found = _STATUS.search(str(error))
    status = int(found.group(1)) if found else None
    if status in (403, 422):
        return status
    if status == 401 and _NO_ACCESS_TEXT in str(error):
        return status
    return None


class FinnhubProvider(ServesSome):
    """Implements ``collectors.providers.base.Provider`` (and ``analyst_trends``) on Finnhub."""

    name = "finnhub"

    def __init__(
        self,
        *,
        calendar: MarketCalendar,
        symbols: Sequence[str],
        limits_db: Path,
        base_url: str = str(INFO.defaults["base_url"]),
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
        sleeper: Sleeper = time.sleep,
        clock: Clock = _utc_now,
    ) -> None:
        key = INFO.credentials[0].require(self.name)
        self.calendar = calendar
        self.symbols = list(dict.fromkeys(symbols))
        self.clock = clock
        self.http = ProviderHttp(
            self.name,
            base_url,
            rates=_rates(rate_per_minute),
            limits_db=Path(limits_db),
            headers={"X-Finnhub-Token": key},
            credentials=INFO.credentials,
            sleeper=sleeper,
        )
        self.symbol_errors: dict[str, str] = {}
        # /calendar/earnings answers by (symbol, from, to): earnings_calendar and
        # earnings_results of one run ask the same question, so it is asked once.
        self._calendar_answers: dict[tuple[str, date, date], list[Any]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        calendar: MarketCalendar,
        *,
        sleeper: Sleeper = time.sleep,
        clock: Clock = _utc_now,
    ) -> FinnhubProvider:
        """Build from the config's provider settings; bad values raise ``PermanentError``.

        ``clock`` is the wall clock that tells a live run from a backfill (tests
        inject a fixed one).
        """
        merged = {**INFO.defaults, **settings}
        symbols = merged.get("symbols") or []
        if isinstance(symbols, str) or not isinstance(symbols, Sequence):
            raise PermanentError("provider.symbols: must be a list of symbols")
        if not merged.get("limits_db"):
            raise PermanentError("provider.limits_db: the rate limiter's SQLite file is not set")
        try:
            rate = int(merged.get("rate_per_minute", DEFAULT_RATE_PER_MINUTE))
        except (TypeError, ValueError) as error:
            raise PermanentError(
                f"provider.rate_per_minute: must be an integer ({error})"
            ) from None
        if rate < 1:
            raise PermanentError(f"provider.rate_per_minute: must be >= 1, got {rate}")
        return cls(
            calendar=calendar,
            # Finnhub's US tickers are upper case (BRK.B); the config may not be.
            symbols=[str(symbol).strip().upper() for symbol in symbols],
            limits_db=Path(str(merged["limits_db"])),
            base_url=str(merged["base_url"]),
            rate_per_minute=rate,
            sleeper=sleeper,
            clock=clock,
        )

    def check(self) -> str:
        """One cheap authenticated call; a refused key raises ``PermanentError`` naming it."""
        quote = self.http.get_json("/quote", {"symbol": CHECK_SYMBOL})
        price = quote.get("c") if isinstance(quote, Mapping) else None
        return f"finnhub: key accepted ({CHECK_SYMBOL} last {price if price else 'unknown'})"

    # -- analyst opinion ---------------------------------------------------------------

    def analyst_ratings(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Always empty: Finnhub's rating changes (/stock/upgrade-downgrade) are premium.

        Its free analyst data is the monthly counts of ``analyst_trends``.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        return _frame([], "analyst_ratings")

    def analyst_trends(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame:
        """Recommendation counts per symbol and month, a snapshot stamped at ``as_of``.

        One row per (symbol, period) of ``/stock/recommendation``; ``period`` is
        Finnhub's month (``2024-07-01``). Only in a live run (see the module
        docstring); a backfill gets no rows and every symbol in ``symbol_errors``.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return _frame([], "analyst_trends")
        refusal = self._snapshot_refusal(as_of)
        if refusal is not None:
            self.symbol_errors = dict.fromkeys(wanted, refusal)
            return _frame([], "analyst_trends")
        where = "/stock/recommendation"
        available_ts = epoch(as_of)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for symbol, answer in self._each_symbol(
            wanted, lambda symbol: self.http.get_json(where, {"symbol": symbol})
        ):
            if not isinstance(answer, list):
                raise PermanentError(f"finnhub: {where} did not return a list ({answer!r:.200})")
            for month in answer:
                period = str(_field(month, "period", where))
                row: dict[str, Any] = {"symbol": symbol, "period": period}
                for column, name in TREND_COUNTS.items():
                    row[column] = _integer(month, name, where)
                row["available_ts"] = available_ts
                rows[(symbol, period)] = row  # a repeated month: the last one answered
        return _frame(list(rows.values()), "analyst_trends")

    # -- earnings ----------------------------------------------------------------------

    def earnings_calendar(
        self, symbols: Sequence[str], since: date, as_of: datetime
    ) -> pd.DataFrame:
        """Reports not delivered by ``as_of``, from ``since`` to 90 days after it: a snapshot.

        A report is undelivered when Finnhub has no ``epsActual`` for it yet or
        its result is not available by ``as_of`` (``REPORT_TIMES``). The rows
        carry the estimates known now, so they are stamped ``as_of`` in a live
        run only; a backfill gets no rows and every symbol in ``symbol_errors``.
        ``fiscal_period`` is ``{year}Q{quarter}`` (Finnhub's fiscal year and
        quarter); ``timing`` is bmo, amc, dmh, or unknown for an empty hour.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return _frame([], "earnings_calendar")
        refusal = self._snapshot_refusal(as_of)
        if refusal is not None:
            self.symbol_errors = dict.fromkeys(wanted, refusal)
            return _frame([], "earnings_calendar")
        end = as_of.astimezone(UTC).date() + timedelta(days=CALENDAR_DAYS_AHEAD)
        available_ts, as_of_ts = epoch(as_of), as_of.timestamp()
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for symbol, report in self._reports(wanted, since, end):
            delivered = (
                report["eps_actual"] is not None and report["available"].timestamp() <= as_of_ts
            )
            if delivered:
                continue  # an earnings result, not a scheduled report
            rows[(symbol, report["fiscal_period"])] = {
                "symbol": symbol,
                "fiscal_period": report["fiscal_period"],
                "report_date": report["report_date"].isoformat(),
                "timing": report["timing"],
                "eps_estimate": report["eps_estimate"],
                "available_ts": available_ts,
                "revenue_estimate": report["revenue_estimate"],
            }
        return _frame(list(rows.values()), "earnings_calendar")

    def earnings_results(
        self, symbols: Sequence[str], since: date, as_of: datetime
    ) -> pd.DataFrame:
        """Delivered reports from ``since`` whose result is available by ``as_of``.

        ``available_ts`` is the report's date at its ``REPORT_TIMES`` moment;
        ``surprise_pct = (actual - estimate) / |estimate| * 100``. A report with
        no estimate, or an estimate of 0 (no surprise to speak of), is left out:
        ``eps_estimate`` and ``surprise_pct`` may not be null.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        wanted = list(dict.fromkeys(symbols))
        as_of_day = as_of.astimezone(UTC).date()
        if not wanted or since > as_of_day:
            return _frame([], "earnings_results")
        # A live run asks what earnings_calendar asks (one request serves both);
        # a backfill asks nothing later than as_of's date.
        live = self._snapshot_refusal(as_of) is None
        end = as_of_day + timedelta(days=CALENDAR_DAYS_AHEAD) if live else as_of_day
        as_of_ts = as_of.timestamp()
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for symbol, report in self._reports(wanted, since, end):
            actual, estimate = report["eps_actual"], report["eps_estimate"]
            if actual is None or report["available"].timestamp() > as_of_ts:
                continue
            if not estimate:
                logger.debug(
                    "finnhub: %s %s has no usable EPS estimate (%r): no surprise, left out",
                    symbol,
                    report["fiscal_period"],
                    estimate,
                )
                continue
            rows[(symbol, report["fiscal_period"])] = {
                "symbol": symbol,
                "fiscal_period": report["fiscal_period"],
                "report_date": report["report_date"].isoformat(),
                "eps_actual": actual,
                "eps_estimate": estimate,
                "surprise_pct": (actual - estimate) / abs(estimate) * 100,
                "available_ts": epoch(report["available"]),
            }
        return _frame(list(rows.values()), "earnings_results")

    # -- news --------------------------------------------------------------------------

    def news(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Headlines per symbol published from ``since`` (00:00 UTC) up to ``as_of``.

        ``article_id`` is ``finnhub:{id}:{symbol}``: an article Finnhub lists
        for several symbols is one row for each, as the store keys news by
        ``article_id`` alone. ``available_ts`` is Finnhub's ``datetime``.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        start = datetime.combine(since, clock_time(0), UTC)
        wanted = list(dict.fromkeys(symbols))
        if not wanted or start > as_of:
            return _frame([], "news")
        where = "/company-news"
        # Finnhub takes dates, in a time zone it does not document: asking from the
        # day before ``since`` and filtering on the epoch time covers since's midnight
        # UTC either way. ``to`` is as_of's date; later items of that day are dropped.
        params = {
            "from": (since - timedelta(days=1)).isoformat(),
            "to": as_of.astimezone(UTC).date().isoformat(),
        }
        start_ts, as_of_ts = epoch(start), as_of.timestamp()
        rows: dict[str, dict[str, Any]] = {}
        for symbol, answer in self._each_symbol(
            wanted, lambda symbol: self.http.get_json(where, {"symbol": symbol, **params})
        ):
            if not isinstance(answer, list):
                raise PermanentError(f"finnhub: {where} did not return a list ({answer!r:.200})")
            for item in answer:
                published_ts = _integer(item, "datetime", where)
                headline = str(item.get("headline") or "").strip()
                if not start_ts <= published_ts <= as_of_ts or not headline:
                    continue
                article_id = f"finnhub:{_field(item, 'id', where)}:{symbol}"
                rows[article_id] = {
                    "article_id": article_id,
                    "symbol": symbol,
                    "headline": headline,
                    "source": str(item.get("source") or UNKNOWN_SOURCE),
                    "available_ts": published_ts,
                    "updated_ts": None,  # Finnhub gives no edit time
                }
        return _frame(list(rows.values()), "news")

    # -- kinds Finnhub does not serve --------------------------------------------------

    # -- helpers -----------------------------------------------------------------------

    def _snapshot_refusal(self, as_of: datetime) -> str | None:
        """None in a live run; otherwise why a snapshot taken now cannot be stamped ``as_of``."""
        now = self.clock()
        _require_aware(now, "the wall clock")
        if abs(now - as_of) <= SNAPSHOT_TOLERANCE:
            return None
        return (
            f"finnhub answers with what it knows now: a snapshot of today "
            f"({now.astimezone(UTC):%Y-%m-%d}) cannot stand for "
            f"{as_of.astimezone(UTC).isoformat()} (snapshots are stamped only within "
            f"{SNAPSHOT_TOLERANCE} of the wall clock)"
        )

    def _each_symbol(
        self, symbols: Sequence[str], ask: Callable[[str], Any]
    ) -> list[tuple[str, Any]]:
        """``(symbol, answer)`` for each symbol Finnhub answered; refusals go to symbol_errors.

        Raises when every symbol was refused: then the key or the endpoint is the
        problem, and an empty result would hide it.
        """
        answers: list[tuple[str, Any]] = []
        first_refusal: PermanentError | None = None
        for symbol in symbols:
            try:
                answers.append((symbol, ask(symbol)))
            except NotFound:
                self.symbol_errors[symbol] = f"finnhub does not know {symbol}"
            except PermanentError as error:
                status = _refused_status(error)
                if status is None:
                    raise  # an invalid key, a changed format: not about this symbol
                first_refusal = first_refusal or error
                self.symbol_errors[symbol] = (
                    f"finnhub refused {symbol} (HTTP {status}): not in this key's plan "
                    "(the free plan covers US listings) or not a symbol it takes"
                )
        if first_refusal is not None and not answers:
            raise PermanentError(
                f"finnhub refused every symbol asked ({len(symbols)}): {first_refusal}"
            )
        return answers

    def _reports(
        self, symbols: Sequence[str], since: date, end: date
    ) -> list[tuple[str, dict[str, Any]]]:
        """Each symbol's reports dated ``since`` to ``end``, parsed, in Finnhub's order."""
        where = "/calendar/earnings"
        answered = self._each_symbol(symbols, lambda symbol: self._calendar(symbol, since, end))
        reports = []
        for symbol, entries in answered:
            for entry in entries:
                report_date = _report_date(entry, where)
                if not since <= report_date <= end:
                    continue
                report_timing = timing(entry.get("hour"))
                year, quarter = _integer(entry, "year", where), _integer(entry, "quarter", where)
                reports.append(
                    (
                        symbol,
                        {
                            "fiscal_period": f"{year}Q{quarter}",
                            "report_date": report_date,
                            "timing": report_timing,
                            "available": report_available(report_date, report_timing),
                            "eps_actual": _optional_number(entry, "epsActual", where),
                            "eps_estimate": _optional_number(entry, "epsEstimate", where),
                            "revenue_estimate": _optional_number(entry, "revenueEstimate", where),
                        },
                    )
                )
        return reports

    def _calendar(self, symbol: str, since: date, end: date) -> list[Any]:
        """The ``earningsCalendar`` list of one symbol, asked once per window."""
        key = (symbol, since, end)
        if key not in self._calendar_answers:
            where = "/calendar/earnings"
            answer = self.http.get_json(
                where, {"from": since.isoformat(), "to": end.isoformat(), "symbol": symbol}
            )
            entries = answer.get("earningsCalendar") if isinstance(answer, Mapping) else None
            if entries is None:
                entries = []  # Finnhub answers a symbol it has nothing for with null or {}
            if not isinstance(entries, list):
                raise PermanentError(
                    f"finnhub: {where}: earningsCalendar is not a list ({answer!r:.200})"
                )
            self._calendar_answers[key] = entries
        return self._calendar_answers[key]


def _frame(rows: list[dict[str, Any]], table: str) -> pd.DataFrame:
    """Rows in the layout of the store's ``table``, sorted by its key, typed by its columns."""
    spec = TABLES[table]
    frame = pd.DataFrame(rows, columns=list(spec.column_names))
    for name, kind in spec.columns:
        nullable = name in spec.nullable
        if kind.startswith("INTEGER"):
            frame[name] = frame[name].astype("Int64" if nullable else "int64")
        elif kind.startswith("REAL"):
            frame[name] = frame[name].astype("float64")  # null estimates become NaN
    return frame.sort_values(list(spec.key), kind="stable").reset_index(drop=True)
