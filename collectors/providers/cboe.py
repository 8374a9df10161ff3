"""The Cboe provider: option chains from Cboe's free delayed-quotes files, no key needed.

Serves ``options_chain`` only; every other kind raises ``PermanentError``
naming the providers that serve it. All calls go through ``ProviderHttp``
(shared rate limit, retries of 429/5xx, error mapping).

One request per symbol: ``GET /api/global/delayed_quotes/options/{SYMBOL}.json``
returns the symbol's whole chain, ``{"timestamp": "YYYY-MM-DD HH:MM:SS",
"data": {"symbol", "current_price", ..., "options": [{"option": <OCC symbol>,
"bid", "ask", "iv", "open_interest", "volume", "delta", "gamma", "theta",
"vega", "last_trade_time", ...}]}}``. Of it, only the next ``expiries``
expiries after the session and the ``strikes_around_spot`` strikes on each
side of the spot (per expiry and option type) are kept: an index chain is
megabytes and must not be stored whole.

Settings (the config's ``providers.cboe`` section; defaults in the registry):
``base_url``, ``symbols``, ``limits_db`` (the shared limiter's SQLite file),
``expiries`` (default 3), ``strikes_around_spot`` (default 5),
``rate_per_minute`` (default 60: the files are a public web page's data, so be
polite) and ``index_symbols`` (more index symbols than ``INDEX_SYMBOLS``).
``cache_dir`` is accepted and not used.

Traps, and what this module does about them:

- indexes live under a leading underscore (``_SPX.json`` for SPX); the rows
  keep the configured symbol;
- ``timestamp`` is naive text in UTC (a quote file stamped ``03:43:59`` was
  last modified at ``03:44:03 GMT``), while ``last_trade_time`` is naive New
  York time; the quote time (``timestamp``, about 15 minutes behind the
  market) is each row's ``available_ts``;
- Cboe serves only the current chain: a quote time after ``as_of`` gives no
  rows (the chain was not known then), and by more than
  ``BACKFILL_TOLERANCE`` it is a backfill Cboe cannot reproduce; a quote time
  before the previous session's open is too stale to stand for the session;
- one chain mixes option roots: SPX holds SPX (monthly, AM-settled) and SPXW
  (weekly, PM-settled) contracts, which share expiry and strike on third
  Fridays, and equity chains may hold adjusted roots (``AAPL1``) whose
  deliverable is not 100 shares. Only the symbol's own root and its known
  weekly roots (``WEEKLY_ROOTS``) are kept, the own root winning a tie;
- contracts without a market (``ask`` or ``iv`` of 0) are listed too; they
  are dropped, not stored;
- Cboe answers an unknown symbol with 403 (the CDN's "access denied" for a
  missing file) or 404: such symbols go to ``symbol_errors`` (reset by every
  call) and the other symbols are served.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import pandas as pd

from collectors.market_store import TABLES, epoch
from collectors.providers.http import Forbidden, NotFound, ProviderHttp, Sleeper, per_minute
from collectors.providers.partial import ServesSome
from collectors.providers.registry import PROVIDERS
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

INFO = PROVIDERS["cboe"]
CHAIN_PATH = "/api/global/delayed_quotes/options/{}.json"
# The one-symbol quote file of the same feed: a few hundred bytes, for ``check``.
QUOTE_PATH = "/api/global/delayed_quotes/quotes/{}.json"
CHECK_SYMBOL = "SPX"
DEFAULT_EXPIRIES = 3
DEFAULT_STRIKES_AROUND_SPOT = 5
DEFAULT_RATE_PER_MINUTE = 60
# Cboe files these under "_<symbol>"; ``index_symbols`` in the settings adds more.
INDEX_SYMBOLS = frozenset(
    {"SPX", "XSP", "VIX", "NDX", "XND", "RUT", "MRUT", "DJX", "OEX", "XEO", "MXEA", "MXEF"}
)
# Roots listed in an index's chain besides its own: weekly / PM-settled series.
WEEKLY_ROOTS: Mapping[str, tuple[str, ...]] = {
    "SPX": ("SPXW",),
    "NDX": ("NDXP",),
    "RUT": ("RUTW",),
    "VIX": ("VIXW",),
}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"  # Cboe's ``timestamp``, naive UTC
# A quote time this far past ``as_of`` means a backfill, not a run that started late.
BACKFILL_TOLERANCE = timedelta(hours=1)
OPTION_TYPES = {"C": "call", "P": "put"}  # the values the synthetic market stores
# An OCC symbol ends in 15 fixed characters: YYMMDD, C or P, strike x 1000 in 8 digits.
_OCC_TAIL = re.compile(r"(\d{2})(\d{2})(\d{2})([CP])(\d{8})")
_OCC_ROOT = re.compile(r"[A-Z][A-Z0-9]{0,5}")
OCC_TAIL_LENGTH = 15
OSI_LENGTH = 21  # the padded form: the root left-justified in 6 characters


class Contract(NamedTuple):
    """One listed option of a chain, with Cboe's quote record for it."""

    root: str
    expiry: date
    option_type: str
    strike: float
    quote: Mapping[str, Any]


def parse_occ(symbol: str) -> tuple[str, date, str, float]:
    """``(root, expiry, option_type, strike)`` of an OCC option symbol; ``ValueError`` if bad.

    Takes the compact form (``AAPL240719C00190000``) and the 21-character OSI
    form with the root padded by spaces (``AAPL  240719C00190000``). The root
    has 1 to 6 characters and may hold digits (``AAPL1``, an adjusted series);
    the strike is 8 digits with 3 implied decimals (``00190500`` is 190.5).
    """
    if not isinstance(symbol, str) or len(symbol) <= OCC_TAIL_LENGTH:
        raise ValueError(f"not an OCC option symbol: {symbol!r}")
    head, tail = symbol[:-OCC_TAIL_LENGTH], symbol[-OCC_TAIL_LENGTH:]
    root = head.rstrip(" ")
    if root != head and len(symbol) != OSI_LENGTH:
        raise ValueError(f"a space-padded OCC symbol has {OSI_LENGTH} characters: {symbol!r}")
    parts = _OCC_TAIL.fullmatch(tail)
    if parts is None or not _OCC_ROOT.fullmatch(root):
        raise ValueError(f"not an OCC option symbol: {symbol!r}")
    year, month, day, kind, strike_digits = parts.groups()
    try:
        expiry = date(2000 + int(year), int(month), int(day))
    except ValueError:
        raise ValueError(f"OCC symbol {symbol!r} has no valid expiry date") from None
    strike = int(strike_digits) / 1000
    if strike <= 0:
        raise ValueError(f"OCC symbol {symbol!r} has a zero strike")
    return root, expiry, OPTION_TYPES[kind], strike


def parse_quote_time(value: object) -> datetime:
    """Cboe's ``timestamp`` (``"2024-06-27 03:43:59"``, naive UTC) as an aware UTC time."""
    try:
        return datetime.strptime(str(value), TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise PermanentError(
            f"cboe: the response's timestamp is not {TIMESTAMP_FORMAT!r} text: {value!r}; "
            "the response format changed"
        ) from None


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PermanentError(f"{what} must be timezone-aware, got {moment!r}")


def _number(value: object) -> float | None:
    """A finite number from a quote record, or None (missing, null, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _has_market(quote: Mapping[str, Any]) -> bool:
    """Whether a quote can be stored: a real ask and implied vol, and the required fields."""
    ask, iv = _number(quote.get("ask")), _number(quote.get("iv"))
    bid, open_interest = _number(quote.get("bid")), _number(quote.get("open_interest"))
    return (
        ask is not None
        and ask > 0
        and iv is not None
        and iv > 0
        and bid is not None
        and bid >= 0
        and open_interest is not None
        and open_interest >= 0
        and _number(quote.get("delta")) is not None
    )


def _root_of(symbol: str) -> str:
    """The OCC root of a listed symbol: letters and digits only (``BRK.B`` is ``BRKB``)."""
    return re.sub(r"[^A-Z0-9]", "", symbol.upper())


class CboeProvider(ServesSome):
    """Implements ``collectors.providers.base.Provider`` (options only) on Cboe's files."""

    name = "cboe"

    def __init__(
        self,
        *,
        calendar: MarketCalendar,
        limits_db: Path,
        base_url: str = str(INFO.defaults["base_url"]),
        symbols: Sequence[str] = (),
        expiries: int = DEFAULT_EXPIRIES,
        strikes_around_spot: int = DEFAULT_STRIKES_AROUND_SPOT,
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
        index_symbols: Collection[str] = (),
        sleeper: Sleeper = time.sleep,
    ) -> None:
        self.calendar = calendar
        self.symbols = list(dict.fromkeys(symbols))
        self.expiries = expiries
        self.strikes_around_spot = strikes_around_spot
        self.index_symbols = INDEX_SYMBOLS | {s.strip().upper() for s in index_symbols}
        self.http = ProviderHttp(
            self.name,
            base_url,
            rates=per_minute(rate_per_minute),
            limits_db=Path(limits_db),
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
    ) -> CboeProvider:
        """Build from the config's ``provider`` section; bad values raise ``PermanentError``."""
        merged = {**INFO.defaults, **settings}
        if not merged.get("limits_db"):
            raise PermanentError("provider.limits_db: the rate limiter's SQLite file is not set")
        numbers = {}
        for key, default in (
            ("expiries", DEFAULT_EXPIRIES),
            ("strikes_around_spot", DEFAULT_STRIKES_AROUND_SPOT),
            ("rate_per_minute", DEFAULT_RATE_PER_MINUTE),
        ):
            value = merged.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PermanentError(f"provider.{key}: must be an integer >= 1, got {value!r}")
            numbers[key] = value
        lists = {}
        for key in ("symbols", "index_symbols"):
            value = merged.get(key) or []
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise PermanentError(f"provider.{key}: must be a list of symbols, got {value!r}")
            lists[key] = [str(symbol).strip().upper() for symbol in value]
        return cls(
            calendar=calendar,
            limits_db=Path(str(merged["limits_db"])),
            base_url=str(merged["base_url"]),
            symbols=lists["symbols"],
            index_symbols=lists["index_symbols"],
            sleeper=sleeper,
            **numbers,
        )

    def check(self) -> str:
        """One small request (SPX's quote file of the same feed); says when Cboe last quoted."""
        body = self.http.get_json(QUOTE_PATH.format(self._file_name(CHECK_SYMBOL)))
        stamp = body.get("timestamp") if isinstance(body, Mapping) else None
        quoted = parse_quote_time(stamp)
        return f"cboe: reachable, {CHECK_SYMBOL} quoted at {quoted:%Y-%m-%d %H:%M:%S} UTC"

    # -- the served kind ------------------------------------------------------------

    def options_chain(self, symbols: Sequence[str], session: date, as_of: datetime) -> pd.DataFrame:
        """Quotes of the next expiries after ``session`` near the spot, as Cboe quoted them.

        ``available_ts`` is the chain's quote time; a chain quoted after
        ``as_of`` (or too long before ``session``) gives no rows and a
        ``symbol_errors`` entry saying why.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        rows: list[dict[str, Any]] = []
        for symbol in dict.fromkeys(symbols):
            body = self._fetch_chain(symbol)
            if body is None:
                continue
            where = CHAIN_PATH.format(self._file_name(symbol))
            data = body.get("data") if isinstance(body, Mapping) else None
            if not isinstance(data, Mapping) or not isinstance(data.get("options"), list):
                raise PermanentError(
                    f"cboe: GET {where} has no data.options list; the response format changed"
                )
            quoted = parse_quote_time(body.get("timestamp"))
            reason = self._unusable(quoted, session, as_of)
            if reason is not None:
                self.symbol_errors[symbol] = reason
                continue
            spot = _number(data.get("current_price"))
            if spot is None or spot <= 0:
                self.symbol_errors[symbol] = (
                    f"cboe gave no price for {symbol} (current_price {data.get('current_price')!r})"
                )
                continue
            chosen = self._contracts_near_spot(symbol, data["options"], session, spot)
            if not chosen:
                self.symbol_errors[symbol] = (
                    f"cboe quotes no {symbol} option with a market in the next "
                    f"{self.expiries} expiries after {session.isoformat()}"
                )
                continue
            quote_ts = epoch(quoted)
            rows.extend(_row(symbol, session, spot, quote_ts, contract) for contract in chosen)
        return _frame(rows)

    # -- kinds Cboe does not serve ---------------------------------------------------

    # -- helpers --------------------------------------------------------------------

    def _file_name(self, symbol: str) -> str:
        """Cboe's file name for ``symbol``: ``_SPX`` for an index, ``AAPL`` for the rest."""
        upper = symbol.strip().upper()
        return quote(f"_{upper}" if upper in self.index_symbols else upper, safe="")

    def _fetch_chain(self, symbol: str) -> Any:
        """The decoded chain of ``symbol``, or None (kept in ``symbol_errors``) if Cboe has none."""
        path = CHAIN_PATH.format(self._file_name(symbol))
        try:
            return self.http.get_json(path)
        except NotFound:
            self.symbol_errors[symbol] = f"cboe has no option chain for {symbol} (HTTP 404)"
        except Forbidden:
            # The CDN answers a file that does not exist with 403 "access denied"; Cboe
            # needs no key, so a 403 says nothing else.
            self.symbol_errors[symbol] = f"cboe has no option chain for {symbol} (HTTP 403)"
        return None

    def _unusable(self, quoted: datetime, session: date, as_of: datetime) -> str | None:
        """Why a chain quoted at ``quoted`` cannot stand for ``session`` at ``as_of``, or None."""
        stamp = f"{quoted:%Y-%m-%d %H:%M:%S} UTC"
        if quoted > as_of:
            if quoted - as_of > BACKFILL_TOLERANCE:
                return f"Cboe serves only the current chain; cannot reproduce {session.isoformat()}"
            cutoff = as_of.astimezone(UTC)
            return (
                f"cboe's chain is quoted at {stamp}, after as_of {cutoff:%Y-%m-%d %H:%M:%S} UTC: "
                "it was not known yet (the run started too long after as_of)"
            )
        previous = self.calendar.previous_session(session)
        if quoted < self.calendar.hours(previous).open:
            return (
                f"cboe's chain is quoted at {stamp}, before the previous session "
                f"({previous.isoformat()}) opened: too stale for {session.isoformat()}"
            )
        return None

    def _contracts_near_spot(
        self, symbol: str, options: Iterable[Any], session: date, spot: float
    ) -> list[Contract]:
        """The quoted contracts of the next expiries, ``strikes_around_spot`` each side."""
        own_root = _root_of(symbol)
        roots = {own_root, *WEEKLY_ROOTS.get(own_root, ())}
        listed: list[Contract] = []
        malformed = 0
        for quote_record in options:
            try:
                root, expiry, option_type, strike = parse_occ(quote_record["option"])
            except (TypeError, KeyError, ValueError):
                malformed += 1
                continue
            if root in roots and expiry > session:
                listed.append(Contract(root, expiry, option_type, strike, quote_record))
        if malformed:
            logger.warning("cboe: %s: skipped %d unreadable option symbols", symbol, malformed)
        # The expiries come from the listing, quoted or not: "the next N expiries".
        expiries = sorted({contract.expiry for contract in listed})[: self.expiries]
        by_key: dict[tuple[date, str, float], Contract] = {}
        for contract in listed:
            if contract.expiry not in expiries or not _has_market(contract.quote):
                continue
            key = (contract.expiry, contract.option_type, contract.strike)
            # SPX and SPXW share third-Friday strikes; the store keys by strike alone.
            if key not in by_key or contract.root == own_root:
                by_key[key] = contract
        # Per expiry and option type, in strike order: the nearest strikes below the spot
        # and the nearest at or above it.
        groups: dict[tuple[date, str], list[Contract]] = {}
        for key, contract in sorted(by_key.items()):
            groups.setdefault(key[:2], []).append(contract)
        chosen: list[Contract] = []
        for group in groups.values():
            below = [c for c in group if c.strike < spot][-self.strikes_around_spot :]
            above = [c for c in group if c.strike >= spot][: self.strikes_around_spot]
            chosen.extend(below + above)
        return chosen


def _row(
    symbol: str, session: date, spot: float, quote_ts: int, contract: Contract
) -> dict[str, Any]:
    quote_record = contract.quote
    bid, ask = float(quote_record["bid"]), float(quote_record["ask"])
    return {
        "symbol": symbol,
        "session": session.isoformat(),
        "expiry": contract.expiry.isoformat(),
        "strike": contract.strike,
        "option_type": contract.option_type,
        "spot": spot,
        "bid": bid,
        "ask": ask,
        "mid": (bid + ask) / 2,
        "implied_vol": float(quote_record["iv"]),
        "delta": float(quote_record["delta"]),
        "open_interest": float(quote_record["open_interest"]),
        "available_ts": quote_ts,
        "gamma": _number(quote_record.get("gamma")),
        "theta": _number(quote_record.get("theta")),
        "vega": _number(quote_record.get("vega")),
        "volume": _number(quote_record.get("volume")),
    }


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in the layout of the store's ``options_chain``, sorted by its key."""
    spec = TABLES["options_chain"]
    frame = pd.DataFrame(rows, columns=list(spec.column_names))
    frame["available_ts"] = frame["available_ts"].astype("int64")
    for name in ("gamma", "theta", "vega", "volume"):
        frame[name] = frame[name].astype("float64")  # None becomes NaN, the store's NULL
    return frame.sort_values(list(spec.key), kind="stable").reset_index(drop=True)
