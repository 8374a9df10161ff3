"""The status store: counters, history, redaction, and concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.status_store import (
    MAX_ERROR_LENGTH,
    Attempt,
    StatusStore,
    clean_error,
)

# The seed's status values, as other tools reading data_pipeline_status expect them.
RUNNING, SUCCESS, DEGRADED, FAILED = ("RUNNING", "SUCCESS", "DEGRADED", "FAILED")

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
CANARY = "canary-123456"


@pytest.fixture
def store(tmp_path: Path) -> StatusStore:
    return StatusStore(tmp_path / "state" / "status.db")


def run(store: StatusStore, task: str, start: datetime, seconds: float, ok: bool) -> None:
    store.mark_started(task, start)
    end = start + timedelta(seconds=seconds)
    if ok:
        store.record_success(task, start, end, records_processed=5)
    else:
        store.record_failure(task, end, "provider down")


def row(store: StatusStore, task: str) -> dict:
    return store.task_statuses()[task]


def test_schema_keeps_the_seed_table_and_wal(store: StatusStore) -> None:
    with sqlite3.connect(store.path) as connection:
        columns = [r[1] for r in connection.execute("PRAGMA table_info(data_pipeline_status)")]
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert columns == [
        "task_name", "last_run_start", "last_run_end", "last_success", "last_failure",
        "consecutive_failures", "total_runs", "total_successes", "total_failures",
        "last_error_message", "last_records_processed", "average_runtime_seconds", "status",
        "created_at", "updated_at",
    ]  # fmt: skip
    assert mode == "wal"
    StatusStore(store.path)  # opening again is harmless


def test_mark_started_creates_a_running_row(store: StatusStore) -> None:
    store.mark_started("prices", T0)
    status = row(store, "prices")
    assert status["status"] == RUNNING
    assert status["last_run_start"] == "2026-11-20T14:30:00+00:00"
    assert (status["total_runs"], status["total_successes"], status["total_failures"]) == (0, 0, 0)
    assert status["consecutive_failures"] == 0


def test_mark_started_never_resets_counters(store: StatusStore) -> None:
    run(store, "prices", T0, 10, ok=True)
    run(store, "prices", T0 + timedelta(hours=1), 10, ok=False)
    run(store, "prices", T0 + timedelta(hours=2), 10, ok=False)
    before = row(store, "prices")

    later = T0 + timedelta(days=1)
    store.mark_started("prices", later)
    after = row(store, "prices")

    for key in (
        "total_runs", "total_successes", "total_failures", "consecutive_failures",
        "average_runtime_seconds", "last_success", "last_failure", "last_error_message",
        "last_records_processed", "created_at",
    ):  # fmt: skip
        assert after[key] == before[key], key
    assert (after["total_runs"], after["consecutive_failures"]) == (3, 2)
    assert after["last_run_start"] == later.isoformat()
    assert after["status"] == RUNNING


def test_success_and_failure_counters(store: StatusStore) -> None:
    outcomes = [False, False, True, False, True, True, False, False, False]
    for number, ok in enumerate(outcomes):
        run(store, "news", T0 + timedelta(minutes=number), 1, ok)
    status = row(store, "news")
    assert status["total_runs"] == len(outcomes)
    assert status["total_successes"] == outcomes.count(True)
    assert status["total_failures"] == outcomes.count(False)
    assert status["consecutive_failures"] == 3
    assert status["status"] == FAILED
    assert status["last_error_message"] == "provider down"
    assert status["last_success"] == (T0 + timedelta(minutes=5, seconds=1)).isoformat()
    assert status["last_failure"] == (T0 + timedelta(minutes=8, seconds=1)).isoformat()

    run(store, "news", T0 + timedelta(hours=1), 1, ok=True)
    status = row(store, "news")
    assert status["consecutive_failures"] == 0
    assert status["status"] == SUCCESS
    assert status["last_records_processed"] == 5


def test_average_runtime_covers_successful_runs(store: StatusStore) -> None:
    run(store, "assets", T0, 10, ok=True)
    assert row(store, "assets")["average_runtime_seconds"] == pytest.approx(10)
    run(store, "assets", T0 + timedelta(hours=1), 500, ok=False)
    run(store, "assets", T0 + timedelta(hours=2), 20, ok=True)
    run(store, "assets", T0 + timedelta(hours=3), 45, ok=True)
    assert row(store, "assets")["average_runtime_seconds"] == pytest.approx(25)


def test_degraded_success(store: StatusStore) -> None:
    store.mark_started("signals", T0)
    store.record_success("signals", T0, T0 + timedelta(seconds=3), 9, degraded=True)
    status = row(store, "signals")
    assert status["status"] == DEGRADED
    assert (status["total_successes"], status["consecutive_failures"]) == (1, 0)


def test_outcome_without_a_recorded_start_still_counts(store: StatusStore) -> None:
    # A runner stopped before it marked the start (e.g. while waiting for its
    # not-before time) still records the failure.
    store.record_failure("earnings", T0, "interrupted by SIGTERM")
    store.record_success("assets", T0, T0 + timedelta(seconds=2), 1)
    assert row(store, "earnings")["total_failures"] == 1
    assert row(store, "earnings")["total_runs"] == 1
    assert row(store, "assets")["total_successes"] == 1


def test_attempt_history(store: StatusStore) -> None:
    for number, outcome in enumerate(["transient", "timeout", "success"], start=1):
        start = T0 + timedelta(seconds=100 * number)
        store.record_attempt(
            Attempt(
                task_name="prices",
                period="2026-11-20",
                attempt=number,
                started_at=start,
                finished_at=start + timedelta(seconds=7),
                outcome=outcome,
                error_message=None if outcome == "success" else f"{outcome} problem",
                records_processed=4 if outcome == "success" else None,
                data_as_of=T0 if outcome == "success" else None,
            )
        )
    store.record_attempt(Attempt("other", "2026-11-20", 1, T0, T0, "success"))
    history = store.attempts("prices")
    assert [a["outcome"] for a in history] == ["transient", "timeout", "success"]
    assert [a["attempt"] for a in history] == [1, 2, 3]
    assert all(a["duration_seconds"] == 7 for a in history)
    assert history[0]["error_message"] == "transient problem"
    assert history[2]["records_processed"] == 4
    assert history[2]["data_as_of"] == T0.isoformat()
    assert len(store.attempts()) == 4


def test_naive_times_are_refused(store: StatusStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.mark_started("prices", datetime(2026, 11, 20, 9, 30))  # noqa: DTZ001


def test_error_messages_are_truncated_to_one_line(store: StatusStore) -> None:
    message = "Traceback:\n  line one\n\tline two\n" + "x" * 2000
    store.mark_started("news", T0)
    store.record_failure("news", T0, message)
    stored = row(store, "news")["last_error_message"]
    assert len(stored) == MAX_ERROR_LENGTH
    assert "\n" not in stored and "\t" not in stored
    assert stored.startswith("Traceback: line one line two xxx")
    assert stored.endswith("…")
    assert clean_error("short") == "short"


def test_secret_values_are_never_stored(
    store: StatusStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTH_API_KEY", CANARY)
    message = f"GET https://api.example/q?apikey={CANARY} returned 401 for key {CANARY}"
    store.mark_started("news", T0)
    store.record_attempt(Attempt("news", "2026-11-20", 1, T0, T0, "permanent", message))
    store.record_failure("news", T0, message)
    # Redaction happens before truncation, so a secret at the cut is not half kept.
    store.record_failure("news", T0, "y" * (MAX_ERROR_LENGTH - 5) + CANARY)

    assert "***" in store.attempts("news")[0]["error_message"]
    assert "apikey=***" in clean_error(message)
    with sqlite3.connect(store.path) as connection:
        dump = "\n".join(connection.iterdump())
    assert "canary" not in dump  # not even part of it
    for path in store.path.parent.glob("status.db*"):
        assert CANARY.encode() not in path.read_bytes(), path.name


# -- concurrency ------------------------------------------------------------------

WORKERS = 4
RUNS_PER_WORKER = 40
TASKS = ("prices", "news")


def _worker(path: str, worker: int, barrier, errors) -> None:  # type: ignore[no-untyped-def]
    try:
        barrier.wait(timeout=30)
        store = StatusStore(Path(path))  # the file is created by whichever gets there first
        for number in range(RUNS_PER_WORKER):
            task = TASKS[number % len(TASKS)]
            start = T0 + timedelta(seconds=worker * 1000 + number)
            store.mark_started(task, start)
            ok = (number + worker) % 3 != 0
            store.record_attempt(
                Attempt(task, "2026-11-20", 1, start, start, "success" if ok else "transient")
            )
            if ok:
                store.record_success(task, start, start + timedelta(seconds=2), 1)
            else:
                store.record_failure(task, start, f"worker {worker} run {number}")
            store.task_statuses()
    except BaseException:
        errors.put(f"worker {worker}: {traceback.format_exc()}")


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "status.db"
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WORKERS)
    errors = context.Queue()
    workers = [
        context.Process(target=_worker, args=(str(path), n, barrier, errors))
        for n in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    assert [process.exitcode for process in workers] == [0] * WORKERS

    store = StatusStore(path)
    statuses = store.task_statuses()
    expected_failures = {task: 0 for task in TASKS}
    for worker in range(WORKERS):
        for number in range(RUNS_PER_WORKER):
            if (number + worker) % 3 == 0:
                expected_failures[TASKS[number % len(TASKS)]] += 1
    for task in TASKS:
        status = statuses[task]
        assert status["total_runs"] == WORKERS * RUNS_PER_WORKER // len(TASKS)
        assert status["total_runs"] == status["total_successes"] + status["total_failures"]
        assert status["total_failures"] == expected_failures[task]
        assert status["average_runtime_seconds"] == pytest.approx(2)
    assert len(store.attempts()) == WORKERS * RUNS_PER_WORKER
