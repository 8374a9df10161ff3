"""Benchmark: the Alpaca and Massive providers' requests and wall time against their rate limits.

The real ``AlpacaProvider`` and ``MassiveProvider`` (fake keys,
``ORCHESTRATOR_LOOPBACK_ONLY=1``) call ``bench/provider_emulator.py``, which
runs in its own process on 127.0.0.1, serves synthetic bars in each API's
format, enforces the page sizes and returns 429 + ``Retry-After`` over the
rate limit. The emulated market has 10,000 tickers; the universes are spread
over it (every 20th ticker for 500, every 2nd for 5,000), as real ones are.

1. Daily history, 500 symbols, as ``collectors/prices_daily.py`` asks for it
   (``sessions_to_fetch`` on the market database, then ``daily_bars``): the
   first run (252 sessions missing, up to 2026-11-20) and the next day's run
   (1 session), for each provider;
2. one intraday tick for 5,000 symbols on Alpaca: ``intraday_bars`` of the
   latest minute (10:30 New York, asked at 10:31:05), then
   ``MarketStore.store`` of the result as ``collectors/price_data.py`` does.

Each run is made twice, side by side: under the rate limit, and with the
limit lifted (emulator and client), which measures the transfer time (HTTP,
JSON, the provider's own work) alone. Time scaling: Alpaca runs at its real
200 requests per 60 s; Massive's free plan (5 per 60 s) runs 60x faster, at
5 per 1 s, both in the emulator and in the provider's limiter (the same
``SharedLimiter`` on a 1 s window), so a figure in seconds is minutes for real.

Targets: requests <= 1.1 x the fewest the API allows (from its page sizes
and, for Alpaca, the provider's symbols per request); wall time <= 1.2 x
(rate-limit floor + transfer time), the floor being the least time the
requests made can take under the limit (the first ``limit`` at once, then one
window per further ``limit``); the tick <= 10 % of the 60 s interval.
Peak memory is the growth of the worker's max RSS during the first call.
Exit 1 when a target is missed. Run: ``.venv/bin/python bench/bench_providers.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import requests
from pyrate_limiter import Rate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, median, rss_mib, table, verdict
from provider_emulator import (
    ALPACA_ACTIONS_MAX_LIMIT,
    ALPACA_BARS_MAX_LIMIT,
    ALPACA_FREE_RATE,
    MASSIVE_AGGS_MAX_LIMIT,
    MASSIVE_FREE_RATE,
    MASSIVE_REFERENCE_MAX_LIMIT,
    Market,
    RateLimit,
    market_symbols,
)

from collectors.context import CollectContext
from collectors.market_store import MarketStore, epoch
from collectors.prices_daily import sessions_to_fetch, store_bars
from collectors.providers.alpaca import (
    DIVIDEND_PROCESS_WINDOW,
    SYMBOLS_PER_REQUEST,
    AlpacaProvider,
)
from collectors.providers.http import SharedLimiter
from collectors.providers.massive import MassiveProvider
from orchestrator.market_calendar import MarketCalendar, load_calendar

MARKET_SIZE = 10_000
DAILY_EVERY = 20  # 500 of the 10,000 tickers
TICK_EVERY = 2  # 5,000 of them
HISTORY_SESSIONS = 252
LAST_HISTORY_SESSION = date(2026, 11, 20)  # a Friday: the first run's newest session
TICK_SESSION = date(2026, 11, 30)  # a Monday, full day
TICK_MINUTE = clock_time(10, 30)
TICK_ASKED_AT = clock_time(10, 31, 5)
INTERVAL_SECONDS = 60.0  # price_data's interval
TIME_SCALE = {"alpaca": 1, "massive": 60}
LIMITED_RATE = {
    "alpaca": ALPACA_FREE_RATE,
    "massive": RateLimit(MASSIVE_FREE_RATE.limit, MASSIVE_FREE_RATE.window_seconds / 60),
}
# "Lifted": far more than any run makes, so neither side ever waits.
LIFTED_RATE = RateLimit(1_000_000, 1.0)
REQUESTS_TARGET = 1.1
WALL_TARGET = 1.2
TICK_SHARE_TARGET = 0.10
KEYS = {
    "ALPACA_API_KEY_ID": "PKFAKE00BENCH00KEY00ID",
    "ALPACA_API_SECRET_KEY": "fakeSecretForTheBenchmark000000000000000",
    "MASSIVE_API_KEY": "massive-bench-key-0000",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    provider: str  # alpaca | massive
    kind: str  # daily | tick
    as_of: str  # ISO, exchange time zone
    repeat: int

    def spec(self, emulator: str, scratch: Path) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "kind": self.kind,
            "as_of": self.as_of,
            "repeat": self.repeat,
            "emulator": emulator,
            "scratch": str(scratch),
        }


# -- the worker: one scenario in a fresh process ----------------------------------------


def open_at(calendar: MarketCalendar, session: date) -> datetime:
    return calendar.hours(session).open


def build_provider(
    name: str,
    url: str,
    symbols: Sequence[str],
    limits_db: Path,
    calendar: MarketCalendar,
    rate: RateLimit,
) -> AlpacaProvider | MassiveProvider:
    """The provider as the registry builds it, its limiter on ``rate``."""
    provider: AlpacaProvider | MassiveProvider
    if name == "alpaca":
        provider = AlpacaProvider.from_settings(
            {
                "feed": "iex",
                "data_url": url,
                "trading_url": url,
                "symbols": list(symbols),
                "limits_db": str(limits_db),
                "rate_per_minute": ALPACA_FREE_RATE.limit,
            },
            calendar,
        )
    else:
        provider = MassiveProvider.from_settings(
            {
                "base_url": url,
                "symbols": list(symbols),
                "limits_db": str(limits_db),
                "rate_per_minute": MASSIVE_FREE_RATE.limit,
            },
            calendar,
        )
    if rate.window_seconds != 60:
        # The providers only take a rate per minute: a scaled or lifted limit is
        # the same shared limiter on another window.
        window_ms = int(rate.window_seconds * 1000)
        provider.http.limiter = SharedLimiter(name, [Rate(rate.limit, window_ms)], limits_db)
    return provider


def reset_emulator(url: str, provider: str, rate: RateLimit, now: datetime) -> None:
    body = {f"{provider}_rate": [rate.limit, rate.window_seconds], "now": now.timestamp()}
    requests.post(f"{url}/_emulator/reset", json=body, timeout=10).raise_for_status()


def emulator_stats(url: str) -> dict[str, Any]:
    response = requests.get(f"{url}/_emulator/stats", timeout=10)
    response.raise_for_status()
    return response.json()


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Time ``spec``'s provider call, under the limit and with it lifted, ``repeat`` times."""
    scratch = Path(spec["scratch"])
    name, kind, url = spec["provider"], spec["kind"], spec["emulator"]
    calendar = load_calendar("XNYS", scratch / "cache")
    as_of = datetime.fromisoformat(spec["as_of"])
    every = TICK_EVERY if kind == "tick" else DAILY_EVERY
    symbols = market_symbols(MARKET_SIZE)[::every]
    market_db = scratch / f"market-{name}.db"
    sessions: list[date] = []
    if kind == "daily":
        context = CollectContext(
            task="prices_daily",
            session=as_of.date(),
            as_of=as_of,
            now=as_of,
            market_db=market_db,
            calendar=calendar,
            provider_settings={"name": name},
            options={"history_sessions": HISTORY_SESSIONS},
        )
        with MarketStore(market_db) as store:
            sessions = sessions_to_fetch(store, context)
    hours = calendar.hours(TICK_SESSION)
    since = datetime.combine(TICK_SESSION, TICK_MINUTE, calendar.tz)

    runs: dict[str, list[dict[str, Any]]] = {"limited": [], "lifted": []}
    for attempt in range(spec["repeat"]):
        for mode, rate in (("limited", LIMITED_RATE[name]), ("lifted", LIFTED_RATE)):
            reset_emulator(url, name, rate, as_of)
            limits_db = scratch / f"limits-{spec['name']}-{mode}-{attempt}.sqlite"
            provider = build_provider(name, f"{url}/", symbols, limits_db, calendar, rate)
            rss_before = rss_mib()
            started = time.perf_counter()
            if kind == "daily":
                frame = provider.daily_bars(symbols, sessions)
            else:
                frame = provider.intraday_bars(symbols, TICK_SESSION, since, as_of)
            seconds = time.perf_counter() - started
            peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            store_seconds = 0.0
            if kind == "daily":
                frame = frame[frame["available_ts"] <= epoch(as_of)]
                if attempt == 0 and mode == "limited" and len(sessions) > 1:
                    # The first run's bars, stored once (untimed), make the next
                    # day's run find only its one new session, as in real use.
                    with MarketStore(market_db) as store:
                        store_bars(store, context, frame, symbols)
            else:
                with MarketStore(scratch / f"tick-{mode}-{attempt}.db") as store:
                    store_started = time.perf_counter()
                    store.store(
                        "price_data",
                        "intraday_bars",
                        frame,
                        as_of=as_of,
                        known_symbols=symbols,
                        session_bounds=(epoch(hours.open), epoch(hours.close)),
                    )
                    store_seconds = time.perf_counter() - store_started
            runs[mode].append(
                {
                    "seconds": seconds,
                    "store_seconds": store_seconds,
                    "requests_made": provider.http.requests_made,
                    "rows": len(frame),
                    "symbol_errors": len(provider.symbol_errors),
                    # ru_maxrss only rises: the growth is meaningful for the first call.
                    "peak_growth_mib": max(peak_mib - rss_before, 0.0),
                    "stats": emulator_stats(url),
                }
            )
    return {"sessions": len(sessions), "symbols": len(symbols), "runs": runs}


# -- the fewest requests each API allows ------------------------------------------------


def pages(rows: int, page_size: int) -> int:
    """Requests for ``rows`` rows at ``page_size`` per page; an empty answer is one too."""
    return max(1, math.ceil(rows / page_size))


def alpaca_daily_minimum(market: Market, symbols: list[str], sessions: list[date]) -> int:
    """Bars at 10,000 per page across the batch's symbols, plus its corporate actions
    (1,000 per page) over the provider's process-date window, per batch of the
    provider's ``SYMBOLS_PER_REQUEST`` symbols."""
    total = 0
    for start in range(0, len(symbols), SYMBOLS_PER_REQUEST):
        batch = symbols[start : start + SYMBOLS_PER_REQUEST]
        total += pages(len(batch) * len(sessions), ALPACA_BARS_MAX_LIMIT)
        splits, dividends = market.processed_actions(
            batch, sessions[0], sessions[-1] + DIVIDEND_PROCESS_WINDOW
        )
        total += pages(len(splits) + len(dividends), ALPACA_ACTIONS_MAX_LIMIT)
    return total


def massive_daily_minimum(market: Market, symbols: list[str], sessions: list[date]) -> int:
    """Bars: one grouped-daily request per session (the whole market), or one
    per-ticker request per symbol (all sessions fit one 50,000-bar page),
    whichever is fewer. Splits and dividends: the reference endpoints filter on
    one ticker or a ticker range (no list), so one listing of the symbols' range
    at 1,000 per page, or one request per symbol, whichever is fewer."""
    per_ticker_pages = pages(len(sessions), MASSIVE_AGGS_MAX_LIMIT)
    total = min(len(sessions), len(symbols) * per_ticker_pages)
    in_range = [symbol for symbol in market.symbols if min(symbols) <= symbol <= max(symbols)]
    for listing in (market.splits, market.dividends):
        rows = len(listing(in_range, sessions[0], sessions[-1]))
        total += min(pages(rows, MASSIVE_REFERENCE_MAX_LIMIT), len(symbols))
    return total


def alpaca_tick_minimum(symbols: list[str], minutes: int) -> int:
    """One page per batch: a batch's bars of the minute are far under 10,000."""
    batches = math.ceil(len(symbols) / SYMBOLS_PER_REQUEST)
    return batches * pages(SYMBOLS_PER_REQUEST * minutes, ALPACA_BARS_MAX_LIMIT)


# -- the parent ---------------------------------------------------------------------------


def start_emulator(scratch: Path) -> tuple[subprocess.Popen[str], str]:
    """The emulator in its own process, so it shares neither GIL nor memory with the client."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("provider_emulator.py")),
            "--calendar-cache",
            str(scratch / "cache"),
            "--market-size",
            str(MARKET_SIZE),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def stop_emulator(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()  # the emulator serves until its stdin closes
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_scenario(scenario: Scenario, url: str, scratch: Path) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(scenario.spec(url, scratch))],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{scenario.name} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    found["scenario_seconds"] = time.perf_counter() - started
    return found


def served(stats: dict[str, Any], status: str = "200") -> int:
    return sum(by_status.get(status, 0) for by_status in stats["requests"].values())


def by_endpoint(stats: dict[str, Any]) -> str:
    """``bars 15, corporate-actions 5``: requests per endpoint, shortest names."""
    parts = []
    for endpoint, by_status in sorted(stats["requests"].items()):
        short = endpoint.split(" ", 1)[1]
        short = short.removeprefix("/v2/aggs/").removeprefix("/v3/reference/")
        short = short.replace("/range/{multiplier}/{timespan}/{from}/{to}", "")
        counts = ", ".join(f"{status}: {count}" for status, count in sorted(by_status.items()))
        parts.append(f"{short} ({counts})")
    return "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help="repeats of the short runs")
    args = parser.parse_args()
    os.environ["ORCHESTRATOR_LOOPBACK_ONLY"] = "1"  # no network: 127.0.0.1 only
    os.environ.update(KEYS)
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-providers-") as temp:
        scratch = Path(temp)
        calendar = load_calendar("XNYS", scratch / "cache")  # built once, cached for all
        first_day = calendar.next_session(LAST_HISTORY_SESSION)
        next_day = calendar.next_session(first_day)
        tz = calendar.tz
        first_as_of = open_at(calendar, first_day).astimezone(tz).isoformat()
        next_as_of = open_at(calendar, next_day).astimezone(tz).isoformat()
        tick_as_of = datetime.combine(TICK_SESSION, TICK_ASKED_AT, tz).isoformat()
        scenarios = [
            Scenario("alpaca daily, first run", "alpaca", "daily", first_as_of, args.repeat),
            Scenario("alpaca daily, next day", "alpaca", "daily", next_as_of, args.repeat),
            # 50 s under the scaled limit: once is enough, its floor dwarfs the noise.
            Scenario("massive daily, first run", "massive", "daily", first_as_of, 1),
            Scenario("massive daily, next day", "massive", "daily", next_as_of, args.repeat),
            Scenario("alpaca tick, 5,000 symbols", "alpaca", "tick", tick_as_of, args.repeat),
        ]
        process, url = start_emulator(scratch)
        try:
            results = {}
            for scenario in scenarios:
                results[scenario.name] = run_scenario(scenario, url, scratch)
                print(f"  {scenario.name}: {results[scenario.name]['scenario_seconds']:.0f} s")
        finally:
            stop_emulator(process)

        market = Market(calendar, MARKET_SIZE)
        daily_symbols = market.symbols[::DAILY_EVERY]
        tick_symbols = market.symbols[::TICK_EVERY]
        window = calendar.sessions_in_range(
            LAST_HISTORY_SESSION - timedelta(days=int(HISTORY_SESSIONS * 1.5) + 10),
            LAST_HISTORY_SESSION,
        )[-HISTORY_SESSIONS:]
        minimum = {
            "alpaca daily, first run": alpaca_daily_minimum(market, daily_symbols, window),
            "alpaca daily, next day": alpaca_daily_minimum(market, daily_symbols, [first_day]),
            "massive daily, first run": massive_daily_minimum(market, daily_symbols, window),
            "massive daily, next day": massive_daily_minimum(market, daily_symbols, [first_day]),
            "alpaca tick, 5,000 symbols": alpaca_tick_minimum(tick_symbols, 1),
        }
    return report(scenarios, results, minimum)


def report(scenarios: Sequence[Scenario], results: dict[str, Any], minimum: dict[str, int]) -> int:
    request_rows, time_rows, verdicts = [], [], []
    endpoint_lines = []
    all_met = True
    for scenario in scenarios:
        found = results[scenario.name]
        limited, lifted = found["runs"]["limited"], found["runs"]["lifted"]
        first = limited[0]
        made = first["requests_made"]
        rejected = sum(served(run["stats"], "429") for run in limited)
        rate = LIMITED_RATE[scenario.provider]
        # The floor of the requests actually served: it isolates pacing from request count.
        floor = rate.floor_seconds(served(first["stats"]))
        wall = median([run["seconds"] for run in limited])
        transfer = median([run["seconds"] for run in lifted])
        wall_ratio = wall / (floor + transfer)
        request_ratio = made / minimum[scenario.name]
        scale = TIME_SCALE[scenario.provider]
        rate_text = f"{rate.limit}/{rate.window_seconds:g}s" + (
            f" (real {MASSIVE_FREE_RATE.limit}/min, time x{scale})" if scale > 1 else ""
        )
        request_rows.append(
            [
                scenario.name,
                found["sessions"] if scenario.kind == "daily" else "1 min",
                f"{first['rows']:,}",
                made,
                minimum[scenario.name],
                f"{request_ratio:.2f}",
                rejected,
            ]
        )
        time_rows.append(
            [
                scenario.name,
                rate_text,
                f"{wall:.2f}",
                f"{floor:.2f}",
                f"{transfer:.2f}",
                f"{wall_ratio:.2f}",
                f"{first['peak_growth_mib']:.0f}",
            ]
        )
        endpoint_lines.append(f"  {scenario.name}: {by_endpoint(first['stats'])}")
        requests_ok = request_ratio <= REQUESTS_TARGET
        wall_ok = wall_ratio <= WALL_TARGET
        all_met &= requests_ok and wall_ok
        verdicts.append(
            verdict(
                f"{scenario.name}: requests",
                requests_ok,
                f"{made} made, fewest {minimum[scenario.name]}, {request_ratio:.2f} x "
                f"<= {REQUESTS_TARGET}",
            )
        )
        verdicts.append(
            verdict(
                f"{scenario.name}: wall",
                wall_ok,
                f"{wall:.2f} s vs floor {floor:.2f} s + transfer {transfer:.2f} s, "
                f"{wall_ratio:.2f} x <= {WALL_TARGET}",
            )
        )
        if scenario.kind == "tick":
            fetch = wall
            store = median([run["store_seconds"] for run in limited])
            share = (fetch + store) / INTERVAL_SECONDS
            tick_row = [
                scenario.name,
                made,
                f"{fetch:.2f}",
                f"{store:.2f}",
                f"{fetch + store:.2f}",
                f"{share:.1%}",
                f"{store / (fetch + store):.0%}",
            ]
            tick_ok = share <= TICK_SHARE_TARGET
            all_met &= tick_ok
            verdicts.append(
                verdict(
                    f"{scenario.name}: share of the 60 s interval",
                    tick_ok,
                    f"{fetch + store:.2f} s = {share:.1%} <= {TICK_SHARE_TARGET:.0%}, "
                    f"storing {store / (fetch + store):.0%} of it",
                )
            )

    print("Emulated market: 10,000 tickers; daily universe 500 (every 20th), tick 5,000.")
    print(
        "Alpaca at its real 200 requests/60 s; Massive's 5/min scaled to 5/1 s "
        "(emulator and limiter): its seconds are minutes for real."
    )
    print()
    print(
        table(
            ["requests", "sessions", "rows", "made", "fewest", "ratio", "429s"],
            request_rows,
        )
    )
    print(
        f"(fewest: Alpaca {ALPACA_BARS_MAX_LIMIT:,} bars/page in batches of "
        f"{SYMBOLS_PER_REQUEST} symbols + corporate actions {ALPACA_ACTIONS_MAX_LIMIT:,}/page "
        "per batch; Massive min(sessions, symbols) bar requests + splits and dividends "
        f"listings at {MASSIVE_REFERENCE_MAX_LIMIT:,}/page)"
    )
    print()
    print(
        table(
            ["wall time", "limit", "wall s", "floor s", "transfer s", "wall/(floor+xfer)", "MiB"],
            time_rows,
        )
    )
    print(
        "(wall and transfer: medians; transfer = the same run with the limit lifted; "
        "MiB = peak RSS growth of the call)"
    )
    print()
    print(
        table(
            ["tick", "requests", "fetch s", "store s", "total s", "of 60 s", "storing"],
            [tick_row],
        )
    )
    print()
    print("requests by endpoint (first limited run):")
    print("\n".join(endpoint_lines))
    print()
    print("\n".join(verdicts))
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
