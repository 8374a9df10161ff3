"""Benchmark: the Alpaca and Massive providers' requests and wall time against their rate limits.

The real ``AlpacaProvider`` and ``MassiveProvider`` (fake keys,
``ORCHESTRATOR_LOOPBACK_ONLY=1``) call ``bench/provider_emulator.py``, which
runs in its own process on 127.0.0.1, serves synthetic bars in each API's
format, enforces the page sizes and returns 429 + ``Retry-After`` over the
rate limit. The emulated market has 5,000 tickers (the real grouped-daily
answer has ~10,000: half its bytes, so the scaled Massive run below stays
bound by its limit, not by this machine); the 500-symbol universe is every
10th ticker, spread over the alphabet as real universes are, and the tick's
5,000 symbols are all of them.

1. Daily history, 500 symbols, as ``collectors/prices_daily.py`` asks for it
   (``sessions_to_fetch`` on the market database, then ``daily_bars``): the
   first run (252 sessions missing, up to 2026-11-20) and the next day's run
   (1 session), for each provider;
2. one intraday tick for 5,000 symbols on Alpaca: ``intraday_bars`` of the
   latest minute (10:30 New York, asked at 10:31:05), then
   ``MarketStore.store`` of the result as ``collectors/price_data.py`` does.

Time scaling: Alpaca runs at its real 200 requests per 60 s; Massive's free
plan (5 per 60 s) runs 60x faster, at 5 per 1 s, in the emulator and in the
provider's limiter alike (the same ``SharedLimiter`` on a 1 s window), so a
Massive figure in seconds is minutes for real.

Each call's wall time splits into the time spent waiting for the rate limit
(the limiter's sleeps, and the provider's own: retry backoff, ``Retry-After``,
the shared pause) and the rest, the transfer time (HTTP, JSON, the provider's
own work), both measured in the same run: on a shared machine a second run
with the limit lifted differs from the first by more than the margin tested.

Targets: requests <= 1.1 x the fewest the API allows (from its page sizes
and, for Alpaca, the provider's symbols per request); wall time <= 1.2 x the
rate-limit floor + the transfer time, i.e. waiting <= 1.2 x the floor, the
floor being the least time the served requests can take under the limit (the
first ``limit`` at once, then one window per further ``limit``); the tick
(fetch + store) <= 10 % of the 60 s interval. Peak memory is the growth of
the worker process's max RSS during the first call. Exit 1 when a target is
missed. Run: ``.venv/bin/python bench/bench_providers.py``.
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

import pyrate_limiter.limiter
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

MARKET_SIZE = 5_000
DAILY_EVERY = 10  # 500 of the 5,000 tickers
TICK_EVERY = 1  # all 5,000
HISTORY_SESSIONS = 252
LAST_HISTORY_SESSION = date(2026, 11, 20)  # a Friday: the first run's newest session
TICK_SESSION = date(2026, 11, 30)  # a Monday, full day
TICK_MINUTE = clock_time(10, 30)
TICK_ASKED_AT = clock_time(10, 31, 5)
INTERVAL_SECONDS = 60.0  # price_data's interval
TIME_SCALE = {"alpaca": 1, "massive": 60}
RATE = {
    "alpaca": ALPACA_FREE_RATE,
    "massive": RateLimit(MASSIVE_FREE_RATE.limit, MASSIVE_FREE_RATE.window_seconds / 60),
}
REQUESTS_TARGET = 1.1
WAIT_TARGET = 1.2
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


class WaitClock:
    """Counts the seconds slept waiting for the rate limit, and sleeps them."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def sleep(self, seconds: float) -> None:
        started = time.perf_counter()
        time.sleep(seconds)
        self.seconds += time.perf_counter() - started


def watch_limiter_sleeps(waits: WaitClock) -> None:
    """Route the limiter library's sleeps through ``waits``, and prove it works.

    ``pyrate_limiter`` sleeps with its module's ``sleep`` (``from time import
    sleep``); should a new version sleep some other way, the waits would go
    unseen and count as transfer, so a two-request limiter must show its wait.
    """
    pyrate_limiter.limiter.sleep = waits.sleep  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as scratch:
        probe = SharedLimiter("probe", [Rate(1, 200)], Path(scratch) / "probe.sqlite")
        before = waits.seconds
        probe.acquire(waits.sleep)
        probe.acquire(waits.sleep)
        if waits.seconds - before < 0.1:
            raise SystemExit("the rate limiter's waits cannot be observed: update WaitClock")
        waits.seconds = before


def build_provider(
    name: str,
    url: str,
    symbols: Sequence[str],
    limits_db: Path,
    calendar: MarketCalendar,
    waits: WaitClock,
) -> AlpacaProvider | MassiveProvider:
    """The provider as the registry builds it, its limiter at ``RATE[name]``."""
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
            sleeper=waits.sleep,
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
            sleeper=waits.sleep,
        )
    rate = RATE[name]
    if rate.window_seconds != 60:
        # The providers take a rate per minute only: the scaled limit is the same
        # shared limiter on a shorter window.
        window_ms = int(rate.window_seconds * 1000)
        provider.http.limiter = SharedLimiter(name, [Rate(rate.limit, window_ms)], limits_db)
    return provider


def reset_emulator(url: str, provider: str, now: datetime) -> None:
    rate = RATE[provider]
    body = {f"{provider}_rate": [rate.limit, rate.window_seconds], "now": now.timestamp()}
    requests.post(f"{url}/_emulator/reset", json=body, timeout=10).raise_for_status()


def emulator_stats(url: str) -> dict[str, Any]:
    response = requests.get(f"{url}/_emulator/stats", timeout=10)
    response.raise_for_status()
    return response.json()


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Time ``spec``'s provider call ``repeat`` times, each with fresh limits."""
    scratch = Path(spec["scratch"])
    name, kind, url = spec["provider"], spec["kind"], spec["emulator"]
    waits = WaitClock()
    watch_limiter_sleeps(waits)
    calendar = load_calendar("XNYS", scratch / "cache")
    as_of = datetime.fromisoformat(spec["as_of"])
    every = TICK_EVERY if kind == "tick" else DAILY_EVERY
    symbols = market_symbols(MARKET_SIZE)[::every]
    market_db = scratch / f"market-{name}.db"
    context = CollectContext(
        task="prices_daily" if kind == "daily" else "price_data",
        session=as_of.date(),
        as_of=as_of,
        now=as_of,
        market_db=market_db,
        calendar=calendar,
        provider_settings={"name": name},
        options={"history_sessions": HISTORY_SESSIONS},
    )
    sessions: list[date] = []
    if kind == "daily":
        with MarketStore(market_db) as store:
            sessions = sessions_to_fetch(store, context)
    hours = calendar.hours(TICK_SESSION)
    since = datetime.combine(TICK_SESSION, TICK_MINUTE, calendar.tz)

    runs = []
    for attempt in range(spec["repeat"]):
        reset_emulator(url, name, as_of)  # an empty window, as after a quiet night
        limits_db = scratch / f"limits-{spec['name']}-{attempt}.sqlite"
        provider = build_provider(name, f"{url}/", symbols, limits_db, calendar, waits)
        waits.seconds = 0.0
        rss_before = rss_mib()
        started = time.perf_counter()
        if kind == "daily":
            frame = provider.daily_bars(symbols, sessions)
        else:
            frame = provider.intraday_bars(symbols, TICK_SESSION, since, as_of)
        seconds = time.perf_counter() - started
        waited = waits.seconds
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store_seconds = 0.0
        if kind == "daily":
            frame = frame[frame["available_ts"] <= epoch(as_of)]
            if attempt == 0 and len(sessions) > 1:
                # The first run's bars, stored once (untimed), make the next day's
                # run find only its one new session, as in real use.
                with MarketStore(market_db) as store:
                    store_bars(store, context, frame, symbols)
        else:
            with MarketStore(scratch / f"tick-{attempt}.db") as store:
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
        runs.append(
            {
                "seconds": seconds,
                "waited": waited,
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


def alpaca_daily_minimum(
    market: Market, symbols: list[str], sessions: list[date], batch_size: int
) -> int:
    """Bars at 10,000 per page across a batch's symbols, plus the batch's corporate
    actions (1,000 per page) over the provider's process-date window, per batch of
    ``batch_size`` symbols (Alpaca documents no cap; the provider sends 100)."""
    total = 0
    for start in range(0, len(symbols), batch_size):
        batch = symbols[start : start + batch_size]
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


def alpaca_tick_minimum(symbols: list[str], minutes: int, batch_size: int) -> int:
    """Bars of the minute at 10,000 per page across a batch's symbols, per batch."""
    total = 0
    for start in range(0, len(symbols), batch_size):
        batch = symbols[start : start + batch_size]
        total += pages(len(batch) * minutes, ALPACA_BARS_MAX_LIMIT)
    return total


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
    """``/v2/stocks/bars (200: 15); ...``: requests per endpoint and status."""
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
    parser.add_argument("--repeat", type=int, default=3, help="repeats of the short runs (medians)")
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
        first_as_of = calendar.hours(first_day).open.astimezone(tz).isoformat()
        next_as_of = calendar.hours(next_day).open.astimezone(tz).isoformat()
        tick_as_of = datetime.combine(TICK_SESSION, TICK_ASKED_AT, tz).isoformat()
        # The first runs take seconds to a minute each: once is enough, their
        # waits and transfer are measured in the same run.
        scenarios = [
            Scenario("alpaca daily, first run", "alpaca", "daily", first_as_of, 1),
            Scenario("alpaca daily, next day", "alpaca", "daily", next_as_of, args.repeat),
            Scenario("massive daily, first run", "massive", "daily", first_as_of, 1),
            Scenario("massive daily, next day", "massive", "daily", next_as_of, args.repeat),
            Scenario("alpaca tick, 5,000 symbols", "alpaca", "tick", tick_as_of, args.repeat),
        ]
        process, url = start_emulator(scratch)
        try:
            results = {}
            for scenario in scenarios:
                results[scenario.name] = run_scenario(scenario, url, scratch)
                seconds = results[scenario.name]["scenario_seconds"]
                print(f"  {scenario.name}: {seconds:.0f} s", flush=True)
        finally:
            stop_emulator(process)

    market = Market(calendar, MARKET_SIZE)
    daily_symbols = market.symbols[::DAILY_EVERY]
    tick_symbols = market.symbols[::TICK_EVERY]
    window = calendar.sessions_in_range(
        LAST_HISTORY_SESSION - timedelta(days=int(HISTORY_SESSIONS * 1.5) + 10),
        LAST_HISTORY_SESSION,
    )[-HISTORY_SESSIONS:]
    capped, uncapped = SYMBOLS_PER_REQUEST, MARKET_SIZE
    fewest = {
        "alpaca daily, first run": alpaca_daily_minimum(market, daily_symbols, window, capped),
        "alpaca daily, next day": alpaca_daily_minimum(market, daily_symbols, [first_day], capped),
        "massive daily, first run": massive_daily_minimum(market, daily_symbols, window),
        "massive daily, next day": massive_daily_minimum(market, daily_symbols, [first_day]),
        "alpaca tick, 5,000 symbols": alpaca_tick_minimum(tick_symbols, 1, capped),
    }
    # What one request for all symbols would take (URL length aside).
    fewest_uncapped = {
        "alpaca daily, first run": alpaca_daily_minimum(market, daily_symbols, window, uncapped),
        "alpaca daily, next day": alpaca_daily_minimum(
            market, daily_symbols, [first_day], uncapped
        ),
        "alpaca tick, 5,000 symbols": alpaca_tick_minimum(tick_symbols, 1, uncapped),
    }
    return report(scenarios, results, fewest, fewest_uncapped)


def report(
    scenarios: Sequence[Scenario],
    results: dict[str, Any],
    fewest: dict[str, int],
    fewest_uncapped: dict[str, int],
) -> int:
    request_rows, time_rows, tick_rows, verdicts, endpoint_lines = [], [], [], [], []
    projections = []
    all_met = True
    for scenario in scenarios:
        found = results[scenario.name]
        runs = found["runs"]
        first = runs[0]
        made = first["requests_made"]
        rejected = sum(served(run["stats"], "429") for run in runs)
        rate = RATE[scenario.provider]
        # The floor of the requests actually served: it isolates pacing from request count.
        floor = rate.floor_seconds(served(first["stats"]))
        wall = median([run["seconds"] for run in runs])
        waited = median([run["waited"] for run in runs])
        transfer = median([run["seconds"] - run["waited"] for run in runs])
        request_ratio = made / fewest[scenario.name]
        scale = TIME_SCALE[scenario.provider]
        limit_text = f"{rate.limit}/{rate.window_seconds:g} s"
        if scale > 1:
            limit_text += f" (x{scale})"
            if floor:
                real_floor = floor * scale
                projections.append(
                    f"  {scenario.name}, at the real {MASSIVE_FREE_RATE.limit}/min: floor "
                    f"{real_floor / 60:.0f} min + transfer {transfer:.0f} s (transfer "
                    f"{transfer / (real_floor + transfer):.1%} of the run)"
                )
        request_rows.append(
            [
                scenario.name,
                found["sessions"] if scenario.kind == "daily" else "1 min",
                f"{first['rows']:,}",
                made,
                fewest[scenario.name],
                f"{request_ratio:.2f}",
                fewest_uncapped.get(scenario.name, "-"),
                rejected,
            ]
        )
        time_rows.append(
            [
                scenario.name,
                limit_text,
                f"{wall:.2f}",
                f"{floor:.1f}",
                f"{waited:.2f}",
                f"{transfer:.2f}",
                f"{transfer / wall:.0%}",
                f"{waited / floor:.2f}" if floor else "-",
                f"{first['peak_growth_mib']:.0f}",
            ]
        )
        endpoint_lines.append(f"  {scenario.name}: {by_endpoint(first['stats'])}")
        requests_ok = request_ratio <= REQUESTS_TARGET
        # wall <= 1.2 x floor + transfer, with wall = waited + transfer.
        wait_ok = waited <= WAIT_TARGET * floor
        all_met &= requests_ok and wait_ok
        verdicts.append(
            verdict(
                f"{scenario.name}: requests",
                requests_ok,
                f"{made} made, fewest {fewest[scenario.name]}: {request_ratio:.2f} x, "
                f"target <= {REQUESTS_TARGET}",
            )
        )
        verdicts.append(
            verdict(
                f"{scenario.name}: wall",
                wait_ok,
                f"{wall:.2f} s = waited {waited:.2f} s + transfer {transfer:.2f} s; target "
                f"<= {WAIT_TARGET} x floor {floor:.1f} s + transfer = "
                f"{WAIT_TARGET * floor + transfer:.2f} s",
            )
        )
        if scenario.kind == "tick":
            store = median([run["store_seconds"] for run in runs])
            total = wall + store
            share = total / INTERVAL_SECONDS
            tick_rows.append(
                [
                    scenario.name,
                    made,
                    f"{wall:.2f}",
                    f"{store:.2f}",
                    f"{total:.2f}",
                    f"{share:.1%}",
                    f"{store / total:.0%}",
                ]
            )
            tick_ok = share <= TICK_SHARE_TARGET
            all_met &= tick_ok
            verdicts.append(
                verdict(
                    f"{scenario.name}: share of the 60 s interval",
                    tick_ok,
                    f"{total:.2f} s = {share:.1%}, target <= {TICK_SHARE_TARGET:.0%}; "
                    f"storing {store / total:.0%} of it",
                )
            )

    print(
        f"Emulated market: {MARKET_SIZE:,} tickers; daily universe 500 (every "
        f"{DAILY_EVERY}th), tick universe 5,000. Alpaca at its real 200 requests/60 s; "
        "Massive's 5/min scaled to 5/1 s (emulator and provider limiter): time x60."
    )
    print()
    headers = ["requests", "sessions", "rows", "made", "fewest", "ratio", "no cap", "429s"]
    print(table(headers, request_rows))
    print(
        f"(fewest: Alpaca {ALPACA_BARS_MAX_LIMIT:,} bars/page over batches of the provider's "
        f"{SYMBOLS_PER_REQUEST} symbols + corporate actions at {ALPACA_ACTIONS_MAX_LIMIT:,}/page"
        " per batch; 'no cap': all symbols in one batch. Massive: min(sessions, symbols) bar "
        f"requests + splits and dividends listings at {MASSIVE_REFERENCE_MAX_LIMIT:,}/page)"
    )
    print()
    headers = ["wall time", "limit", "wall s", "floor s", "waited s", "xfer s", "xfer"]
    print(table([*headers, "waited/floor", "MiB"], time_rows))
    print(
        "(floor: least time the served requests take under the limit; waited: slept for the "
        "limit, retries included; xfer: wall - waited; waited/floor <= 1.2 is the target "
        "wall <= 1.2 x floor + xfer; MiB: peak RSS growth of the call)"
    )
    print("\n".join(projections))
    print()
    headers = ["tick", "requests", "fetch s", "store s", "total s", "of 60 s", "storing"]
    print(table(headers, tick_rows))
    print()
    print("requests by endpoint (first run):")
    print("\n".join(endpoint_lines))
    print()
    print("\n".join(verdicts))
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
