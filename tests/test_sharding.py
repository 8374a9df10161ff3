"""Sharded tasks, end to end on real ``snakemake`` runs in a temp project.

A task with ``shards: N`` runs as N shard jobs of its own rule and a join
(``orchestrator/sharding.py``). These tests prove: a symbol's shard does not
depend on the process; a sharded ``prices_daily`` stores exactly what an
unsharded one does; the join's sentinel counts shards, symbols and records;
a failed shard fails its task once in ``data_pipeline_status`` and is the
only shard the next run repeats; ``--forcerun TASK`` re-runs every shard;
health is not green while a shard is missing; ``orchestrator graph`` shows it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from workflow_project import FRIDAY_MORNING, make_project, project_config, snakemake

from orchestrator.config import load_config
from orchestrator.freshness import GREEN, YELLOW
from orchestrator.graph import render_dot, render_text
from orchestrator.health import collect_health
from orchestrator.market_calendar import load_calendar
from orchestrator.sharding import Shard, shard_of

SESSION = "2026-11-27"  # the session of FRIDAY_MORNING
SYMBOLS = [f"S{number:04d}" for number in range(2000)]


def shards_in_a_fresh_process(hash_seed: str) -> list[int]:
    """``shard_of`` of every symbol, computed by a new interpreter with its own hash salt."""
    code = (
        "import json, sys; from orchestrator.sharding import shard_of; "
        "print(json.dumps([shard_of(s, 4) for s in json.load(sys.stdin)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(SYMBOLS),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parent.parent,
    )
    return list(json.loads(done.stdout))


def test_a_symbols_shard_is_the_same_in_every_process() -> None:
    assert shards_in_a_fresh_process("1") == shards_in_a_fresh_process("2")


def test_every_symbol_is_in_exactly_one_shard_and_the_shards_are_balanced() -> None:
    parts = [Shard(index, 4).symbols(SYMBOLS) for index in range(4)]

    assert sorted(symbol for part in parts for symbol in part) == sorted(SYMBOLS)
    assert all(len(part) > 400 for part in parts), [len(part) for part in parts]
    # The documented rule: the first 8 bytes of the symbol's SHA-1, mod the count.
    assert shard_of("AAPL", 7) == int(hashlib.sha1(b"AAPL").hexdigest()[:16], 16) % 7


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1", "a/b", "1/0"])
def test_a_bad_shard_argument_is_refused_by_the_runner(text: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.task_runner",
            "--task",
            "x",
            "--session",
            SESSION,
            "--shard",
            text,
            "--config-json",
            "/nonexistent",
        ],
        capture_output=True,
        text=True,
    )

    assert done.returncode == 2
    assert "--shard" in done.stderr and "Traceback" not in done.stderr


# -- built-in collectors: sharded equals unsharded ---------------------------------


def prices_project(root: Path, shards: int) -> Path:
    raw = project_config()
    raw["tasks"] = {name: raw["tasks"][name] for name in ("assets", "prices_daily", "options")}
    if shards > 1:
        raw["tasks"]["prices_daily"]["shards"] = shards
    return make_project(root, raw)


def table_checksum(database: Path, table: str) -> tuple[int, str]:
    """Rows and a SHA-256 of every row of ``table``, ordered by all its columns."""
    connection = sqlite3.connect(database)
    try:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        order = ", ".join(columns)
        rows = connection.execute(f"SELECT {order} FROM {table} ORDER BY {order}").fetchall()
    finally:
        connection.close()
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def status_row(project: Path, task: str) -> dict[str, Any]:
    connection = sqlite3.connect(project / "state" / "status.db")
    connection.row_factory = sqlite3.Row
    try:
        row = connection.execute(
            "SELECT * FROM data_pipeline_status WHERE task_name = ?", (task,)
        ).fetchone()
        return dict(row)
    finally:
        connection.close()


def attempts_of(project: Path, task: str) -> list[dict[str, Any]]:
    connection = sqlite3.connect(project / "state" / "status.db")
    connection.row_factory = sqlite3.Row
    try:
        rows = connection.execute("SELECT * FROM task_attempts WHERE task_name = ?", (task,))
        return [dict(row) for row in rows]
    finally:
        connection.close()


def read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_sharded_prices_store_exactly_what_unsharded_prices_store(tmp_path: Path) -> None:
    plain = prices_project(tmp_path / "plain", shards=1)
    sharded = prices_project(tmp_path / "sharded", shards=4)

    for project in (plain, sharded):
        done = snakemake(project, "daily", "--cores", "2")
        assert done.returncode == 0, done.stderr

    for table in ("prices_daily", "options_chain"):
        rows, digest = table_checksum(plain / "state" / "market.db", table)
        assert rows > 0
        assert table_checksum(sharded / "state" / "market.db", table) == (rows, digest), table

    targets = sharded / "state" / "targets" / "daily" / SESSION
    joined = read_json(targets / "prices_daily.json")
    unsharded = read_json(plain / "state" / "targets" / "daily" / SESSION / "prices_daily.json")
    shard_records = [read_json(targets / f"prices_daily.shards/{i}-of-4.json") for i in range(4)]
    assert joined["status"] == "success"
    assert joined["shards"] == 4
    assert joined["symbols"] == 50 == sum(record["symbols"] for record in shard_records)
    assert all(record["symbols"] > 0 for record in shard_records)
    assert joined["records_processed"] == unsharded["records_processed"] > 0
    assert joined["records_processed"] == sum(r["records_processed"] for r in shard_records)
    assert joined["duration_seconds"] >= max(r["duration_seconds"] for r in shard_records) > 0
    # One run of the task in the counters, each shard's attempt in the history.
    row = status_row(sharded, "prices_daily")
    assert (row["total_runs"], row["total_successes"], row["total_failures"]) == (1, 1, 0)
    assert row["status"] == "SUCCESS"
    assert row["last_records_processed"] == joined["records_processed"]
    assert row["average_runtime_seconds"] == pytest.approx(joined["duration_seconds"], abs=1)
    attempts = attempts_of(sharded, "prices_daily")
    assert len(attempts) == 4
    assert {attempt["period"] for attempt in attempts} == {SESSION}
    assert sorted(a["records_processed"] for a in attempts) == sorted(
        r["records_processed"] for r in shard_records
    )

    # The data lost, the next run rebuilds every shard and the join (not the join alone).
    market = sqlite3.connect(sharded / "state" / "market.db")
    with market:
        market.execute("DELETE FROM prices_daily")
    market.close()
    rebuilt = snakemake(sharded, "daily", "--cores", "2")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert table_checksum(sharded / "state" / "market.db", "prices_daily") == table_checksum(
        plain / "state" / "market.db", "prices_daily"
    )
    assert len(attempts_of(sharded, "prices_daily")) == 4 + 4


# -- failures, retries, --forcerun and health, with a script task -------------------

SHARD_SCRIPT = """\
import json, os, pathlib, signal, sys
task, shard = os.environ["ORCHESTRATOR_TASK"], os.environ["ORCHESTRATOR_SHARD"]
index = shard.split("/")[0]
kill = pathlib.Path(f"kill-{task}-{index}")
if kill.exists():  # the shard's job is killed outright, once (as scancel does)
    kill.unlink()
    os.kill(os.getppid(), signal.SIGTERM)
    signal.pause()
if pathlib.Path(f"fail-{task}-{index}").exists():
    result = {"error": f"{task} shard {shard} cannot reach its provider"}
    code = 65
else:
    result = {"records_processed": 10 + int(index)}
    code = 0
pathlib.Path(os.environ["ORCHESTRATOR_RESULT_FILE"]).write_text(json.dumps(result))
sys.exit(code)
"""
PLAIN_SCRIPT = "import sys; print('Inserted 3 rows'); sys.exit(0)\n"


def script_project(root: Path) -> Path:
    """alpha (critical, 4 shards) <- beta; gamma (non-critical, 2 shards) <- delta."""
    once = {"attempts": 1, "backoff_seconds": [0]}
    raw = {
        "tasks": {
            "alpha": {"family": "daily", "script": "shard.py", "critical": True, "shards": 4},
            "beta": {"family": "daily", "script": "plain.py", "needs": ["alpha"]},
            "gamma": {"family": "daily", "script": "shard.py", "shards": 2},
            "delta": {"family": "daily", "script": "plain.py", "needs": ["gamma"]},
        }
    }
    for task in raw["tasks"].values():
        task["retry"] = once
    project = make_project(root, raw)
    (project / "shard.py").write_text(SHARD_SCRIPT)
    (project / "plain.py").write_text(PLAIN_SCRIPT)
    return project


def shard_stamps(project: Path, task: str, count: int) -> list[int | None]:
    """When each shard sentinel of ``task`` was written (ns), None where there is none."""
    folder = project / "state" / "targets" / "daily" / SESSION / f"{task}.shards"
    stamps = []
    for index in range(count):
        path = folder / f"{index}-of-{count}.json"
        stamps.append(path.stat().st_mtime_ns if path.exists() else None)
    return stamps


def health_of(project: Path, monkeypatch: pytest.MonkeyPatch, task: str) -> Any:
    monkeypatch.chdir(project)
    config = load_config(project / "config.yaml")
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    now = datetime.fromisoformat(FRIDAY_MORNING) + timedelta(minutes=5)
    report = collect_health(config, now, calendar)
    return next(source for source in report.sources if source.task == task)


def test_a_failed_shard_fails_its_task_once_and_only_it_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = script_project(tmp_path / "project")
    target = project / "state" / "targets" / "daily" / SESSION

    first = snakemake(project, "daily", "--cores", "2")
    assert first.returncode == 0, first.stderr
    joined = read_json(target / "alpha.json")
    assert (joined["shards"], joined["records_processed"]) == (4, 10 + 11 + 12 + 13)
    assert health_of(project, monkeypatch, "alpha").status == GREEN
    before = shard_stamps(project, "alpha", 4)

    # Shard 2 of the critical alpha fails; --forcerun alpha re-runs all its shards.
    (project / "fail-alpha-2").touch()
    forced = snakemake(project, "daily", "--cores", "2", "--forcerun", "alpha")
    assert forced.returncode == 1
    after = shard_stamps(project, "alpha", 4)
    assert after[2] is None  # the failed shard's sentinel is gone: the next run retries it
    assert all(after[i] not in (None, before[i]) for i in (0, 1, 3))
    assert len(attempts_of(project, "alpha")) == 4 + 4  # every shard ran again
    assert not (target / "alpha.json").exists()
    row = status_row(project, "alpha")
    assert (row["total_runs"], row["total_successes"], row["total_failures"]) == (2, 1, 1)
    assert row["status"] == "FAILED"
    assert "shard 2/4" in row["last_error_message"]
    source = health_of(project, monkeypatch, "alpha")
    assert source.status == YELLOW  # its last success is fresh, but a shard is missing
    assert "3 of 4 shards" in source.message
    assert "alpha_join" in forced.stderr

    # The next run repeats shard 2 alone, then the join and the dependents.
    (project / "fail-alpha-2").unlink()
    again = snakemake(project, "daily", "--cores", "2")
    assert again.returncode == 0, again.stderr
    final = shard_stamps(project, "alpha", 4)
    assert [final[i] for i in (0, 1, 3)] == [after[i] for i in (0, 1, 3)]
    assert final[2] is not None
    assert read_json(target / "alpha.json")["status"] == "success"
    assert read_json(target / "beta.json")["status"] == "success"
    row = status_row(project, "alpha")
    assert (row["total_runs"], row["total_successes"], row["total_failures"]) == (3, 2, 1)
    assert len(attempts_of(project, "alpha")) == 4 + 4 + 1
    assert health_of(project, monkeypatch, "alpha").status == GREEN


def test_a_killed_shard_is_retried_alone_and_the_run_counted_once(tmp_path: Path) -> None:
    project = script_project(tmp_path / "project")
    (project / "kill-alpha-1").touch()

    done = snakemake(project, "daily", "--cores", "2", "--retries", "1")

    assert done.returncode == 0, done.stderr
    assert not (project / "kill-alpha-1").exists()  # the first attempt of shard 1 was killed
    joined = read_json(project / "state" / "targets" / "daily" / SESSION / "alpha.json")
    assert (joined["status"], joined["records_processed"]) == ("success", 10 + 11 + 12 + 13)
    row = status_row(project, "alpha")
    assert (row["total_runs"], row["total_successes"], row["total_failures"]) == (1, 1, 0)
    # The killed attempt never finished, so the history holds one attempt per shard.
    assert len(attempts_of(project, "alpha")) == 4


def test_a_non_critical_sharded_task_that_fails_lets_its_dependents_run_degraded(
    tmp_path: Path,
) -> None:
    project = script_project(tmp_path / "project")
    (project / "fail-gamma-1").touch()

    done = snakemake(project, "daily", "--cores", "2")

    assert done.returncode == 1
    assert "non-critical task(s) failed: gamma" in done.stderr
    target = project / "state" / "targets" / "daily" / SESSION
    delta = read_json(target / "delta.json")
    assert (delta["status"], delta["degraded_inputs"]) == ("degraded", ["gamma"])
    assert not (target / "gamma.json").exists()  # removed at the end: the next run retries
    assert shard_stamps(project, "gamma", 2)[0] is not None
    row = status_row(project, "gamma")
    assert (row["total_runs"], row["total_failures"]) == (1, 1)


def test_the_graph_shows_the_shards() -> None:
    raw = project_config()
    raw["tasks"]["prices_daily"]["shards"] = 4
    root = Path(__file__).resolve().parent.parent
    from orchestrator.config import build_config

    pipeline = build_config(raw, "config.yaml", root).pipeline

    assert "prices_daily [critical, 4 shards, joined by prices_daily_join]" in render_text(pipeline)
    assert '"prices_daily" [label="prices_daily\\n4 shards + join"' in render_dot(pipeline)
