"""The SEC EDGAR provider: fundamentals as filed (XBRL company facts) and Form 4 insider trades.

Serves ``fundamentals`` and ``insider_trades``; every other kind raises
``PermanentError`` naming the providers that serve it. All calls go through
``ProviderHttp`` with one shared limiter named ``sec`` for both hosts
(``data.sec.gov`` for the JSON APIs, ``www.sec.gov`` for the ticker list and
the filing archive): SEC's fair-access limit, 10 requests per second, counts
all of sec.gov together, so the default here is 8 per second, in bursts of
at most 10 (``_rates``).

Settings (the config's ``providers.sec`` section; defaults in the registry):
``base_url`` (``https://data.sec.gov``), ``www_url`` (``https://www.sec.gov``),
``symbols``, ``limits_db`` (the shared limiter's SQLite file), ``cache_dir``
(the ticker list and Form 4 documents are kept there) and ``rate_per_second``.

Endpoints used (https://www.sec.gov/search-filings/edgar-application-programming-interfaces):

- ``{www_url}/files/company_tickers.json`` maps tickers to CIKs; it is kept in
  ``cache_dir/sec_company_tickers.json`` and fetched again once a day old;
- ``{base_url}/api/xbrl/companyfacts/CIK##########.json``, one per company,
  for fundamentals (never the frames API: a frame holds the value *last*
  filed for a period, which a backfill must not see before it was filed);
- ``{base_url}/submissions/CIK##########.json`` (and the older pages listed in
  its ``files``, only when the recent list does not reach back to ``since``),
  one per company, for the list of Form 4 and 4/A filings;
- ``{www_url}/Archives/edgar/data/{cik}/{accession without dashes}/{document}``
  for each Form 4's XML, once: a filing never changes after acceptance (an
  amendment is a new accession), so the document is kept in
  ``cache_dir/sec_form4/`` and later runs read it from there.

Traps handled:

- SEC refuses requests without a User-Agent naming a person or company and an
  e-mail address: ``SEC_USER_AGENT`` is required and checked when the provider
  is built, before any request;
- SEC answers too many requests with a 403 HTML page, not a 429: that page
  pauses every process's requests to SEC for ten minutes (the block SEC
  imposes) and raises ``TransientError`` (``throttle_403_seconds``). A 403 for
  an undeclared User-Agent looks the same, hence the check above;
- ``acceptanceDateTime`` ends in ``Z`` but for some filers is New York wall
  time: see ``accepted_at`` for how it is detected and corrected;
- company facts carry the *filing's* ``fy``/``fp`` on every fact, comparatives
  included; flows in a 10-Q are often year-to-date (cash flow always), and a
  10-K has only the annual figure; the tag for one figure varies between
  companies and over time. See ``SecProvider.fundamentals`` and
  ``FLOW_TAGS``/``INSTANT_TAGS``;
- a Form 4's ``primaryDocument`` is the XSL rendering (``xslF345X05/...``);
  the raw XML is the same name without that folder;
- a Form 4 transaction without a price (gifts, grants, most awards) cannot be
  valued, and the store requires a positive price: such transactions are left
  out (logged at debug level);
- the ticker map is today's: a ticker reused by another company since a
  backfilled date maps to the new company (SEC publishes no history of it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pandas as pd
from pyrate_limiter import Duration, Rate

from collectors.market_store import TABLES, epoch
from collectors.providers.http import NotFound, ProviderHttp, Sleeper
from collectors.providers.partial import ServesSome
from collectors.providers.registry import PROVIDERS
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

__all__ = ["SecProvider", "accepted_at", "clock_convention", "parse_ownership"]

INFO = PROVIDERS["sec"]
SEC_LIMIT_PER_SECOND = 10  # SEC's fair-access limit, for all of sec.gov
# Permits are timed when taken, SEC counts arrivals: the margin is how late a request may
# arrive after its permit. 0.25 s gives 8 per second, a run at 1.25 x SEC's floor: 0.15 s
# (8.7 per second, 1.15 x) got SEC's 403 with two tasks in parallel on a loaded machine
# (bench/bench_providers_daily.py), and the 403 costs ten minutes.
ARRIVAL_MARGIN_SECONDS = 0.25
DEFAULT_RATE_PER_SECOND = SEC_LIMIT_PER_SECOND / (1 + ARRIVAL_MARGIN_SECONDS)
THROTTLE_PAUSE_SECONDS = 600  # SEC blocks a client that went too fast for ten minutes
NEW_YORK = ZoneInfo("America/New_York")  # EDGAR's clock, whatever the exchange calendar
# EDGAR accepts filings from 06:00 to 22:00 New York time on business days.
EDGAR_OPENS = clock_time(6, 0)
EDGAR_CLOSES = clock_time(22, 0)
END_OF_DAY = clock_time(23, 59, 59)
TICKERS_CACHE = "sec_company_tickers.json"
TICKERS_MAX_AGE_SECONDS = 24 * 3600
FORM4_CACHE = "sec_form4"

STATEMENT_FORMS = frozenset({"10-Q", "10-K", "10-Q/A", "10-K/A"})
INSIDER_FORMS = frozenset({"4", "4/A"})
# A fiscal quarter lasts 13 weeks, a calendar quarter 90-92 days, the long quarter of a
# 53-week year 14 weeks: anything from 80 to 100 days counts as one quarter.
QUARTER_DAYS = (80, 100)

# Each column's us-gaap tags, in order of preference: the first tag the filing reports
# for the period wins, so a company that changed tags (SalesRevenueNet before ASC 606)
# or uses another one (RevenueFromContractWithCustomer...) is still read.
FLOW_TAGS: Mapping[str, tuple[str, ...]] = {
    "revenue": (
        "Revenues",
        "RevenueFromContractWithCustomerExcludingAssessedTax",
        "SalesRevenueNet",
        "RevenueFromContractWithCustomerIncludingAssessedTax",
    ),
    "net_income": ("NetIncomeLoss", "ProfitLoss"),
    "eps": ("EarningsPerShareDiluted", "EarningsPerShareBasic"),
    "operating_cash_flow": ("NetCashProvidedByUsedInOperatingActivities",),
}
INSTANT_TAGS: Mapping[str, tuple[str, ...]] = {
    "total_assets": ("Assets",),
    "total_liabilities": ("Liabilities",),
    "equity": (
        "StockholdersEquity",
        "StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest",
    ),
    "total_debt": ("LongTermDebt", "LongTermDebtNoncurrent"),
}
# Shares outstanding: the cover page's count (dei, dated weeks after the period end),
# else the balance sheet's (us-gaap, at the period end).
COVER_SHARES_TAG = "EntityCommonStockSharesOutstanding"
BALANCE_SHARES_TAG = "CommonStockSharesOutstanding"
FIGURES = (*FLOW_TAGS, *INSTANT_TAGS, "shares_outstanding")


def _unit(column: str) -> str:
    """The companyfacts unit of a column's facts."""
    return {"eps": "USD/shares", "shares_outstanding": "shares"}.get(column, "USD")


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PermanentError(f"{what} must be timezone-aware, got {moment!r}")


def _end_of_day(day: date) -> datetime:
    """The last second of ``day`` in New York: when a filing dated ``day`` is surely public."""
    return datetime.combine(day, END_OF_DAY, NEW_YORK)


def _day(value: object, where: str) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise PermanentError(f"sec: {where}: not a date: {value!r}") from None


def _rates(per_second: float) -> list[Rate]:
    """``per_second`` as bursts of SEC's 10: 8 -> 10 per 1250 ms, 0.5 -> 10 per 20 s.

    Not ``per_second`` per second: 9 per 1000 ms lets the 10th and 11th requests
    of two processes (permits taken a moment apart) land in one second at SEC
    when the first was sent late. Ten per ``10 / per_second`` seconds never puts
    11 requests in one second unless one arrives more than ``10 / per_second - 1``
    seconds after its permit (SEC's 403 was seen at 9 per 1000 ms with two tasks in
    parallel on a loaded machine).
    """
    window_ms = Duration.SECOND.value * SEC_LIMIT_PER_SECOND / per_second
    return [Rate(SEC_LIMIT_PER_SECOND, round(window_ms))]


# -- acceptance times ----------------------------------------------------------------


@dataclass(frozen=True)
class Filing:
    """One row of a submissions listing."""

    accession: str
    form: str
    filing_date: date
    acceptance: str  # acceptanceDateTime as written, e.g. "2024-05-03T20:05:44.000Z"
    primary_document: str


def _readings(filing: Filing) -> tuple[datetime, datetime]:
    """``acceptanceDateTime`` read as UTC (as its ``Z`` says) and as New York wall time."""
    written = datetime.fromisoformat(filing.acceptance).replace(tzinfo=None)
    return written.replace(tzinfo=UTC), written.replace(tzinfo=NEW_YORK)


def _plausible(moment: datetime, filing_date: date) -> bool:
    """Could EDGAR have accepted a filing dated ``filing_date`` at ``moment``?

    EDGAR accepts from 06:00 to 22:00 New York time, and a filing is never
    dated before the day it was accepted (after 17:30 most forms are dated the
    next business day).
    """
    local = moment.astimezone(NEW_YORK)
    return EDGAR_OPENS <= local.time() <= EDGAR_CLOSES and local.date() <= filing_date


def _clear_reading(filing: Filing) -> str | None:
    """``"utc"`` or ``"new_york"`` when only one reading of the time is plausible."""
    as_utc, as_new_york = _readings(filing)
    utc_ok = _plausible(as_utc, filing.filing_date)
    new_york_ok = _plausible(as_new_york, filing.filing_date)
    if utc_ok == new_york_ok:
        return None
    return "utc" if utc_ok else "new_york"


def clock_convention(filings: Iterable[Filing]) -> str | None:
    """How one company's listing writes ``acceptanceDateTime``: ``"utc"``, ``"new_york"``, None.

    The ``Z`` is true for most filers, but for some the listing holds the New
    York wall clock with a ``Z`` appended, and the habit belongs to the filer,
    not to the filing. Filings whose time is plausible under one reading only
    (an 07:30 8-K written ``07:30Z`` would be 03:30 in New York, when EDGAR is
    closed) vote; the majority decides. None when no filing tells.
    """
    votes = Counter(reading for filing in filings if (reading := _clear_reading(filing)))
    if votes["new_york"] > votes["utc"]:
        return "new_york"
    if votes["utc"] > votes["new_york"]:
        return "utc"
    return None


def accepted_at(filing: Filing, convention: str | None) -> datetime:
    """When EDGAR accepted ``filing``, in UTC, with a false ``Z`` corrected.

    One plausible reading: that one. Both plausible (most filings, 10:00-18:00
    New York): the company's ``convention``. No convention, or neither reading
    plausible: the later reading (New York), so a filing is never taken as
    known before it was. No acceptance time: the end of the filing date.
    """
    if not filing.acceptance:
        return _end_of_day(filing.filing_date).astimezone(UTC)
    as_utc, as_new_york = _readings(filing)
    reading = _clear_reading(filing)
    if reading is None and _plausible(as_utc, filing.filing_date):
        reading = convention
    return as_utc if reading == "utc" else as_new_york.astimezone(UTC)


# -- Form 4 documents -----------------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """One non-derivative transaction of a Form 4 (``index`` counts from 1 in the document)."""

    index: int
    transaction_date: str | None
    code: str | None
    shares: float | None
    price: float | None
    acquired_disposed: str | None
    shares_after: float | None
    ownership: str | None


@dataclass(frozen=True)
class OwnershipDocument:
    """What a Form 4 or 4/A says that the insider table needs."""

    document_type: str
    original_date: date | None  # a 4/A's dateOfOriginalSubmission
    owner_ciks: frozenset[str]
    owner: str
    role: str
    is_10b5_1: int | None
    transactions: tuple[Transaction, ...]
    transaction_dates: frozenset[str]  # derivative ones too: they identify the filing


def _text(element: ElementTree.Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _flag(text: str | None) -> bool | None:
    """Form 4 booleans are written ``1``/``0`` or ``true``/``false``."""
    if text is None:
        return None
    return text.lower() in ("1", "true")


def _role(relationship: ElementTree.Element | None) -> str:
    """``CFO``, ``Director``, ``10% Owner``, joined when several apply."""
    if relationship is None:
        return "Unknown"
    roles = []
    title = _text(relationship, "officerTitle")
    if _flag(_text(relationship, "isOfficer")) or title:
        roles.append(title or "Officer")
    if _flag(_text(relationship, "isDirector")):
        roles.append("Director")
    if _flag(_text(relationship, "isTenPercentOwner")):
        roles.append("10% Owner")
    if _flag(_text(relationship, "isOther")):
        roles.append(_text(relationship, "otherText") or "Other")
    return ", ".join(roles) or "Unknown"


def parse_ownership(xml: bytes, accession: str) -> OwnershipDocument:
    """A Form 4's XML (``ownershipDocument``); ``PermanentError`` if it is not one."""
    try:
        root = ElementTree.fromstring(xml)  # bytes: the XML declaration names the encoding
    except ElementTree.ParseError as error:
        raise PermanentError(f"sec: Form 4 {accession} is not XML ({error})") from None
    if root.tag != "ownershipDocument":
        raise PermanentError(f"sec: Form 4 {accession} is a {root.tag!r}, not an ownershipDocument")
    owners = root.findall("reportingOwner")
    names = [_text(owner, "reportingOwnerId/rptOwnerName") for owner in owners]
    roles = dict.fromkeys(_role(owner.find("reportingOwnerRelationship")) for owner in owners)
    transactions = []
    for index, node in enumerate(root.findall("nonDerivativeTable/nonDerivativeTransaction"), 1):
        transactions.append(
            Transaction(
                index=index,
                transaction_date=(_text(node, "transactionDate/value") or "")[:10] or None,
                code=_text(node, "transactionCoding/transactionCode"),
                shares=_number(_text(node, "transactionAmounts/transactionShares/value")),
                price=_number(_text(node, "transactionAmounts/transactionPricePerShare/value")),
                acquired_disposed=_text(
                    node, "transactionAmounts/transactionAcquiredDisposedCode/value"
                ),
                shares_after=_number(
                    _text(node, "postTransactionAmounts/sharesOwnedFollowingTransaction/value")
                ),
                ownership=_text(node, "ownershipNature/directOrIndirectOwnership/value"),
            )
        )
    dates = {
        text[:10]
        for path in (
            "nonDerivativeTable/nonDerivativeTransaction/transactionDate/value",
            "derivativeTable/derivativeTransaction/transactionDate/value",
        )
        for node in root.findall(path)
        if (text := (node.text or "").strip())
    }
    original = _text(root, "dateOfOriginalSubmission")
    aff10b5one = _flag(_text(root, "aff10b5One"))  # in the schema since April 2023
    return OwnershipDocument(
        document_type=_text(root, "documentType") or "",
        original_date=_day(original, f"Form 4 {accession}") if original else None,
        owner_ciks=frozenset(
            cik for owner in owners if (cik := _text(owner, "reportingOwnerId/rptOwnerCik"))
        ),
        owner="; ".join(name for name in names if name) or "Unknown",
        role="; ".join(roles) or "Unknown",
        is_10b5_1=None if aff10b5one is None else int(aff10b5one),
        transactions=tuple(transactions),
        transaction_dates=frozenset(dates),
    )


# -- company facts ------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One value of one tag in one filing (companyfacts ``units`` entry)."""

    start: date | None  # None for an instant (balance-sheet) fact
    end: date
    value: float
    accession: str
    filed: date


@dataclass(frozen=True)
class Statement:
    """One 10-Q or 10-K (or amendment) seen in the company facts."""

    accession: str
    filed: date
    fiscal_year: int | None
    fiscal_period: str | None  # Q1, Q2, Q3, FY: of the filing, not of each fact


def _is_quarter(start: date, end: date) -> bool:
    return QUARTER_DAYS[0] <= (end - start).days <= QUARTER_DAYS[1]


class _Facts:
    """The facts of the tags used, by tag and by accession, from statement filings only."""

    def __init__(self, body: Any, where: str) -> None:
        if not isinstance(body, Mapping) or not isinstance(body.get("facts"), Mapping):
            raise PermanentError(f"sec: {where}: the response has no 'facts'")
        self.by_tag: dict[str, dict[str, list[Fact]]] = {}
        self.statements: dict[str, Statement] = {}
        tagged = {**FLOW_TAGS, **INSTANT_TAGS}
        wanted = [(column, "us-gaap", tag) for column, tags in tagged.items() for tag in tags]
        wanted += [
            ("shares_outstanding", "dei", COVER_SHARES_TAG),
            ("shares_outstanding", "us-gaap", BALANCE_SHARES_TAG),
        ]
        for column, taxonomy, tag in wanted:
            concept = (body["facts"].get(taxonomy) or {}).get(tag) or {}
            entries = (concept.get("units") or {}).get(_unit(column)) or []
            by_accession: dict[str, list[Fact]] = {}
            for entry in entries:
                if entry.get("form") not in STATEMENT_FORMS:
                    continue
                fact = self._fact(entry, f"{where} {tag}")
                by_accession.setdefault(fact.accession, []).append(fact)
                if taxonomy == "us-gaap" and fact.accession not in self.statements:
                    fy = entry.get("fy")
                    self.statements[fact.accession] = Statement(
                        fact.accession,
                        fact.filed,
                        int(fy) if isinstance(fy, int) else None,
                        str(entry.get("fp") or "") or None,
                    )
            self.by_tag[tag] = by_accession

    @staticmethod
    def _fact(entry: Any, where: str) -> Fact:
        try:
            return Fact(
                start=date.fromisoformat(entry["start"]) if entry.get("start") else None,
                end=date.fromisoformat(entry["end"]),
                value=float(entry["val"]),
                accession=str(entry["accn"]),
                filed=date.fromisoformat(entry["filed"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PermanentError(
                f"sec: {where}: a fact is malformed ({error}: {entry!r:.200})"
            ) from None

    def ends(self, accession: str) -> list[date]:
        """The period ends a filing reports (us-gaap), newest first: its own, then comparatives."""
        ends = {
            fact.end
            for tag, by_accession in self.by_tag.items()
            if tag != COVER_SHARES_TAG
            for fact in by_accession.get(accession, [])
        }
        return sorted(ends, reverse=True)

    def quarter_flow(self, tag: str, statement: Statement, end: date) -> float | None:
        """The quarter ending ``end`` of a flow, as ``statement`` reports it.

        A three-month fact is taken as is. A longer one (year-to-date in a 10-Q,
        the year in a 10-K) gives the quarter as itself minus the year-to-date
        up to the previous quarter end (same start), as last filed by then: the
        fourth quarter is the year less nine months. For EPS this difference is
        an approximation (share counts change during the year).
        """
        by_accession = self.by_tag.get(tag, {})
        own = [f for f in by_accession.get(statement.accession, []) if f.end == end and f.start]
        for fact in own:
            if fact.start and _is_quarter(fact.start, fact.end):
                return fact.value
        for fact in sorted(own, key=lambda f: f.start or f.end):
            earlier = [
                other
                for facts in by_accession.values()
                for other in facts
                if other.start == fact.start
                and other.filed <= statement.filed
                and _is_quarter(other.end, end)
            ]
            if earlier:
                previous = max(earlier, key=lambda f: (f.filed, f.accession))
                return fact.value - previous.value
        return None

    def instant(self, tag: str, accession: str, end: date) -> float | None:
        for fact in self.by_tag.get(tag, {}).get(accession, []):
            if fact.start is None and fact.end == end:
                return fact.value
        return None

    def figures(self, statement: Statement, end: date, cover: bool) -> dict[str, float | None]:
        """The columns ``statement`` reports for the period ending ``end``.

        ``cover``: the period is the filing's own, so the cover page's share
        count (dated after the period) belongs to it.
        """
        row: dict[str, float | None] = {}
        for column, tags in FLOW_TAGS.items():
            values = (self.quarter_flow(tag, statement, end) for tag in tags)
            row[column] = next((value for value in values if value is not None), None)
        for column, tags in INSTANT_TAGS.items():
            values = (self.instant(tag, statement.accession, end) for tag in tags)
            row[column] = next((value for value in values if value is not None), None)
        shares = None
        if cover:
            cover_facts = self.by_tag.get(COVER_SHARES_TAG, {}).get(statement.accession, [])
            if cover_facts:
                shares = max(cover_facts, key=lambda f: f.end).value
        if shares is None:
            shares = self.instant(BALANCE_SHARES_TAG, statement.accession, end)
        row["shares_outstanding"] = shares
        return row


def _fiscal_period(statement: Statement, end: date) -> str:
    """``2024Q2`` from the filing's fy/fp (FY is the fourth quarter)."""
    quarter = {"Q1": 1, "Q2": 2, "Q3": 3, "FY": 4}.get(statement.fiscal_period or "")
    if statement.fiscal_year is None or quarter is None:
        return f"{end.year}Q{(end.month - 1) // 3 + 1}"  # no fy/fp: the calendar quarter
    return f"{statement.fiscal_year}Q{quarter}"


def _restated(new: Mapping[str, float | None], old: Mapping[str, Any]) -> bool:
    """Does a later filing report, for a period, a figure that differs from the one known?"""
    for column in FIGURES:
        reported, known = new[column], old[column]
        if reported is not None and known is not None and not math.isclose(reported, known):
            return True
    return False


# -- the provider -----------------------------------------------------------------------


class SecProvider(ServesSome):
    """Implements ``collectors.providers.base.Provider`` on SEC EDGAR (two kinds of it)."""

    name = "sec"

    def __init__(
        self,
        *,
        calendar: MarketCalendar,
        limits_db: Path,
        cache_dir: Path,
        symbols: Sequence[str] = (),
        base_url: str = str(INFO.defaults["base_url"]),
        www_url: str = str(INFO.defaults["www_url"]),
        rate_per_second: float = DEFAULT_RATE_PER_SECOND,
        sleeper: Sleeper = time.sleep,
    ) -> None:
        (credential,) = INFO.credentials
        user_agent = (credential.value() or "").strip()
        if "@" not in user_agent:
            raise PermanentError(
                f"sec: SEC requires a name and an e-mail address in the User-Agent; set "
                f"{credential.variable} in the environment or .env, e.g. "
                "SEC_USER_AGENT='Jane Doe jane@example.com'"
                + (" (the value set has no e-mail address)" if user_agent else "")
            )
        self.calendar = calendar
        self.symbols = list(dict.fromkeys(symbols))
        self.base_url = base_url.rstrip("/")
        self.www_url = www_url.rstrip("/")
        self.cache_dir = Path(cache_dir)
        self.http = ProviderHttp(
            self.name,
            self.base_url,
            rates=_rates(rate_per_second),
            limits_db=Path(limits_db),
            headers={"User-Agent": user_agent},
            credentials=INFO.credentials,
            sleeper=sleeper,
            throttle_403_seconds=THROTTLE_PAUSE_SECONDS,
        )
        self.symbol_errors: dict[str, str] = {}
        self._tickers: dict[str, int] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        calendar: MarketCalendar,
        *,
        sleeper: Sleeper = time.sleep,
    ) -> SecProvider:
        """Build from the config's ``providers.sec`` section; bad values are ``PermanentError``."""
        merged = {**INFO.defaults, **settings}
        symbols = merged.get("symbols") or []
        if not isinstance(symbols, Sequence) or isinstance(symbols, str):
            raise PermanentError("provider.symbols: a list of symbols")
        for key in ("limits_db", "cache_dir"):
            if not merged.get(key):
                raise PermanentError(f"provider.{key}: not set (the runner passes state/cache)")
        try:
            rate = float(merged.get("rate_per_second", DEFAULT_RATE_PER_SECOND))
        except (TypeError, ValueError):
            raise PermanentError("provider.rate_per_second: must be a number") from None
        if rate <= 0:
            raise PermanentError(f"provider.rate_per_second: must be > 0, got {rate}")
        if rate > 10:
            logger.warning("sec: rate_per_second %s is above the 10 per second SEC allows", rate)
        return cls(
            calendar=calendar,
            symbols=[str(symbol).strip().upper() for symbol in symbols],
            limits_db=Path(str(merged["limits_db"])),
            cache_dir=Path(str(merged["cache_dir"])),
            base_url=str(merged["base_url"]),
            www_url=str(merged["www_url"]),
            rate_per_second=rate,
            sleeper=sleeper,
        )

    def check(self) -> str:
        """One cheap call: the ticker list (also refreshes its cache)."""
        count = len(self._download_tickers())
        return f"sec: User-Agent accepted, company_tickers.json lists {count} tickers"

    # -- fundamentals ------------------------------------------------------------------

    def fundamentals(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Quarterly figures of the 10-Qs and 10-Ks available from ``since`` up to ``as_of``.

        One company-facts request per company. Rows:

        - one per filing for its own quarter (the latest period end it reports):
          ``filing_id`` is the accession, ``fiscal_period`` the filing's fy/fp
          (a 10-K is the fourth quarter), flows are the quarter's (see
          ``_Facts.quarter_flow``), balance-sheet items those at the period end;
          a 10-Q/A or 10-K/A for the same quarter is a new row;
        - one more when a later filing's comparative figures for an earlier
          quarter differ from those known (a restatement in next year's 10-Q):
          its figures over those last known for that quarter, under its own
          accession and time. Comparatives equal to the known figures add nothing.

        Available at the end of the filing date (23:59:59 New York): companyfacts
        has the date only, and nothing is taken as known before it was.
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        start = datetime.combine(since, clock_time(0), NEW_YORK)
        if not symbols or start > as_of:
            return _frame([], "fundamentals")
        rows = []
        for symbol in dict.fromkeys(symbols):
            cik = self._cik(symbol)
            if cik is None:
                continue
            where = f"companyfacts CIK{cik:010d}"
            try:
                body = self.http.get_json(f"api/xbrl/companyfacts/CIK{cik:010d}.json")
            except NotFound:
                self.symbol_errors[symbol] = f"SEC has no XBRL company facts for {symbol}"
                continue
            for row in self._statement_rows(symbol, _Facts(body, where)):
                if start.timestamp() <= row["available_ts"] <= as_of.timestamp():
                    rows.append(row)
        return _frame(rows, "fundamentals")

    @staticmethod
    def _statement_rows(symbol: str, facts: _Facts) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        known: dict[date, dict[str, Any]] = {}  # each period's row as last filed so far
        for statement in sorted(facts.statements.values(), key=lambda s: (s.filed, s.accession)):
            ends = facts.ends(statement.accession)
            if not ends:
                continue
            available_ts = epoch(_end_of_day(statement.filed))
            own_end, comparatives = ends[0], ends[1:]
            figures = facts.figures(statement, own_end, cover=True)
            if any(value is not None for value in figures.values()):
                row = {
                    "symbol": symbol,
                    "period_end": own_end.isoformat(),
                    "filing_id": statement.accession,
                    "fiscal_period": _fiscal_period(statement, own_end),
                    **figures,
                    "available_ts": available_ts,
                }
                rows.append(row)
                known[own_end] = row
            for end in comparatives:
                previous = known.get(end)
                if previous is None:
                    continue
                figures = facts.figures(statement, end, cover=False)
                if not _restated(figures, previous):
                    continue
                reported = {column: value for column, value in figures.items() if value is not None}
                row = {
                    **previous,
                    **reported,
                    "filing_id": statement.accession,
                    "available_ts": available_ts,
                }
                rows.append(row)
                known[end] = row
        return rows

    # -- insider trades ----------------------------------------------------------------

    def insider_trades(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Non-derivative transactions of the Forms 4 and 4/A filed from ``since`` up to ``as_of``.

        The window: filed on or after ``since``, accepted by ``as_of``. One
        submissions request per company (plus its older pages when the recent
        list does not reach ``since``) and one XML request per Form 4 of the
        window not seen before (and, for a 4/A whose original was filed before
        the window, that original's). A row per priced transaction:
        ``filing_id`` is ``accession:n`` with ``n`` its place among the
        document's non-derivative transactions (stable whichever rows are left
        out), ``side`` buy for A(cquired) and sell for D(isposed), available at
        the filing's acceptance. A 4/A's rows name the filing they ``amend``
        (see ``_amended``).
        """
        _require_aware(as_of, "as_of")
        self.symbol_errors = {}
        if not symbols or since > as_of.astimezone(NEW_YORK).date():
            return _frame([], "insider_trades")
        rows = []
        for symbol in dict.fromkeys(symbols):
            cik = self._cik(symbol)
            if cik is None:
                continue
            try:
                listing = self._submissions(cik, since)
            except NotFound:
                self.symbol_errors[symbol] = f"SEC has no submissions for {symbol}"
                continue
            rows.extend(self._insider_rows(symbol, cik, listing, since, as_of))
        return _frame(rows, "insider_trades")

    def _insider_rows(
        self, symbol: str, cik: int, listing: list[Filing], since: date, as_of: datetime
    ) -> list[dict[str, Any]]:
        convention = clock_convention(listing)
        accepted = {filing.accession: accepted_at(filing, convention) for filing in listing}
        window = sorted(
            (
                filing
                for filing in listing
                if filing.form in INSIDER_FORMS
                and filing.filing_date >= since
                and accepted[filing.accession] <= as_of
            ),
            key=lambda filing: (accepted[filing.accession], filing.accession),
        )
        documents: dict[str, OwnershipDocument | None] = {}
        rows = []
        for filing in window:
            document = self._ownership(cik, filing, documents)
            if document is None:
                continue
            amends = None
            if filing.form == "4/A":
                amends = self._amended(cik, filing, document, window, listing, accepted, documents)
            for transaction in document.transactions:
                row = _transaction_row(symbol, filing, document, transaction)
                if row is None:
                    continue
                row["available_ts"] = epoch(accepted[filing.accession])
                row["amends"] = amends
                rows.append(row)
        return rows

    def _amended(
        self,
        cik: int,
        amendment: Filing,
        document: OwnershipDocument,
        window: list[Filing],
        listing: list[Filing],
        accepted: Mapping[str, datetime],
        documents: dict[str, OwnershipDocument | None],
    ) -> str | None:
        """The accession a 4/A amends: the latest earlier Form 4 of the same owner.

        Candidates are the Forms 4 (not 4/A) of this issuer accepted before the
        amendment and, when it states its ``dateOfOriginalSubmission``, filed
        that day (their documents are fetched if that day is before the
        window); without that date, the Forms 4 of the window. Among those
        sharing a reporting owner (CIK), the latest sharing a transaction date
        wins, else the latest. None (logged) when nothing matches.
        """
        if document.original_date is not None:
            pool = [f for f in listing if f.filing_date == document.original_date]
        else:
            pool = window
        candidates = sorted(
            (
                filing
                for filing in pool
                if filing.form == "4" and accepted[filing.accession] < accepted[amendment.accession]
            ),
            key=lambda filing: (accepted[filing.accession], filing.accession),
            reverse=True,
        )
        same_owner = None
        for candidate in candidates:
            original = self._ownership(cik, candidate, documents)
            if original is None or not original.owner_ciks & document.owner_ciks:
                continue
            if original.transaction_dates & document.transaction_dates:
                return candidate.accession
            same_owner = same_owner or candidate.accession
        if same_owner is None:
            logger.warning(
                "sec: 4/A %s: no earlier Form 4 of the same owner found; amends left empty",
                amendment.accession,
            )
        return same_owner

    def _ownership(
        self, cik: int, filing: Filing, documents: dict[str, OwnershipDocument | None]
    ) -> OwnershipDocument | None:
        """The parsed Form 4 (None, logged, if it cannot be read), once per call."""
        if filing.accession not in documents:
            try:
                xml = self._form4_xml(cik, filing)
                documents[filing.accession] = parse_ownership(xml, filing.accession)
            except (NotFound, PermanentError) as error:
                logger.warning("sec: Form 4 %s skipped: %s", filing.accession, error)
                documents[filing.accession] = None
        return documents[filing.accession]

    def _form4_xml(self, cik: int, filing: Filing) -> bytes:
        """The raw XML of a Form 4, from the disk cache or the archive (then cached)."""
        cached = self.cache_dir / FORM4_CACHE / f"{filing.accession}.xml"
        if cached.is_file():
            return cached.read_bytes()
        document = filing.primary_document
        if document.startswith("xsl") and "/" in document:
            document = document.split("/", 1)[1]  # the XSL rendering's folder: raw XML without
        if not document.lower().endswith(".xml"):
            raise PermanentError(f"sec: Form 4 {filing.accession} has no XML ({document!r})")
        folder = filing.accession.replace("-", "")
        xml = self.http.get_bytes(f"{self.www_url}/Archives/edgar/data/{cik}/{folder}/{document}")
        _write_atomically(cached, xml)
        return xml

    def _submissions(self, cik: int, since: date) -> list[Filing]:
        """The company's filings: the recent list, and the older pages ``since`` reaches."""
        body = self.http.get_json(f"submissions/CIK{cik:010d}.json")
        where = f"submissions CIK{cik:010d}"
        filings_block = body.get("filings") if isinstance(body, Mapping) else None
        if not isinstance(filings_block, Mapping):
            raise PermanentError(f"sec: {where}: the response has no 'filings'")
        filings = _listing(filings_block.get("recent") or {}, where)
        # The older pages hold what the recent list (the last thousand filings or
        # year) does not, each with its date range: only those reaching since are read.
        for page in filings_block.get("files") or []:
            if _day(page.get("filingTo"), where) >= since:
                older = self.http.get_json(f"submissions/{page['name']}")
                filings.extend(_listing(older, f"{where} {page['name']}"))
        return filings

    # -- tickers -------------------------------------------------------------------------

    def _cik(self, symbol: str) -> int | None:
        """The CIK of ``symbol`` (SEC writes class shares ``BRK-B``); None, noted, if unknown."""
        cik = self._ticker_map().get(symbol.upper().replace(".", "-"))
        if cik is None:
            self.symbol_errors[symbol] = f"SEC lists no company with ticker {symbol}"
        return cik

    def _ticker_map(self) -> dict[str, int]:
        if self._tickers is None:
            cached = self.cache_dir / TICKERS_CACHE
            fresh = (
                cached.is_file() and time.time() - cached.stat().st_mtime < TICKERS_MAX_AGE_SECONDS
            )
            tickers = None
            if fresh:
                try:
                    tickers = _tickers(json.loads(cached.read_text()), str(cached))
                except (ValueError, PermanentError):
                    tickers = None  # a damaged cache is fetched again
            self._tickers = tickers if tickers is not None else self._download_tickers()
        return self._tickers

    def _download_tickers(self) -> dict[str, int]:
        body = self.http.get_json(f"{self.www_url}/files/company_tickers.json")
        tickers = _tickers(body, "company_tickers.json")
        _write_atomically(self.cache_dir / TICKERS_CACHE, json.dumps(body).encode())
        self._tickers = tickers
        return tickers

    # -- kinds SEC does not serve ------------------------------------------------------------


# -- helpers ---------------------------------------------------------------------------


def _listing(columns: Any, where: str) -> list[Filing]:
    """Filings from the column arrays of ``filings.recent`` (or an older page)."""
    if not isinstance(columns, Mapping):
        raise PermanentError(f"sec: {where}: filings are not column arrays")
    names = ("accessionNumber", "form", "filingDate", "acceptanceDateTime", "primaryDocument")
    missing = [name for name in names if name not in columns]
    if missing and columns.get("accessionNumber"):
        raise PermanentError(f"sec: {where}: filings lack {missing}")
    arrays = [columns.get(name) or [] for name in names]
    if len({len(array) for array in arrays}) > 1:
        raise PermanentError(f"sec: {where}: the filing arrays differ in length")
    filings = []
    for accession, form, filed, accepted, document in zip(*arrays, strict=True):
        acceptance = str(accepted or "")
        try:
            datetime.fromisoformat(acceptance)
        except ValueError:
            if acceptance:
                logger.warning("sec: %s: %s: bad acceptanceDateTime %r", where, accession, accepted)
            acceptance = ""  # then the end of the filing date stands for it
        filings.append(
            Filing(
                accession=str(accession),
                form=str(form),
                filing_date=_day(filed, where),
                acceptance=acceptance,
                primary_document=str(document or ""),
            )
        )
    return filings


def _tickers(body: Any, where: str) -> dict[str, int]:
    """``company_tickers.json`` (``{"0": {"cik_str": 320193, "ticker": "AAPL", ...}}``)."""
    if not isinstance(body, Mapping) or not body:
        raise PermanentError(f"sec: {where}: not the ticker list")
    tickers: dict[str, int] = {}
    for entry in body.values():
        try:
            tickers.setdefault(str(entry["ticker"]).upper(), int(entry["cik_str"]))
        except (KeyError, TypeError, ValueError):
            raise PermanentError(f"sec: {where}: an entry is malformed: {entry!r:.200}") from None
    return tickers


def _transaction_row(
    symbol: str, filing: Filing, document: OwnershipDocument, transaction: Transaction
) -> dict[str, Any] | None:
    """A transaction as an insider_trades row (without the times), or None if it has no value.

    Left out: no price or a zero price (gifts, grants and awards are reported
    at $0: they have no market value to sum), no share count, or neither A nor D.
    """
    side = {"A": "buy", "D": "sell"}.get(transaction.acquired_disposed or "")
    shares, price = transaction.shares, transaction.price
    if side is None or not shares or shares <= 0 or not price or price <= 0:
        logger.debug(
            "sec: %s:%d left out (code %s, shares %s, price %s)",
            filing.accession,
            transaction.index,
            transaction.code,
            shares,
            price,
        )
        return None
    return {
        "symbol": symbol,
        "filing_id": f"{filing.accession}:{transaction.index}",
        "insider_role": document.role,
        "transaction_date": transaction.transaction_date or filing.filing_date.isoformat(),
        "side": side,
        "shares": shares,
        "price": price,
        "value": shares * price,
        "transaction_code": transaction.code,
        "shares_after": transaction.shares_after,
        "ownership": transaction.ownership,
        "owner": document.owner,
        "is_10b5_1": document.is_10b5_1,
        "filing_date": filing.filing_date.isoformat(),
    }


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` so that a parallel reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _frame(rows: list[dict[str, Any]], table: str) -> pd.DataFrame:
    """Rows in the layout of the store's ``table``, sorted by its key, ``_ts`` as int64."""
    spec = TABLES[table]
    frame = pd.DataFrame(rows, columns=list(spec.column_names))
    for name, kind in spec.columns:
        if kind.startswith("INTEGER"):
            frame[name] = frame[name].astype("Int64" if name in spec.nullable else "int64")
        elif kind.startswith("REAL"):
            frame[name] = frame[name].astype("float64")  # a missing figure is NaN
    return frame.sort_values(list(spec.key), kind="stable").reset_index(drop=True)
