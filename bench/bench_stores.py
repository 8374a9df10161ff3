"""Benchmark: the stores on PostgreSQL against SQLite, side by side in one run.

Starts a throwaway PostgreSQL with ``scripts/local-postgres`` (stopped after),
then, on fresh databases of each backend, alternately times

- market ingestion: ``collectors.prices_daily.store_bars`` of one year of
  synthetic daily bars (validation, quarantine, one upsert transaction), as
  rows/s, and re-storing the same batch (every row an update);
- the status store's per-job writes: ``mark_started`` + ``record_attempt`` +
  ``record_success``, each its own connection and transaction, as jobs/s.

Prints each figure per backend and the ratio PostgreSQL/SQLite (medians of
``--repeat``). A local server costs a TCP round trip per statement batch that
a SQLite file does not; the target is only that PostgreSQL ingests at least a
tenth as fast (``TARGET`` line), since across machines it is the only choice.
Run: ``python bench/bench_stores.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collectors.context import CollectContext  # noqa: E402
from collectors.market_store import MarketStore  # noqa: E402
from collectors.prices_daily import store_bars  # noqa: E402
from collectors.providers.synthetic import SyntheticProvider  # noqa: E402
from orchestrator.market_calendar import load_calendar  # noqa: E402
from orchestrator.status_store import Attempt, StatusStore  # noqa: E402

TARGET_INGEST_RATIO = 0.10


@contextmanager
def local_postgres() -> Iterator[str]:
    """A running server's URL (its password put in PGPASSWORD), stopped on the way out."""
    script = REPO / "scripts" / "local-postgres"
    env = {**os.environ, "LOCAL_POSTGRES_DIR": tempfile.mkdtemp(prefix="bench-postgres-")}
    up = subprocess.run([script, "up"], env=env, capture_output=True, text=True, check=False)
    if up.returncode != 0:
        raise SystemExit(f"scripts/local-postgres up failed: {up.stderr.strip()}")
    try:
        password = (Path(env["LOCAL_POSTGRES_DIR"]) / "password").read_text().strip()
        os.environ["PGPASSWORD"] = password
        yield up.stdout.strip()
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, check=False)


def fresh_database(server_url: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--jobs", type=int, default=200, help="status-store jobs per repeat")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, local_postgres() as server:
        root = Path(scratch)
        calendar = load_calendar("XNYS", root / "cache")
        last = calendar.previous_session(date(2026, 11, 20))
        sessions = calendar.sessions_in_range(date(2025, 1, 1), last)[-args.sessions :]
        provider = SyntheticProvider(seed=42, universe_size=args.symbols, calendar=calendar)
        symbols = list(provider.universe(calendar.hours(last).close)["symbol"])
        frame = provider.daily_bars(symbols, sessions)
        session = calendar.next_session(last)
        opens = calendar.hours(session).open
        context = CollectContext(
            task="prices_daily",
            session=session,
            as_of=opens,
            now=opens,
            market_db=root / "unused.db",
            calendar=calendar,
            provider_settings={"name": "synthetic"},
        )
        ingest: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        restore: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        jobs: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        for attempt in range(args.repeat):
            for backend in ("sqlite", "postgresql"):
                market = (
                    str(root / f"market-{attempt}.db")
                    if backend == "sqlite"
                    else fresh_database(server)
                )
                with MarketStore(market) as store:
                    started = time.perf_counter()
                    outcome = store_bars(store, context, frame, symbols)
                    ingest[backend].append(len(frame) / (time.perf_counter() - started))
                    assert outcome.written == len(frame), outcome
                    started = time.perf_counter()
                    store_bars(store, context, frame, symbols)
                    restore[backend].append(len(frame) / (time.perf_counter() - started))
                status = StatusStore(
                    root / f"status-{attempt}.db" if backend == "sqlite" else fresh_database(server)
                )
                started = time.perf_counter()
                for number in range(args.jobs):
                    task = f"task_{number % 12}"
                    begun = opens + timedelta(seconds=number)
                    status.mark_started(task, begun)
                    status.record_attempt(Attempt(task, str(session), 1, begun, begun, "success"))
                    status.record_success(task, begun, begun + timedelta(seconds=1), 10)
                jobs[backend].append(args.jobs / (time.perf_counter() - started))

    print(f"rows: {len(frame)} ({args.symbols} symbols x {len(sessions)} sessions)")
    print(f"{'figure (median)':<34}{'SQLite':>12}{'PostgreSQL':>12}{'ratio':>8}")
    ratios = {}
    for label, figures in (
        ("market ingestion, rows/s", ingest),
        ("market re-store (updates), rows/s", restore),
        ("status store, jobs/s", jobs),
    ):
        sqlite, postgres = (
            statistics.median(figures["sqlite"]),
            statistics.median(figures["postgresql"]),
        )
        ratios[label] = postgres / sqlite
        print(f"{label:<34}{sqlite:>12,.0f}{postgres:>12,.0f}{postgres / sqlite:>8.2f}")
    ratio = ratios["market ingestion, rows/s"]
    met = ratio >= TARGET_INGEST_RATIO
    print(
        f"TARGET PostgreSQL/SQLite ingestion ratio {ratio:.2f} "
        f"(>= {TARGET_INGEST_RATIO:.2f}): {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
