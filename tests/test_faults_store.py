"""The data and status stores under faults: a writer killed mid-batch, a locked database,
four writers at once.

Cases 1, 5 and 12 of the reliability suite. Case 1 kills a task with SIGKILL
inside its batch transaction and proves the batch is all or nothing and the
next run redoes it; case 5 holds both databases locked for seconds while a
real collector runs; case 12 hammers both stores from four processes.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from collectors.market_store import MarketStore
from orchestrator.config import Config, build_config
from orchestrator.pipeline import Period
from orchestrator.status_store import Attempt, StatusStore
from orchestrator.task_runner import RunReport
from tests.helpers import run_once

pytestmark = pytest.mark.faults

SESSION = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 15, 8, tzinfo=UTC)
OPEN_TS = int(datetime(2026, 11, 20, 14, 30, tzinfo=UTC).timestamp())
BATCH = 2000

# A user script writing one batch of bars; with the kill flag present it SIGKILLs
# itself in the middle of the batch's transaction (after 1000 of 2000 rows).
KILLED_WRITER = """\
import os, signal, sys
import pandas as pd
from collectors.market_store import MarketStore

kill_flag, open_ts, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bars = pd.DataFrame({
    "symbol": [f"S{i % 20:02d}" for i in range(count)],
    "session": "2026-11-20",
    "bar_ts": [open_ts + 60 * (i // 20) for i in range(count)],
    "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0,
    "available_ts": [open_ts + 60 * (i // 20 + 1) for i in range(count)],
})


class KillingConnection:
    def __init__(self, inner):
        self.inner = inner

    def executemany(self, sql, rows):
        def rows_then_kill():
            for number, row in enumerate(rows):
                if number == count // 2 and os.path.exists(kill_flag):
                    os.kill(os.getpid(), signal.SIGKILL)
                yield row
        return self.inner.executemany(sql, rows_then_kill())

    def __getattr__(self, name):
        return getattr(self.inner, name)


store = MarketStore(os.environ["ORCHESTRATOR_MARKET_DB"])
store.connection = KillingConnection(store.connection)
written = store.upsert("intraday_bars", bars)
with open(os.environ["ORCHESTRATOR_RESULT_FILE"], "w") as out:
    out.write('{"records_processed": %d}' % written)
"""


def run(config: Config, task: str) -> tuple[RunReport, Path]:
    report, output, _ = run_once(config, task, Period(SESSION), NOW)
    return report, output


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute(sql).fetchone()[0])


# -- case 1: SIGKILL in the middle of a batch ----------------------------------------------


def test_a_task_killed_mid_batch_leaves_no_partial_rows_and_the_next_run_redoes_it(
    base: Path,
) -> None:
    script = base / "killed_writer.py"
    script.write_text(KILLED_WRITER)
    kill_flag = base / "kill-me"
    kill_flag.touch()
    task = {
        "family": "daily",
        "script": str(script),
        "args": [str(kill_flag), str(OPEN_TS), str(BATCH)],
        "critical": True,
        "retry": {"attempts": 1},
    }
    config = build_config({"tasks": {"prices_daily": task}}, "kill.yaml", base)
    MarketStore(config.market_db).close()  # the schema exists, as after any earlier run

    report, output = run(config, "prices_daily")

    assert (report.status, report.exit_code, report.error) == ("failed", 1, "killed by signal 9")
    assert count(config.market_db, "SELECT COUNT(*) FROM intraday_bars") == 0  # all or nothing
    with sqlite3.connect(config.market_db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not output.exists()
    status = StatusStore(config.status_db).task_statuses()["prices_daily"]
    assert (status["status"], status["total_failures"]) == ("FAILED", 1)
    assert status["last_error_message"] == "killed by signal 9"

    kill_flag.unlink()  # the fault is gone; the next run needs no manual step
    report, output = run(config, "prices_daily")
    assert (report.status, report.exit_code) == ("success", 0)
    assert count(config.market_db, "SELECT COUNT(*) FROM intraday_bars") == BATCH
    assert json.loads(output.read_text())["records_processed"] == BATCH
    status = StatusStore(config.status_db).task_statuses()["prices_daily"]
    assert (status["status"], status["total_runs"], status["consecutive_failures"]) == (
        "SUCCESS",
        2,
        0,
    )


# -- case 5: another writer holds the databases for seconds ---------------------------------


def hold_write_lock(db: Path, seconds: float, held: threading.Event) -> threading.Thread:
    def holder() -> None:
        connection = sqlite3.connect(db, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    return thread


def test_a_database_locked_by_another_writer_for_seconds_makes_the_task_wait_not_fail(
    base: Path,
) -> None:
    raw = {
        "provider": {"name": "synthetic", "seed": 42, "universe_size": 5},
        "tasks": {"assets": {"family": "daily", "collector": "assets", "critical": True}},
    }
    config = build_config(raw, "locked.yaml", base)
    MarketStore(config.market_db).close()
    StatusStore(config.status_db)
    market_held, status_held = threading.Event(), threading.Event()
    holders = [
        hold_write_lock(config.market_db, 3.0, market_held),
        hold_write_lock(config.status_db, 1.5, status_held),
    ]
    assert market_held.wait(5) and status_held.wait(5)
    started = time.monotonic()

    report, output = run(config, "assets")

    assert time.monotonic() - started >= 2.9  # it waited for the other writer
    for holder in holders:
        holder.join(timeout=10)
    assert (report.status, report.attempts) == ("success", 1)
    assert count(config.market_db, "SELECT COUNT(*) FROM assets") == 5
    assert json.loads(output.read_text())["records_processed"] == 5
    status = StatusStore(config.status_db).task_statuses()["assets"]
    assert (status["total_runs"], status["total_successes"]) == (1, 1)


# -- case 12: four writers at once, many times ------------------------------------------------

WRITERS = 4
ROUNDS = 40
ROWS = 50


def _writer(args: tuple[str, str, int]) -> None:
    market_db, status_db, worker = args
    store = StatusStore(Path(status_db))
    task = f"task_{worker}"
    for round_number in range(ROUNDS):
        start = datetime(2026, 11, 20, 15, 0, tzinfo=UTC) + timedelta(seconds=round_number)
        store.mark_started(task, start)
        bars = pd.DataFrame(
            {
                "symbol": f"W{worker}",
                "session": "2026-11-20",
                "bar_ts": [OPEN_TS + 60 * (round_number * ROWS + i) for i in range(ROWS)],
                "open": 10.0,
                "high": 11.0,
                "low": 9.0,
                "close": 10.5,
                "volume": 100.0,
                "available_ts": OPEN_TS,
            }
        )
        with MarketStore(Path(market_db)) as market:
            outcome = market.store(task, "intraday_bars", bars, as_of=start)
        store.record_attempt(
            Attempt(task, str(round_number), 1, start, start, "success", None, outcome.written)
        )
        store.record_success(task, start, start, outcome.written)
        store.record_failure(f"shared_{round_number % 2}", start, "counted, not lost")


def test_four_parallel_writers_repeated_lose_no_row_and_no_count(tmp_path: Path) -> None:
    market_db, status_db = tmp_path / "market.db", tmp_path / "status.db"
    MarketStore(market_db).close()
    StatusStore(status_db)
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        pool.map(_writer, [(str(market_db), str(status_db), w) for w in range(WRITERS)])

    assert count(market_db, "SELECT COUNT(*) FROM intraday_bars") == WRITERS * ROUNDS * ROWS
    for worker in range(WRITERS):
        assert (
            count(market_db, f"SELECT COUNT(*) FROM intraday_bars WHERE symbol = 'W{worker}'")
            == ROUNDS * ROWS
        )
    assert count(market_db, "SELECT COUNT(*) FROM quarantine") == 0
    store = StatusStore(status_db)
    statuses = store.task_statuses()
    for worker in range(WRITERS):
        row: dict[str, Any] = statuses[f"task_{worker}"]
        assert (row["total_runs"], row["total_successes"], row["total_failures"]) == (
            ROUNDS,
            ROUNDS,
            0,
        )
        assert row["last_records_processed"] == ROWS
    shared = sum(statuses[f"shared_{i}"]["total_failures"] for i in range(2))
    assert shared == WRITERS * ROUNDS
    assert len(store.attempts()) == WRITERS * ROUNDS
    assert sum(a["records_processed"] for a in store.attempts()) == WRITERS * ROUNDS * ROWS
