"""Benchmark: the dashboard's pages and API with 100,000 attempts in the history.

Builds a throw-away project with the shipped ``config.yaml`` (its 15 tasks)
and a history as the pipeline makes it: every session, one attempt per daily
task (3 % failing and retried) and the intraday loop's slots (price_data every
minute, features and signals every five), going back from a pinned moment
until ``--attempts`` rows; a market database with 50 symbols' daily bars for
those sessions and five sessions of minute bars. Then serves the dashboard
with uvicorn on 127.0.0.1 (a free port) and times each page and API endpoint
over HTTP, interleaved, ``--repeat`` times after a warm-up. The dashboard's
clock moves one second at every reading (each request reads it once), so no
request reuses another's health report (the app keeps one per second): the
figures are those of a dashboard computing each answer.

    .venv/bin/python bench/bench_web.py [--repeat 15] [--attempts 100000] [--keep]

Target: the median of every page and every API endpoint at most 200 ms
(``/metrics``, which aggregates the whole history, is shown but not part of
the target). Exit status: 0 when met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from common import REPO, median, table, verdict, write_status_history

from orchestrator.market_calendar import MarketCalendar, load_calendar
from orchestrator.web.app import create_app
from orchestrator.web.server import BackgroundServer

TARGET_MS = 200.0
ET = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 30, 14, 0, tzinfo=ET)  # a Monday afternoon: the loop is ticking
SYMBOLS = [f"S{index:02d}" for index in range(50)]
PAGES = ["/", "/sources", "/tasks", "/graph", "/data", "/run?task=prices_daily&period=2026-11-30"]
API = [
    "/api/health",
    "/api/overview",
    "/api/tasks",
    "/api/runs?family=daily",
    "/api/runs?family=intraday",
    "/api/attempts",
    "/api/attempts?task=price_data",
    "/api/attempts?task=prices_daily&period=2026-11-30",
    "/api/quarantine",
    "/api/data",
    "/api/graph",
]
OTHER = ["/metrics"]


class SteppingClock:
    """``NOW``, then one second later at each call: no two requests share a second."""

    def __init__(self) -> None:
        self._seconds = itertools.count()
        self._lock = threading.Lock()  # endpoints run in uvicorn's thread pool

    def __call__(self) -> datetime:
        with self._lock:
            return NOW.astimezone(UTC) + timedelta(seconds=next(self._seconds))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _session_attempts(
    session: date, calendar: MarketCalendar, rng: random.Random, until: datetime
) -> list[tuple[object, ...]]:
    """One session's attempts: the daily run at the open, then the intraday slots."""
    from tests.workflow_project import project_config

    tasks = project_config()["tasks"]
    daily = [name for name, task in tasks.items() if task["family"] == "daily"]
    hours = calendar.hours(session)
    made: list[tuple[object, ...]] = []
    moment = hours.open + timedelta(seconds=5)
    for task in daily:
        for attempt in (1, 2) if rng.random() < 0.03 else (1,):
            seconds = rng.uniform(0.3, 12.0)
            outcome = "transient" if attempt == 1 and rng.random() < 0.9 else "success"
            made.append((task, str(session), attempt, _iso(moment),
                         _iso(moment + timedelta(seconds=seconds)), seconds, outcome,
                         None if outcome == "success" else "provider down: HTTP 503",
                         500, 0, None))  # fmt: skip
            moment += timedelta(seconds=seconds + 1)
    slot = hours.open
    while slot < min(hours.close, until):
        local = slot.astimezone(ET)
        period = f"{session}/{local:%H%M}"
        names = ["price_data"] + (
            ["intraday_features", "intraday_signals"] if local.minute % 5 == 0 else []
        )
        start = slot + timedelta(seconds=3)
        for task in names:
            seconds = rng.uniform(0.4, 4.0)
            made.append((task, period, 1, _iso(start), _iso(start + timedelta(seconds=seconds)),
                         seconds, "success", None, 50, 0, None))  # fmt: skip
            start += timedelta(seconds=seconds)
        slot += timedelta(minutes=1)
    return made


def build_project(root: Path, attempts: int) -> int:
    """The shipped config, a history of ``attempts`` rows up to ``NOW``, a market DB."""
    from collectors.market_store import MarketStore

    shutil.copy(REPO / "config.yaml", root / "config.yaml")
    state = root / "state"
    calendar = load_calendar("XNYS", state / "cache")
    rng = random.Random(7)
    sessions = list(reversed(calendar.sessions_in_range(date(2025, 1, 2), NOW.date())))
    history: list[tuple[object, ...]] = []
    used: list[date] = []
    for session in sessions:
        if len(history) >= attempts:
            break
        history = _session_attempts(session, calendar, rng, NOW) + history
        used.append(session)
    history = history[-attempts:]
    write_status_history(state / "status.db", history)
    with MarketStore(state / "market.db") as market, market.transaction():
        connection = market.connection
        listed = int((NOW - timedelta(days=400)).timestamp())
        connection.executemany(
            "INSERT INTO assets VALUES (?, ?, 'Tech', 'Software', 'XNAS', ?, ?)",
            [(symbol, symbol, listed, int(NOW.timestamp()) - 3600) for symbol in SYMBOLS],
        )
        for symbol in SYMBOLS:
            close = 100.0
            daily = []
            for session in reversed(used[1:]):  # every session before today's
                close *= 1 + rng.gauss(0, 0.01)
                stamp = int(calendar.hours(session).close.timestamp())
                daily.append((symbol, str(session), close, close, close, close, 1e6, 1, 0, stamp))
            connection.executemany(
                "INSERT INTO prices_daily VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", daily
            )
            bars = []
            for session in used[:5]:
                hours = calendar.hours(session)
                bar = hours.open
                while bar < min(hours.close, NOW):
                    close *= 1 + rng.gauss(0, 0.001)
                    stamp = int(bar.timestamp())
                    bars.append((symbol, str(session), stamp, close, close, close, close, 100,
                                 stamp + 60))  # fmt: skip
                    bar += timedelta(minutes=1)
            connection.executemany(
                "INSERT INTO intraday_bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", bars
            )
        connection.executemany(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    "prices_daily",
                    "prices_daily",
                    f"S00|{index}",
                    "negative volume",
                    "{}",
                    int(NOW.timestamp()) - index,
                )
                for index in range(500)
            ],
        )
    return len(history)


def time_endpoints(base_url: str, paths: list[str], repeat: int) -> dict[str, list[float]]:
    """Milliseconds of each GET, interleaved, after one warm-up round."""
    import httpx

    times: dict[str, list[float]] = {path: [] for path in paths}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for round_number in range(repeat + 1):
            for path in paths:
                started = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:500]}")
                if round_number:  # the first round warms templates, caches and pages
                    times[path].append(elapsed)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the temp project")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-web-"))
    try:
        started = time.perf_counter()
        count = build_project(root, args.attempts)
        print(f"project: {root} ({count} attempts, built in {time.perf_counter() - started:.1f}s)")
        app = create_app(root / "config.yaml", base_dir=root, clock=SteppingClock())
        with BackgroundServer(app) as server:
            times = time_endpoints(server.url, PAGES + API + OTHER, args.repeat)
        rows = [
            (path, f"{median(values):.1f}", f"{min(values):.1f}", f"{max(values):.1f}")
            for path, values in times.items()
        ]
        print(table(("GET", "median ms", "min ms", "max ms"), rows))
        pages = max(PAGES, key=lambda path: median(times[path]))
        api = max(API, key=lambda path: median(times[path]))
        page_ms, api_ms = median(times[pages]), median(times[api])
        metrics_ms = median(times["/metrics"])
        print(f"/metrics (whole-history aggregates, not in the target): {metrics_ms:.1f} ms")
        target = f"target <= {TARGET_MS:.0f} ms"
        page_detail = f"slowest page {pages} {page_ms:.0f} ms, {target}"
        api_detail = f"slowest API {api} {api_ms:.0f} ms, {target}"
        print(verdict("web_pages", page_ms <= TARGET_MS, page_detail))
        print(verdict("web_api", api_ms <= TARGET_MS, api_detail))
        return 0 if max(page_ms, api_ms) <= TARGET_MS else 1
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
