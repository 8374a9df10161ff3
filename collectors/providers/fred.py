"""The FRED provider: economic series from FRED / ALFRED, in the vintage known at each moment.

Serves ``economic_series`` only; every other kind raises ``PermanentError``
naming the providers that serve it. All calls go through ``ProviderHttp``
(shared rate limit, 120 requests a minute by default, retries, error
mapping). FRED takes its key only as the ``api_key`` query parameter: it
travels in ``auth_params``, which the HTTP layer keeps out of every message.

Settings (the config's ``providers.fred`` section; defaults in the registry):
``base_url``, ``series`` (FRED series ids), ``limits_db`` (the shared limiter's
SQLite file), ``rate_per_minute`` (default 120, FRED's documented limit);
``symbols`` and ``cache_dir`` are given to every provider and not used here.

What a call does, per configured series:

- ``fred/series`` for the series' frequency (it decides the ``period`` label;
  a series FRED does not know answers 400 "The series does not exist" and
  goes to ``symbol_errors``, the other series are still served). It is asked
  at today's real time: it gives the frequency, never a value;
- ``fred/series/observations`` with ``output_type=1`` (observations by
  real-time period): one row per value and the real-time period in which it
  was the published value, so a revision is a row of its own.

Traps handled:

- no look-ahead in a backfill: ``realtime_end`` is the ``as_of``'s date in
  St. Louis, never later, so FRED never shows a revision published after it;
- FRED gives vintage dates, not times. A vintage counts as known at the end
  of its ``realtime_start`` day in St. Louis (midnight America/Chicago). That
  is later than any release on that day (BLS at 08:30 New York, the Fed's
  H.15 rates in the afternoon), so nothing is read before it was published;
  the cost is a few hours' delay for a morning release;
- FRED clips ``realtime_start`` to the start of the real-time period asked
  for. No observation is published before its own date, so a period starting
  a year before ``since`` (with ``observation_start=since``) holds every
  vintage of the observations asked for unclipped, and the store's key
  (series, period, available_ts) is the same whatever day a run starts;
- FRED refuses a real-time period holding more than 2000 vintage dates (a
  daily series has one a business day): a long period is asked for in windows
  of at most 2000 days. A value in force across a window boundary comes back
  twice, the second time clipped to the window's start; a vintage that repeats
  the value before it for the same date is dropped, so it stays one row with
  its true release;
- ``"."`` is FRED's missing value: no row (never a zero);
- FRED answers a refused key with a 400, not a 401: it is reported naming
  ``FRED_API_KEY``.

``period`` is the observation date labelled by the series' frequency, as the
synthetic provider labels its series: monthly ``YYYY-MM``, quarterly
``YYYY-Qn``, semiannual ``YYYY-Hn``, annual ``YYYY``, and daily, weekly (FRED
dates a week by its last day) or any other frequency the ISO date
``YYYY-MM-DD``. Within a series every label sorts in time order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from collectors.market_store import TABLES, epoch
from collectors.providers.http import ProviderHttp, Sleeper, per_minute
from collectors.providers.partial import ServesSome
from collectors.providers.registry import PROVIDERS
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

INFO = PROVIDERS["fred"]
DEFAULT_RATE_PER_MINUTE = 120  # FRED's documented limit per key
SERIES_PATH = "fred/series"
OBSERVATIONS_PATH = "fred/series/observations"
CHECK_SERIES = "DGS10"  # any series does for a key check; this one always exists
# FRED's dates are those of the Federal Reserve Bank of St. Louis.
FRED_TZ = ZoneInfo("America/Chicago")
# How far before ``since`` the real-time period starts: see the module docstring.
REALTIME_MARGIN = timedelta(days=365)
# FRED refuses a real-time period with more than 2000 vintage dates; a window of
# 2000 days holds at most 2000, even for a series revised every day.
REALTIME_WINDOW_DAYS = 2000
OBSERVATIONS_PAGE_LIMIT = 100_000  # the documented maximum of fred/series/observations
OBSERVATIONS_BY_REALTIME_PERIOD = 1  # output_type 1: each value with its real-time period
MISSING = "."  # FRED's value for a missing observation


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PermanentError(f"{what} must be timezone-aware, got {moment!r}")


def known_from(vintage: date) -> int:
    """When a vintage dated ``vintage`` counts as known: the end of that day in St. Louis."""
    return epoch(datetime.combine(vintage + timedelta(days=1), clock_time(0), FRED_TZ))


def period_label(day: date, frequency_short: str) -> str:
    """The store's ``period`` of an observation dated ``day`` in a series of that frequency."""
    frequency = frequency_short.upper()
    if frequency == "M":
        return day.strftime("%Y-%m")
    if frequency == "Q":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    if frequency == "SA":
        return f"{day.year}-H{1 if day.month <= 6 else 2}"
    if frequency == "A":
        return str(day.year)
    return day.isoformat()  # daily, weekly, biweekly: the date itself


def realtime_windows(first: date, last: date) -> list[tuple[date, date]]:
    """``[first, last]`` cut into closed windows of at most ``REALTIME_WINDOW_DAYS`` days."""
    windows = []
    start = first
    while start <= last:
        end = min(start + timedelta(days=REALTIME_WINDOW_DAYS - 1), last)
        windows.append((start, end))
        start = end + timedelta(days=1)
    return windows


def _field(record: Any, name: str, where: str) -> Any:
    """``record[name]``, or a ``PermanentError`` saying the response format changed."""
    if not isinstance(record, Mapping) or name not in record:
        raise PermanentError(f"fred: {where}: a response item lacks {name!r} ({record!r:.200})")
    return record[name]


def _date(record: Any, name: str, where: str) -> date:
    value = _field(record, name, where)
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PermanentError(f"fred: {where}: {name} is not a date: {value!r}") from None


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PermanentError(f"fred: {where}: value is not a number: {text!r}") from None


def _unknown_series(error: PermanentError) -> bool:
    # FRED's answer to an unknown id: 400 "Bad Request.  The series does not exist."
    return "series does not exist" in str(error).lower()


def _key_refused(error: PermanentError) -> bool:
    # FRED refuses a key with a 400: "Variable api_key has not been set." or
    # "The value for variable api_key is not registered."
    return "variable api_key" in str(error).lower()


def _latest_repeats_dropped(
    vintages: list[tuple[date, date, str]],
) -> list[tuple[date, date, str]]:
    """``(date, realtime_start, value)`` in order, less any vintage repeating the one before.

    A value in force across a real-time window boundary comes back from each
    window; the first answer carries its true release, the later ones only the
    window's start.
    """
    kept = []
    previous: dict[date, str] = {}
    for day, start, value in sorted(vintages):
        if previous.get(day) == value:
            continue
        previous[day] = value
        kept.append((day, start, value))
    return kept


class FredProvider(ServesSome):
    """Implements ``collectors.providers.base.Provider`` for ``economic_series`` on FRED."""

    name = "fred"

    def __init__(
        self,
        *,
        calendar: MarketCalendar,
        series: Sequence[str],
        limits_db: Path,
        base_url: str = str(INFO.defaults["base_url"]),
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
        sleeper: Sleeper = time.sleep,
    ) -> None:
        (self.credential,) = INFO.credentials
        key = self.credential.require(self.name)
        self.calendar = calendar
        self.series = list(dict.fromkeys(series))
        self.http = ProviderHttp(
            self.name,
            base_url,
            rates=per_minute(rate_per_minute),
            limits_db=Path(limits_db),
            auth_params={"api_key": key},
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
    ) -> FredProvider:
        """Build from the config's ``provider`` section; bad values raise ``PermanentError``."""
        merged = {**INFO.defaults, **settings}
        series = merged.get("series")
        if not isinstance(series, Sequence) or isinstance(series, str) or not series:
            raise PermanentError("provider.series: list the FRED series ids to collect")
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
            series=[str(one).strip().upper() for one in series],
            limits_db=Path(str(merged["limits_db"])),
            base_url=str(merged["base_url"]),
            rate_per_minute=rate,
            sleeper=sleeper,
        )

    def check(self) -> str:
        """One cheap call with the key; a refused key raises ``PermanentError`` naming it."""
        found = self._series_info(CHECK_SERIES)
        frequency, updated = found.get("frequency", "?"), found.get("last_updated", "?")
        return f"fred: key accepted ({CHECK_SERIES}: {frequency}, updated {updated})"

    # -- the served kind --------------------------------------------------------------

    def economic_series(self, since: date, as_of: datetime) -> pd.DataFrame:
        """Every vintage known by ``as_of`` of the observations dated from ``since``.

        One row per (series, period, vintage): ``available_ts`` is the end of
        the vintage's ``realtime_start`` day in St. Louis, and only rows with
        ``available_ts <= as_of`` are kept.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        as_of_ts = epoch(as_of)
        # The newest vintage date FRED is asked about: the as_of's own date, never later.
        last_day = as_of.astimezone(FRED_TZ).date()
        rows: list[dict[str, Any]] = []
        if since > last_day:
            return _frame(rows)
        for series in self.series:
            try:
                frequency = str(self._series_info(series).get("frequency_short") or "")
                vintages = self._vintages(series, since, last_day)
            except PermanentError as error:
                if not _unknown_series(error):
                    raise
                self.symbol_errors[series] = f"fred does not know series {series}"
                continue
            where = f"{OBSERVATIONS_PATH} {series}"
            for day, realtime_start, value in vintages:
                if value == MISSING or day < since:
                    continue
                available_ts = known_from(realtime_start)
                if available_ts > as_of_ts:
                    continue
                rows.append(
                    {
                        "series": series,
                        "period": period_label(day, frequency),
                        "value": _number(value, where),
                        "available_ts": available_ts,
                    }
                )
        return _frame(rows)

    # -- requests ---------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        """``get_json``, with FRED's 400 for a refused key reported as a key problem."""
        try:
            return self.http.get_json(path, {**params, "file_type": "json"})
        except PermanentError as error:
            if _key_refused(error):
                raise PermanentError(
                    f"fred: the key was refused ({error}); set {self.credential.variable} "
                    f"in the environment or .env (from {self.credential.where})"
                ) from None
            raise

    def _series_info(self, series: str) -> Mapping[str, Any]:
        """The ``fred/series`` record of ``series`` (title, frequency_short, ...)."""
        where = f"{SERIES_PATH} {series}"
        answer = self._get(SERIES_PATH, {"series_id": series})
        found = _field(answer, "seriess", where)
        if not isinstance(found, list) or not found or not isinstance(found[-1], Mapping):
            raise PermanentError(f"fred: {where}: no series record in the answer")
        record: Mapping[str, Any] = found[-1]
        return record

    def _vintages(self, series: str, since: date, last_day: date) -> list[tuple[date, date, str]]:
        """``(date, realtime_start, value)`` of every vintage of ``series`` dated from ``since``
        whose real-time period starts by ``last_day``."""
        where = f"{OBSERVATIONS_PATH} {series}"
        found: list[tuple[date, date, str]] = []
        for first, last in realtime_windows(since - REALTIME_MARGIN, last_day):
            offset = 0
            while True:
                page = self._get(
                    OBSERVATIONS_PATH,
                    {
                        "series_id": series,
                        "observation_start": since.isoformat(),
                        "realtime_start": first.isoformat(),
                        "realtime_end": last.isoformat(),
                        "output_type": OBSERVATIONS_BY_REALTIME_PERIOD,
                        "sort_order": "asc",
                        "limit": OBSERVATIONS_PAGE_LIMIT,
                        "offset": offset,
                    },
                )
                observations = _field(page, "observations", where) or []
                for observation in observations:
                    found.append(
                        (
                            _date(observation, "date", where),
                            _date(observation, "realtime_start", where),
                            str(_field(observation, "value", where)).strip(),
                        )
                    )
                offset += len(observations)
                if not observations or offset >= int(page.get("count") or 0):
                    break
        return _latest_repeats_dropped(found)

    # -- kinds FRED does not serve ----------------------------------------------------


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in the layout of the store's ``economic_series``, sorted by its key."""
    spec = TABLES["economic_series"]
    frame = pd.DataFrame(rows, columns=list(spec.column_names))
    frame["value"] = frame["value"].astype("float64")
    frame["available_ts"] = frame["available_ts"].astype("int64")
    return frame.sort_values(list(spec.key), kind="stable").reset_index(drop=True)
