"""The whole daily DAG on real providers, against one local server: no look-ahead, end to end.

``orchestrator --daily`` runs the real Snakemake workflow; every task's runner
starts the real collector as a child process, and every source is on its real
provider (Alpaca with Massive behind it for assets and prices, SEC EDGAR for
fundamentals and Form 4s, FRED for macro series, Finnhub with Alpaca behind it
for news, Finnhub for earnings and analysts, Cboe for options), each pointed at
one ``pytest-httpserver`` through its ``*_url`` setting.

The session built is a past one, Friday 2026-11-20, with the clock pinned to
09:40 New York that day: its as-of is the 09:30 open. A past session makes the
run the same on any calendar day, and it is the case where look-ahead bites.
The server answers like a provider asked *today*: it knows every row up to
early December 2026, and it is generous, ignoring the end of the window asked
for (bars past ``end``, news past ``to``, FRED vintages past ``realtime_end``,
earnings past ``to``), so only the pipeline's own point-in-time rules keep the
future out. Traps sit right after the as-of: a headline at 09:45, a Form 4
accepted at 11:00, a false-``Z`` Form 4 whose time read as UTC would be 04:50
(before the open) but is 09:50 New York, a 10-Q filed on the session day, a
10-Q/A restating a quarter five days later, a FRED revision and the next
release, an earnings result during the session.

Two sources can only answer "now": Cboe serves the current chain (the server
stamps it 15 minutes before the wall clock, as Cboe does) and Finnhub's
recommendation trends and earnings estimates are snapshots Finnhub keeps no
history of (the provider tells a live run from a backfill by the *wall*
clock, which a pinned ``now`` does not move). For a past session a correct
pipeline refuses both rather than stamp today's data with a past time: the
tasks succeed with no rows of those kinds (they are non-critical and nothing
else is lost), everything downstream is built from the other sources, and
nothing of today is stored. That is what is asserted, so the test does not
depend on the day it runs.

Then a later session (2026-11-25) is built, so the store holds what was
published after the first open, and the first session's features are rebuilt
(``orchestrator forcerun ml_features --session 2026-11-20``): they and the
signals must come out identical, which only holds if every read is point in
time. The last two tests pin what the first DAG run showed the pipeline got
wrong: a refusal recorded nowhere, and a later run re-dating the universe.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from helpers import run_once
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from workflow_project import DAILY_TASKS, daily_sentinel, make_project, orchestrator, project_config

from collectors.market_store import TABLES
from orchestrator.config import build_config
from orchestrator.market_calendar import MarketCalendar
from orchestrator.pipeline import Period

pytestmark = pytest.mark.slow

NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")  # FRED's dates are St. Louis dates
SESSION = date(2026, 11, 20)  # a Friday
NOW = datetime(2026, 11, 20, 9, 40, tzinfo=NEW_YORK)  # after earnings' not_before (09:33:30)
AS_OF = datetime(2026, 11, 20, 9, 30, tzinfo=NEW_YORK)  # the session's open
AS_OF_TS = int(AS_OF.timestamp())
# A later session, built afterwards: the store then holds what was published after the
# first session's open, and rebuilding that session must not see it.
LATER_SESSION = date(2026, 11, 25)
LATER_NOW = datetime(2026, 11, 25, 9, 40, tzinfo=NEW_YORK)
LATER_AS_OF_TS = int(datetime(2026, 11, 25, 9, 30, tzinfo=NEW_YORK).timestamp())
UNIVERSE = ("AAPL", "MSFT", "NVDA")
ALPACA_LISTS = ("AAPL", "MSFT")  # NVDA's listing and bars come from Massive, behind it
FINNHUB_NEWS = ("AAPL", "MSFT")  # NVDA's news comes from Alpaca, behind Finnhub
HISTORY_SESSIONS = 30  # fewer than the 63 of return_63d: ml_features must cope
SESSIONS_KNOWN_AFTER = 5  # the server knows bars this many sessions past the one built
KEYS = {
    "ALPACA_API_KEY_ID": "PKDAGCANARY00KEYID",
    "ALPACA_API_SECRET_KEY": "dagCanaryAlpacaSecret0000",
    "MASSIVE_API_KEY": "dagCanaryMassiveKey000",
    "FINNHUB_API_KEY": "dagCanaryFinnhubToken00",
    "FRED_API_KEY": "dagcanaryfred0000000000000000000",
}
SEC_USER_AGENT = "Market Pipeline DAG Tests dag-tests@example.com"
CIKS = {"AAPL": 320193, "MSFT": 789019, "NVDA": 1045810}
FRED_SERIES = ("DGS10", "UNRATE")
DAY = 86400


def ny(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=NEW_YORK)  # type: ignore[misc]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


def end_of_day(day: date) -> int:
    """When SEC company facts filed on ``day`` count as known (23:59:59 New York)."""
    return ts(datetime.combine(day, clock_time(23, 59, 59), NEW_YORK))


# -- prices --------------------------------------------------------------------------------


def bar(symbol: str, day: date) -> dict[str, float]:
    """One consistent daily bar (low <= open, close <= high), different every session."""
    i, k = UNIVERSE.index(symbol), day.toordinal()
    close = 100.0 + 50 * i + (k * 7 + i * 3) % 11 - 5 + 0.25 * (k % 4)
    open_ = close - 0.5 + 0.5 * (k % 3)
    return {
        "o": open_,
        "h": max(open_, close) + 1,
        "l": min(open_, close) - 1,
        "c": close,
        "v": 1_000_000.0 + 10_000 * (k % 13),
        "n": 900,
    }


def midnight(day: date) -> datetime:
    """Alpaca and Massive stamp a daily bar at midnight New York."""
    return datetime.combine(day, clock_time(0), NEW_YORK).astimezone(UTC)


# -- news ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    id: int
    symbol: str
    at: datetime
    text: str

    @property
    def provider(self) -> str:
        return "finnhub" if self.symbol in FINNHUB_NEWS else "alpaca"

    @property
    def article_id(self) -> str:
        return f"{self.provider}:{self.id}:{self.symbol}"


HEADLINES = (
    Headline(9001, "AAPL", utc(2026, 11, 12, 12), "Apple shares flat ahead of holiday quarter"),
    Headline(9002, "AAPL", utc(2026, 11, 13, 10), "Apple raises buyback as services revenue grows"),
    Headline(9003, "AAPL", utc(2026, 11, 16, 15), "Apple beats estimates as services sales surge"),
    Headline(9004, "AAPL", utc(2026, 11, 19, 21, 30), "Apple faces EU probe over App Store fees"),
    Headline(9005, "AAPL", utc(2026, 11, 20, 14, 10), "Apple rallies in premarket after upgrade"),
    Headline(9006, "AAPL", utc(2026, 11, 20, 14, 45), "Apple plunges after the open on recall"),
    Headline(9007, "AAPL", utc(2026, 11, 23, 15), "Apple soars to a record"),
    Headline(9101, "MSFT", utc(2026, 11, 17, 13), "Microsoft cloud deal tops expectations"),
    Headline(9102, "MSFT", utc(2026, 11, 19, 22), "Microsoft downgraded on capex worries"),
    Headline(9103, "MSFT", utc(2026, 11, 20, 15, 5), "Microsoft slumps as analysts cut targets"),
    Headline(9201, "NVDA", utc(2026, 11, 18, 12), "Nvidia record data center revenue expected"),
    Headline(9202, "NVDA", utc(2026, 11, 19, 22, 15), "Nvidia beats and raises guidance"),
    Headline(9203, "NVDA", utc(2026, 11, 20, 16), "Nvidia tumbles as chip stocks sell off"),
)
# The news look-back is 7 days back from the as-of's date, from midnight UTC.
NEWS_SINCE = datetime.combine((AS_OF - timedelta(days=7)).date(), clock_time(0), UTC)


# -- SEC company facts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Quarter:
    end: date
    eps: float
    revenue: int
    net_income: int

    @property
    def start(self) -> date:
        first_month = self.end.month - 2
        return date(self.end.year, first_month, 1)


def quarters(symbol: str) -> list[Quarter]:
    """Q1 2025 to Q3 2026 as first reported (EPS in quarters of a dollar: sums stay exact)."""
    eps = {
        "AAPL": [1.5, 1.25, 1.5, 2.25, 1.75, 1.5, 1.75],
        "MSFT": [2.75, 3.0, 3.25, 3.0, 3.25, 3.5, 3.75],
        "NVDA": [0.5, 0.75, 0.75, 1.0, 1.25, 1.25, 1.5],
    }[symbol]
    ends = [date(2025, 3, 31), date(2025, 6, 30), date(2025, 9, 30), date(2025, 12, 31)]
    ends += [date(2026, 3, 31), date(2026, 6, 30), date(2026, 9, 30)]
    scale = {"AAPL": 90_000_000_000, "MSFT": 60_000_000_000, "NVDA": 30_000_000_000}[symbol]
    return [
        Quarter(end, value, scale + 1_000_000_000 * n, int(scale * 0.25) + 100_000_000 * n)
        for n, (end, value) in enumerate(zip(ends, eps, strict=True))
    ]


@dataclass(frozen=True)
class Statement:
    """One 10-Q, 10-K or amendment in a company's facts."""

    symbol: str
    accession: str
    form: str
    filed: date
    fy: int
    fp: str
    end: date
    restated_eps: float | None = None  # a 10-Q/A: the quarter's EPS as restated

    @property
    def available_ts(self) -> int:
        return end_of_day(self.filed)


def statements(symbol: str) -> list[Statement]:
    cik = CIKS[symbol]
    accession = f"{cik:010d}-{{:02d}}-{{:06d}}".format
    filed_q3_2026 = date(2026, 11, 20) if symbol == "NVDA" else date(2026, 10, 29)
    found = [
        Statement(symbol, accession(25, 31), "10-Q", date(2025, 10, 30), 2025, "Q3",
                  date(2025, 9, 30)),
        Statement(symbol, accession(26, 4), "10-K", date(2026, 1, 29), 2025, "FY",
                  date(2025, 12, 31)),
        Statement(symbol, accession(26, 12), "10-Q", date(2026, 4, 30), 2026, "Q1",
                  date(2026, 3, 31)),
        Statement(symbol, accession(26, 23), "10-Q", date(2026, 7, 30), 2026, "Q2",
                  date(2026, 6, 30)),
        Statement(symbol, accession(26, 35), "10-Q", filed_q3_2026, 2026, "Q3",
                  date(2026, 9, 30)),
    ]  # fmt: skip
    if symbol == "AAPL":  # restated before the as-of: the session sees the new figure
        found.append(
            Statement(symbol, accession(26, 38), "10-Q/A", date(2026, 11, 10), 2026, "Q2",
                      date(2026, 6, 30), restated_eps=1.0)
        )  # fmt: skip
    if symbol == "NVDA":  # restated after it: the session sees the first figure
        found.append(
            Statement(symbol, accession(26, 41), "10-Q/A", date(2026, 11, 25), 2026, "Q2",
                      date(2026, 6, 30), restated_eps=0.25)
        )  # fmt: skip
    return found


REVENUE_TAG = {"MSFT": "RevenueFromContractWithCustomerExcludingAssessedTax"}  # others: Revenues


def company_facts(symbol: str) -> dict[str, Any]:
    """``companyfacts/CIK##########.json``: flows by filing (3-month quarters, the 9-month
    year-to-date of Q3 2025, the 10-K's year), balance-sheet instants, the cover's shares."""
    by_end = {quarter.end: quarter for quarter in quarters(symbol)}
    flows: dict[str, list[dict[str, Any]]] = {}
    instants: dict[str, list[dict[str, Any]]] = {}
    shares: list[dict[str, Any]] = []

    def add(tag: str, start: date, end: date, value: float, statement: Statement) -> None:
        flows.setdefault(tag, []).append(
            {"start": start.isoformat(), "end": end.isoformat(), "val": value,
             "accn": statement.accession, "fy": statement.fy, "fp": statement.fp,
             "form": statement.form, "filed": statement.filed.isoformat()}
        )  # fmt: skip

    revenue_tag = REVENUE_TAG.get(symbol, "Revenues")
    for statement in statements(symbol):
        quarter = by_end[statement.end]
        if statement.form == "10-K":
            year = [q for q in by_end.values() if q.end.year == statement.end.year]
            periods = [(date(statement.end.year, 1, 1), year)]
        else:
            periods = [(quarter.start, [quarter])]
            if statement.fp == "Q3" and statement.fy == 2025:  # a 10-Q also gives the year to date
                ytd = [q for q in by_end.values() if q.end.year == 2025 and q.end.month <= 9]
                periods.append((date(2025, 1, 1), ytd))
        for start, covered in periods:
            eps = sum(q.eps for q in covered)
            if statement.restated_eps is not None:
                eps = statement.restated_eps
            add("EarningsPerShareDiluted", start, statement.end, eps, statement)
            add(revenue_tag, start, statement.end, sum(q.revenue for q in covered), statement)
            add(
                "NetIncomeLoss", start, statement.end, sum(q.net_income for q in covered), statement
            )
        for tag, value in (("Assets", 4.0), ("Liabilities", 2.5), ("StockholdersEquity", 1.5)):
            instants.setdefault(tag, []).append(
                {"end": statement.end.isoformat(), "val": value * quarter.revenue,
                 "accn": statement.accession, "fy": statement.fy, "fp": statement.fp,
                 "form": statement.form, "filed": statement.filed.isoformat()}
            )  # fmt: skip
        shares.append(
            {"end": (statement.filed - timedelta(days=10)).isoformat(), "val": 15_000_000_000,
             "accn": statement.accession, "fy": statement.fy, "fp": statement.fp,
             "form": statement.form, "filed": statement.filed.isoformat()}
        )  # fmt: skip
    units = {tag: {"units": {"USD/shares" if "PerShare" in tag else "USD": facts}}
             for tag, facts in {**flows, **instants}.items()}  # fmt: skip
    return {
        "cik": CIKS[symbol],
        "entityName": f"{symbol} INC",
        "facts": {
            "dei": {"EntityCommonStockSharesOutstanding": {"units": {"shares": shares}}},
            "us-gaap": units,
        },
    }


def known_quarters(symbol: str) -> dict[date, tuple[str, float]]:
    """Each quarter's (filing, EPS) as last filed by the as-of, from the facts above."""
    by_end = {quarter.end: quarter for quarter in quarters(symbol)}
    known: dict[date, tuple[str, float]] = {}
    for statement in sorted(statements(symbol), key=lambda s: s.filed):
        if statement.available_ts > AS_OF_TS:
            continue
        eps = statement.restated_eps
        known[statement.end] = (
            statement.accession,
            by_end[statement.end].eps if eps is None else eps,
        )
    return known


# -- SEC Form 4 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trade:
    day: str
    code: str
    shares: int
    price: float
    side: str  # A(cquired) or D(isposed)


@dataclass(frozen=True)
class Form4:
    symbol: str
    accession: str
    form: str
    filed: str
    acceptance: str  # acceptanceDateTime as EDGAR writes it
    accepted: datetime  # when it really was accepted
    trades: tuple[Trade, ...]
    original: str | None = None  # a 4/A's dateOfOriginalSubmission

    @property
    def document(self) -> str:
        return f"wk-form4_{self.accession[-6:]}.xml"

    @property
    def archive_path(self) -> str:
        folder = self.accession.replace("-", "")
        return f"/Archives/edgar/data/{CIKS[self.symbol]}/{folder}/{self.document}"


OWNERS = {
    "AAPL": ("0001900001", "Orchard Casey", "Chief Executive Officer"),
    "MSFT": ("0001900002", "Window Robin", "Chief Financial Officer"),
    "NVDA": ("0001900003", "Graphic Jordan", "Director"),
}
FORM4S = (
    # AAPL writes true UTC ("23:10Z" read as New York would be after EDGAR closes).
    Form4("AAPL", "0000320193-26-000101", "4", "2026-10-02", "2026-10-02T23:10:00.000Z",
          utc(2026, 10, 2, 23, 10), (Trade("2026-10-01", "P", 1000, 250.0, "A"),)),
    Form4("AAPL", "0000320193-26-000117", "4", "2026-11-05", "2026-11-05T22:05:00.000Z",
          utc(2026, 11, 5, 22, 5),
          (Trade("2026-11-03", "S", 2000, 260.0, "D"), Trade("2026-11-03", "G", 500, 0.0, "D"))),
    Form4("AAPL", "0000320193-26-000121", "4/A", "2026-11-09", "2026-11-09T21:30:00.000Z",
          utc(2026, 11, 9, 21, 30), (Trade("2026-11-03", "S", 2200, 260.0, "D"),),
          original="2026-11-05"),
    Form4("AAPL", "0000320193-26-000133", "4", "2026-11-20", "2026-11-20T16:00:00.000Z",
          utc(2026, 11, 20, 16), (Trade("2026-11-18", "S", 9000, 270.0, "D"),)),
    # MSFT writes New York wall time with a false Z ("07:45Z" would be 02:45 New York).
    Form4("MSFT", "0000789019-26-000041", "4", "2026-10-14", "2026-10-14T07:45:00.000Z",
          ny(2026, 10, 14, 7, 45), (Trade("2026-10-13", "S", 500, 480.0, "D"),)),
    Form4("MSFT", "0000789019-26-000052", "4", "2026-11-18", "2026-11-18T15:20:00.000Z",
          ny(2026, 11, 18, 15, 20), (Trade("2026-11-17", "P", 100, 470.0, "A"),)),
    # Read as UTC this one is 04:50 New York, before the open; it was accepted at 09:50.
    Form4("MSFT", "0000789019-26-000057", "4", "2026-11-20", "2026-11-20T09:50:00.000Z",
          ny(2026, 11, 20, 9, 50), (Trade("2026-11-19", "P", 3000, 475.0, "A"),)),
    Form4("NVDA", "0001045810-26-000081", "4", "2026-08-03", "2026-08-03T23:40:00.000Z",
          utc(2026, 8, 3, 23, 40), (Trade("2026-07-31", "P", 400, 180.0, "A"),)),
    Form4("NVDA", "0001045810-26-000097", "4", "2026-11-23", "2026-11-23T15:00:00.000Z",
          utc(2026, 11, 23, 15), (Trade("2026-11-20", "S", 800, 190.0, "D"),)),
)  # fmt: skip
INSIDER_SINCE = (AS_OF - timedelta(days=120)).date()  # the insider task's look-back


def form4_xml(filing: Form4) -> bytes:
    owner_cik, owner, title = OWNERS[filing.symbol]
    original = (
        f"<dateOfOriginalSubmission>{filing.original}</dateOfOriginalSubmission>"
        if filing.original
        else ""
    )
    rows = "".join(
        f"""
        <nonDerivativeTransaction>
          <securityTitle><value>Common Stock</value></securityTitle>
          <transactionDate><value>{trade.day}</value></transactionDate>
          <transactionCoding><transactionFormType>4</transactionFormType>
            <transactionCode>{trade.code}</transactionCode>
            <equitySwapInvolved>0</equitySwapInvolved></transactionCoding>
          <transactionAmounts>
            <transactionShares><value>{trade.shares}</value></transactionShares>
            <transactionPricePerShare><value>{trade.price}</value></transactionPricePerShare>
            <transactionAcquiredDisposedCode><value>{trade.side}</value></transactionAcquiredDisposedCode>
          </transactionAmounts>
          <postTransactionAmounts><sharesOwnedFollowingTransaction>
            <value>{50_000 + trade.shares}</value></sharesOwnedFollowingTransaction>
          </postTransactionAmounts>
          <ownershipNature><directOrIndirectOwnership><value>D</value></directOrIndirectOwnership>
          </ownershipNature>
        </nonDerivativeTransaction>"""
        for trade in filing.trades
    )
    return f"""<?xml version="1.0"?>
<ownershipDocument>
  <schemaVersion>X0508</schemaVersion>
  <documentType>{filing.form}</documentType>
  <periodOfReport>{filing.trades[0].day}</periodOfReport>
  {original}
  <aff10b5One>0</aff10b5One>
  <issuer><issuerCik>{CIKS[filing.symbol]:010d}</issuerCik>
    <issuerTradingSymbol>{filing.symbol}</issuerTradingSymbol></issuer>
  <reportingOwner>
    <reportingOwnerId><rptOwnerCik>{owner_cik}</rptOwnerCik><rptOwnerName>{owner}</rptOwnerName>
    </reportingOwnerId>
    <reportingOwnerRelationship><isDirector>0</isDirector><isOfficer>1</isOfficer>
      <officerTitle>{title}</officerTitle></reportingOwnerRelationship>
  </reportingOwner>
  <nonDerivativeTable>{rows}
  </nonDerivativeTable>
</ownershipDocument>
""".encode()


def submissions(symbol: str) -> dict[str, Any]:
    """``submissions/CIK##########.json``: the recent filings as column arrays, newest first."""
    filings = sorted(
        (f for f in FORM4S if f.symbol == symbol), key=lambda f: f.accepted, reverse=True
    )
    return {
        "cik": str(CIKS[symbol]),
        "name": f"{symbol} INC",
        "tickers": [symbol],
        "filings": {
            "recent": {
                "accessionNumber": [f.accession for f in filings],
                "filingDate": [f.filed for f in filings],
                "reportDate": [f.trades[0].day for f in filings],
                "acceptanceDateTime": [f.acceptance for f in filings],
                "form": [f.form for f in filings],
                "primaryDocument": [f"xslF345X05/{f.document}" for f in filings],
            },
            "files": [],
        },
    }


# -- FRED ----------------------------------------------------------------------------------


def known_from(vintage: date) -> int:
    """A FRED vintage counts as known at the end of its day in St. Louis."""
    return ts(datetime.combine(vintage + timedelta(days=1), clock_time(0), CHICAGO))


def next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


BOND_HOLIDAYS = (date(2026, 10, 12), date(2026, 11, 11))  # FRED writes "." for them


def dgs10_value(day: date) -> str:
    return "." if day in BOND_HOLIDAYS else f"{4.0 + (day.toordinal() % 17) / 100:.2f}"


def dgs10() -> list[dict[str, str]]:
    """Daily, published the next business day, never revised; a few months' worth."""
    observations = []
    day = date(2026, 10, 1)
    while day <= date(2026, 11, 30):
        if day.weekday() < 5:
            observations.append(
                {"realtime_start": next_weekday(day).isoformat(), "realtime_end": "9999-12-31",
                 "date": day.isoformat(), "value": dgs10_value(day)}
            )  # fmt: skip
        day += timedelta(days=1)
    return observations


# UNRATE: (month, value, vintage start, vintage end). September is revised before the
# as-of; October is revised after it, and November is released after it.
UNRATE = (
    ("2026-09-01", "4.2", "2026-10-02", "2026-11-05"),
    ("2026-09-01", "4.3", "2026-11-06", "9999-12-31"),
    ("2026-10-01", "4.4", "2026-11-06", "2026-11-24"),
    ("2026-10-01", "4.5", "2026-11-25", "9999-12-31"),
    ("2026-11-01", "4.6", "2026-12-01", "9999-12-31"),
)


def fred_observations(series: str) -> list[dict[str, str]]:
    if series == "DGS10":
        return dgs10()
    return [
        {"realtime_start": start, "realtime_end": end, "date": month, "value": value}
        for month, value, start, end in UNRATE
    ]


# -- Finnhub earnings ------------------------------------------------------------------------

# (symbol, date, hour, year, quarter, epsActual, epsEstimate)
EARNINGS = (
    ("AAPL", "2026-07-30", "amc", 2026, 3, 1.45, 1.40),
    ("AAPL", "2026-10-29", "amc", 2026, 4, 1.80, 1.60),
    ("AAPL", "2027-01-28", "amc", 2027, 1, None, 2.30),
    ("MSFT", "2026-10-28", "amc", 2027, 1, 3.30, 3.00),
    ("MSFT", "2026-11-20", "dmh", 2027, 2, 3.90, 3.50),  # during the session: after the open
    ("NVDA", "2026-11-19", "amc", 2027, 3, 1.30, 1.25),  # the evening before: known at the open
)
REPORT_HOURS = {"bmo": clock_time(9, 30), "dmh": clock_time(16), "amc": clock_time(17)}


def report_available(day: str, hour: str) -> int:
    return ts(datetime.combine(date.fromisoformat(day), REPORT_HOURS[hour], NEW_YORK))


# -- the server ----------------------------------------------------------------------------


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


class FakeProviders:
    """Every provider's endpoints used by the daily tasks, answering from one made-up world."""

    def __init__(self, calendar: MarketCalendar) -> None:
        self.calendar = calendar
        after = [calendar.next_session(SESSION)]
        for _ in range(SESSIONS_KNOWN_AFTER - 1):
            after.append(calendar.next_session(after[-1]))
        self.last_known_session = after[-1]
        self.unexpected: list[str] = []

    def sessions_from(self, first: date) -> list[date]:
        """Sessions from ``first`` to the last the server knows: past any ``end`` asked."""
        return self.calendar.sessions_in_range(first, self.last_known_session)

    # Alpaca -----------------------------------------------------------------------------

    def alpaca_assets(self, _: Request) -> Response:
        listed = [*ALPACA_LISTS, "TSLA"]
        return json_response(
            [{"symbol": s, "name": f"{s} Inc.", "exchange": "NASDAQ", "class": "us_equity",
              "status": "active", "tradable": True} for s in listed]
        )  # fmt: skip

    def alpaca_bars(self, request: Request) -> Response:
        symbols = [s for s in request.args["symbols"].split(",") if s in ALPACA_LISTS]
        start = datetime.fromisoformat(request.args["start"])
        bars = {
            symbol: [
                {"t": midnight(day).strftime("%Y-%m-%dT%H:%M:%SZ"), **bar(symbol, day)}
                for day in self.sessions_from(start.astimezone(NEW_YORK).date())
            ]
            for symbol in symbols
        }
        return json_response({"bars": bars, "next_page_token": None})

    def alpaca_news(self, request: Request) -> Response:
        asked = set(request.args["symbols"].split(","))
        articles = [
            {"id": h.id, "headline": h.text, "author": "Newsdesk", "source": "benzinga",
             "created_at": h.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "updated_at": (h.at + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "symbols": [h.symbol, "AMD"], "summary": "", "url": "", "images": []}
            for h in HEADLINES
            if h.symbol in asked and h.provider == "alpaca"
        ]  # fmt: skip
        return json_response({"news": articles, "next_page_token": None})

    # Massive ----------------------------------------------------------------------------

    def massive_ticker(self, request: Request) -> Response:
        ticker = request.path.rsplit("/", 1)[1]
        if ticker != "NVDA":
            return json_response({"status": "NOT_FOUND", "message": "Ticker not found."}, 404)
        details = {"ticker": ticker, "name": "NVIDIA Corp", "primary_exchange": "XNAS",
                   "sic_description": "SEMICONDUCTORS & RELATED DEVICES"}  # fmt: skip
        return json_response({"status": "OK", "results": details})

    def massive_aggregates(self, request: Request) -> Response:
        parts = request.path.split("/")  # /v2/aggs/ticker/T/range/1/day/FROM/TO
        ticker, first = parts[4], date.fromisoformat(parts[8])
        days = self.sessions_from(first) if ticker == "NVDA" else []
        results = [{"t": ts(midnight(day)) * 1000, **bar(ticker, day)} for day in days]
        return json_response(
            {"ticker": ticker, "status": "OK", "resultsCount": len(results), "results": results}
        )

    # SEC --------------------------------------------------------------------------------

    def sec_tickers(self, _: Request) -> Response:
        entries = {**CIKS, "TSLA": 1318605}
        return json_response(
            {str(n): {"cik_str": cik, "ticker": symbol, "title": f"{symbol} INC"}
             for n, (symbol, cik) in enumerate(entries.items())}
        )  # fmt: skip

    def sec_company_facts(self, request: Request) -> Response:
        return self._by_cik(request, company_facts)

    def sec_submissions(self, request: Request) -> Response:
        return self._by_cik(request, submissions)

    def _by_cik(self, request: Request, answer: Any) -> Response:
        cik = int(re.search(r"CIK(\d{10})\.json$", request.path).group(1))  # type: ignore[union-attr]
        symbol = next((s for s, known in CIKS.items() if known == cik), None)
        if symbol is None:
            return Response("Not Found", status=404, content_type="text/html")
        return json_response(answer(symbol))

    def sec_archive(self, request: Request) -> Response:
        filing = next((f for f in FORM4S if f.archive_path == request.path), None)
        if filing is None:
            return Response("Not Found", status=404, content_type="text/html")
        return Response(form4_xml(filing), content_type="application/xml")

    # FRED -------------------------------------------------------------------------------

    def fred_series(self, request: Request) -> Response:
        series = request.args["series_id"]
        frequency = {"DGS10": ("Daily", "D"), "UNRATE": ("Monthly", "M")}[series]
        return json_response(
            {"seriess": [{"id": series, "title": series, "frequency": frequency[0],
                          "frequency_short": frequency[1], "last_updated": "2026-12-01"}]}
        )  # fmt: skip

    def fred_observations(self, request: Request) -> Response:
        # ALFRED's answer as of today, whatever realtime_end was asked: every vintage.
        observations = fred_observations(request.args["series_id"])
        offset = int(request.args.get("offset", 0))
        return json_response(
            {"realtime_start": request.args["realtime_start"],
             "realtime_end": request.args["realtime_end"], "output_type": 1,
             "count": len(observations), "offset": offset, "limit": 100000,
             "observations": observations[offset:]}
        )  # fmt: skip

    # Finnhub ----------------------------------------------------------------------------

    def finnhub_news(self, request: Request) -> Response:
        symbol = request.args["symbol"]
        return json_response(
            [{"category": "company", "datetime": ts(h.at), "headline": h.text, "id": h.id,
              "related": symbol, "source": "Reuters", "summary": "", "url": "", "image": ""}
             for h in HEADLINES if h.symbol == symbol and h.provider == "finnhub"]
        )  # fmt: skip

    def finnhub_earnings(self, request: Request) -> Response:
        symbol = request.args["symbol"]
        return json_response(
            {"earningsCalendar": [
                {"symbol": s, "date": day, "hour": hour, "year": year, "quarter": quarter,
                 "epsActual": actual, "epsEstimate": estimate, "revenueActual": None,
                 "revenueEstimate": None}
                for s, day, hour, year, quarter, actual, estimate in EARNINGS if s == symbol
            ]}
        )  # fmt: skip

    def finnhub_recommendation(self, request: Request) -> Response:
        return json_response(
            [{"symbol": request.args["symbol"], "period": "2026-12-01", "strongBuy": 20,
              "buy": 15, "hold": 5, "sell": 1, "strongSell": 0}]
        )  # fmt: skip

    # Cboe -------------------------------------------------------------------------------

    def cboe_chain(self, request: Request) -> Response:
        """The current chain, quoted 15 minutes before the wall clock, as Cboe serves it."""
        symbol = request.path.rsplit("/", 1)[1].removesuffix(".json")
        quoted = datetime.now(UTC) - timedelta(minutes=15)
        spot = bar(symbol, SESSION)["c"]
        expiry = quoted.date() + timedelta(days=(4 - quoted.weekday()) % 7 + 7)
        options = [
            {"option": f"{symbol}{expiry:%y%m%d}{kind}{int(strike * 1000):08d}", "bid": 2.0,
             "ask": 2.2, "iv": 0.25, "open_interest": 1200.0, "volume": 300.0, "delta": 0.5,
             "gamma": 0.05, "theta": -0.1, "vega": 0.2}
            for kind in "CP" for strike in (round(spot) - 5, round(spot), round(spot) + 5)
        ]  # fmt: skip
        return json_response(
            {"timestamp": quoted.strftime("%Y-%m-%d %H:%M:%S"),
             "data": {"symbol": symbol, "current_price": spot, "options": options}}
        )  # fmt: skip

    # anything else ----------------------------------------------------------------------

    def unexpected_request(self, request: Request) -> Response:
        """A request no provider should make: noted, and refused at once (not retried)."""
        self.unexpected.append(request.full_path)
        return json_response({"error": f"unexpected request {request.path}"}, 418)


@pytest.fixture
def providers(httpserver: HTTPServer, calendar: MarketCalendar) -> Iterator[FakeProviders]:
    fake = FakeProviders(calendar)
    routes: list[tuple[str | re.Pattern[str], Any]] = [
        ("/v2/assets", fake.alpaca_assets),
        ("/v2/stocks/bars", fake.alpaca_bars),
        ("/v1beta1/news", fake.alpaca_news),
        (re.compile(r"^/v3/reference/tickers/[A-Z.]+$"), fake.massive_ticker),
        (re.compile(r"^/v2/aggs/ticker/[A-Z.]+/range/1/day/"), fake.massive_aggregates),
        ("/files/company_tickers.json", fake.sec_tickers),
        (re.compile(r"^/api/xbrl/companyfacts/CIK\d{10}\.json$"), fake.sec_company_facts),
        (re.compile(r"^/submissions/CIK\d{10}\.json$"), fake.sec_submissions),
        (re.compile(r"^/Archives/edgar/data/\d+/\d{18}/[\w.-]+$"), fake.sec_archive),
        ("/fred/series", fake.fred_series),
        ("/fred/series/observations", fake.fred_observations),
        ("/api/v1/company-news", fake.finnhub_news),
        ("/api/v1/calendar/earnings", fake.finnhub_earnings),
        ("/api/v1/stock/recommendation", fake.finnhub_recommendation),
        (re.compile(r"^/api/global/delayed_quotes/options/_?[A-Z.]+\.json$"), fake.cboe_chain),
    ]
    for path, handler in routes:
        httpserver.expect_request(path, method="GET").respond_with_handler(handler)
    httpserver.expect_request("/v1/corporate-actions").respond_with_json(
        {"corporate_actions": {}, "next_page_token": None}
    )
    for path in ("/v3/reference/splits", "/v3/reference/dividends"):
        httpserver.expect_request(path).respond_with_json({"status": "OK", "results": []})
    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake.unexpected_request)
    yield fake
    httpserver.check()  # no handler raised


def dag_config(url: str) -> dict[str, Any]:
    """The shipped config with every daily source on its real provider at ``url``."""
    config = project_config()
    config["now"] = NOW.isoformat()
    config["defaults"]["retry"] = {"attempts": 1, "backoff_seconds": [0]}  # failures show at once
    config["providers"] = {
        "alpaca": {"data_url": url, "trading_url": url},
        "massive": {"base_url": url, "rate_per_minute": 600},
        "sec": {"base_url": url, "www_url": url},
        "fred": {"base_url": url, "series": list(FRED_SERIES)},
        "finnhub": {"base_url": f"{url}/api/v1"},
        "cboe": {"base_url": url},
    }
    config["universe"] = {"symbols": list(UNIVERSE)}
    providers = {
        "assets": ["alpaca", "massive"],
        "prices_daily": ["alpaca", "massive"],
        "fundamentals": "sec",
        "insider": "sec",
        "analyst": "finnhub",
        "economic": "fred",
        "news": ["finnhub", "alpaca"],
        "options": "cboe",
        "earnings": "finnhub",
    }
    for task, provider in providers.items():
        config["tasks"][task]["provider"] = provider
    config["tasks"]["prices_daily"]["options"] = {"history_sessions": HISTORY_SESSIONS}
    return config


def daily_run(project: Path, now: datetime, env: dict[str, str]) -> Any:
    """``orchestrator --daily`` with the project's clock pinned at ``now``."""
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["now"] = now.isoformat()
    (project / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return orchestrator(project, "--daily", env=env, timeout=600)


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def test_the_daily_dag_on_real_providers_builds_signals_from_what_was_known_at_the_open(
    base: Path, providers: FakeProviders, httpserver: HTTPServer, calendar: MarketCalendar
) -> None:
    url = httpserver.url_for("").rstrip("/")
    project = make_project(base, dag_config(url))
    env = {**KEYS, "SEC_USER_AGENT": SEC_USER_AGENT, "POLYGON_API_KEY": ""}
    run = daily_run(project, NOW, env)
    db = project / "state" / "market.db"
    logs = "\n".join(p.read_text() for p in sorted((project / "state").rglob("*.log")))

    # -- the run ------------------------------------------------------------------------
    assert run.returncode == 0, run.stdout + run.stderr + logs
    assert f"{len(DAILY_TASKS)}/{len(DAILY_TASKS)} tasks built" in run.stdout, run.stdout
    assert providers.unexpected == []
    sentinels = {}
    for task in DAILY_TASKS:
        path = daily_sentinel(project, SESSION.isoformat(), task)
        assert path.is_file(), f"{task} has no sentinel\n{run.stdout}"
        sentinels[task] = json.loads(path.read_text())
    assert {t: s["status"] for t, s in sentinels.items()} == dict.fromkeys(DAILY_TASKS, "success")
    assert {datetime.fromisoformat(s["as_of"]) for s in sentinels.values()} == {AS_OF}
    assert sentinels["assets"]["served_by"] == {"alpaca": 2, "massive": 1}
    assert sentinels["prices_daily"]["served_by"] == {"alpaca": 2, "massive": 1}
    assert sentinels["news"]["served_by"] == {"finnhub": 2, "alpaca": 1}

    # -- nothing stored is later than the session's as-of -------------------------------
    # Not even turned away by the store's own check: no provider offered a row from later.
    # The quarantine holds only the refusals of the sources that serve "now" alone.
    assert_only_refusals(db)
    assert {t: s.get("rows_rejected") for t, s in sentinels.items()} == dict.fromkeys(sentinels, 0)
    for name, spec in TABLES.items():
        newest = rows(db, f"SELECT MAX({spec.time_column}) FROM {name}")[0][0]
        assert newest is None or newest <= AS_OF_TS, (name, newest, AS_OF_TS)
    for name in ("ml_features", "signals"):
        assert rows(db, f"SELECT DISTINCT session, as_of_ts FROM {name}") == [
            (SESSION.isoformat(), AS_OF_TS)
        ]

    # -- each source: exactly what was public at the open -------------------------------
    last_close = calendar.previous_session(SESSION)
    window = calendar.sessions_in_range(last_close - timedelta(days=80), last_close)
    window = window[-HISTORY_SESSIONS:]
    assert rows(db, "SELECT symbol, COUNT(*), MIN(session), MAX(session), MAX(available_ts) "
                    "FROM prices_daily GROUP BY symbol ORDER BY symbol") == [
        (s, HISTORY_SESSIONS, window[0].isoformat(), last_close.isoformat(),
         ts(calendar.hours(last_close).close)) for s in UNIVERSE
    ]  # fmt: skip
    assert rows(db, "SELECT symbol, available_ts FROM assets ORDER BY symbol") == [
        (s, AS_OF_TS) for s in UNIVERSE
    ]

    stored_news = rows(db, "SELECT article_id, available_ts FROM news ORDER BY article_id")
    published = [h for h in HEADLINES if ts(NEWS_SINCE) <= ts(h.at) <= AS_OF_TS]
    assert stored_news == sorted((h.article_id, ts(h.at)) for h in published)
    assert rows(db, "SELECT article_id FROM news_sentiment ORDER BY article_id") == [
        (article,) for article, _ in stored_news
    ]

    fundamentals = rows(
        db,
        "SELECT symbol, period_end, filing_id, available_ts, eps, revenue FROM fundamentals "
        "ORDER BY symbol, period_end, available_ts",
    )
    expected_filings = [
        (s.symbol, s.end.isoformat(), s.accession, s.available_ts)
        for symbol in UNIVERSE
        for s in sorted(statements(symbol), key=lambda s: (s.end, s.filed))
        if s.available_ts <= AS_OF_TS
    ]
    assert [row[:4] for row in fundamentals] == expected_filings
    assert all(row[4] is not None and row[5] is not None for row in fundamentals), fundamentals
    first_figures = {(row[0], row[1]): row[4] for row in reversed(fundamentals)}
    assert first_figures[("NVDA", "2026-06-30")] == 1.25  # restated after the as-of: unseen
    assert [row[4] for row in fundamentals if row[:2] == ("AAPL", "2026-06-30")] == [1.5, 1.0]
    q4 = next(row for row in fundamentals if row[:2] == ("MSFT", "2025-12-31"))
    assert q4[4] == pytest.approx(3.0)  # the 10-K's year less the 9 months to September

    insider = rows(db, "SELECT filing_id, side, shares, price, available_ts, amends "
                       "FROM insider_trades ORDER BY filing_id")  # fmt: skip
    known_filings = [
        f for f in FORM4S if f.accepted.timestamp() <= AS_OF_TS and f.filed >= str(INSIDER_SINCE)
    ]
    expected_trades = [
        (f"{f.accession}:{n}", {"A": "buy", "D": "sell"}[t.side], t.shares, t.price,
         ts(f.accepted), "0000320193-26-000117" if f.form == "4/A" else None)
        for f in known_filings for n, t in enumerate(f.trades, 1) if t.price > 0
    ]  # fmt: skip
    assert insider == sorted(expected_trades)

    expected_results = [
        (symbol, day, actual, estimate, report_available(day, hour))
        for symbol, day, hour, _, _, actual, estimate in EARNINGS
        if actual is not None and report_available(day, hour) <= AS_OF_TS
    ]
    results = rows(
        db,
        "SELECT symbol, report_date, eps_actual, eps_estimate, available_ts "
        "FROM earnings_results ORDER BY symbol, report_date",
    )
    assert results == expected_results

    economic = rows(db, "SELECT series, period, value, available_ts FROM economic_series")
    unrate = sorted(row for row in economic if row[0] == "UNRATE")
    assert unrate == [
        ("UNRATE", month[:7], float(value), known_from(date.fromisoformat(start)))
        for month, value, start, _ in UNRATE
        if known_from(date.fromisoformat(start)) <= AS_OF_TS
    ]
    dgs10_periods = {row[1] for row in economic if row[0] == "DGS10"}
    assert "2026-11-11" not in dgs10_periods and "2026-11-10" in dgs10_periods  # "." is no value
    assert max(dgs10_periods) == "2026-11-18"  # published 11-19, known by the 20th's open

    # Sources that can only serve "now": nothing stored for a past session.
    for table in ("options_chain", "analyst_trends", "analyst_ratings", "earnings_calendar"):
        assert rows(db, f"SELECT COUNT(*) FROM {table}") == [(0,)], table
    assert sentinels["options"]["records_processed"] == 0
    assert sentinels["analyst"]["records_processed"] == 0

    # -- features: built only from rows available by the open ----------------------------
    features = {
        row[0]: row
        for row in rows(
            db,
            "SELECT symbol, inputs_json, max_input_ts, close, return_1d, return_21d, "
            "return_63d, volatility_21d, news_count_7d, insider_net_value_90d, "
            "earnings_surprise_pct, earnings_yield, macro_json, rating_drift_30d "
            "FROM ml_features",
        )
    }
    assert sorted(features) == list(UNIVERSE)
    newest_dgs10 = date(2026, 11, 18)
    expected_inputs = {
        "prices_daily": ts(calendar.hours(last_close).close),
        "news_sentiment": max(ts(h.at) for h in published),
        "fundamentals": max(s.available_ts for sym in UNIVERSE for s in statements(sym)
                            if s.available_ts <= AS_OF_TS),
        "insider_trades": max(ts(f.accepted) for f in known_filings
                              if f.accepted.timestamp() > AS_OF_TS - 90 * DAY),
        "earnings_results": max(row[4] for row in expected_results),
        "economic_series": known_from(next_weekday(newest_dgs10)),
    }  # fmt: skip
    assert all(stamp <= AS_OF_TS for stamp in expected_inputs.values())
    macro = {"DGS10": float(dgs10_value(newest_dgs10)), "UNRATE": 4.4}
    for symbol, row in features.items():
        assert json.loads(row[1]) == expected_inputs, symbol
        assert row[2] == max(expected_inputs.values()) <= AS_OF_TS
        closes = [bar(symbol, day)["c"] for day in window]
        assert row[3] == closes[-1]
        assert row[4] == pytest.approx(closes[-1] / closes[-2] - 1)
        assert row[5] == pytest.approx(closes[-1] / closes[-22] - 1)
        assert row[6] is None  # 63 sessions back is more history than was fetched
        assert row[7] is not None and row[7] > 0
        in_window = [h for h in published
                     if h.symbol == symbol and ts(h.at) > AS_OF_TS - 7 * DAY]  # fmt: skip
        assert row[8] == len(in_window), symbol
        assert json.loads(row[12]) == macro
        assert row[13] == 0.0  # no analyst data can be had for a past session
    # Insider buying: the 4/A replaces the sale it amends; Form 4s after the open count not.
    assert features["AAPL"][9] == pytest.approx(1000 * 250.0 - 2200 * 260.0)
    assert features["MSFT"][9] == pytest.approx(-500 * 480.0 + 100 * 470.0)
    assert features["NVDA"][9] == 0.0  # its one Form 4 known is older than 90 days
    # The last result known at the open; MSFT's report during the session is not.
    assert features["AAPL"][10] == pytest.approx((1.80 - 1.60) / 1.60 * 100)
    assert features["MSFT"][10] == pytest.approx((3.30 - 3.00) / 3.00 * 100)
    assert features["NVDA"][10] == pytest.approx((1.30 - 1.25) / 1.25 * 100)
    for symbol in UNIVERSE:  # trailing EPS of the four quarters known, as last filed by then
        known = known_quarters(symbol)
        ttm = sum(eps for _, eps in (known[end] for end in sorted(known)[-4:]))
        assert features[symbol][11] == pytest.approx(ttm / features[symbol][3]), symbol
    assert sorted(known_quarters("NVDA"))[-1] == date(2026, 6, 30)  # Q3 was filed that day

    signals = rows(db, "SELECT symbol, direction, max_input_ts, inputs_json FROM signals "
                       "ORDER BY symbol")  # fmt: skip
    assert [row[0] for row in signals] == list(UNIVERSE)
    for symbol, direction, max_input_ts, inputs in signals:
        assert direction in ("long", "short", "flat")
        assert max_input_ts <= AS_OF_TS
        assert json.loads(inputs) == {**expected_inputs, "ml_features": AS_OF_TS}, symbol

    # -- what was asked of the server ------------------------------------------------------
    requests = [request for request, _ in httpserver.log]
    paths = [request.path for request in requests]
    for request in requests:  # only FRED takes its key in the query string, as FRED insists
        keys_in_url = [name for name, value in KEYS.items() if value in request.full_path]
        expected = ["FRED_API_KEY"] if request.path.startswith("/fred/") else []
        assert keys_in_url == expected, request.full_path
    sec = [r for r in requests if r.path.startswith(("/files/", "/api/xbrl/", "/submissions/",
                                                     "/Archives/"))]  # fmt: skip
    assert {r.headers.get("User-Agent") for r in sec} == {SEC_USER_AGENT}
    # One companyfacts and one submissions per company, one document per Form 4 known (the
    # ticker list once per task at most: the two SEC tasks run in parallel, cache cold).
    sec_paths = [r.path for r in sec]
    assert 1 <= sec_paths.count("/files/company_tickers.json") <= 2
    assert sorted(p for p in sec_paths if not p.startswith(("/files/", "/Archives/"))) == sorted(
        f"/{kind}/CIK{cik:010d}.json"
        for cik in CIKS.values()
        for kind in ("api/xbrl/companyfacts", "submissions")
    )
    assert sorted(p for p in sec_paths if p.startswith("/Archives/")) == sorted(
        f.archive_path for f in known_filings
    )
    for filing in FORM4S:  # a Form 4 accepted after the open is not even fetched
        fetched = filing.archive_path in paths
        assert fetched == (filing in known_filings), filing.accession
    alpaca = [r for r in requests if r.path.startswith(("/v2/assets", "/v2/stocks", "/v1"))]
    assert {r.headers.get("APCA-API-KEY-ID") for r in alpaca} == {KEYS["ALPACA_API_KEY_ID"]}
    massive = [r for r in requests if r.path.startswith(("/v3/", "/v2/aggs/"))]
    assert massive and {r.headers.get("Authorization") for r in massive} == {
        f"Bearer {KEYS['MASSIVE_API_KEY']}"
    }
    finnhub = [r for r in requests if r.path.startswith("/api/v1/")]
    assert finnhub and {r.headers.get("X-Finnhub-Token") for r in finnhub} == {
        KEYS["FINNHUB_API_KEY"]
    }
    # No request asked for data past the as-of, where the API lets the caller say so.
    for request in requests:
        args = request.args
        if request.path == "/v2/stocks/bars":
            assert datetime.fromisoformat(args["end"]) <= calendar.hours(last_close).close
        elif request.path == "/v1beta1/news":
            assert datetime.fromisoformat(args["end"]) <= AS_OF
        elif request.path == "/fred/series/observations":
            assert date.fromisoformat(args["realtime_end"]) <= SESSION
        elif request.path in ("/api/v1/company-news", "/api/v1/calendar/earnings"):
            assert date.fromisoformat(args["to"]) <= SESSION, request.full_path
    # The snapshot sources were asked nothing they would have to answer with today, except
    # Cboe, whose chain says when it was quoted (and was then refused for every symbol).
    assert "/api/v1/stock/recommendation" not in paths
    chains = sorted(p for p in paths if p.startswith("/api/global/delayed_quotes/options/"))
    assert chains == [f"/api/global/delayed_quotes/options/{s}.json" for s in UNIVERSE]

    # -- a later session, then the first one rebuilt: the same features, the same signals -
    first_build = {
        table: rows(db, f"SELECT * FROM {table} WHERE session = ? ORDER BY symbol", "2026-11-20")
        for table in ("ml_features", "signals")
    }
    later = daily_run(project, LATER_NOW, env)
    assert later.returncode == 0, later.stdout + later.stderr
    for task in DAILY_TASKS:
        record = json.loads(daily_sentinel(project, LATER_SESSION.isoformat(), task).read_text())
        assert record["status"] == "success", (task, record)
    for name, spec in TABLES.items():
        newest = rows(db, f"SELECT MAX({spec.time_column}) FROM {name}")[0][0]
        assert newest is None or newest <= LATER_AS_OF_TS, (name, newest)
    assert_only_refusals(db)
    later_features = rows(
        db,
        "SELECT DISTINCT max_input_ts <= as_of_ts, as_of_ts FROM ml_features WHERE session = ?",
        LATER_SESSION.isoformat(),
    )
    assert later_features == [(1, LATER_AS_OF_TS)]
    # What had been after the first open is stored now, each at its own time: the false-Z
    # Form 4 at 09:50 New York (not 04:50), NVDA's 10-Q of the 20th from that day's end.
    accepted = dict(rows(db, "SELECT filing_id, available_ts FROM insider_trades"))
    assert accepted["0000789019-26-000057:1"] == ts(ny(2026, 11, 20, 9, 50))
    assert ("0001045810-26-000035", end_of_day(date(2026, 11, 20))) in rows(
        db, "SELECT filing_id, available_ts FROM fundamentals WHERE symbol = 'NVDA'"
    )
    restated_on_the_25th = "0001045810-26-000041"  # known from that day's end: not yet
    assert rows(
        db, "SELECT COUNT(*) FROM fundamentals WHERE filing_id = ?", restated_on_the_25th
    ) == [(0,)]
    assert ("UNRATE", "2026-10", 4.5) not in [
        row[:3] for row in rows(db, "SELECT * FROM economic_series")
    ]  # the revision of the 25th is known from that day's end
    assert rows(db, "SELECT MAX(available_ts) FROM news")[0][0] > AS_OF_TS  # later news is in

    rebuild = orchestrator(
        project, "forcerun", "ml_features", "--session", SESSION.isoformat(), env=env
    )
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    for table, built in first_build.items():
        again = rows(db, f"SELECT * FROM {table} WHERE session = ? ORDER BY symbol", "2026-11-20")
        assert again == built, table

    # -- no key in anything the pipeline wrote ---------------------------------------------
    for path in (project / "state").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [name for name, value in KEYS.items() if value.encode() in data], path


# -- what the DAG run showed the pipeline does not do yet -------------------------------------


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**KEYS, "SEC_USER_AGENT": SEC_USER_AGENT, "POLYGON_API_KEY": ""}.items():
        monkeypatch.setenv(name, value)


def run_tasks(config: Any, now: datetime, session: date, *tasks: str) -> dict[str, Any]:
    reports = {}
    for task in tasks:
        reports[task], _, _ = run_once(config, task, Period(session), now.astimezone(UTC))
    return reports


REFUSING = {"options_chain", "analyst_trends", "earnings_calendar"}  # they serve only "now"


def assert_only_refusals(db: Path) -> None:
    """The quarantine holds refusals of past sessions by now-only sources, nothing else."""
    quarantined = rows(db, "SELECT table_name, reason FROM quarantine")
    for table, reason in quarantined:
        assert table in REFUSING, (table, reason)
        assert "current chain" in reason or "snapshot" in reason, (table, reason)


def test_a_source_that_cannot_serve_a_past_session_says_so(
    base: Path, providers: FakeProviders, httpserver: HTTPServer, keys: None
) -> None:
    config = build_config(dag_config(httpserver.url_for("").rstrip("/")), "test.yaml", base)
    reports = run_tasks(config, NOW, SESSION, "assets", "options", "analyst", "earnings")
    for task, report in reports.items():  # degraded: prices_daily, which they need, is not run
        assert report.error is None and report.status in ("success", "degraded"), (task, report)
    quarantined = rows(
        config.market_db,
        "SELECT table_name, natural_key, reason FROM quarantine ORDER BY table_name, natural_key",
    )
    tables = {table for table, _, _ in quarantined}
    assert {"options_chain", "analyst_trends", "earnings_calendar"} <= tables, quarantined
    for table, natural_key, reason in quarantined:
        assert natural_key.split("|")[0] in UNIVERSE  # the symbol, the rest of the key unknown
        if table == "options_chain":
            assert "serves only the current chain" in reason
        else:
            assert "snapshot" in reason


def test_a_later_run_leaves_an_earlier_sessions_universe_alone(
    base: Path, providers: FakeProviders, httpserver: HTTPServer, keys: None
) -> None:
    config = build_config(dag_config(httpserver.url_for("").rstrip("/")), "test.yaml", base)
    run_tasks(config, NOW, SESSION, "assets")
    run_tasks(config, LATER_NOW, LATER_SESSION, "assets")
    report = run_tasks(config, LATER_NOW, SESSION, "ml_features")["ml_features"]
    assert report.error is None and report.status in ("success", "degraded"), report
    assert rows(config.market_db, "SELECT symbol, available_ts FROM assets ORDER BY 1") == [
        (symbol, AS_OF_TS) for symbol in UNIVERSE
    ]
