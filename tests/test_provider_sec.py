"""The SEC EDGAR provider against a local server replaying EDGAR's documented responses.

The fixtures under ``tests/fixtures/sec/`` are fictional issuers (Globex,
Acme, Initech) in the formats of ``company_tickers.json``, the XBRL
``companyfacts`` API, the ``submissions`` API (recent arrays and an older
page) and Form 4 ownership XML. Every request a test does not expect fails
it (``check_assertions``), so the tests also pin what is *not* requested.
Nothing here reaches the network (only 127.0.0.1) and nothing sleeps: the
provider's sleeper records the waits instead.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from collectors.market_store import validate
from collectors.providers.base import Provider
from collectors.providers.http import USER_AGENT as PROJECT_USER_AGENT
from collectors.providers.sec import Filing, SecProvider, accepted_at, clock_convention
from orchestrator.errors import PermanentError, TransientError
from orchestrator.market_calendar import MarketCalendar

FIXTURES = Path(__file__).parent / "fixtures" / "sec"
USER_AGENT = "Market Pipeline Tests tests@example.com"
GLOBEX, ACME, INITECH = 765432, 1234567, 1098765
TICKERS = "/files/company_tickers.json"

# Each Form 4 served: accession -> (issuer CIK, raw XML name in the archive). The
# submissions list them under the XSL rendering's folder (xslF345X05/...).
FORM4 = {
    "0000765432-24-000074": (GLOBEX, "wf-form4_171476647222222.xml"),
    "0000765432-24-000075": (GLOBEX, "wf-form4_171476674411111.xml"),
    "0000765432-24-000081": (GLOBEX, "wf-form4a_171520807654321.xml"),
    "0001234567-24-000007": (ACME, "doc4.xml"),
    "0001234567-24-000027": (ACME, "doc4.xml"),
    "0001234567-24-000033": (ACME, "form4-05212024_110512.xml"),
    "0001234567-24-000034": (ACME, "doc4a.xml"),
    "0001234567-24-000035": (ACME, "form4-05222024_050509.xml"),
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def epoch(text: str) -> int:
    return int(utc(text).timestamp())


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with missing values as None (pandas' NA and NaN do not compare)."""
    plain = frame.astype(object).where(frame.notna(), None)
    return plain.to_dict(orient="records")  # type: ignore[return-value]


def archive_path(accession: str) -> str:
    cik, document = FORM4[accession]
    return f"/Archives/edgar/data/{cik}/{accession.replace('-', '')}/{document}"


def paths(httpserver: HTTPServer) -> list[str]:
    return [request.path for request, _ in httpserver.log]


@pytest.fixture
def user_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEC_USER_AGENT", USER_AGENT)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture(autouse=True)
def only_expected_requests(httpserver: HTTPServer) -> Iterator[None]:
    """A request no handler expects (a page not needed, a Form 4 out of the window) fails."""
    yield
    httpserver.check_assertions()


def make_provider(
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
    **settings: Any,
) -> SecProvider:
    base = httpserver.url_for("").rstrip("/")
    return SecProvider.from_settings(
        {
            "name": "sec",
            "base_url": base,
            "www_url": base,
            "symbols": ["GLBX", "ACME"],
            "limits_db": str(tmp_path / "limits.sqlite"),
            "cache_dir": str(tmp_path / "cache"),
            # The shared limiter would really wait at 9 per second; these tests pin
            # requests, not timing (the limiter has its own tests).
            "rate_per_second": 1000,
            **settings,
        },
        calendar,
        sleeper=sleeps.append,
    )


@pytest.fixture
def provider(
    user_agent: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
) -> SecProvider:
    return make_provider(httpserver, tmp_path, calendar, sleeps)


def serve_tickers(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TICKERS).respond_with_json(fixture("company_tickers.json"))


def serve_companyfacts(httpserver: HTTPServer, cik: int) -> None:
    name = f"companyfacts_CIK{cik:010d}.json"
    httpserver.expect_request(f"/api/xbrl/companyfacts/CIK{cik:010d}.json").respond_with_json(
        fixture(name)
    )


def serve_form4(httpserver: HTTPServer, *accessions: str) -> None:
    for accession in accessions:
        body = (FIXTURES / f"form4_{accession}.xml").read_bytes()
        httpserver.expect_request(archive_path(accession)).respond_with_data(
            body, content_type="text/xml"
        )


def serve_globex_insiders(httpserver: HTTPServer) -> None:
    """Globex's listing and only the Forms 4 of the window (not -000088, not -000060)."""
    httpserver.expect_request("/submissions/CIK0000765432.json").respond_with_json(
        fixture("submissions_CIK0000765432.json")
    )
    serve_form4(httpserver, "0000765432-24-000074", "0000765432-24-000075", "0000765432-24-000081")


def serve_acme_insiders(httpserver: HTTPServer) -> None:
    """Acme's listing, its older page, the window's Forms 4 and the original of its 4/A."""
    httpserver.expect_request("/submissions/CIK0001234567.json").respond_with_json(
        fixture("submissions_CIK0001234567.json")
    )
    httpserver.expect_request("/submissions/CIK0001234567-submissions-001.json").respond_with_json(
        fixture("CIK0001234567-submissions-001.json")
    )
    serve_form4(
        httpserver,
        "0001234567-24-000007",
        "0001234567-24-000027",
        "0001234567-24-000033",
        "0001234567-24-000034",
        "0001234567-24-000035",
    )


def assert_valid(table: str, frame: pd.DataFrame, as_of: datetime, rows: int) -> None:
    good, rejects = validate(
        table, frame, as_of_ts=int(as_of.timestamp()), known_symbols={"GLBX", "ACME"}
    )
    assert rejects.empty, rejects[["reason"]].to_dict(orient="records")
    assert len(good) == rows


# -- construction, errors, check ---------------------------------------------------------


def test_without_sec_user_agent_nothing_is_requested(
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SEC_USER_AGENT", raising=False)
    with pytest.raises(PermanentError, match=r"SEC requires a name and an e-mail .*SEC_USER_AGENT"):
        make_provider(httpserver, tmp_path, calendar, [])
    monkeypatch.setenv("SEC_USER_AGENT", "Jane Doe")  # a name without an e-mail address
    with pytest.raises(PermanentError, match="has no e-mail address"):
        make_provider(httpserver, tmp_path, calendar, [])
    assert httpserver.log == []
    monkeypatch.setenv("SEC_USER_AGENT", USER_AGENT)
    assert isinstance(make_provider(httpserver, tmp_path, calendar, []), Provider)
    assert httpserver.log == []  # building the provider requests nothing either


def test_kinds_sec_does_not_serve_are_permanent_errors(provider: SecProvider) -> None:
    as_of = utc("2024-07-01T15:00:00")
    with pytest.raises(PermanentError, match=r"sec does not serve daily_bars; .*alpaca"):
        provider.daily_bars(["GLBX"], [date(2024, 7, 1)])
    with pytest.raises(PermanentError, match=r"sec does not serve news; .*finnhub"):
        provider.news(["GLBX"], date(2024, 6, 1), as_of)
    with pytest.raises(PermanentError, match=r"sec does not serve earnings; .*finnhub"):
        provider.earnings_results(["GLBX"], date(2024, 6, 1), as_of)


def test_check_fetches_the_ticker_list_with_the_user_agent(
    provider: SecProvider, httpserver: HTTPServer, tmp_path: Path
) -> None:
    serve_tickers(httpserver)
    assert provider.check() == "sec: User-Agent accepted, company_tickers.json lists 4 tickers"
    ((request, _),) = httpserver.log
    assert request.path == TICKERS
    assert request.headers["User-Agent"] == USER_AGENT
    assert (tmp_path / "cache" / "sec_company_tickers.json").is_file()


def test_the_throttle_page_pauses_every_process_for_ten_minutes(
    provider: SecProvider, httpserver: HTTPServer, tmp_path: Path, sleeps: list[float]
) -> None:
    serve_tickers(httpserver)
    facts = "/api/xbrl/companyfacts/CIK0001234567.json"
    httpserver.expect_oneshot_request(facts).respond_with_data(
        (FIXTURES / "throttled_403.html").read_text(),
        status=403,
        content_type="text/html; charset=utf-8",
    )
    before = time.time()
    with pytest.raises(TransientError, match="throttled") as raised:
        provider.fundamentals(["ACME"], date(2024, 1, 1), utc("2025-06-01T00:00:00"))
    assert raised.value.retry_after is not None and raised.value.retry_after >= 600
    assert paths(httpserver) == [TICKERS, facts]  # the 403 is not retried inside the task
    with sqlite3.connect(tmp_path / "limits.sqlite") as connection:
        (until,) = connection.execute("SELECT until FROM pauses WHERE provider = 'sec'").fetchone()
    assert until >= before + 600
    assert sleeps == []
    # The next request, from this or any process sharing the limiter, waits the pause out.
    serve_companyfacts(httpserver, ACME)
    frame = provider.fundamentals(["ACME"], date(2024, 1, 1), utc("2025-06-01T00:00:00"))
    assert len(frame) == 4
    assert len(sleeps) == 1 and sleeps[0] >= 590


# -- tickers -------------------------------------------------------------------------------


def test_the_ticker_list_is_cached_for_a_day(
    user_agent: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
) -> None:
    serve_tickers(httpserver)
    serve_companyfacts(httpserver, ACME)
    as_of = utc("2025-06-01T00:00:00")
    for _ in range(2):  # two runs, each with its own provider, as two tasks would
        make_provider(httpserver, tmp_path, calendar, []).fundamentals(
            ["ACME"], date(2024, 1, 1), as_of
        )
    assert paths(httpserver).count(TICKERS) == 1
    cached = tmp_path / "cache" / "sec_company_tickers.json"
    two_days_ago = time.time() - 2 * 86400
    os.utime(cached, (two_days_ago, two_days_ago))
    make_provider(httpserver, tmp_path, calendar, []).fundamentals(
        ["ACME"], date(2024, 1, 1), as_of
    )
    assert paths(httpserver).count(TICKERS) == 2
    assert cached.stat().st_mtime > two_days_ago  # refreshed


# -- fundamentals ----------------------------------------------------------------------


def test_a_restatement_is_a_new_row_with_its_own_filing_time(
    provider: SecProvider, httpserver: HTTPServer
) -> None:
    serve_tickers(httpserver)
    serve_companyfacts(httpserver, ACME)
    as_of = utc("2025-06-01T00:00:00")
    frame = provider.fundamentals(["ACME"], date(2024, 1, 1), as_of)
    q1 = {"symbol": "ACME", "fiscal_period": "2024Q1", "period_end": "2024-03-31"}
    assert records(frame) == [
        {  # the 10-Q as first filed (the 8-K's revenue before it is no statement)
            **q1,
            "filing_id": "0001234567-24-000010",
            "revenue": 412_300_000.0,
            "net_income": 31_800_000.0,
            "eps": 0.64,
            "shares_outstanding": 49_512_300.0,
            "total_assets": 2_954_000_000.0,
            "total_debt": 640_000_000.0,
            "total_liabilities": 1_702_000_000.0,
            "equity": 1_252_000_000.0,
            "operating_cash_flow": 45_200_000.0,
            "available_ts": epoch("2024-05-07T03:59:59"),  # 2024-05-06 23:59:59 New York
        },
        {  # the 10-Q/A: same quarter, its own row and time
            **q1,
            "filing_id": "0001234567-24-000041",
            "revenue": 398_900_000.0,
            "net_income": 24_100_000.0,
            "eps": 0.49,
            "shares_outstanding": 49_530_100.0,
            "total_assets": 2_941_000_000.0,
            "total_debt": 640_000_000.0,
            "total_liabilities": 1_702_000_000.0,
            "equity": 1_239_000_000.0,
            "operating_cash_flow": 45_200_000.0,
            "available_ts": epoch("2024-06-15T03:59:59"),
        },
        {  # next year's 10-Q restates the revenue among its comparatives
            **q1,
            "filing_id": "0001234567-25-000012",
            "revenue": 396_400_000.0,
            "net_income": 24_100_000.0,
            "eps": 0.49,
            "shares_outstanding": 49_530_100.0,  # not repeated: as last known
            "total_assets": 2_941_000_000.0,
            "total_debt": 640_000_000.0,
            "total_liabilities": 1_702_000_000.0,
            "equity": 1_239_000_000.0,
            "operating_cash_flow": 45_200_000.0,
            "available_ts": epoch("2025-05-06T03:59:59"),
        },
        {
            "symbol": "ACME",
            "period_end": "2025-03-31",
            "filing_id": "0001234567-25-000012",
            "fiscal_period": "2025Q1",
            "revenue": 441_700_000.0,
            "net_income": 35_600_000.0,
            "eps": 0.71,
            "shares_outstanding": 49_804_000.0,
            "total_assets": 3_102_000_000.0,
            "total_debt": 655_000_000.0,
            "total_liabilities": 1_758_000_000.0,
            "equity": 1_344_000_000.0,
            "operating_cash_flow": 51_900_000.0,
            "available_ts": epoch("2025-05-06T03:59:59"),
        },
    ]
    assert_valid("fundamentals", frame, as_of, 4)


def test_fundamentals_are_never_known_before_the_end_of_their_filing_day(
    provider: SecProvider, httpserver: HTTPServer
) -> None:
    serve_tickers(httpserver)
    serve_companyfacts(httpserver, ACME)
    amended_public = utc("2024-06-15T03:59:59")  # the 10-Q/A's filing day, 23:59:59 New York
    before = provider.fundamentals(["ACME"], date(2024, 1, 1), amended_public.replace(second=58))
    assert before["filing_id"].tolist() == ["0001234567-24-000010"]
    assert before["revenue"].tolist() == [412_300_000.0]  # as first reported
    at = provider.fundamentals(["ACME"], date(2024, 1, 1), amended_public)
    assert at["filing_id"].tolist() == ["0001234567-24-000010", "0001234567-24-000041"]
    assert int(at["available_ts"].max()) <= int(amended_public.timestamp())
    # since: the original was filed on 2024-05-06, before a window starting on the 7th.
    later = provider.fundamentals(["ACME"], date(2024, 5, 7), amended_public)
    assert later["filing_id"].tolist() == ["0001234567-24-000041"]
    assert_valid("fundamentals", at, amended_public, 2)


def test_fallback_tags_and_quarters_derived_from_year_to_date_figures(
    provider: SecProvider, httpserver: HTTPServer
) -> None:
    serve_tickers(httpserver)
    serve_companyfacts(httpserver, GLOBEX)
    httpserver.expect_request("/api/xbrl/companyfacts/CIK0001098765.json").respond_with_json(
        {"message": "Not Found"}, status=404
    )
    as_of = utc("2024-03-01T00:00:00")
    frame = provider.fundamentals(["GLBX", "INIT.B", "ZZZZ"], date(2023, 6, 1), as_of)
    frame["eps"] = frame["eps"].round(6)  # the fourth quarter's EPS is a difference
    globex = {"symbol": "GLBX"}
    assert records(frame) == [
        {  # Globex tags revenue RevenueFromContractWithCustomerExcludingAssessedTax and
            # debt LongTermDebtNoncurrent; cash flow is nine months less six
            **globex,
            "period_end": "2023-07-01",
            "filing_id": "0000765432-23-000077",
            "fiscal_period": "2023Q3",
            "revenue": 8_179_700_000.0,
            "net_income": 1_988_100_000.0,
            "eps": 1.26,
            "shares_outstanding": 15_634_232_000.0,
            "total_assets": 33_501_000_000.0,
            "total_debt": 9_808_000_000.0,
            "total_liabilities": 27_455_000_000.0,
            "equity": 6_046_000_000.0,
            "operating_cash_flow": 2_638_000_000.0,
            "available_ts": epoch("2023-08-05T03:59:59"),
        },
        {  # the 10-K: the fourth quarter is the year less the nine months of the Q3 10-Q
            **globex,
            "period_end": "2023-09-30",
            "filing_id": "0000765432-23-000106",
            "fiscal_period": "2023Q4",
            "revenue": 8_949_800_000.0,
            "net_income": 2_295_600_000.0,
            "eps": 1.46,
            "shares_outstanding": 15_552_752_000.0,
            "total_assets": 35_258_300_000.0,
            "total_debt": 9_528_100_000.0,
            "total_liabilities": 29_043_700_000.0,
            "equity": 6_214_600_000.0,
            "operating_cash_flow": 2_159_800_000.0,
            "available_ts": epoch("2023-11-04T03:59:59"),
        },
        {  # its comparatives at 2023-09-30 equal the 10-K's: no extra row
            **globex,
            "period_end": "2023-12-30",
            "filing_id": "0000765432-24-000006",
            "fiscal_period": "2024Q1",
            "revenue": 11_957_500_000.0,
            "net_income": 3_391_600_000.0,
            "eps": 2.18,
            "shares_outstanding": 15_441_881_000.0,
            "total_assets": 35_351_400_000.0,
            "total_debt": 9_508_800_000.0,
            "total_liabilities": 27_941_400_000.0,
            "equity": 7_410_000_000.0,
            "operating_cash_flow": 3_989_500_000.0,
            "available_ts": epoch("2024-02-03T04:59:59"),  # winter: New York is UTC-5
        },
    ]  # the Q2 10-Q, filed on 2023-05-05, is before the window
    assert provider.symbol_errors == {
        "INIT.B": "SEC has no XBRL company facts for INIT.B",  # found as INIT-B
        "ZZZZ": "SEC lists no company with ticker ZZZZ",
    }
    assert paths(httpserver) == [
        TICKERS,
        "/api/xbrl/companyfacts/CIK0000765432.json",
        "/api/xbrl/companyfacts/CIK0001098765.json",
    ]
    assert_valid("fundamentals", frame, as_of, 3)


# -- insider trades --------------------------------------------------------------------


def test_form_4_transactions_and_the_4a_that_amends_them(
    provider: SecProvider, httpserver: HTTPServer
) -> None:
    serve_tickers(httpserver)
    serve_globex_insiders(httpserver)
    as_of = utc("2024-05-13T20:00:00")
    frame = provider.insider_trades(["GLBX"], date(2024, 4, 25), as_of)
    frame["value"] = frame["value"].round(6)
    cfo = {
        "symbol": "GLBX",
        "insider_role": "EVP, Chief Financial Officer",
        "owner": "Roe Jane",
        "is_10b5_1": 1,
    }
    original = {
        **cfo,
        "available_ts": epoch("2024-05-03T20:01:12"),  # a true Z: 16:01 New York
        "filing_date": "2024-05-03",
        "amends": None,
    }
    amendment = {
        **cfo,
        "available_ts": epoch("2024-05-08T22:41:17"),
        "filing_date": "2024-05-08",
        "amends": "0000765432-24-000074",  # Jane Roe's, not John Doe's later one that day
    }
    exercise = {
        "transaction_date": "2024-05-01",
        "side": "buy",
        "shares": 2000.0,
        "price": 54.1,
        "value": 108_200.0,
        "transaction_code": "M",
        "shares_after": 32_000.0,
        "ownership": "D",
    }
    trust_sale = {
        "transaction_date": "2024-05-02",
        "side": "sell",
        "shares": 500.0,
        "price": 172.05,
        "value": 86_025.0,
        "transaction_code": "S",
        "shares_after": 8_200.0,
        "ownership": "I",
    }
    sale = {
        "transaction_date": "2024-05-01",
        "side": "sell",
        "shares": 1500.0,
        "transaction_code": "S",
        "shares_after": 30_500.0,
        "ownership": "D",
    }
    expected = [
        {**original, **exercise, "filing_id": "0000765432-24-000074:1"},
        {
            **original,
            **sale,
            "price": 171.2,
            "value": 256_800.0,
            "filing_id": "0000765432-24-000074:2",
        },
        # :3 is a gift at $0: left out, and the numbering keeps the document's places
        {**original, **trust_sale, "filing_id": "0000765432-24-000074:4"},
        {
            "symbol": "GLBX",
            "filing_id": "0000765432-24-000075:1",
            "insider_role": "Director",
            "transaction_date": "2024-05-01",
            "side": "buy",
            "shares": 1000.0,
            "price": 170.0,
            "value": 170_000.0,
            "available_ts": epoch("2024-05-03T20:05:44"),
            "transaction_code": "P",
            "shares_after": 11_000.0,
            "ownership": "D",
            "owner": "Doe John Q",
            "is_10b5_1": 0,
            "filing_date": "2024-05-03",
            "amends": None,
        },
        {**amendment, **exercise, "filing_id": "0000765432-24-000081:1"},
        {
            **amendment,
            **sale,
            "price": 171.02,
            "value": 256_530.0,
            "filing_id": "0000765432-24-000081:2",
        },
        {**amendment, **trust_sale, "filing_id": "0000765432-24-000081:4"},
    ]
    assert records(frame) == [{key: row[key] for key in frame.columns} for row in expected]
    # One listing, one XML per Form 4 of the window: none for -000088 (accepted after
    # as_of) or -000060 (filed before since), none for the older page (not needed).
    assert sorted(paths(httpserver)) == sorted(
        [
            TICKERS,
            "/submissions/CIK0000765432.json",
            archive_path("0000765432-24-000074"),
            archive_path("0000765432-24-000075"),
            archive_path("0000765432-24-000081"),
        ]
    )
    assert_valid("insider_trades", frame, as_of, 7)


def test_a_false_z_is_read_as_new_york_time(provider: SecProvider, httpserver: HTTPServer) -> None:
    serve_tickers(httpserver)
    serve_acme_insiders(httpserver)
    as_of = utc("2024-05-23T00:00:00")
    frame = provider.insider_trades(["ACME"], date(2024, 5, 1), as_of)
    stamps = frame.set_index("filing_id")["available_ts"].to_dict()
    assert stamps == {
        # Written 2024-05-10T16:20:00Z: as UTC and as New York both fit EDGAR's hours;
        # Acme's listing writes New York time (the two filings below tell), so 20:20Z.
        "0001234567-24-000027:1": epoch("2024-05-10T20:20:00"),
        # Written 07:12:44Z: as UTC that is 03:12 in New York, when EDGAR is closed.
        "0001234567-24-000033:1": epoch("2024-05-21T11:12:44"),
        "0001234567-24-000033:2": epoch("2024-05-21T11:12:44"),
        "0001234567-24-000034:1": epoch("2024-05-21T20:02:37"),
        "0001234567-24-000035:1": epoch("2024-05-22T21:45:09"),  # written 17:45:09Z
    }  # -000035:2 is an award without a price: left out
    amended = records(frame[frame["filing_id"] == "0001234567-24-000034:1"])
    assert amended == [
        {
            "symbol": "ACME",
            "filing_id": "0001234567-24-000034:1",
            "insider_role": "Director, 10% Owner",
            "transaction_date": "2024-04-18",
            "side": "buy",
            "shares": 10_000.0,
            "price": 33.01,
            "value": pytest.approx(330_100.0),
            "available_ts": epoch("2024-05-21T20:02:37"),
            "transaction_code": "P",
            "shares_after": 2_410_000.0,
            "ownership": "I",
            "owner": "LEE PAT",
            "is_10b5_1": 0,
            "filing_date": "2024-05-21",
            # The original was filed on 2024-04-22, before the window: found from the
            # 4/A's dateOfOriginalSubmission, its rows not served.
            "amends": "0001234567-24-000007",
        }
    ]
    assert frame.set_index("filing_id")["is_10b5_1"].isna().to_dict() == {
        "0001234567-24-000027:1": True,  # an older schema without the aff10b5One box
        "0001234567-24-000033:1": False,
        "0001234567-24-000033:2": False,
        "0001234567-24-000034:1": False,
        "0001234567-24-000035:1": False,
    }
    # The recent list starts on 2024-05-20, after since: the older page was needed.
    assert paths(httpserver)[:3] == [
        TICKERS,
        "/submissions/CIK0001234567.json",
        "/submissions/CIK0001234567-submissions-001.json",
    ]
    acme_documents = [archive_path(accession) for accession in FORM4 if "1234567-" in accession]
    assert sorted(paths(httpserver)[3:]) == sorted(acme_documents)
    assert_valid("insider_trades", frame, as_of, 5)


def test_form_4_documents_are_fetched_once(
    user_agent: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
) -> None:
    serve_tickers(httpserver)
    serve_globex_insiders(httpserver)
    as_of = utc("2024-05-13T20:00:00")
    first = make_provider(httpserver, tmp_path, calendar, []).insider_trades(
        ["GLBX"], date(2024, 4, 25), as_of
    )
    httpserver.clear_log()
    again = make_provider(httpserver, tmp_path, calendar, []).insider_trades(
        ["GLBX"], date(2024, 4, 25), as_of
    )
    pd.testing.assert_frame_equal(first, again)
    # A filing never changes: the next run asks for the listing only.
    assert paths(httpserver) == ["/submissions/CIK0000765432.json"]


def test_every_request_carries_sec_user_agent(
    provider: SecProvider, httpserver: HTTPServer
) -> None:
    serve_tickers(httpserver)
    serve_companyfacts(httpserver, GLOBEX)
    serve_globex_insiders(httpserver)
    as_of = utc("2024-05-13T20:00:00")
    provider.fundamentals(["GLBX"], date(2024, 1, 1), as_of)
    provider.insider_trades(["GLBX"], date(2024, 4, 25), as_of)
    agents = {request.headers.get("User-Agent") for request, _ in httpserver.log}
    assert len(httpserver.log) == 6
    assert agents == {USER_AGENT}
    assert PROJECT_USER_AGENT not in agents


# -- acceptance times --------------------------------------------------------------------


def filing(acceptance: str, filed: str) -> Filing:
    return Filing("0000000000-24-000001", "4", date.fromisoformat(filed), acceptance, "doc4.xml")


@pytest.mark.parametrize(
    ("acceptance", "filed", "convention", "accepted"),
    [
        # Inside EDGAR's hours only as New York time: a false Z, whatever the convention.
        ("2024-05-21T07:12:44.000Z", "2024-05-21", "utc", "2024-05-21T11:12:44"),
        # Inside EDGAR's hours only as UTC (18:41 in New York; 22:41 would be closed).
        ("2024-05-08T22:41:17.000Z", "2024-05-08", "new_york", "2024-05-08T22:41:17"),
        # 21:30 New York the evening before: read as New York it would fall after the
        # filing date, at 01:30 when EDGAR is closed.
        ("2024-05-02T01:30:00.000Z", "2024-05-01", "new_york", "2024-05-02T01:30:00"),
        # Both readings fit: the company's convention decides...
        ("2024-05-03T20:05:44.000Z", "2024-05-03", "utc", "2024-05-03T20:05:44"),
        ("2024-05-03T20:05:44.000Z", "2024-05-03", "new_york", "2024-05-04T00:05:44"),
        # ...and without one, the later reading: never known before it was.
        ("2024-05-03T20:05:44.000Z", "2024-05-03", None, "2024-05-04T00:05:44"),
        # Winter: New York is UTC-5.
        ("2024-01-12T06:30:00.000Z", "2024-01-12", "utc", "2024-01-12T11:30:00"),
        # No time at all: the end of the filing date.
        ("", "2024-05-03", "utc", "2024-05-04T03:59:59"),
    ],
)
def test_accepted_at_corrects_a_false_z(
    acceptance: str, filed: str, convention: str | None, accepted: str
) -> None:
    assert accepted_at(filing(acceptance, filed), convention) == utc(accepted)


def test_the_listing_votes_on_its_clock() -> None:
    true_z = filing("2024-05-08T22:41:17.000Z", "2024-05-08")  # only UTC fits
    false_z = filing("2024-05-21T07:12:44.000Z", "2024-05-21")  # only New York fits
    either = filing("2024-05-03T20:05:44.000Z", "2024-05-03")
    assert clock_convention([true_z, either]) == "utc"
    assert clock_convention([false_z, false_z, true_z, either]) == "new_york"
    assert clock_convention([either]) is None
    assert clock_convention([true_z, false_z]) is None
