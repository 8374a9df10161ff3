"""The FRED provider against a local server that answers as FRED / ALFRED does.

The fixtures under ``tests/fixtures/fred/`` are in the documented JSON of
``fred/series`` and ``fred/series/observations`` (``output_type=1``); the
values are small and illustrative, not a copy of a real vintage. Each
observations fixture is the whole real-time history of a series (what FRED
returns for ``realtime_start=1776-07-04&realtime_end=9999-12-31``); the local
server answers a request from it the way ALFRED does: rows dated from
``observation_start`` whose real-time period overlaps the one asked for,
clipped to it, paged by ``offset`` and ``limit``. It refuses a real-time
period longer than 2000 days, a stand-in for FRED's limit of 2000 vintage
dates per request.

Nothing here reaches the network (only 127.0.0.1) and nothing sleeps: the
provider's sleeper records the waits instead.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from collectors.market_store import MarketStore, validate
from collectors.ml_features import macro_context
from collectors.providers import fred
from collectors.providers.base import Provider
from collectors.providers.fred import FredProvider
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

FIXTURES = Path(__file__).parent / "fixtures" / "fred"
KEY = "0123456789abcdeffedcba9876543210"  # a fake 32-character FRED key
OBSERVATIONS = "/fred/series/observations"
SERIES = "/fred/series"
MAX_REALTIME_DAYS = 2000


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def epoch(text: str) -> int:
    return int(utc(text).timestamp())


def error(name: str, status: int = 400) -> Response:
    return Response(json.dumps(fixture(name)), status=status, content_type="application/json")


def alfred(request: Request) -> Response:
    """``fred/series`` and ``fred/series/observations`` as FRED answers them."""
    if request.args.get("api_key") != KEY:
        return error("error_api_key_not_registered.json")
    series = request.args["series_id"]
    if not (FIXTURES / f"series_{series}.json").exists():
        return error("error_series_does_not_exist.json")
    if request.path == SERIES:
        return Response(
            json.dumps(fixture(f"series_{series}.json")), content_type="application/json"
        )
    realtime_start = date.fromisoformat(request.args["realtime_start"])
    realtime_end = date.fromisoformat(request.args["realtime_end"])
    if (realtime_end - realtime_start).days + 1 > MAX_REALTIME_DAYS:
        body = {
            "error_code": 400,
            "error_message": "Bad Request.  This exceeds the maximum number of vintage dates "
            "allowed (2000).",
        }
        return Response(json.dumps(body), status=400, content_type="application/json")
    observation_start = request.args.get("observation_start", "1776-07-04")
    rows = []
    for row in fixture(f"observations_{series}.json")["observations"]:
        starts, ends = (
            date.fromisoformat(row["realtime_start"]),
            date.fromisoformat(row["realtime_end"]),
        )
        if row["date"] < observation_start or starts > realtime_end or ends < realtime_start:
            continue
        # ALFRED clips each real-time period to the one asked for.
        rows.append(
            {
                **row,
                "realtime_start": max(starts, realtime_start).isoformat(),
                "realtime_end": min(ends, realtime_end).isoformat(),
            }
        )
    offset = int(request.args.get("offset", 0))
    limit = int(request.args.get("limit", 100_000))
    body = {
        "realtime_start": realtime_start.isoformat(),
        "realtime_end": realtime_end.isoformat(),
        "observation_start": observation_start,
        "observation_end": "9999-12-31",
        "units": "lin",
        "output_type": int(request.args.get("output_type", 1)),
        "file_type": "json",
        "order_by": "observation_date",
        "sort_order": "asc",
        "count": len(rows),
        "offset": offset,
        "limit": limit,
        "observations": rows[offset : offset + limit],
    }
    return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRED_API_KEY", KEY)


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_provider(
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
    **settings: Any,
) -> FredProvider:
    return FredProvider.from_settings(
        {
            "name": "fred",
            "base_url": httpserver.url_for(""),
            "series": ["GDP"],
            "symbols": ["AAPL"],
            "limits_db": str(tmp_path / "limits.sqlite"),
            "cache_dir": str(tmp_path / "cache"),
            **settings,
        },
        calendar,
        sleeper=sleeps.append,
    )


@pytest.fixture
def provider(
    key: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
) -> FredProvider:
    httpserver.expect_request(SERIES).respond_with_handler(alfred)
    httpserver.expect_request(OBSERVATIONS).respond_with_handler(alfred)
    return make_provider(httpserver, tmp_path, calendar, sleeps)


def observation_requests(httpserver: HTTPServer) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == OBSERVATIONS]


def no_rejects(frame: Any, as_of: datetime) -> None:
    good, rejects = validate("economic_series", frame, as_of_ts=int(as_of.timestamp()))
    assert rejects.empty, rejects.to_dict(orient="records")
    assert len(good) == len(frame)


# -- construction and errors ---------------------------------------------------------


def test_is_a_provider_and_a_missing_key_names_the_variable(
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    with pytest.raises(PermanentError, match="FRED_API_KEY"):
        make_provider(httpserver, tmp_path, calendar, [])
    monkeypatch.setenv("FRED_API_KEY", KEY)
    provider = make_provider(httpserver, tmp_path, calendar, [], series=["gdp", "GDP", "unrate"])
    assert isinstance(provider, Provider)
    assert provider.series == ["GDP", "UNRATE"]


def test_bad_settings_are_permanent(
    key: None, httpserver: HTTPServer, tmp_path: Path, calendar: MarketCalendar
) -> None:
    with pytest.raises(PermanentError, match=r"provider\.series"):
        make_provider(httpserver, tmp_path, calendar, [], series=[])
    with pytest.raises(PermanentError, match=r"provider\.series"):
        make_provider(httpserver, tmp_path, calendar, [], series="GDP")
    with pytest.raises(PermanentError, match=r"provider\.rate_per_minute"):
        make_provider(httpserver, tmp_path, calendar, [], rate_per_minute=0)


def test_kinds_fred_does_not_serve_name_the_providers_that_do(provider: FredProvider) -> None:
    as_of = utc("2024-01-02T15:00:00")
    with pytest.raises(PermanentError, match=r"fred does not serve daily_bars; .*alpaca, massive"):
        provider.daily_bars(["AAPL"], [date(2024, 1, 2)])
    with pytest.raises(PermanentError, match=r"fred does not serve news; .*finnhub"):
        provider.news(["AAPL"], date(2024, 1, 1), as_of)
    with pytest.raises(PermanentError, match="fred does not serve universe"):
        provider.universe(as_of)
    assert provider.http.requests_made == 0


def test_check_makes_one_cheap_call(provider: FredProvider, httpserver: HTTPServer) -> None:
    assert provider.check() == "fred: key accepted (DGS10: Daily, updated 2024-03-01 15:18:03-06)"
    (request,) = [request for request, _ in httpserver.log]
    assert request.path == SERIES
    assert request.args["series_id"] == "DGS10"
    assert request.args["file_type"] == "json"


def test_a_refused_key_names_the_variable_and_is_not_retried(
    key: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
) -> None:
    # FRED refuses a key with a 400, not a 401.
    httpserver.expect_request(SERIES).respond_with_response(
        error("error_api_key_not_registered.json")
    )
    provider = make_provider(httpserver, tmp_path, calendar, sleeps)
    with pytest.raises(PermanentError, match="set FRED_API_KEY") as raised:
        provider.check()
    assert KEY not in str(raised.value)
    assert provider.http.requests_made == 1
    assert sleeps == []


def test_the_key_travels_only_as_the_api_key_parameter(
    provider: FredProvider, httpserver: HTTPServer
) -> None:
    provider.economic_series(date(2023, 7, 1), utc("2024-02-01T15:00:00"))
    provider.check()
    assert len(httpserver.log) == 3  # fred/series and observations for GDP, then the check
    for request, _ in httpserver.log:
        assert request.args["api_key"] == KEY
        assert all(KEY not in value for value in request.headers.values())
        assert "Authorization" not in request.headers


def test_a_400_never_shows_the_key(
    key: None,
    httpserver: HTTPServer,
    tmp_path: Path,
    calendar: MarketCalendar,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def echo_the_url(request: Request) -> Response:
        # Worse than FRED, which does not echo the key: the key in the message.
        sent = request.args["api_key"]
        body = {"error_code": 400, "error_message": f"Bad Request.  Wrong dates for api_key={sent}"}
        return Response(json.dumps(body), status=400, content_type="application/json")

    httpserver.expect_request(SERIES).respond_with_handler(alfred)
    httpserver.expect_request(OBSERVATIONS).respond_with_handler(echo_the_url)
    provider = make_provider(httpserver, tmp_path, calendar, sleeps)
    # Not only the environment-based redaction: the HTTP layer redacts its auth_params.
    monkeypatch.delenv("FRED_API_KEY")
    with pytest.raises(PermanentError, match="HTTP 400") as raised:
        provider.economic_series(date(2023, 7, 1), utc("2024-02-01T15:00:00"))
    message = str(raised.value)
    assert "Wrong dates" in message  # FRED's own words are kept...
    assert "api_key=***" in message  # ...with the key blanked out
    assert KEY not in message
    assert KEY not in repr(raised.value.args)
    assert sleeps == []


def test_429_with_retry_after_waits_then_succeeds(
    provider: FredProvider, httpserver: HTTPServer, sleeps: list[float]
) -> None:
    httpserver.clear_all_handlers()
    httpserver.expect_oneshot_request(SERIES).respond_with_json(
        {"error_code": 429, "error_message": "Too Many Requests.  Exceeded Rate Limit"},
        status=429,
        headers={"Retry-After": "20"},
    )
    httpserver.expect_request(SERIES).respond_with_handler(alfred)
    assert provider.check().startswith("fred: key accepted (DGS10")
    assert provider.http.requests_made == 2
    assert max(sleeps) >= 20  # the server's wait, recorded, not slept


# -- vintages ------------------------------------------------------------------------


def test_a_backfill_before_the_revision_sees_only_the_first_value(
    provider: FredProvider, httpserver: HTTPServer
) -> None:
    # The second estimate came out on 2023-11-29; this backfill runs that afternoon.
    as_of = utc("2023-11-29T20:00:00")
    frame = provider.economic_series(date(2023, 7, 1), as_of)
    assert frame.to_dict(orient="records") == [
        {
            "series": "GDP",
            "period": "2023-Q3",
            "value": 27623.543,
            # Released 2023-10-26; known from the end of that day in St. Louis (CDT).
            "available_ts": epoch("2023-10-27T05:00:00"),
        }
    ]
    (request,) = observation_requests(httpserver)
    assert request.args["realtime_end"] == "2023-11-29"  # never past the as_of's date
    assert request.args["output_type"] == "1"
    assert request.args["observation_start"] == "2023-07-01"
    assert request.args["realtime_start"] == "2022-07-01"  # a year before since: no clipping
    no_rejects(frame, as_of)


def test_a_later_backfill_sees_both_vintages(
    provider: FredProvider, httpserver: HTTPServer
) -> None:
    as_of = utc("2023-12-15T15:00:00")
    frame = provider.economic_series(date(2023, 7, 1), as_of)
    assert frame[["period", "value", "available_ts"]].to_dict(orient="records") == [
        {"period": "2023-Q3", "value": 27623.543, "available_ts": epoch("2023-10-27T05:00:00")},
        # The revision is a row of its own, known from the end of 2023-11-29 (CST).
        {"period": "2023-Q3", "value": 27644.463, "available_ts": epoch("2023-11-30T06:00:00")},
    ]
    (request,) = observation_requests(httpserver)
    assert date.fromisoformat(request.args["realtime_end"]) <= as_of.date()
    no_rejects(frame, as_of)


def test_a_vintage_counts_from_the_end_of_its_day_in_st_louis(provider: FredProvider) -> None:
    since = date(2023, 7, 1)
    before = provider.economic_series(since, utc("2023-11-30T05:59:59"))
    after = provider.economic_series(since, utc("2023-11-30T06:00:00"))
    assert before["value"].tolist() == [27623.543]
    assert after["value"].tolist() == [27623.543, 27644.463]


def test_nothing_after_as_of_is_served_or_asked_for(
    provider: FredProvider, httpserver: HTTPServer
) -> None:
    counts = []
    for text in ("2023-10-26T23:00:00", "2023-11-29T12:00:00", "2024-01-26T04:00:00"):
        as_of = utc(text)
        frame = provider.economic_series(date(2023, 4, 1), as_of)
        assert (frame["available_ts"] <= int(as_of.timestamp())).all()
        no_rejects(frame, as_of)
        counts.append(len(frame))
    # Q2 only; Q2 and Q3's first estimate; Q2 and both Q3 estimates (Q4's advance estimate,
    # out on 01-25, counts from the end of that day in St. Louis).
    assert counts == [1, 2, 3]
    ends = [request.args["realtime_end"] for request in observation_requests(httpserver)]
    assert ends == ["2023-10-26", "2023-11-29", "2024-01-25"]  # St. Louis dates, never later


def test_a_missing_value_is_skipped_not_zero(provider: FredProvider) -> None:
    provider.series = ["DGS10"]
    as_of = utc("2024-01-02T15:00:00")
    frame = provider.economic_series(date(2023, 12, 21), as_of)
    # 2023-12-25 is "." (no trading): no row at all.
    assert frame[["period", "value"]].to_dict(orient="records") == [
        {"period": "2023-12-21", "value": 3.89},
        {"period": "2023-12-22", "value": 3.90},
        {"period": "2023-12-26", "value": 3.89},
    ]
    assert (frame["value"] != 0).all()
    no_rejects(frame, as_of)


def test_an_unknown_series_is_reported_and_the_others_served(
    provider: FredProvider, httpserver: HTTPServer
) -> None:
    provider.series = ["UNRATE", "NOSUCHSERIES", "DGS10"]
    as_of = utc("2024-02-01T15:00:00")
    frame = provider.economic_series(date(2023, 10, 1), as_of)
    assert provider.symbol_errors == {"NOSUCHSERIES": "fred does not know series NOSUCHSERIES"}
    unrate = frame[frame["series"] == "UNRATE"]
    assert unrate[["period", "value", "available_ts"]].to_dict(orient="records") == [
        {"period": "2023-10", "value": 3.9, "available_ts": epoch("2023-11-04T05:00:00")},
        {"period": "2023-10", "value": 3.8, "available_ts": epoch("2024-01-06T06:00:00")},
        {"period": "2023-11", "value": 3.7, "available_ts": epoch("2023-12-09T06:00:00")},
        {"period": "2023-12", "value": 3.7, "available_ts": epoch("2024-01-06T06:00:00")},
    ]
    assert frame[frame["series"] == "DGS10"]["period"].tolist() == [
        "2023-12-21",
        "2023-12-22",
        "2023-12-26",
    ]
    asked = [request.args["series_id"] for request in observation_requests(httpserver)]
    assert asked == ["UNRATE", "DGS10"]
    no_rejects(frame, as_of)
    # The next call starts with a clean slate.
    provider.series = ["UNRATE"]
    provider.economic_series(date(2023, 10, 1), as_of)
    assert provider.symbol_errors == {}


def test_a_long_real_time_period_is_asked_for_in_windows_without_new_vintages(
    provider: FredProvider, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_of = utc("2024-02-01T15:00:00")
    since = date(2023, 7, 1)
    whole = provider.economic_series(since, as_of)
    # Windows of 20 days cut through the first estimate's real-time period: the
    # value comes back clipped to each window's start and must stay one row.
    monkeypatch.setattr(fred, "REALTIME_WINDOW_DAYS", 20)
    httpserver.clear_log()
    windowed = provider.economic_series(since, as_of)
    assert windowed.equals(whole)
    requests = observation_requests(httpserver)
    assert len(requests) > 10
    spans = [
        (date.fromisoformat(r.args["realtime_start"]), date.fromisoformat(r.args["realtime_end"]))
        for r in requests
    ]
    assert all((end - start).days < 20 for start, end in spans)
    # Back to back: each window starts the day after the one before ends.
    assert all(
        later[0] == earlier[1] + timedelta(days=1) for earlier, later in itertools.pairwise(spans)
    )
    assert spans[0][0] == date(2022, 7, 1) and spans[-1][1] == date(2024, 2, 1)


def test_years_of_history_stay_within_fred_s_vintage_limit(
    provider: FredProvider, httpserver: HTTPServer
) -> None:
    as_of = utc("2024-02-01T15:00:00")
    frame = provider.economic_series(date(2015, 1, 1), as_of)  # 10 years of real time
    assert frame["period"].tolist() == ["2023-Q2", "2023-Q3", "2023-Q3", "2023-Q4"]
    requests = observation_requests(httpserver)
    assert len(requests) == 2
    for request in requests:
        start = date.fromisoformat(request.args["realtime_start"])
        end = date.fromisoformat(request.args["realtime_end"])
        assert (end - start).days + 1 <= MAX_REALTIME_DAYS


def test_pages_are_followed_by_offset(
    provider: FredProvider, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.series = ["UNRATE"]
    monkeypatch.setattr(fred, "OBSERVATIONS_PAGE_LIMIT", 3)
    frame = provider.economic_series(date(2023, 10, 1), utc("2024-02-01T15:00:00"))
    assert len(frame) == 4
    offsets = [request.args["offset"] for request in observation_requests(httpserver)]
    assert offsets == ["0", "3"]


# -- what the features read ------------------------------------------------------------


def test_macro_context_reads_the_value_first_published_until_the_revision(
    provider: FredProvider, tmp_path: Path
) -> None:
    frame = provider.economic_series(date(2023, 7, 1), utc("2024-02-01T15:00:00"))
    with MarketStore(tmp_path / "market.db") as store:
        assert store.upsert("economic_series", frame) == 3
        # Between the first estimate (2023-10-26) and the revision (2023-11-29).
        values, newest = macro_context(store, epoch("2023-11-15T14:30:00"))
        assert values is not None and json.loads(values) == {"GDP": 27623.543}
        assert newest == epoch("2023-10-27T05:00:00")
        values, newest = macro_context(store, epoch("2023-12-04T14:30:00"))
        assert values is not None and json.loads(values) == {"GDP": 27644.463}
        assert newest == epoch("2023-11-30T06:00:00")
        assert macro_context(store, epoch("2023-10-26T23:00:00")) == (None, None)
