"""Benchmark: the prices_daily storing path against a bare sqlite3 executemany.

Generates one year of synthetic daily bars for 500 symbols, then, in the same
run and on fresh database files with the same schema, times

- ``store``: ``collectors.prices_daily.store_bars`` (validation, quarantine,
  sort, ``INSERT OR REPLACE`` in one transaction) from the DataFrame;
- ``bare``: ``executemany`` of the same rows, prepared as tuples beforehand,
  into the same table in one transaction.

Prints rows/s for both and their ratio (target >= 0.5). Best of ``--repeat``.
Run: ``python bench/bench_ingest.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.context import CollectContext
from collectors.market_store import TABLES, MarketStore
from collectors.prices_daily import store_bars
from collectors.providers.synthetic import SyntheticProvider
from orchestrator.market_calendar import load_calendar


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=252)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        calendar = load_calendar("XNYS", root / "cache")
        last = calendar.previous_session(date(2026, 11, 20))
        sessions = calendar.sessions_in_range(date(2025, 1, 1), last)[-args.sessions :]
        provider = SyntheticProvider(seed=42, universe_size=args.symbols, calendar=calendar)
        symbols = list(provider.universe(calendar.hours(last).close)["symbol"])
        started = time.perf_counter()
        frame = provider.daily_bars(symbols, sessions)
        generate_seconds = time.perf_counter() - started
        spec = TABLES["prices_daily"]
        rows = list(frame[list(spec.column_names)].itertuples(index=False, name=None))
        insert = (
            f"INSERT OR REPLACE INTO prices_daily ({', '.join(spec.column_names)}) "
            f"VALUES ({', '.join('?' * len(spec.column_names))})"
        )
        context = CollectContext(
            task="prices_daily",
            session=calendar.next_session(last),
            as_of=calendar.hours(calendar.next_session(last)).open,
            now=calendar.hours(calendar.next_session(last)).open,
            market_db=root / "unused.db",
            calendar=calendar,
            provider_settings={"name": "synthetic"},
        )

        store_times, bare_times = [], []
        for attempt in range(args.repeat):
            with MarketStore(root / f"store-{attempt}.db") as store:
                started = time.perf_counter()
                outcome = store_bars(store, context, frame, symbols)
                store_times.append(time.perf_counter() - started)
                assert outcome.written == len(frame), outcome
            with MarketStore(root / f"bare-{attempt}.db") as store:
                started = time.perf_counter()
                store.connection.execute("BEGIN IMMEDIATE")
                store.connection.executemany(insert, rows)
                store.connection.execute("COMMIT")
                bare_times.append(time.perf_counter() - started)

    count = len(frame)
    store_rate, bare_rate = count / min(store_times), count / min(bare_times)
    print(f"rows: {count} ({args.symbols} symbols x {len(sessions)} sessions)")
    print(f"synthetic generation: {generate_seconds:.3f} s")
    print(f"{'path':<28}{'best s':>10}{'rows/s':>14}")
    print(f"{'prices_daily store_bars':<28}{min(store_times):>10.3f}{store_rate:>14,.0f}")
    print(f"{'bare sqlite3 executemany':<28}{min(bare_times):>10.3f}{bare_rate:>14,.0f}")
    print(f"ratio store/bare: {store_rate / bare_rate:.2f} (target >= 0.50)")
    return 0 if store_rate / bare_rate >= 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
