"""The Cboe provider against a local server replaying Cboe's delayed-quotes files.

The fixtures under ``tests/fixtures/cboe/`` mirror the CDN's paths
(``options/_SPX.json`` is what ``/api/global/delayed_quotes/options/_SPX.json``
returns) in Cboe's format, cut down to a handful of contracts: the session is
Monday 2024-07-01, the chains are quoted at ``2024-07-01 13:15:02`` (UTC,
09:15 in New York) and the daily run's ``as_of`` is that session's open,
13:30 UTC. Nothing here reaches the network (only 127.0.0.1) and nothing
sleeps: the provider's sleeper records the waits instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from collectors.market_store import TABLES, epoch, validate
from collectors.providers import get_provider
from collectors.providers.base import Provider
from collectors.providers.cboe import CboeProvider, parse_occ, parse_quote_time
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

FIXTURES = Path(__file__).parent / "fixtures" / "cboe"
CHAINS = "/api/global/delayed_quotes/options"
SESSION = date(2024, 7, 1)
AS_OF = datetime(2024, 7, 1, 13, 30, tzinfo=UTC)  # the session's open
QUOTED_TS = int(datetime(2024, 7, 1, 13, 15, 2, tzinfo=UTC).timestamp())

MakeProvider = Callable[..., CboeProvider]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def serve_chain(httpserver: HTTPServer, file_name: str, body: Any = None) -> None:
    """Serve ``options/<file_name>`` (or ``body``) where Cboe serves that chain."""
    chain = fixture(f"options/{file_name}") if body is None else body
    httpserver.expect_request(f"{CHAINS}/{file_name}").respond_with_json(chain)


def paths(httpserver: HTTPServer) -> list[str]:
    return [request.path for request, _ in httpserver.log]


def no_rejects(frame: pd.DataFrame, as_of: datetime = AS_OF) -> None:
    good, rejects = validate(
        "options_chain", frame, as_of_ts=epoch(as_of), known_symbols={"SPX", "AAPL"}
    )
    assert rejects.empty, rejects.to_dict(orient="records")
    assert len(good) == len(frame)


def contracts(frame: pd.DataFrame, symbol: str) -> list[tuple[str, str, float]]:
    """``(expiry, option_type, strike)`` of ``symbol``'s rows, sorted in that order."""
    rows = frame[frame["symbol"] == symbol]
    return sorted(zip(rows["expiry"], rows["option_type"], rows["strike"], strict=True))


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_provider(
    httpserver: HTTPServer, tmp_path: Path, calendar: MarketCalendar, sleeps: list[float]
) -> MakeProvider:
    def make(**settings: Any) -> CboeProvider:
        return CboeProvider.from_settings(
            {
                "name": "cboe",
                "base_url": httpserver.url_for(""),
                "symbols": ["SPX", "AAPL"],
                "limits_db": str(tmp_path / "limits.sqlite"),
                "cache_dir": str(tmp_path / "cache"),
                **settings,
            },
            calendar,
            sleeper=sleeps.append,
        )

    return make


# -- the OCC symbol ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("AAPL240719C00190000", ("AAPL", date(2024, 7, 19), "call", 190.0)),
        ("AAPL240719P00190500", ("AAPL", date(2024, 7, 19), "put", 190.5)),
        ("SPXW240703C05475000", ("SPXW", date(2024, 7, 3), "call", 5475.0)),
        ("SPX241220P04012500", ("SPX", date(2024, 12, 20), "put", 4012.5)),
        ("F240719C00012000", ("F", date(2024, 7, 19), "call", 12.0)),
        # Adjusted series carry a digit; a 6-character root fills the whole root field.
        ("AAPL1240719C00190000", ("AAPL1", date(2024, 7, 19), "call", 190.0)),
        ("GOOGL1240719P00172500", ("GOOGL1", date(2024, 7, 19), "put", 172.5)),
        ("ABCDEF250117C00000500", ("ABCDEF", date(2025, 1, 17), "call", 0.5)),
        # The 21-character OSI form pads the root with spaces to 6 characters.
        ("AAPL  240719C00190500", ("AAPL", date(2024, 7, 19), "call", 190.5)),
        ("SPX   240719P05500000", ("SPX", date(2024, 7, 19), "put", 5500.0)),
        ("F     240719C00012125", ("F", date(2024, 7, 19), "call", 12.125)),
    ],
)
def test_parse_occ_reads_compact_and_padded_symbols(
    symbol: str, expected: tuple[str, date, str, float]
) -> None:
    assert parse_occ(symbol) == expected


@pytest.mark.parametrize(
    "symbol",
    [
        "",
        "AAPL",
        "240719C00190000",  # no root
        "ABCDEFG240719C00190000",  # a 7-character root
        "AAPL240719X00190000",  # neither call nor put
        "AAPL241319C00190000",  # month 13
        "AAPL240230C00190000",  # February 30
        "AAPL240719C0019000",  # a 7-digit strike
        "AAPL240719C00000000",  # a zero strike
        "AAPL 240719C00190000",  # padded, but not to 21 characters
        " AAPL 240719C00190000",  # padded on the wrong side
        "AA PL240719C00190000",  # a space inside the root
        "aapl240719c00190000",  # OCC symbols are upper case
        "1AAP240719C00190000",  # a root starts with a letter
        "O:AAPL240719C00190000",  # another vendor's prefix
    ],
)
def test_parse_occ_refuses_malformed_symbols(symbol: str) -> None:
    with pytest.raises(ValueError, match="OCC"):
        parse_occ(symbol)


def test_the_quote_time_is_utc_in_summer_and_winter() -> None:
    # A quote file stamped 03:43:59 was last modified at 03:44:03 GMT: the text is UTC,
    # not New York time (which would put it 4 hours later in July and 5 in January).
    assert parse_quote_time("2024-06-27 03:43:59") == datetime(2024, 6, 27, 3, 43, 59, tzinfo=UTC)
    assert parse_quote_time("2024-01-02 14:45:00") == datetime(2024, 1, 2, 14, 45, tzinfo=UTC)
    for bad in ("2024-06-27T03:43:59", "2024-06-27", None, 1719459839):
        with pytest.raises(PermanentError, match="timestamp"):
            parse_quote_time(bad)


# -- chains --------------------------------------------------------------------------


def test_an_index_chain_is_read_from_its_underscore_file_with_calls_and_puts(
    make_provider: MakeProvider, httpserver: HTTPServer, sleeps: list[float]
) -> None:
    serve_chain(httpserver, "_SPX.json")
    provider = make_provider(strikes_around_spot=2)
    frame = provider.options_chain(["SPX"], SESSION, AS_OF)

    assert paths(httpserver) == [f"{CHAINS}/_SPX.json"]
    assert provider.http.requests_made == 1
    assert sleeps == []
    assert list(frame.columns) == list(TABLES["options_chain"].column_names)
    key = list(TABLES["options_chain"].key)
    assert frame.sort_values(key).index.tolist() == list(range(len(frame)))  # in key order
    assert set(frame["symbol"]) == {"SPX"}  # the configured symbol, not Cboe's "_SPX"
    assert set(frame["session"]) == {"2024-07-01"}
    assert set(frame["spot"]) == {5475.09}
    assert (frame["available_ts"] == QUOTED_TS).all()
    # Two strikes each side of 5475.09 per expiry and type; the 0DTE expiry (the session
    # itself) and the fourth expiry (2024-09-20) are left out.
    assert contracts(frame, "SPX") == [
        ("2024-07-03", "call", 5460.0),
        ("2024-07-03", "call", 5470.0),
        ("2024-07-03", "call", 5480.0),
        ("2024-07-03", "call", 5490.0),
        ("2024-07-03", "put", 5460.0),
        ("2024-07-03", "put", 5480.0),
        ("2024-07-03", "put", 5500.0),
        ("2024-07-19", "call", 5475.0),
        ("2024-07-19", "put", 5475.0),
        ("2024-08-16", "call", 5500.0),
    ]
    first = frame.iloc[0].to_dict()
    assert first == {
        "symbol": "SPX",
        "session": "2024-07-01",
        "expiry": "2024-07-03",
        "strike": 5460.0,
        "option_type": "call",
        "spot": 5475.09,
        "bid": 28.7,
        "ask": 29.6,
        "mid": pytest.approx(29.15),
        "implied_vol": 0.1101,
        "delta": 0.7124,
        "open_interest": 1230.0,
        "available_ts": QUOTED_TS,
        "gamma": 0.0059,
        "theta": -5.5,
        "vega": 1.5,
        "volume": 0.0,
    }
    assert frame["available_ts"].dtype == "int64"
    assert provider.symbol_errors == {}
    no_rejects(frame)


def test_only_the_configured_expiries_and_strikes_around_the_spot_are_kept(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    serve_chain(httpserver, "_SPX.json")
    frame = make_provider(expiries=2).options_chain(["SPX"], SESSION, AS_OF)
    # The default 5 strikes each side keep all seven quoted calls of 2024-07-03 (four
    # below the spot, three above); two expiries stop before 2024-08-16.
    assert sorted(set(frame["expiry"])) == ["2024-07-03", "2024-07-19"]
    calls = frame[(frame["expiry"] == "2024-07-03") & (frame["option_type"] == "call")]
    assert calls["strike"].tolist() == [5440.0, 5450.0, 5460.0, 5470.0, 5480.0, 5490.0, 5500.0]

    one_each_side = make_provider(strikes_around_spot=1).options_chain(["SPX"], SESSION, AS_OF)
    assert contracts(one_each_side, "SPX") == [
        ("2024-07-03", "call", 5470.0),
        ("2024-07-03", "call", 5480.0),
        ("2024-07-03", "put", 5460.0),  # 5470 has no market, so the next strike down
        ("2024-07-03", "put", 5480.0),
        ("2024-07-19", "call", 5475.0),
        ("2024-07-19", "put", 5475.0),
        ("2024-08-16", "call", 5500.0),
    ]
    no_rejects(frame)
    no_rejects(one_each_side)


def test_quotes_without_a_market_are_dropped(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    serve_chain(httpserver, "_SPX.json")
    frame = make_provider().options_chain(["SPX"], SESSION, AS_OF)
    puts = frame[(frame["expiry"] == "2024-07-03") & (frame["option_type"] == "put")]
    # 5470 is listed with ask 0 and 5490 with iv 0: neither is stored.
    assert puts["strike"].tolist() == [5460.0, 5480.0, 5500.0]
    assert (frame["ask"] > 0).all() and (frame["implied_vol"] > 0).all()
    no_rejects(frame)


def test_a_chain_with_no_market_at_all_is_reported(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    chain = fixture("options/AAPL.json")
    for quote_record in chain["data"]["options"]:
        quote_record["ask"] = 0.0
    serve_chain(httpserver, "AAPL.json", chain)
    provider = make_provider()
    assert provider.options_chain(["AAPL"], SESSION, AS_OF).empty
    assert provider.symbol_errors == {
        "AAPL": "cboe quotes no AAPL option with a market in the next 3 expiries after 2024-07-01"
    }


def test_the_monthly_root_wins_over_the_weekly_on_a_shared_third_friday(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    serve_chain(httpserver, "_SPX.json")
    frame = make_provider().options_chain(["SPX"], SESSION, AS_OF)
    third_friday = frame[(frame["expiry"] == "2024-07-19") & (frame["option_type"] == "call")]
    # SPX240719C05475000 quotes 67.3 x 68.5, SPXW240719C05475000 67.0 x 68.9: one row, SPX's.
    assert third_friday[["strike", "bid", "ask", "open_interest"]].to_dict(orient="records") == [
        {"strike": 5475.0, "bid": 67.3, "ask": 68.5, "open_interest": 10522.0}
    ]
    no_rejects(frame)


def test_an_equity_chain_keeps_decimal_strikes_and_drops_adjusted_roots(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    serve_chain(httpserver, "AAPL.json")
    provider = make_provider()
    frame = provider.options_chain(["AAPL"], SESSION, AS_OF)
    assert paths(httpserver) == [f"{CHAINS}/AAPL.json"]
    # AAPL1 (an adjusted series) has a 215 call too; only the standard one is stored.
    assert contracts(frame, "AAPL") == [
        ("2024-07-05", "call", 215.0),
        ("2024-07-05", "call", 217.5),
        ("2024-07-05", "put", 215.0),
        ("2024-07-05", "put", 217.5),
        ("2024-07-12", "call", 217.5),
        ("2024-07-19", "put", 215.0),
    ]
    call_215 = frame.iloc[0]
    assert (call_215["bid"], call_215["ask"], call_215["open_interest"]) == (4.05, 4.15, 18870.0)
    assert set(frame["spot"]) == {216.75}
    no_rejects(frame)


def test_unreadable_option_symbols_are_skipped(
    make_provider: MakeProvider, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    chain = fixture("options/AAPL.json")
    broken = dict(chain["data"]["options"][0], option="AAPL240705X00215000")
    chain["data"]["options"] = [broken, {"bid": 1.0}, *chain["data"]["options"][1:]]
    serve_chain(httpserver, "AAPL.json", chain)
    frame = make_provider().options_chain(["AAPL"], SESSION, AS_OF)
    assert ("2024-07-05", "call", 215.0) not in contracts(frame, "AAPL")
    assert len(frame) == 5
    assert "skipped 2 unreadable option symbols" in caplog.text
    no_rejects(frame)


# -- point in time -------------------------------------------------------------------


def test_the_quote_time_is_the_available_time_and_nothing_after_as_of_is_returned(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    serve_chain(httpserver, "AAPL.json")
    provider = make_provider()
    quoted = datetime.fromtimestamp(QUOTED_TS, UTC)

    at_quote_time = provider.options_chain(["AAPL"], SESSION, quoted)
    assert len(at_quote_time) == 6
    assert set(at_quote_time["available_ts"]) == {QUOTED_TS}  # 09:15:02 New York, 13:15:02Z
    no_rejects(at_quote_time, as_of=quoted)

    # A second earlier the chain was not known yet: nothing, and the reason.
    before = datetime(2024, 7, 1, 13, 15, 1, tzinfo=UTC)
    assert provider.options_chain(["AAPL"], SESSION, before).empty
    assert provider.symbol_errors == {
        "AAPL": "cboe's chain is quoted at 2024-07-01 13:15:02 UTC, after as_of "
        "2024-07-01 13:15:01 UTC: it was not known yet (the run started too long after as_of)"
    }


def test_a_backfill_returns_nothing_and_says_why(
    make_provider: MakeProvider, httpserver: HTTPServer, calendar: MarketCalendar
) -> None:
    serve_chain(httpserver, "_SPX.json")
    serve_chain(httpserver, "AAPL.json")
    provider = make_provider()
    earlier = date(2024, 6, 3)
    frame = provider.options_chain(["SPX", "AAPL"], earlier, calendar.hours(earlier).open)
    assert frame.empty
    assert list(frame.columns) == list(TABLES["options_chain"].column_names)
    reason = "Cboe serves only the current chain; cannot reproduce 2024-06-03"
    assert provider.symbol_errors == {"SPX": reason, "AAPL": reason}


def test_a_chain_quoted_before_the_previous_session_is_too_stale(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    chain = fixture("options/AAPL.json")
    chain["timestamp"] = "2024-06-27 20:15:00"  # Thursday; the previous session is Friday 06-28
    serve_chain(httpserver, "AAPL.json", chain)
    provider = make_provider()
    assert provider.options_chain(["AAPL"], SESSION, AS_OF).empty
    assert provider.symbol_errors == {
        "AAPL": "cboe's chain is quoted at 2024-06-27 20:15:00 UTC, before the previous "
        "session (2024-06-28) opened: too stale for 2024-07-01"
    }

    # Quoted overnight after Friday's close, it stands for Monday's open.
    chain["timestamp"] = "2024-06-29 00:43:14"
    httpserver.clear()
    serve_chain(httpserver, "AAPL.json", chain)
    frame = provider.options_chain(["AAPL"], SESSION, AS_OF)
    assert len(frame) == 6 and provider.symbol_errors == {}
    no_rejects(frame)


# -- errors --------------------------------------------------------------------------


def test_unknown_symbols_are_reported_and_the_others_served(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    serve_chain(httpserver, "_SPX.json")
    httpserver.expect_request(f"{CHAINS}/ZZZZ.json").respond_with_data(
        "Not Found", status=404, content_type="text/plain"
    )
    # Cboe's CDN answers a file that does not exist with the storage's "access denied".
    httpserver.expect_request(f"{CHAINS}/QQQX.json").respond_with_data(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
        "<Message>Access Denied</Message></Error>",
        status=403,
        content_type="application/xml",
    )
    serve_chain(httpserver, "AAPL.json")
    provider = make_provider()
    frame = provider.options_chain(["SPX", "ZZZZ", "QQQX", "AAPL", "SPX"], SESSION, AS_OF)

    assert sorted(set(frame["symbol"])) == ["AAPL", "SPX"]
    assert provider.symbol_errors == {
        "ZZZZ": "cboe has no option chain for ZZZZ (HTTP 404)",
        "QQQX": "cboe has no option chain for QQQX (HTTP 403)",
    }
    # One request per symbol, asked once each; a refused file is not retried.
    assert paths(httpserver) == [
        f"{CHAINS}/_SPX.json",
        f"{CHAINS}/ZZZZ.json",
        f"{CHAINS}/QQQX.json",
        f"{CHAINS}/AAPL.json",
    ]
    no_rejects(frame)


def test_a_chain_without_a_spot_price_is_reported(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    chain = fixture("options/AAPL.json")
    chain["data"]["current_price"] = 0.0
    serve_chain(httpserver, "AAPL.json", chain)
    provider = make_provider()
    assert provider.options_chain(["AAPL"], SESSION, AS_OF).empty
    assert provider.symbol_errors == {"AAPL": "cboe gave no price for AAPL (current_price 0.0)"}


def test_a_changed_response_format_is_permanent(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    serve_chain(httpserver, "AAPL.json", {"timestamp": "2024-07-01 13:15:02", "data": []})
    with pytest.raises(PermanentError, match=r"AAPL\.json has no data\.options list"):
        make_provider().options_chain(["AAPL"], SESSION, AS_OF)


def test_kinds_cboe_does_not_serve_are_permanent_errors(make_provider: MakeProvider) -> None:
    provider = make_provider()
    with pytest.raises(PermanentError, match=r"does not serve daily_bars; .*alpaca.*synthetic"):
        provider.daily_bars(["AAPL"], [SESSION])
    with pytest.raises(PermanentError, match=r"cboe does not serve fundamentals; .*synthetic"):
        provider.fundamentals(["AAPL"], SESSION, AS_OF)
    with pytest.raises(PermanentError, match="cboe does not serve earnings"):
        provider.earnings_calendar(["AAPL"], SESSION, AS_OF)
    assert provider.http.requests_made == 0


def test_check_reads_one_small_quote_file(
    make_provider: MakeProvider, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/api/global/delayed_quotes/quotes/_SPX.json").respond_with_json(
        fixture("quotes/_SPX.json")
    )
    provider = make_provider()
    assert provider.check() == "cboe: reachable, SPX quoted at 2024-07-01 13:15:02 UTC"
    assert paths(httpserver) == ["/api/global/delayed_quotes/quotes/_SPX.json"]


# -- settings ------------------------------------------------------------------------


def test_the_registry_builds_it_with_its_defaults(
    httpserver: HTTPServer, tmp_path: Path, calendar: MarketCalendar
) -> None:
    provider = get_provider(
        {"name": "cboe", "limits_db": str(tmp_path / "limits.sqlite"), "symbols": ["spx"]},
        calendar,
    )
    assert isinstance(provider, CboeProvider) and isinstance(provider, Provider)
    assert (provider.expiries, provider.strikes_around_spot) == (3, 5)
    assert provider.http.base_url == "https://cdn.cboe.com/"
    assert provider.symbols == ["SPX"]


def test_index_symbols_can_be_added(make_provider: MakeProvider, httpserver: HTTPServer) -> None:
    chain = fixture("options/AAPL.json")
    serve_chain(httpserver, "_AAPL.json", chain)  # pretend AAPL were an index
    provider = make_provider(index_symbols=["aapl"])
    assert len(provider.options_chain(["AAPL"], SESSION, AS_OF)) == 6
    assert paths(httpserver) == [f"{CHAINS}/_AAPL.json"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"expiries": 0}, r"provider\.expiries"),
        ({"strikes_around_spot": "5"}, r"provider\.strikes_around_spot"),
        ({"rate_per_minute": True}, r"provider\.rate_per_minute"),
        ({"limits_db": ""}, r"provider\.limits_db"),
        ({"index_symbols": "SPX"}, r"provider\.index_symbols"),
    ],
)
def test_bad_settings_are_permanent(
    make_provider: MakeProvider, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(PermanentError, match=message):
        make_provider(**settings)
