"""Benchmark: the daily run's SEC, FRED, Finnhub and Cboe requests and wall time for 500 symbols.

The real ``SecProvider``, ``FredProvider``, ``FinnhubProvider`` and
``CboeProvider`` (fake keys, ``ORCHESTRATOR_LOOPBACK_ONLY=1``) call
``bench/daily_emulator.py``, run in its own process on 127.0.0.1, which
serves each API's format and enforces its documented limit. Each task is
called as its collector calls it (the collector's look-back window, the
methods it calls on one provider instance), one process per task, and the
tasks of one source run in parallel, as the daily DAG runs them in one tier
(fundamentals and insider on SEC; analyst, earnings and news on Finnhub),
sharing the provider's limiter (the SQLite bucket) and cache folder:

1. the first run, at the open of 2026-11-23, with empty caches;
2. the next day's run, at the open of 2026-11-24: the SEC ticker list aged
   by a day (so it is refreshed, as daily), the Form 4 documents kept.

Time scaling: SEC (10 requests/s for all of sec.gov) runs at its real rate:
its provider's margin is a time (how late a request may arrive after its
permit), which a faster clock would shrink (at 2x, two tasks in parallel got
SEC's 403). FRED runs at its real 120/min. Finnhub's 60/min runs 20x faster
(60 per 3 s: its margin, 5 requests a minute, is then 0.27 s) and Cboe's pace
(our own polite 60/min: Cboe documents no limit) 60x faster, in the emulator
and in the providers' limiters alike (every rate of the provider, windows
divided by the scale).

The fewest requests the APIs allow, computed from the emulator's data:
SEC, the ticker list once a day, one companyfacts and one submissions per
company, and the Form 4 documents of the window (filed from the look-back
start, accepted by as_of, plus the originals of its 4/As filed earlier) not
already read by an earlier run; FRED, one series record and one page of
vintages per series; Finnhub, one request per symbol and endpoint (each
takes one symbol); Cboe, one chain per symbol.

The floor of a source is the least time its fewest requests take under the
limit (the first ``limit`` at once, then one window per further ``limit``).
Targets: requests <= 1.1 x the fewest, wall <= 1.2 x the floor + the
transfer time (the longest task's wall time less its waits for the limit),
with no request refused (a 429 or SEC's 403). Exit 1 when one is missed.
Run: ``.venv/bin/python bench/bench_providers_daily.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from pyrate_limiter import Rate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_providers import WaitClock, watch_limiter_sleeps
from common import REPO, table, verdict
from daily_emulator import (
    FINNHUB_RATE,
    FRED_RATE,
    FRED_SERIES,
    SEC_RATE,
    form4_documents_needed,
)
from provider_emulator import RateLimit, market_symbols

from collectors import analyst, economic, fundamentals, insider, news
from collectors import earnings as earnings_collector
from collectors.context import CollectContext
from collectors.providers import cboe, finnhub, fred, sec
from collectors.providers.http import SharedLimiter
from collectors.support import since
from orchestrator.errors import TransientError
from orchestrator.market_calendar import MarketCalendar, load_calendar

MARKET_SIZE = 5_000
EVERY = 10  # the 500 symbols: every 10th ticker, spread over the alphabet
FIRST_DAY = date(2026, 11, 23)
NEXT_DAY = date(2026, 11, 24)
SCALE = {"sec": 1, "fred": 1, "finnhub": 20, "cboe": 60}
# Cboe documents no limit: its floor is the provider's own polite pace.
CBOE_POLITE_RATE = RateLimit(cboe.DEFAULT_RATE_PER_MINUTE, 60.0)
API_RATE = {"sec": SEC_RATE, "fred": FRED_RATE, "finnhub": FINNHUB_RATE, "cboe": CBOE_POLITE_RATE}
EMULATOR_LIMITED = {"sec": True, "fred": True, "finnhub": True, "cboe": False}
TASKS = {
    "sec": ["fundamentals", "insider"],
    "fred": ["economic"],
    "finnhub": ["analyst", "earnings", "news"],
    "cboe": ["options"],
}
REQUESTS_TARGET = 1.1
WALL_TARGET = 1.2
KEYS = {
    "SEC_USER_AGENT": "Bench Runner bench@example.com",
    "FRED_API_KEY": "fred0bench0key0000000000000000000",
    "FINNHUB_API_KEY": "finnhub-bench-key-0000",
}


def scaled(rate: RateLimit, scale: int) -> RateLimit:
    return RateLimit(rate.limit, rate.window_seconds / scale)


# -- the worker: one task in a fresh process -----------------------------------------------


def build(
    source: str,
    url: str,
    symbols: Sequence[str],
    scratch: Path,
    calendar: MarketCalendar,
    waits: WaitClock,
    as_of: datetime,
    run: str,
) -> Any:
    """The provider as the registry builds it (defaults, state paths), its limiter scaled;
    Finnhub's wall clock pinned at ``as_of`` (a live run, as the daily run is); a
    limiter of its own per ``run``, as after a quiet night (no pause left over)."""
    settings: dict[str, Any] = {
        "symbols": list(symbols),
        "limits_db": str(scratch / f"limits-{run}.sqlite"),
        "cache_dir": str(scratch / "cache"),
    }
    provider: Any
    if source == "sec":
        settings |= {"base_url": url, "www_url": url}
        provider = sec.SecProvider.from_settings(settings, calendar, sleeper=waits.sleep)
        rates = sec._rates(sec.DEFAULT_RATE_PER_SECOND)
    elif source == "fred":
        settings |= {"base_url": url, "series": list(FRED_SERIES)}
        provider = fred.FredProvider.from_settings(settings, calendar, sleeper=waits.sleep)
        rates = fred.per_minute(fred.DEFAULT_RATE_PER_MINUTE)
    elif source == "finnhub":
        settings |= {"base_url": f"{url}/api/v1"}
        provider = finnhub.FinnhubProvider.from_settings(
            settings, calendar, sleeper=waits.sleep, clock=lambda: as_of
        )
        rates = finnhub._rates(finnhub.DEFAULT_RATE_PER_MINUTE)
    else:
        settings |= {"base_url": url}
        provider = cboe.CboeProvider.from_settings(settings, calendar, sleeper=waits.sleep)
        rates = cboe.per_minute(cboe.DEFAULT_RATE_PER_MINUTE)
    scale = SCALE[source]
    if scale != 1:
        windows = [Rate(rate.limit, max(1, round(rate.interval / scale))) for rate in rates]
        provider.http.limiter = SharedLimiter(source, windows, Path(settings["limits_db"]))
    return provider


def run_task(provider: Any, task: str, session: date, as_of: datetime) -> int:
    """What the task's collector asks of its provider; the rows returned."""

    def start(days: int, options: dict[str, Any] | None = None) -> date:
        ctx = CollectContext(
            task=task,
            session=session,
            as_of=as_of,
            now=as_of,
            market_db=Path("unused.db"),
            calendar=provider.calendar,
            provider_settings={},
            options=options or {},
        )
        return since(ctx, days)

    if task == "fundamentals":
        return len(
            provider.fundamentals(
                provider.symbols, start(fundamentals.DEFAULT_LOOKBACK_DAYS), as_of
            )
        )
    if task == "insider":
        return len(
            provider.insider_trades(provider.symbols, start(insider.DEFAULT_LOOKBACK_DAYS), as_of)
        )
    if task == "economic":
        return len(provider.economic_series(start(economic.DEFAULT_LOOKBACK_DAYS), as_of))
    if task == "analyst":
        begin = start(analyst.DEFAULT_LOOKBACK_DAYS)
        rows = len(provider.analyst_ratings(provider.symbols, begin, as_of))
        return rows + len(provider.analyst_trends(provider.symbols, as_of))
    if task == "earnings":
        begin = start(earnings_collector.DEFAULT_LOOKBACK_DAYS)
        rows = len(provider.earnings_calendar(provider.symbols, begin, as_of))
        return rows + len(provider.earnings_results(provider.symbols, begin, as_of))
    if task == "news":
        return len(provider.news(provider.symbols, start(news.DEFAULT_LOOKBACK_DAYS), as_of))
    return len(provider.options_chain(provider.symbols, session, as_of))


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    scratch = Path(spec["scratch"])
    waits = WaitClock()
    watch_limiter_sleeps(waits)
    calendar = load_calendar("XNYS", scratch / "calendar")
    as_of = datetime.fromisoformat(spec["as_of"])
    symbols = market_symbols(MARKET_SIZE)[::EVERY]
    provider = build(
        spec["source"], spec["emulator"], symbols, scratch, calendar, waits, as_of, spec["run"]
    )
    waits.seconds = 0.0
    began = time.time()  # epoch: the parent spans its tasks' calls across processes
    started = time.perf_counter()
    failure = None
    try:
        rows = run_task(provider, spec["task"], date.fromisoformat(spec["session"]), as_of)
    except TransientError as error:  # SEC's 403 or 429s past the retries: a finding
        rows, failure = 0, str(error)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "began": began,
        "ended": began + seconds,
        "waited": waits.seconds,
        "requests_made": provider.http.requests_made,
        "rows": rows,
        "symbol_errors": len(provider.symbol_errors),
        "first_error": next(iter(provider.symbol_errors.values()), None),
        "failure": failure,
    }


# -- the fewest requests ---------------------------------------------------------------


def fewest_requests(source: str, symbols: Sequence[str], runs: list[datetime]) -> list[int]:
    """The fewest requests of each run in ``runs`` (in order: each sees the earlier caches)."""
    count = len(symbols)
    if source == "fred":
        return [2 * len(FRED_SERIES)] * len(runs)
    if source == "finnhub":
        return [3 * count] * len(runs)
    if source == "cboe":
        return [count] * len(runs)
    position = {symbol: index for index, symbol in enumerate(market_symbols(MARKET_SIZE))}
    read: set[str] = set()
    found = []
    for as_of in runs:
        since = (as_of - timedelta(days=insider.DEFAULT_LOOKBACK_DAYS)).date()
        needed: set[str] = set()
        for symbol in symbols:
            needed |= form4_documents_needed(position[symbol], since, as_of)
        found.append(1 + 2 * count + len(needed - read))
        read |= needed
    return found


# -- the parent --------------------------------------------------------------------------


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("daily_emulator.py")), "--market-size",
         str(MARKET_SIZE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def stop_emulator(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class SourceRun:
    source: str
    run: str
    wall: float
    tasks: dict[str, dict[str, Any]]
    stats: dict[str, Any]


def run_source(source: str, run: str, as_of: datetime, url: str, scratch: Path) -> SourceRun:
    """The source's tasks in parallel, one process each, after a reset of the emulator."""
    scale = SCALE[source]
    rate = scaled(API_RATE[source], scale) if EMULATOR_LIMITED[source] else None
    rates = {source: None if rate is None else [rate.limit, rate.window_seconds]}
    position = {symbol: index for index, symbol in enumerate(market_symbols(MARKET_SIZE))}
    warm = [position[symbol] for symbol in market_symbols(MARKET_SIZE)[::EVERY]]
    body: dict[str, Any] = {"rates": rates, "now": as_of.timestamp()}
    body["warm"] = warm if source == "sec" else []
    requests.post(f"{url}/_emulator/reset", json=body, timeout=600).raise_for_status()
    folder = scratch / source
    folder.mkdir(exist_ok=True)
    children = {}
    for task in TASKS[source]:
        spec = {
            "source": source,
            "task": task,
            "as_of": as_of.isoformat(),
            "session": as_of.date().isoformat(),
            "run": run.replace(" ", "-"),
            "emulator": url,
            "scratch": str(folder),
        }
        children[task] = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
    tasks = {}
    for task, child in children.items():
        out, err = child.communicate(timeout=1200)
        if child.returncode != 0:
            raise SystemExit(f"{source} {task} ({run}) failed:\n{(out + err)[-3000:]}")
        tasks[task] = json.loads(out.strip().splitlines()[-1])
    # From the first call's start to the last one's end: the processes' start-up is no
    # part of the provider's time.
    wall = max(t["ended"] for t in tasks.values()) - min(t["began"] for t in tasks.values())
    stats = requests.get(f"{url}/_emulator/stats", timeout=10).json()
    return SourceRun(source, run, wall, tasks, stats)


def age_ticker_cache(scratch: Path) -> None:
    """Make the SEC ticker list a day old, as it is at the next day's run."""
    cached = scratch / "sec" / "cache" / sec.TICKERS_CACHE
    if cached.is_file():
        old = time.time() - sec.TICKERS_MAX_AGE_SECONDS - 60
        os.utime(cached, (old, old))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated subset of sec,fred,finnhub,cboe")
    args = parser.parse_args()
    os.environ["ORCHESTRATOR_LOOPBACK_ONLY"] = "1"
    os.environ.update(KEYS)
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0
    sources = args.only.split(",") if args.only else list(TASKS)

    with tempfile.TemporaryDirectory(prefix="bench-daily-sources-") as temp:
        scratch = Path(temp)
        calendar = load_calendar("XNYS", scratch / "calendar")
        for source in sources:  # every worker reads the calendar from its own folder
            (scratch / source).mkdir()
            load_calendar("XNYS", scratch / source / "calendar")
        as_ofs = {run: calendar.hours(day).open for run, day in
                  (("first run", FIRST_DAY), ("next day", NEXT_DAY))}  # fmt: skip
        process, url = start_emulator()
        results: list[SourceRun] = []
        try:
            for source in sources:
                for run, as_of in as_ofs.items():
                    if run == "next day":
                        age_ticker_cache(scratch)
                    found = run_source(source, run, as_of, url, scratch)
                    results.append(found)
                    print(f"  {source} {run}: {found.wall:.1f} s", flush=True)
        finally:
            stop_emulator(process)
    symbols = market_symbols(MARKET_SIZE)[::EVERY]
    fewest = {
        source: dict(
            zip(as_ofs, fewest_requests(source, symbols, list(as_ofs.values())), strict=True)
        )
        for source in sources
    }
    return report(results, fewest)


def refused(stats: dict[str, Any]) -> int:
    return sum(
        count
        for by_status in stats["requests"].values()
        for status, count in by_status.items()
        if status in ("429", "403")
    )


def by_endpoint(stats: dict[str, Any]) -> str:
    parts = []
    for endpoint, by_status in sorted(stats["requests"].items()):
        short = endpoint.split(" ", 1)[1].removeprefix("/api/v1")
        counts = ", ".join(f"{status}: {count}" for status, count in sorted(by_status.items()))
        parts.append(f"{short} ({counts})")
    return "; ".join(parts)


def report(results: Sequence[SourceRun], fewest: dict[str, dict[str, int]]) -> int:
    request_rows, time_rows, verdicts, endpoint_lines, projections = [], [], [], [], []
    all_met = True
    for found in results:
        name = f"{found.source} {found.run}"
        made = sum(task["requests_made"] for task in found.tasks.values())
        least = fewest[found.source][found.run]
        ratio = made / least
        rows = sum(task["rows"] for task in found.tasks.values())
        errors = sum(task["symbol_errors"] for task in found.tasks.values())
        scale = SCALE[found.source]
        rate = scaled(API_RATE[found.source], scale)
        floor = rate.floor_seconds(least)
        transfer = max(task["seconds"] - task["waited"] for task in found.tasks.values())
        waited = max(task["waited"] for task in found.tasks.values())
        bound = WALL_TARGET * floor + transfer
        refusals = refused(found.stats)
        limit = f"{rate.limit}/{rate.window_seconds:g} s" + (f" (x{scale})" if scale > 1 else "")
        request_rows.append([name, made, least, f"{ratio:.2f}", refusals, f"{rows:,}", errors])
        time_rows.append(
            [name, limit, f"{found.wall:.1f}", f"{floor:.1f}",
             f"{found.wall / floor:.2f}" if floor else "-", f"{waited:.1f}", f"{transfer:.1f}",
             f"{bound:.1f}"]
        )  # fmt: skip
        endpoint_lines.append(f"  {name}: {by_endpoint(found.stats)}")
        if scale > 1:
            projections.append(
                f"  {name}: at the real limit the floor is {floor * scale / 60:.1f} min and the "
                f"transfer {transfer:.0f} s ({transfer / (floor * scale):.1%} of it)"
            )
        failures = [f"{task}: {t['failure']}" for task, t in found.tasks.items() if t["failure"]]
        for failure in failures:
            print(f"  FAILED {name} {failure}")
        requests_ok = ratio <= REQUESTS_TARGET and refusals == 0 and not failures
        wall_ok = round(found.wall, 1) <= round(bound, 1)  # at the 0.1 s shown
        all_met &= requests_ok and wall_ok
        verdicts.append(
            verdict(f"{name}: requests", requests_ok,
                    f"{made} made, fewest {least}: {ratio:.2f} x, target <= {REQUESTS_TARGET}; "
                    f"{refusals} refused")
        )  # fmt: skip
        verdicts.append(
            verdict(f"{name}: wall", wall_ok,
                    f"{found.wall:.1f} s, floor {floor:.1f} s ({found.wall / floor:.2f} x); "
                    f"target <= {WALL_TARGET} x floor + transfer {transfer:.1f} s = {bound:.1f} s"
                    if floor else f"{found.wall:.1f} s, no floor; target <= transfer "
                    f"{transfer:.1f} s")
        )  # fmt: skip
        for task, result in found.tasks.items():
            if result["symbol_errors"]:
                print(f"  note: {name} {task}: {result['symbol_errors']} symbol errors, "
                      f"e.g. {result['first_error']}")  # fmt: skip
    print(
        f"Emulated market: {MARKET_SIZE:,} companies; 500 symbols (every {EVERY}th). SEC and "
        "FRED at their real limits, Finnhub 20x and Cboe 60x faster."
    )
    print()
    print(
        table(["requests", "made", "fewest", "ratio", "refused", "rows", "sym err"], request_rows)
    )
    print()
    headers = ["wall time", "limit", "wall s", "floor s", "wall/floor", "waited s", "xfer s"]
    print(table([*headers, "target s"], time_rows))
    print(
        "(floor: least time the fewest requests take under the limit; waited and xfer: the "
        "task that waited longest, and the longest task's wall less its waits; target: "
        f"{WALL_TARGET} x floor + xfer)"
    )
    print("\n".join(projections))
    print()
    print("requests by endpoint:")
    print("\n".join(endpoint_lines))
    print()
    print("\n".join(verdicts))
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
