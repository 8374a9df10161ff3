"""A local emulator of SEC EDGAR, FRED/ALFRED, Finnhub and Cboe, for the daily-sources benchmark.

``bench/bench_providers_daily.py`` points the real ``SecProvider``,
``FredProvider``, ``FinnhubProvider`` and ``CboeProvider`` at this server
(127.0.0.1 only) to count their requests and time them against each API's
documented limit. It serves, in each API's documented format (the formats
of the fixtures in ``tests/fixtures/{sec,fred,finnhub,cboe}``), the endpoints
the providers call:

- SEC EDGAR (one limit for all of sec.gov, both hosts on this server):
  ``/files/company_tickers.json``, ``/api/xbrl/companyfacts/CIK##########.json``,
  ``/submissions/CIK##########.json`` (``filings.recent``: the last year; older
  filings in one page listed in ``files``, ``CIK##########-submissions-001.json``)
  and ``/Archives/edgar/data/{cik}/{accession}/form4.xml``. A request without a
  User-Agent holding an e-mail address, or over the limit, gets the 403 HTML
  page SEC sends, and over the limit every request is refused for ten
  minutes (scaled with the window), as SEC does;
- FRED/ALFRED: ``/fred/series`` and ``/fred/series/observations``
  (``output_type=1``: every vintage with its real-time period, clipped to the
  period asked, ``limit``/``offset`` paging); ``api_key`` is required (400);
- Finnhub (``/api/v1``): ``/stock/recommendation``, ``/calendar/earnings`` and
  ``/company-news``; the key only in the ``X-Finnhub-Token`` header (401
  otherwise, so a key in the URL is caught), 429 over the limit;
- Cboe: ``/api/global/delayed_quotes/options/{SYMBOL}.json`` (an index under
  a leading underscore), no key and no documented limit.

Data is synthetic and deterministic, computed per request from each
company's index in the market of ``market_size`` tickers (``AAAA``, ...),
with the traps the providers handle: a third of the companies report
revenue under another us-gaap tag, one in ten restates last year's quarter
in this year's 10-Q, one in seven writes New York time with a false ``Z`` in
``acceptanceDateTime``, one Form 4 in ten is amended by a 4/A, monthly FRED
series are revised at the next release, and ``"."`` marks a missing day.
When ``now`` is set nothing is served that had not happened by then (a
filing before its acceptance, a vintage before its release, news before its
publication). Counts are kept by endpoint and status.

Rate limits are sliding windows (``provider_emulator.SlidingWindow``) at the
documented values, which a benchmark may scale down in time (SEC 10 per
0.2 s for x5). ``GET /_emulator/stats`` returns the counts, ``POST
/_emulator/reset`` (JSON: ``rates`` as ``{api: [limit, seconds] | null}``,
``now`` as epoch seconds, ``warm``: company indexes whose SEC answers to build
beforehand) clears counts and windows; neither is limited. Run
it as its own process: ``python bench/daily_emulator.py`` prints ``listening
on http://127.0.0.1:PORT`` and serves until its stdin closes.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provider_emulator import RateLimit, SlidingWindow, market_symbols

NEW_YORK = ZoneInfo("America/New_York")
ST_LOUIS = ZoneInfo("America/Chicago")
# Documented limits (https://www.sec.gov/os/accessing-edgar-data, FRED's API docs,
# https://finnhub.io/docs/api/rate-limit); Cboe documents none.
SEC_RATE = RateLimit(10, 1.0)
FRED_RATE = RateLimit(120, 60.0)
FINNHUB_RATE = RateLimit(60, 60.0)
DEFAULT_RATES: Mapping[str, RateLimit | None] = {
    "sec": SEC_RATE,
    "fred": FRED_RATE,
    "finnhub": FINNHUB_RATE,
    "cboe": None,
}
SEC_BLOCK_SECONDS = 600.0  # SEC refuses a client that went too fast for ten minutes
HISTORY_START = date(2023, 1, 1)  # the first filing, vintage and report emulated
RECENT_DAYS = 365  # submissions' filings.recent: the last year, older ones in files[]
CIK_BASE = 1_000_000
FORM4_DOCUMENT = "form4.xml"
FORM4_STYLESHEET = "xslF345X05"
AMEND_EVERY = 10  # one Form 4 in ten is amended ...
AMEND_AFTER_DAYS = 5  # ... five days later
RESTATE_EVERY = 10  # one company in ten restates last year's quarter
FALSE_Z_EVERY = 7  # one company in seven writes New York time with a Z
FRED_SERIES: Mapping[str, tuple[str, str]] = {  # id: (frequency, frequency_short)
    "DGS10": ("Daily", "D"),
    "CPIAUCSL": ("Monthly", "M"),
    "UNRATE": ("Monthly", "M"),
    "FEDFUNDS": ("Monthly", "M"),
}
FRED_PAGE_MAX = 100_000
NEWS_PER_DAY = 2
CHAIN_EXPIRIES = 8  # weekly expiries listed
CHAIN_STRIKES = 40  # strikes listed per expiry and type
QUOTE_DELAY = timedelta(minutes=15)
THROTTLE_PAGE = (
    "<!DOCTYPE html><html><head><title>SEC.gov | Request Rate Threshold Exceeded</title>"
    "</head><body><h1>Your Request Originates from an Undeclared Automated Tool</h1>"
    "<p>To allow for equitable access to all users, SEC reserves the right to limit "
    "requests originating from undeclared automated tools.</p></body></html>"
)


def mix(*parts: object) -> int:
    """A deterministic pseudo-random 32-bit number for ``parts``."""
    return zlib.crc32(":".join(map(str, parts)).encode())


def business_day(day: date) -> date:
    """``day``, or the next weekday when it falls on a weekend (EDGAR's days, roughly)."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- SEC EDGAR ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Filing:
    """One filing of one company: what the submissions listing says about it."""

    accession: str
    form: str  # 10-Q, 10-K, 4, 4/A
    accepted: datetime  # the true acceptance time (UTC)
    filing_date: date
    period_end: date | None  # a statement's quarter end
    original: str | None = None  # a 4/A: the accession it amends
    original_date: date | None = None


def filing_date_of(accepted: datetime) -> date:
    """EDGAR dates a filing accepted after 17:30 New York the next business day."""
    local = accepted.astimezone(NEW_YORK)
    day = local.date()
    if local.time() > clock_time(17, 30):
        day = business_day(day + timedelta(days=1))
    return day


def accepted_at(day: date, seed: int) -> datetime:
    """An acceptance time on business day ``day``: 07:00-21:00 New York."""
    minutes = 7 * 60 + seed % (14 * 60)
    return datetime.combine(business_day(day), clock_time(minutes // 60, minutes % 60), NEW_YORK)


@lru_cache(maxsize=8192)
def company_filings(index: int) -> tuple[Filing, ...]:
    """Every filing of company ``index`` from ``HISTORY_START`` on, oldest first (a
    horizon to 2027 is enough for the benchmark's sessions)."""
    cik = CIK_BASE + index
    filings: list[Filing] = []
    counters: dict[int, int] = {}

    def accession(accepted: datetime) -> str:
        year = accepted.year % 100
        counters[year] = counters.get(year, 0) + 1
        return f"{cik:010d}-{year:02d}-{counters[year]:06d}"

    raw: list[tuple[datetime, str, date | None]] = []
    for year in range(HISTORY_START.year, 2028):
        for quarter in range(1, 5):
            end = date(year, quarter * 3, 30 if quarter in (2, 3) else 31)
            lag = (60 if quarter == 4 else 35) + mix(index, year, quarter) % 10
            form = "10-K" if quarter == 4 else "10-Q"
            raw.append((accepted_at(end + timedelta(days=lag), mix(index, end)), form, end))
    every = 12 + mix(index, "form4") % 34  # a Form 4 every 12 to 45 days
    day = HISTORY_START + timedelta(days=mix(index, "phase") % every)
    while day < date(2028, 1, 1):
        raw.append((accepted_at(day, mix(index, day, "4")), "4", None))
        day += timedelta(days=every)
    raw.sort(key=lambda item: item[0])
    for moment, form, period in raw:
        utc = moment.astimezone(UTC)
        filings.append(Filing(accession(utc), form, utc, filing_date_of(utc), period))
    amendments = []
    form4s = [filing for filing in filings if filing.form == "4"]
    for position, original in enumerate(form4s):
        if mix(index, original.accession) % AMEND_EVERY:
            continue
        day = original.filing_date + timedelta(days=AMEND_AFTER_DAYS)
        moment = accepted_at(day, mix(original.accession, "amend")).astimezone(UTC)
        amendments.append((moment, original, position))
    for moment, original, _ in amendments:
        filings.append(
            Filing(
                accession(moment),
                "4/A",
                moment,
                filing_date_of(moment),
                None,
                original.accession,
                original.filing_date,
            )
        )
    filings.sort(key=lambda filing: (filing.accepted, filing.accession))
    return tuple(filings)


def false_z(index: int) -> bool:
    """Does this company's listing write New York wall time with a ``Z``?"""
    return index % FALSE_Z_EVERY == 3


def acceptance_text(index: int, filing: Filing) -> str:
    if false_z(index):
        return iso_z(filing.accepted.astimezone(NEW_YORK))
    return iso_z(filing.accepted)


def revenue_tag(index: int) -> str:
    return (
        "Revenues",
        "RevenueFromContractWithCustomerExcludingAssessedTax",
        "SalesRevenueNet",
    )[index % 3]


def quarter_figures(index: int, end: date) -> dict[str, float]:
    """The figures of one quarter as first reported."""
    base = 50_000_000 + (index * 7919 % 1000) * 1_000_000
    growth = 1 + 0.01 * ((end.year - 2022) * 4 + end.month // 3)
    revenue = round(base * growth)
    income = round(revenue * (0.08 + (index % 5) * 0.01))
    shares = 100_000_000 + index * 1000
    return {
        "revenue": revenue,
        "net_income": income,
        "eps": round(income / shares, 2),
        "cash": round(income * 1.2),
        "assets": revenue * 6,
        "liabilities": revenue * 3,
        "equity": revenue * 3,
        "debt": revenue,
        "shares": shares,
    }


def fact(start: date | None, end: date, value: float, head: Mapping[str, Any]) -> dict[str, Any]:
    """One companyfacts ``units`` entry: a duration (``start``) or an instant fact."""
    entry: dict[str, Any] = {"start": start.isoformat()} if start else {}
    return {**entry, "end": end.isoformat(), "val": round(value, 2), **head}


def companyfacts(index: int, now: float) -> dict[str, Any]:
    """``companyfacts`` of company ``index``: statement facts filed by ``now``.

    Each 10-Q reports its quarter (three months) and its year to date, with last
    year's same quarter as comparatives; a 10-K reports the year (its fourth
    quarter is the year less nine months). A restating company's comparatives
    differ from the figures first reported by 2 %.
    """
    cik = CIK_BASE + index
    facts: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def add(taxonomy: str, tag: str, unit: str, entry: dict[str, Any]) -> None:
        facts.setdefault(f"{taxonomy}|{tag}", {}).setdefault(unit, []).append(entry)

    restates = index % RESTATE_EVERY == 1
    for filing in company_filings(index):
        if filing.accepted.timestamp() > now or filing.period_end is None:
            continue
        end = filing.period_end
        fy, quarter = end.year, (end.month - 1) // 3 + 1
        head = {
            "accn": filing.accession,
            "fy": fy,
            "fp": "FY" if filing.form == "10-K" else f"Q{quarter}",
            "form": filing.form,
            "filed": filing.filing_date.isoformat(),
        }
        quarter_start = date(fy, quarter * 3 - 2, 1)
        periods = [(end, quarter_start, 1.0)]
        previous_end = date(fy - 1, end.month, end.day)
        if fy - 1 >= HISTORY_START.year - 1:
            factor = 1.02 if restates else 1.0
            periods.append((previous_end, date(fy - 1, quarter * 3 - 2, 1), factor))
        for period_end, start, factor in periods:
            figures = quarter_figures(index, period_end)
            ytd_quarters = quarter
            ytd_start = date(period_end.year, 1, 1)
            flows = {
                revenue_tag(index): ("USD", figures["revenue"] * factor),
                "NetIncomeLoss": ("USD", figures["net_income"] * factor),
                "EarningsPerShareDiluted": ("USD/shares", figures["eps"]),
            }
            for tag, (unit, value) in flows.items():
                if filing.form == "10-K":
                    add("us-gaap", tag, unit, fact(ytd_start, period_end, value * 4, head))
                    continue
                add("us-gaap", tag, unit, fact(start, period_end, value, head))
                if ytd_quarters > 1:
                    add(
                        "us-gaap",
                        tag,
                        unit,
                        fact(ytd_start, period_end, value * ytd_quarters, head),
                    )
            cash = figures["cash"] * factor * (4 if filing.form == "10-K" else ytd_quarters)
            tag = "NetCashProvidedByUsedInOperatingActivities"
            add("us-gaap", tag, "USD", fact(ytd_start, period_end, cash, head))
            for tag, name in (
                ("Assets", "assets"),
                ("Liabilities", "liabilities"),
                ("StockholdersEquity", "equity"),
                ("LongTermDebt", "debt"),
            ):
                add("us-gaap", tag, "USD", fact(None, period_end, figures[name] * factor, head))
        cover_end = filing.filing_date - timedelta(days=7)
        shares = quarter_figures(index, end)["shares"]
        add(
            "dei",
            "EntityCommonStockSharesOutstanding",
            "shares",
            fact(None, cover_end, shares, head),
        )
    body: dict[str, Any] = {"cik": cik, "entityName": f"COMPANY {index} INC", "facts": {}}
    for key, units in facts.items():
        taxonomy, tag = key.split("|")
        body["facts"].setdefault(taxonomy, {})[tag] = {"label": tag, "units": units}
    return body


def listing_columns(index: int, filings: Sequence[Filing]) -> dict[str, list[Any]]:
    """Filings as submissions' column arrays, newest first."""
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "accessionNumber",
            "filingDate",
            "reportDate",
            "acceptanceDateTime",
            "act",
            "form",
            "fileNumber",
            "filmNumber",
            "items",
            "size",
            "isXBRL",
            "isInlineXBRL",
            "primaryDocument",
            "primaryDocDescription",
        )
    }
    for filing in sorted(filings, key=lambda f: f.accepted, reverse=True):
        statement = filing.period_end is not None
        report = filing.period_end.isoformat() if filing.period_end else ""
        columns["accessionNumber"].append(filing.accession)
        columns["filingDate"].append(filing.filing_date.isoformat())
        columns["reportDate"].append(report)
        columns["acceptanceDateTime"].append(acceptance_text(index, filing))
        columns["act"].append("34")
        columns["form"].append(filing.form)
        columns["fileNumber"].append(f"001-{30000 + index}")
        columns["filmNumber"].append(str(20_000_000 + mix(filing.accession) % 10_000_000))
        columns["items"].append("")
        columns["size"].append(4_000 + mix(filing.accession) % 20_000)
        columns["isXBRL"].append(1 if statement else 0)
        columns["isInlineXBRL"].append(1 if statement else 0)
        if statement:
            columns["primaryDocument"].append(f"company{index}-{filing.period_end:%Y%m%d}.htm")
            columns["primaryDocDescription"].append(filing.form)
        else:
            columns["primaryDocument"].append(f"{FORM4_STYLESHEET}/{FORM4_DOCUMENT}")
            columns["primaryDocDescription"].append("FORM 4")
    return columns


def owner_of(index: int, filing: Filing) -> tuple[str, str]:
    """(CIK, name) of the reporting owner: three insiders per company."""
    key = filing.original or filing.accession
    number = mix(index, key) % 3
    return f"{1_900_000 + index * 3 + number:010d}", f"Insider{number} Company{index}"


def form4_xml(index: int, filing: Filing) -> bytes:
    """The raw ``ownershipDocument`` of a Form 4 or 4/A: one to three priced trades."""
    cik = CIK_BASE + index
    key = filing.original or filing.accession
    owner_cik, owner_name = owner_of(index, filing)
    trade_day = filing.original_date or filing.filing_date
    trade_day -= timedelta(days=2)
    price = 5 + (index * 7919) % 995
    rows = []
    for number in range(1 + mix(key, "n") % 3):
        shares = 100 * (1 + mix(key, number) % 50)
        if filing.form == "4/A":
            shares += 10  # the amendment corrects the count
        code, side = ("S", "D") if mix(key, number, "side") % 3 else ("P", "A")
        rows.append(
            "<nonDerivativeTransaction><securityTitle><value>Common Stock</value>"
            f"</securityTitle><transactionDate><value>{trade_day}</value></transactionDate>"
            "<transactionCoding><transactionFormType>4</transactionFormType>"
            f"<transactionCode>{code}</transactionCode><equitySwapInvolved>0"
            "</equitySwapInvolved></transactionCoding><transactionAmounts>"
            f"<transactionShares><value>{shares}</value></transactionShares>"
            f"<transactionPricePerShare><value>{price + number * 0.25:.2f}</value>"
            "</transactionPricePerShare><transactionAcquiredDisposedCode>"
            f"<value>{side}</value></transactionAcquiredDisposedCode></transactionAmounts>"
            "<postTransactionAmounts><sharesOwnedFollowingTransaction>"
            f"<value>{100_000 + shares}</value></sharesOwnedFollowingTransaction>"
            "</postTransactionAmounts><ownershipNature><directOrIndirectOwnership>"
            "<value>D</value></directOrIndirectOwnership></ownershipNature>"
            "</nonDerivativeTransaction>"
        )
    original = (
        f"<dateOfOriginalSubmission>{filing.original_date}</dateOfOriginalSubmission>"
        if filing.original_date
        else ""
    )
    return (
        '<?xml version="1.0"?>\n<ownershipDocument><schemaVersion>X0508</schemaVersion>'
        f"<documentType>{filing.form}</documentType><periodOfReport>{trade_day}"
        f"</periodOfReport>{original}<aff10b5One>{mix(key) % 2}</aff10b5One><issuer>"
        f"<issuerCik>{cik:010d}</issuerCik><issuerName>COMPANY {index} INC</issuerName>"
        "</issuer><reportingOwner><reportingOwnerId>"
        f"<rptOwnerCik>{owner_cik}</rptOwnerCik><rptOwnerName>{owner_name}</rptOwnerName>"
        "</reportingOwnerId><reportingOwnerRelationship><isDirector>0</isDirector>"
        "<isOfficer>1</isOfficer><isTenPercentOwner>0</isTenPercentOwner><isOther>0"
        "</isOther><officerTitle>CFO</officerTitle></reportingOwnerRelationship>"
        f"</reportingOwner><nonDerivativeTable>{''.join(rows)}</nonDerivativeTable>"
        "</ownershipDocument>\n"
    ).encode()


def form4_documents_needed(index: int, since: date, as_of: datetime) -> set[str]:
    """Accessions whose Form 4 document a run (window ``since`` .. ``as_of``) must read:
    the Forms 4 and 4/A filed from ``since`` and accepted (as the provider reads the
    time) by ``as_of``, and the original of each such 4/A filed before ``since``."""
    needed = set()
    filings = {filing.accession: filing for filing in company_filings(index)}
    for filing in filings.values():
        if filing.form not in ("4", "4/A") or filing.filing_date < since:
            continue
        if filing.accepted > as_of:
            continue
        needed.add(filing.accession)
        if filing.original and filings[filing.original].filing_date < since:
            needed.add(filing.original)
    return needed


# -- FRED / ALFRED -----------------------------------------------------------------------


def fred_vintages(series: str, now_day: date) -> list[tuple[date, date, date, str]]:
    """``(observation date, realtime_start, realtime_end, value)`` of every vintage
    released by ``now_day``; ``realtime_end`` is 9999-12-31 for the one in force."""
    open_end = date(9999, 12, 31)
    found: list[tuple[date, date, date, str]] = []
    seed = mix(series)
    if FRED_SERIES[series][1] == "D":
        day = HISTORY_START
        while day < now_day:
            if day.weekday() < 5:
                release = business_day(day + timedelta(days=1))
                if release <= now_day:
                    missing = mix(series, day) % 60 == 0  # a holiday: "."
                    value = "." if missing else f"{3 + (mix(series, day) % 200) / 100:.2f}"
                    found.append((day, release, open_end, value))
            day += timedelta(days=1)
        return found
    month = HISTORY_START
    while month < now_day:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        first = business_day(following + timedelta(days=4 + seed % 10))
        second = business_day(first + timedelta(days=30))
        level = 2 + (seed % 300) / 100 + (month.year - 2023) * 0.1 + month.month * 0.01
        if first <= now_day:
            first_value = f"{level:.1f}"
            if second <= now_day:  # revised at the next release
                found.append((month, first, second - timedelta(days=1), first_value))
                found.append((month, second, open_end, f"{level + 0.1:.1f}"))
            else:
                found.append((month, first, open_end, first_value))
        month = following
    return found


# -- the server --------------------------------------------------------------------------

Query = dict[str, str]
Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[Query, Sequence[str], Mapping[str, str]], Answer]


JSON = {"Content-Type": "application/json"}


def json_answer(body: Any, status: int = 200) -> Answer:
    return status, JSON, json.dumps(body).encode()


@dataclass(frozen=True)
class Route:
    api: str
    name: str
    pattern: re.Pattern[str]
    handler: Handler


class DailySourcesEmulator:
    """The four APIs behind one HTTP server, each with its own limit and counts."""

    def __init__(
        self,
        *,
        market_size: int = 5_000,
        rates: Mapping[str, RateLimit | None] = DEFAULT_RATES,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.symbols = market_symbols(market_size)
        self.index = {symbol: position for position, symbol in enumerate(self.symbols)}
        self.lock = threading.Lock()
        self.routes = self._routes()
        self.reset(rates=rates, now=None)
        self.address = (host, port)
        self.server: ThreadingHTTPServer | None = None

    def reset(
        self,
        *,
        rates: Mapping[str, RateLimit | None],
        now: float | None,
        warm: Sequence[int] = (),
    ) -> None:
        """New limits and clock, counts from zero; ``warm``: companies whose SEC answers
        are built now, so that building them (CPU this process shares with its request
        threads) does not delay the arrival times the limit is counted on."""
        with self.lock:
            self.windows = {api: SlidingWindow(rates.get(api)) for api in DEFAULT_RATES}
            self.blocked_until = 0.0
            self.now = now
            self.counts: dict[str, dict[str, int]] = {}
            self.bytes_sent: dict[str, int] = {}
            self.bodies: dict[tuple[str, int], bytes] = {}
        for index in warm:
            self._body("companyfacts", index, lambda i: companyfacts(i, self.clock()))
            self._body("submissions", index, self._submissions_body)
        self._body("tickers", -1, lambda _: self._tickers_body())

    def _body(self, kind: str, index: int, make: Callable[[int], Any]) -> bytes:
        """The JSON answer ``kind`` for company ``index`` at this clock, built once."""
        key = (kind, index)
        body = self.bodies.get(key)
        if body is None:
            body = json.dumps(make(index), separators=(",", ":")).encode()
            self.bodies[key] = body
        return body

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": {name: dict(by_status) for name, by_status in self.counts.items()},
                "bytes": dict(self.bytes_sent),
            }

    def clock(self) -> float:
        return time.time() if self.now is None else self.now

    def start(self) -> str:
        self.server = ThreadingHTTPServer(self.address, _handler_class(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # -- dispatch ----------------------------------------------------------------------

    def respond(self, path: str, query: Query, headers: Mapping[str, str]) -> Answer:
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            answer = self._serve(route, match.groups(), query, headers)
            key = f"{route.api} {route.name}"
            with self.lock:
                by_status = self.counts.setdefault(key, {})
                by_status[str(answer[0])] = by_status.get(str(answer[0]), 0) + 1
                self.bytes_sent[key] = self.bytes_sent.get(key, 0) + len(answer[2])
            return answer
        return json_answer({"error": f"no such endpoint {path}"}, 404)

    def _serve(
        self, route: Route, parts: Sequence[str], query: Query, headers: Mapping[str, str]
    ) -> Answer:
        refused = self._refuse_unauthenticated(route.api, query, headers)
        if refused is not None:
            return refused
        moment = time.monotonic()
        with self.lock:
            window = self.windows[route.api]
            if route.api == "sec" and moment < self.blocked_until:
                return self._sec_throttled()
            wait = window.admit(moment)
            if wait is not None and route.api == "sec" and window.rate is not None:
                # Scaled like the window: ten minutes at SEC's real one-second window.
                self.blocked_until = moment + SEC_BLOCK_SECONDS * window.rate.window_seconds
        if wait is not None:
            return self._over_limit(route.api, wait)
        return route.handler(query, parts, headers)

    @staticmethod
    def _sec_throttled() -> Answer:
        return 403, {"Content-Type": "text/html"}, THROTTLE_PAGE.encode()

    def _over_limit(self, api: str, wait: float) -> Answer:
        if api == "sec":
            return self._sec_throttled()
        retry = {"Retry-After": str(max(1, math.ceil(wait)))}
        if api == "fred":
            body = {"error_code": 429, "error_message": "Too Many Requests.  Exceeded Rate Limit"}
            return 429, {"Content-Type": "application/json", **retry}, json.dumps(body).encode()
        body = {"error": "API limit reached. Please try again later. Remaining Limit: 0"}
        return 429, {"Content-Type": "application/json", **retry}, json.dumps(body).encode()

    def _refuse_unauthenticated(
        self, api: str, query: Query, headers: Mapping[str, str]
    ) -> Answer | None:
        if api == "sec" and "@" not in headers.get("user-agent", ""):
            return self._sec_throttled()  # SEC's answer to an undeclared tool
        if api == "fred" and not query.get("api_key"):
            message = "Bad Request.  Variable api_key has not been set."
            return json_answer({"error_code": 400, "error_message": message}, 400)
        if api == "finnhub" and (not headers.get("x-finnhub-token") or "token" in query):
            return json_answer({"error": "Invalid API key."}, 401)
        return None

    def _routes(self) -> list[Route]:
        def route(api: str, template: str, handler: Handler) -> Route:
            pattern = "^" + re.sub(r"\{\w+\}", "([^/]+)", template) + "$"
            return Route(api, template, re.compile(pattern), handler)

        return [
            route("sec", "/files/company_tickers.json", self.sec_tickers),
            route("sec", "/api/xbrl/companyfacts/CIK{cik}.json", self.sec_companyfacts),
            route("sec", "/submissions/CIK{cik}-submissions-001.json", self.sec_older),
            route("sec", "/submissions/CIK{cik}.json", self.sec_submissions),
            route("sec", "/Archives/edgar/data/{cik}/{folder}/{document}", self.sec_document),
            route("fred", "/fred/series", self.fred_series),
            route("fred", "/fred/series/observations", self.fred_observations),
            route("finnhub", "/api/v1/stock/recommendation", self.finnhub_recommendation),
            route("finnhub", "/api/v1/calendar/earnings", self.finnhub_earnings),
            route("finnhub", "/api/v1/company-news", self.finnhub_news),
            route("cboe", "/api/global/delayed_quotes/options/{symbol}.json", self.cboe_chain),
        ]

    # -- SEC ---------------------------------------------------------------------------

    def _company(self, cik_text: str) -> int | None:
        try:
            index = int(cik_text) - CIK_BASE
        except ValueError:
            return None
        return index if 0 <= index < len(self.symbols) else None

    @staticmethod
    def _sec_not_found() -> Answer:
        return 404, {"Content-Type": "text/html"}, b"<html><body>Not Found</body></html>"

    def sec_tickers(self, query: Query, parts: Sequence[str], headers: Mapping[str, str]) -> Answer:
        return 200, JSON, self._body("tickers", -1, lambda _: self._tickers_body())

    def _tickers_body(self) -> dict[str, Any]:
        return {
            str(index): {
                "cik_str": CIK_BASE + index,
                "ticker": symbol,
                "title": f"COMPANY {index} INC",
            }
            for index, symbol in enumerate(self.symbols)
        }

    def sec_companyfacts(
        self, query: Query, parts: Sequence[str], headers: Mapping[str, str]
    ) -> Answer:
        index = self._company(parts[0])
        if index is None:
            return self._sec_not_found()
        body = self._body("companyfacts", index, lambda i: companyfacts(i, self.clock()))
        return 200, JSON, body

    def _published(self, index: int) -> list[Filing]:
        now = self.clock()
        return [f for f in company_filings(index) if f.accepted.timestamp() <= now]

    def sec_submissions(
        self, query: Query, parts: Sequence[str], headers: Mapping[str, str]
    ) -> Answer:
        index = self._company(parts[0])
        if index is None:
            return self._sec_not_found()
        return 200, JSON, self._body("submissions", index, self._submissions_body)

    def _submissions_body(self, index: int) -> dict[str, Any]:
        filings = self._published(index)
        cutoff = datetime.fromtimestamp(self.clock(), NEW_YORK).date() - timedelta(RECENT_DAYS)
        recent = [f for f in filings if f.filing_date >= cutoff]
        older = [f for f in filings if f.filing_date < cutoff]
        files = []
        if older:
            files.append(
                {
                    "name": f"CIK{CIK_BASE + index:010d}-submissions-001.json",
                    "filingCount": len(older),
                    "filingFrom": min(f.filing_date for f in older).isoformat(),
                    "filingTo": max(f.filing_date for f in older).isoformat(),
                }
            )
        return {
            "cik": str(CIK_BASE + index),
            "entityType": "operating",
            "name": f"COMPANY {index} INC",
            "tickers": [self.symbols[index]],
            "exchanges": ["NYSE"],
            "fiscalYearEnd": "1231",
            "filings": {"recent": listing_columns(index, recent), "files": files},
        }

    def sec_older(self, query: Query, parts: Sequence[str], headers: Mapping[str, str]) -> Answer:
        index = self._company(parts[0])
        if index is None:
            return self._sec_not_found()
        cutoff = datetime.fromtimestamp(self.clock(), NEW_YORK).date() - timedelta(RECENT_DAYS)
        older = [f for f in self._published(index) if f.filing_date < cutoff]
        return json_answer(listing_columns(index, older))

    def sec_document(
        self, query: Query, parts: Sequence[str], headers: Mapping[str, str]
    ) -> Answer:
        index = self._company(parts[0])
        if index is None or unquote(parts[2]) != FORM4_DOCUMENT:
            return self._sec_not_found()
        by_folder = {f.accession.replace("-", ""): f for f in self._published(index)}
        filing = by_folder.get(parts[1])
        if filing is None or filing.form not in ("4", "4/A"):
            return self._sec_not_found()
        return 200, {"Content-Type": "application/xml"}, form4_xml(index, filing)

    # -- FRED --------------------------------------------------------------------------

    @staticmethod
    def _fred_error(message: str) -> Answer:
        return json_answer({"error_code": 400, "error_message": f"Bad Request.  {message}"}, 400)

    def _fred_day(self) -> date:
        return datetime.fromtimestamp(self.clock(), ST_LOUIS).date()

    def fred_series(self, query: Query, parts: Sequence[str], headers: Mapping[str, str]) -> Answer:
        series = query.get("series_id", "")
        if series not in FRED_SERIES:
            return self._fred_error("The series does not exist.")
        frequency, short = FRED_SERIES[series]
        today = self._fred_day().isoformat()
        record = {
            "id": series,
            "realtime_start": today,
            "realtime_end": today,
            "title": series,
            "frequency": frequency,
            "frequency_short": short,
            "units": "Percent",
        }
        return json_answer({"realtime_start": today, "realtime_end": today, "seriess": [record]})

    def fred_observations(
        self, query: Query, parts: Sequence[str], headers: Mapping[str, str]
    ) -> Answer:
        series = query.get("series_id", "")
        if series not in FRED_SERIES:
            return self._fred_error("The series does not exist.")
        if query.get("output_type", "1") != "1":
            return self._fred_error("The emulator serves output_type=1 only.")
        try:
            first = date.fromisoformat(query.get("realtime_start", self._fred_day().isoformat()))
            last = date.fromisoformat(query.get("realtime_end", self._fred_day().isoformat()))
            start = date.fromisoformat(query.get("observation_start", "1776-07-04"))
            limit = min(int(query.get("limit", FRED_PAGE_MAX)), FRED_PAGE_MAX)
            offset = int(query.get("offset", "0"))
        except ValueError as error:
            return self._fred_error(f"Invalid value ({error}).")
        found = []
        for day, vintage_start, vintage_end, value in fred_vintages(series, self._fred_day()):
            if day < start or vintage_start > last or vintage_end < first:
                continue
            found.append(
                {
                    "realtime_start": max(vintage_start, first).isoformat(),
                    "realtime_end": min(vintage_end, last).isoformat(),
                    "date": day.isoformat(),
                    "value": value,
                }
            )
        body = {
            "realtime_start": first.isoformat(),
            "realtime_end": last.isoformat(),
            "observation_start": start.isoformat(),
            "output_type": 1,
            "file_type": "json",
            "count": len(found),
            "offset": offset,
            "limit": limit,
            "observations": found[offset : offset + limit],
        }
        return json_answer(body)

    # -- Finnhub -----------------------------------------------------------------------

    def _finnhub_symbol(self, query: Query) -> int | None:
        return self.index.get(query.get("symbol", ""))

    def finnhub_recommendation(
        self, query: Query, parts: Sequence[str], headers: Mapping[str, str]
    ) -> Answer:
        index = self._finnhub_symbol(query)
        if index is None:
            return json_answer([])
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        months = []
        month = today.replace(day=1)
        for _ in range(4):
            seed = mix(index, month)
            months.append(
                {
                    "buy": 5 + seed % 10,
                    "hold": 3 + seed % 7,
                    "period": month.isoformat(),
                    "sell": seed % 3,
                    "strongBuy": 2 + seed % 5,
                    "strongSell": seed % 2,
                    "symbol": self.symbols[index],
                }
            )
            month = (month - timedelta(days=1)).replace(day=1)
        return json_answer(months)

    def finnhub_earnings(
        self, query: Query, parts: Sequence[str], headers: Mapping[str, str]
    ) -> Answer:
        index = self._finnhub_symbol(query)
        try:
            first = date.fromisoformat(query["from"])
            last = date.fromisoformat(query["to"])
        except (KeyError, ValueError):
            return json_answer({"error": "from and to are required dates"}, 422)
        if index is None:
            return json_answer({"earningsCalendar": []})
        now = self.clock()
        hours = {"bmo": clock_time(7, 0), "amc": clock_time(16, 5), "dmh": clock_time(12, 0)}
        entries = []
        for filing in company_filings(index):
            if filing.period_end is None:
                continue
            end = filing.period_end
            report = business_day(end + timedelta(days=25 + mix(index, end, "e") % 10))
            if not first <= report <= last:
                continue
            hour = ("bmo", "amc", "dmh", "")[mix(index, end, "h") % 4]
            released = datetime.combine(report, hours.get(hour, clock_time(17)), NEW_YORK)
            delivered = released.timestamp() <= now
            eps = quarter_figures(index, end)["eps"]
            estimate = round(eps * (0.95 + (mix(index, end, "s") % 10) / 100), 2)
            revenue = quarter_figures(index, end)["revenue"]
            entries.append(
                {
                    "date": report.isoformat(),
                    "epsActual": eps if delivered else None,
                    "epsEstimate": estimate,
                    "hour": hour,
                    "quarter": (end.month - 1) // 3 + 1,
                    "revenueActual": revenue if delivered else None,
                    "revenueEstimate": round(revenue * 0.98),
                    "symbol": self.symbols[index],
                    "year": end.year,
                }
            )
        entries.sort(key=lambda entry: str(entry["date"]), reverse=True)
        return json_answer({"earningsCalendar": entries})

    def finnhub_news(
        self, query: Query, parts: Sequence[str], headers: Mapping[str, str]
    ) -> Answer:
        index = self._finnhub_symbol(query)
        try:
            first = date.fromisoformat(query["from"])
            last = date.fromisoformat(query["to"])
        except (KeyError, ValueError):
            return json_answer({"error": "from and to are required dates"}, 422)
        if index is None:
            return json_answer([])
        now = self.clock()
        items = []
        day = first
        while day <= last:
            for number in range(NEWS_PER_DAY):
                seconds = mix(index, day, number) % 86_400
                published = datetime.combine(day, clock_time(0), UTC).timestamp() + seconds
                if published > now:
                    continue
                article = mix(index, day, number, "id") % 900_000_000 + 100_000_000
                items.append(
                    {
                        "category": "company",
                        "datetime": int(published),
                        "headline": f"{self.symbols[index]} shares move on synthetic news",
                        "id": article,
                        "image": "",
                        "related": self.symbols[index],
                        "source": "Emulator Wire",
                        "summary": "",
                        "url": f"https://example.invalid/news/{article}",
                    }
                )
            day += timedelta(days=1)
        items.sort(key=lambda item: int(str(item["datetime"])), reverse=True)
        return json_answer(items)

    # -- Cboe --------------------------------------------------------------------------

    def cboe_chain(self, query: Query, parts: Sequence[str], headers: Mapping[str, str]) -> Answer:
        symbol = unquote(parts[0]).removeprefix("_")
        index = self.index.get(symbol)
        if index is None:
            body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>"
            return 403, {"Content-Type": "application/xml"}, body
        quoted = datetime.fromtimestamp(self.clock(), UTC) - QUOTE_DELAY
        return 200, {"Content-Type": "application/json"}, cboe_chain_body(index, symbol, quoted)


@lru_cache(maxsize=64)
def _strikes(spot: float) -> tuple[float, ...]:
    step = 1.0 if spot < 50 else 2.5 if spot < 200 else 5.0
    middle = round(spot / step) * step
    half = CHAIN_STRIKES // 2
    return tuple(middle + step * k for k in range(-half, half) if middle + step * k > 0)


def cboe_chain_body(index: int, symbol: str, quoted: datetime) -> bytes:
    """One chain in Cboe's delayed-quotes format: weekly expiries, calls and puts."""
    spot = float(5 + (index * 7919) % 995)
    today = quoted.date()
    friday = today + timedelta(days=(4 - today.weekday()) % 7 or 7)
    options = []
    for week in range(CHAIN_EXPIRIES):
        expiry = friday + timedelta(weeks=week)
        years = max((expiry - today).days, 1) / 365
        for strike in _strikes(spot):
            for kind in ("C", "P"):
                moneyness = (spot - strike) / spot * (1 if kind == "C" else -1)
                value = max(spot * moneyness, 0) + spot * 0.2 * math.sqrt(years) * 0.4
                delta = 0.5 + max(min(moneyness * 5, 0.45), -0.45)
                occ = f"{symbol}{expiry:%y%m%d}{kind}{round(strike * 1000):08d}"
                options.append(
                    {
                        "option": occ,
                        "bid": round(value * 0.98, 2),
                        "bid_size": 10.0,
                        "ask": round(value * 1.02 + 0.01, 2),
                        "ask_size": 10.0,
                        "iv": 0.2 + abs(moneyness) / 2,
                        "open_interest": float(mix(occ) % 20_000),
                        "volume": float(mix(occ, "v") % 2_000),
                        "delta": round(delta if kind == "C" else delta - 1, 4),
                        "gamma": 0.05,
                        "vega": 0.09,
                        "theta": -0.25,
                        "rho": 0.0,
                        "theo": round(value, 2),
                        "last_trade_price": round(value, 2),
                        "last_trade_time": quoted.astimezone(NEW_YORK).strftime(
                            "%Y-%m-%dT%H:%M:%S"
                        ),
                        "prev_day_close": round(value, 2),
                    }
                )
    body = {
        "timestamp": quoted.strftime("%Y-%m-%d %H:%M:%S"),
        "data": {
            "symbol": symbol,
            "security_type": "stock",
            "current_price": spot,
            "close": spot,
            "prev_day_close": spot,
            "options": options,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _handler_class(emulator: DailySourcesEmulator) -> type[BaseHTTPRequestHandler]:
    class EmulatorHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs and requests' session
        # Headers and body go out in two writes: with Nagle's algorithm the body waits
        # for the client's delayed ACK of the headers, 40 ms a response on Linux, which
        # no real API adds.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/_emulator/stats":
                self._send(*json_answer(emulator.stats()))
                return
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._send(*emulator.respond(parts.path, query, headers))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if urlsplit(self.path).path != "/_emulator/reset":
                self._send(*json_answer({"error": "no such endpoint"}, 404))
                return
            settings = json.loads(self.rfile.read(length) or b"{}")
            rates = {
                api: None if value is None else RateLimit(int(value[0]), float(value[1]))
                for api, value in (settings.get("rates") or {}).items()
            }
            emulator.reset(
                rates={**DEFAULT_RATES, **rates},
                now=settings.get("now"),
                warm=settings.get("warm") or (),
            )
            self._send(*json_answer({"reset": True}))

    return EmulatorHandler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--market-size", type=int, default=5_000)
    args = parser.parse_args()
    emulator = DailySourcesEmulator(market_size=args.market_size, host=args.host, port=args.port)
    print(f"listening on {emulator.start()}", flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin (or exits)
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
