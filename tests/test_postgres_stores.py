"""The status and market stores keep their guarantees on PostgreSQL as on SQLite.

Each guarantee runs on both backends (``backend`` is parametrised): the
seed's ``data_pipeline_status`` columns, counters a start never resets, four
processes marking results at once losing no count, idempotent upserts on the
natural key, one transaction per batch, the quarantine, SQLite-style
placeholders. The server is a real PostgreSQL (``scripts/local-postgres``,
the session fixture ``postgres_server``); each test gets a database of its own.
Then credentials: the password only ever comes from the environment and is
written nowhere. Last, a real daily run of the synthetic market with both
stores on PostgreSQL stores exactly what the same run on SQLite stores.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
import subprocess
import sys
import traceback
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import PostgresServer
from helpers import fixture
from workflow_project import (
    DAILY_TASKS,
    FRIDAY_MORNING,
    daily_sentinel,
    make_project,
    project_config,
    snakemake,
)

from collectors.market_store import QUARANTINE_SQL, TABLES, MarketStore
from orchestrator import alerts, database
from orchestrator.config import build_config, load_config
from orchestrator.errors import ConfigError
from orchestrator.run_summary import daily_summary
from orchestrator.status_store import Attempt, StatusStore
from orchestrator.web import history, market_data

pytestmark = pytest.mark.postgres
TABLE_INFOS = market_data.market_tables()

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
AS_OF_TS = int(T0.timestamp())
SEED_COLUMNS = [
    "task_name", "last_run_start", "last_run_end", "last_success", "last_failure",
    "consecutive_failures", "total_runs", "total_successes", "total_failures",
    "last_error_message", "last_records_processed", "average_runtime_seconds", "status",
    "created_at", "updated_at",
]  # fmt: skip


def new_database(server: PostgresServer) -> str:
    """The URL of a fresh, empty database on ``server``."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, password=server.password, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database's URL; its password is in PGPASSWORD, as an operator would set it."""
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    return new_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> database.StoreURL:
    """Where a test's store lives: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return database.store_url(f"sqlite:///{tmp_path}/store.db")
    return database.store_url(request.getfixturevalue("postgres_url"))


def column_names(store: database.StoreURL, table: str) -> list[str]:
    connection = database.open_store(store)
    try:
        cursor = connection.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        return [column[0] for column in cursor.description]
    finally:
        connection.close()


def rows(store: database.StoreURL, sql: str) -> list[tuple[Any, ...]]:
    connection = database.open_store(store, readonly=True)
    try:
        return [tuple(row) for row in connection.execute(sql).fetchall()]
    finally:
        connection.close()


# -- the status store ---------------------------------------------------------


def test_the_status_store_keeps_the_seed_table_and_never_resets_counters(backend):
    store = StatusStore(backend)
    StatusStore(backend)  # creating the schema again is harmless
    assert column_names(backend, "data_pipeline_status") == SEED_COLUMNS

    store.mark_started("prices", T0)
    store.record_success("prices", T0, T0 + timedelta(seconds=4), records_processed=7)
    store.mark_started("prices", T0 + timedelta(hours=1))
    store.record_failure("prices", T0 + timedelta(hours=1, seconds=2), "provider down")
    store.mark_started("prices", T0 + timedelta(hours=2))
    row = store.task_statuses()["prices"]

    assert (row["total_runs"], row["total_successes"], row["total_failures"]) == (2, 1, 1)
    assert row["consecutive_failures"] == 1
    assert row["status"] == "RUNNING"
    assert row["last_success"] == (T0 + timedelta(seconds=4)).isoformat()
    assert row["average_runtime_seconds"] == pytest.approx(4.0)
    assert row["last_error_message"] == "provider down"
    assert not store.mark_started("prices", T0)  # a replay of an earlier moment changes nothing


WORKERS = 4
RUNS_PER_WORKER = 25
TASKS = ("prices", "news")


def _mark_results(url: str, worker: int, barrier: Any, errors: Any) -> None:
    try:
        barrier.wait(timeout=60)
        store = StatusStore(url)  # the schema is created by whichever gets there first
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
    except BaseException:
        errors.put(f"worker {worker}: {traceback.format_exc()}")


def test_four_processes_marking_results_at_once_lose_no_count(backend):
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WORKERS)
    errors = context.Queue()
    url = str(backend.path) if backend.path else backend.url
    workers = [
        context.Process(target=_mark_results, args=(url, n, barrier, errors))
        for n in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    assert [process.exitcode for process in workers] == [0] * WORKERS

    store = StatusStore(backend)
    statuses = store.task_statuses()
    for task in TASKS:
        numbers = [
            (worker, number)
            for worker in range(WORKERS)
            for number in range(RUNS_PER_WORKER)
            if TASKS[number % len(TASKS)] == task
        ]
        failures = sum(1 for worker, number in numbers if (number + worker) % 3 == 0)
        row = statuses[task]
        assert row["total_runs"] == len(numbers)
        assert row["total_failures"] == failures
        assert row["total_successes"] == len(numbers) - failures
        assert row["average_runtime_seconds"] == pytest.approx(2.0)
    assert len(store.attempts()) == WORKERS * RUNS_PER_WORKER


# -- the market store ---------------------------------------------------------


def daily_bars(close: float = 10.5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": ["S2", "S0", "S1"],
            "session": "2026-11-19",
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": close,
            "volume": [1000.0, 2000.0, 3000.0],
            "split_ratio": 1.0,
            "dividend": 0.0,
            "available_ts": AS_OF_TS - 3600,
        }
    )


def test_market_upserts_are_idempotent_on_the_natural_key(backend):
    with MarketStore(backend) as store:
        first = store.store("prices_daily", "prices_daily", daily_bars(), as_of=T0)
        again = store.store("prices_daily", "prices_daily", daily_bars(), as_of=T0)
        revised = store.store("prices_daily", "prices_daily", daily_bars(close=10.75), as_of=T0)
        stored = store.query("SELECT symbol, close FROM prices_daily ORDER BY symbol")
    assert (first.written, again.written, revised.written) == (3, 3, 3)
    assert stored.to_dict("list") == {"symbol": ["S0", "S1", "S2"], "close": [10.75] * 3}
    MarketStore(backend).close()  # opening again changes nothing
    assert rows(backend, "SELECT COUNT(*) FROM prices_daily") == [(3,)]


def test_a_batch_is_one_transaction_nothing_of_a_failing_batch_is_stored(backend):
    with MarketStore(backend) as store:
        broken = daily_bars()
        broken.loc[2, "volume"] = None  # past validation (upsert is the raw write): NOT NULL
        with pytest.raises(sqlite3.IntegrityError):
            store.upsert("prices_daily", broken)
        assert store.scalar("SELECT COUNT(*) FROM prices_daily") == 0


def test_bad_rows_go_to_the_quarantine_with_source_key_and_reason(backend):
    bars = daily_bars()
    bars.loc[0, "high"] = 8.0  # below low
    bars.loc[1, "available_ts"] = AS_OF_TS + 60  # from the future
    with MarketStore(backend) as store:
        outcome = store.store("prices", "prices_daily", bars, as_of=T0)
        store.store("prices", "prices_daily", bars, as_of=T0)  # the same rejects add nothing
        quarantined = store.query(
            "SELECT source, table_name, natural_key, reason FROM quarantine ORDER BY natural_key"
        )
    assert (outcome.written, outcome.rejected) == (1, 2)
    assert quarantined.values.tolist() == [
        ["prices", "prices_daily", "S0|2026-11-19", "stamped after as_of"],
        ["prices", "prices_daily", "S2|2026-11-19", "high below low"],
    ]


def test_sqlite_placeholders_read_the_same_on_both(backend):
    with MarketStore(backend) as store:
        store.store("prices_daily", "prices_daily", daily_bars(), as_of=T0)
        numbered = store.query(
            "SELECT symbol FROM prices_daily WHERE volume > ?2 AND available_ts <= ?1 "
            "AND volume < ?2 * 1.5 ORDER BY symbol",
            (AS_OF_TS, 1500.0),
        )
        connection = store.connection
        named = connection.execute(
            "SELECT MAX(available_ts) FROM prices_daily WHERE available_ts <= :now",
            {"now": AS_OF_TS},
        ).fetchone()[0]
    assert numbered["symbol"].tolist() == ["S0"]
    assert named == AS_OF_TS - 3600


def test_both_dialects_come_from_one_table_definition():
    for spec in TABLES.values():
        sqlite, postgres = spec.create_sql("sqlite"), spec.create_sql("postgresql")
        assert "WITHOUT ROWID" in sqlite and "WITHOUT ROWID" not in postgres
        assert all(f"{name} " in postgres for name in spec.column_names)
    assert "DOUBLE PRECISION" in database.ddl(TABLES["prices_daily"].create_sql(), "postgresql")
    assert "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in database.ddl(
        "CREATE TABLE t (id INTEGER PRIMARY KEY)", "postgresql"
    )
    assert database.ddl(QUARANTINE_SQL, "sqlite") == QUARANTINE_SQL


# -- credentials --------------------------------------------------------------


def test_a_password_comes_from_a_reference_resolved_only_when_connecting(
    postgres_server, monkeypatch
):
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    url = new_database(postgres_server)
    monkeypatch.delenv("PGPASSWORD")
    referenced = url.replace("pipeline@", "pipeline:${STORE_PASSWORD}@")
    store = database.store_url(referenced)
    assert "STORE_PASSWORD" not in str(store) and "***" in str(store)

    with pytest.raises(ConfigError, match="STORE_PASSWORD: not set"):
        StatusStore(store)
    monkeypatch.setenv("STORE_PASSWORD", postgres_server.password)
    StatusStore(store).mark_started("prices", T0)
    assert rows(store, "SELECT task_name, status FROM data_pipeline_status") == [
        ("prices", "RUNNING")
    ]


def test_a_password_written_in_the_config_is_refused_in_one_message(tmp_path):
    config = project_config()
    config["stores"] = {"market": "postgresql://pipeline:hunter2secret@db.example/market"}
    project = make_project(tmp_path / "p", config)
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--project", str(project), "--check-config"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "stores.market" in result.stderr and "PGPASSWORD" in result.stderr
    assert "hunter2secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://u@h/db", "unknown store scheme"),
        ("postgresql://u@h:port/db", "not a PostgreSQL URL"),
        ("postgresql://u@h:5432", "names no database"),
        ("sqlite://host/path.db", "a SQLite URL has no host"),
    ],
)
def test_a_bad_store_url_is_one_message_naming_the_key(tmp_path, url, problem):
    config = project_config()
    config["stores"] = {"status": url}
    project = make_project(tmp_path / "p", config)
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--project", str(project), "--check-config"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "stores.status" in result.stderr and problem in result.stderr
    assert "Traceback" not in result.stderr


# -- a real daily run on both -------------------------------------------------


def table_checksums(store: database.StoreURL) -> dict[str, tuple[int, str]]:
    """Per market table: its row count and a digest of its rows ordered by key."""
    keys = {name: spec.key for name, spec in TABLES.items()}
    keys["quarantine"] = ("source", "table_name", "natural_key", "reason")
    sums = {}
    for table, key in keys.items():
        content = rows(store, f"SELECT * FROM {table} ORDER BY {', '.join(key)}")
        digest = hashlib.sha256(repr(content).encode()).hexdigest()
        sums[table] = (len(content), digest)
    return sums


def status_counters(store: database.StoreURL) -> list[tuple[Any, ...]]:
    return rows(
        store,
        "SELECT task_name, total_runs, total_successes, total_failures, consecutive_failures, "
        "last_records_processed, status FROM data_pipeline_status ORDER BY task_name",
    )


def daily_run(root: Path, stores: dict[str, str] | None) -> Path:
    config = project_config()
    config["provider"]["universe_size"] = 12
    if stores:
        config["stores"] = stores
    project = make_project(root, config)
    result = snakemake(project, "daily", "--cores", "2", config=("session=2026-11-20",))
    assert result.returncode == 0, result.stderr[-3000:]
    return project


HEALTH_SCRIPT = """
import io, json, sys
from datetime import datetime
from orchestrator.config import load_config_cached
from orchestrator.health import collect_health
from orchestrator.market_calendar import load_calendar
config = load_config_cached("config.yaml")
calendar = load_calendar(config.calendar_name, config.cache_dir)
report = collect_health(config, datetime.fromisoformat(sys.argv[1]), calendar)
heavy = {"pandas", "numpy", "snakemake", "jsonschema", "exchange_calendars"} & set(sys.modules)
print(json.dumps({
    "heavy": sorted(heavy),
    "notes": list(report.notes),
    "sources": [[s.task, s.status, s.basis, str(s.data_time)] for s in report.sources],
    "tasks": [[t.task, t.status, t.runs, t.successes] for t in report.tasks],
}))
"""


def health_of(project: Path) -> dict[str, Any]:
    """The health report at ``FRIDAY_MORNING``, made as ``--health`` makes it after a run."""
    stamp = "from orchestrator.config import load_config_cached; load_config_cached('config.yaml')"
    subprocess.run([sys.executable, "-c", stamp], cwd=project, check=True)  # as after any run
    result = subprocess.run(
        [sys.executable, "-c", HEALTH_SCRIPT, FRIDAY_MORNING],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.slow
def test_a_daily_run_on_postgresql_stores_and_reports_what_the_same_run_on_sqlite_does(
    tmp_path, postgres_server, monkeypatch
):
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    status_url, market_url = new_database(postgres_server), new_database(postgres_server)
    on_sqlite = daily_run(tmp_path / "sqlite", None)
    on_postgres = daily_run(tmp_path / "postgres", {"status": status_url, "market": market_url})

    # Every table holds the same rows; the counters add up the same.
    sqlite_market = database.store_url(on_sqlite / "state" / "market.db")
    postgres_market = database.store_url(market_url)
    expected = table_checksums(sqlite_market)
    assert expected["prices_daily"][0] > 0 and expected["signals"][0] > 0
    assert table_checksums(postgres_market) == expected
    sqlite_status = database.store_url(on_sqlite / "state" / "status.db")
    postgres_status = database.store_url(status_url)
    assert status_counters(postgres_status) == status_counters(sqlite_status)
    assert not (on_postgres / "state" / "market.db").exists()
    assert not (on_postgres / "state" / "status.db").exists()
    leaked = [
        path
        for path in on_postgres.rglob("*")
        if path.is_file() and postgres_server.password.encode() in path.read_bytes()
    ]
    assert leaked == []

    # Health reads the data times from PostgreSQL, importing nothing heavy to do so.
    health = health_of(on_postgres)
    assert health["heavy"] == [] and health["notes"] == []
    assert health == health_of(on_sqlite)
    daily = {task for task, _, basis, _ in health["sources"] if basis == "data"}
    assert daily == set(DAILY_TASKS)  # every daily source's data time read from its table

    # The summary takes a failed task's error from the PostgreSQL status store.
    config = load_config(on_postgres / "config.yaml")
    daily_sentinel(on_postgres, "2026-11-20", "options").unlink()
    StatusStore(config.status_store).record_failure("options", T0, "chain refused")
    summary, all_ok = daily_summary(config, date(2026, 11, 20))
    assert not all_ok and "chain refused" in summary

    # Rows lost from PostgreSQL are seen by the next run, which builds the source again.
    connection = database.open_store(postgres_market)
    connection.execute("DELETE FROM news_sentiment")
    connection.close()
    again = snakemake(on_postgres, "daily", "--cores", "2", config=("session=2026-11-20",))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "has no data for sentiment" in again.stderr
    assert table_checksums(postgres_market) == expected


def test_store_urls_print_without_a_password():
    assert str(database.store_url("postgresql://u:${P}@h/db")) == "postgresql://u:***@h/db"
    assert database.redacted("postgresql://u@h/db") == "postgresql://u@h/db"
    assert database.resolve("postgresql://u:${P}@h/db", {"P": "s3c@r/t"}) == (
        "postgresql://u:s3c%40r%2Ft@h/db"
    )
    with pytest.raises(ValueError, match="unknown store scheme") as refused:
        database.store_url("mysql://u:hunter2@h/db")
    assert "hunter2" not in str(refused.value)


# -- the operator surfaces ----------------------------------------------------


def test_the_dashboard_readers_read_both(backend):
    bars = daily_bars()
    bars.loc[0, "high"] = 8.0
    with MarketStore(backend) as store:
        store.store("prices", "prices_daily", bars, as_of=T0)
    status = StatusStore(backend)
    before = history.change_token(backend)
    status.mark_started("prices_daily", T0)
    status.record_success("prices_daily", T0, T0 + timedelta(seconds=3), 2)

    assert history.change_token(backend) != before
    with history.readonly(backend) as connection:
        found = market_data.quarantine(connection, market_data.QuarantineFilter(reason="HIGH b"))
        stats = {
            stat.name: stat.rows for stat in market_data.table_stats(connection, TABLE_INFOS, T0)
        }
        runs = history.rows(connection, "SELECT task_name, outcome FROM task_attempts")
    assert found.matching == 1 and found.rows[0]["natural_key"] == "S2|2026-11-19"
    assert stats["prices_daily"] == 2 and stats["signals"] == 0
    assert runs == []


def test_alerts_keep_their_state_and_outbox_in_a_postgresql_status_store(
    postgres_url, base, calendar, httpserver_ipv4
):
    httpserver_ipv4.expect_request("/alerts", method="POST").respond_with_data("ok")
    script = fixture("succeed.py")
    tasks = {"prices_daily": {"family": "daily", "script": script, "critical": True}}
    config = build_config({"tasks": tasks, "stores": {"status": postgres_url}}, "c.yaml", base)
    notifier = alerts.AppriseNotifier([f"json://127.0.0.1:{httpserver_ipv4.port}/alerts"])
    store = StatusStore(config.status_store)
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)  # no session: only the task rule
    store.mark_started("prices_daily", saturday)
    store.record_failure("prices_daily", saturday + timedelta(minutes=1), "HTTP 503")

    produced = alerts.evaluate(config, saturday + timedelta(minutes=2), calendar, notifier)
    assert [(alert.kind, alert.key, alert.delivered) for alert in produced] == [
        (alerts.ALERT, "task:prices_daily", True)
    ]
    assert alerts.alert_states(config)["task:prices_daily"].state == alerts.FIRING
    assert alerts.pending_messages(config) == []
    assert not (base / "state" / "status.db").exists()
    assert alerts.evaluate(config, saturday + timedelta(minutes=3), calendar, notifier) == []


def test_the_sqlite_default_never_imports_the_postgresql_driver(tmp_path):
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from orchestrator.status_store import StatusStore\n"
        "from orchestrator.health import read_status_rows\n"
        "store = StatusStore(sys.argv[1])\n"
        "store.mark_started('prices', datetime(2026, 11, 20, tzinfo=UTC))\n"
        "rows, _ = read_status_rows(store.location)\n"
        "print(sorted(rows), 'psycopg' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "status.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["['prices']", "False"]
