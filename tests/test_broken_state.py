"""A damaged or read-only ``state/`` and a config that is not UTF-8: one line, nothing lost.

Every command that reads state meets the same problem with the same message
(which file, what is wrong, what to do, what moving it aside loses), exits
with its documented code (``--health`` 3, the others 2) and leaves the file
byte for byte as it was. Real ``orchestrator`` processes on a project folder.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from workflow_project import FRIDAY_MORNING, fake_tasks, make_project, orchestrator, project_config

COMMANDS = [
    ("--daily",),
    ("--intraday", "--once"),
    ("--update-stale",),
    ("--health",),
    ("--check-config",),
    ("summary",),
]


def expected_exit(command: tuple[str, ...]) -> int:
    return 3 if command == ("--health",) else 2


@pytest.fixture
def project(tmp_path: Path) -> Path:
    config = fake_tasks({**project_config(), "now": FRIDAY_MORNING})
    root = make_project(tmp_path / "p", config)
    (root / "state").mkdir()
    return root


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip()
    assert "\n" not in message, message
    for phrase in phrases:
        assert phrase in message, message


@pytest.mark.parametrize("database", ["status.db", "market.db"])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_database_that_is_not_sqlite_is_named_and_kept(
    project: Path, database: str, command: tuple[str, ...]
) -> None:
    damaged = project / "state" / database
    garbage = bytes(range(256)) * 16
    damaged.write_bytes(garbage)
    result = orchestrator(project, *command)
    assert result.returncode == expected_exit(command), result.stdout + result.stderr
    loses = "run history" if database == "status.db" else "all collected market data"
    assert_one_clear_line(result, str(damaged), "is not a SQLite database", "mv ", loses)
    assert damaged.read_bytes() == garbage


def test_damage_deep_inside_the_market_database_is_reported_where_a_query_meets_it(
    tmp_path: Path,
) -> None:
    config = fake_tasks({**project_config(), "now": FRIDAY_MORNING})
    config["tasks"]["assets"]["freshness"]["data_time_sql"] = "SELECT MAX(ts) FROM t"
    project = make_project(tmp_path / "p", config)
    market = project / "state" / "market.db"
    market.parent.mkdir()
    with sqlite3.connect(market) as connection:
        connection.execute("CREATE TABLE t (ts INTEGER)")
        connection.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(2000)])
    connection.close()
    with market.open("r+b") as file:  # keep the header and schema page, ruin the table's
        file.seek(4096)
        file.write(b"\xff" * 4096)
    result = orchestrator(project, "--health")
    assert result.returncode == 3, result.stdout + result.stderr
    assert_one_clear_line(result, str(market), "is damaged", "mv ")


@pytest.fixture
def read_only_state(project: Path) -> Iterator[Path]:
    """``state/`` made immutable: read-only even to root, who ignores permission bits."""
    state = project / "state"
    (state / "logs").mkdir()
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run(["chattr", "-R", "+i", str(state)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no immutable flag: {made.stderr.decode().strip()}")
    try:
        yield state
    finally:
        subprocess.run(["chattr", "-R", "-i", str(state)], check=True)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_read_only_state_folder_is_named_with_what_to_do(
    project: Path, read_only_state: Path, command: tuple[str, ...]
) -> None:
    result = orchestrator(project, *command)
    assert result.returncode == expected_exit(command), result.stdout + result.stderr
    assert_one_clear_line(result, str(read_only_state), "is not writable", "Make it writable")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_config_that_is_not_utf8_is_named_with_the_offending_byte(
    project: Path, command: tuple[str, ...]
) -> None:
    config = project / "config.yaml"
    config.write_bytes(config.read_bytes() + b"# Caf\xe9\n")
    result = orchestrator(project, *command)
    assert result.returncode == expected_exit(command), result.stdout + result.stderr
    assert_one_clear_line(result, str(config), "not UTF-8", "0xe9")
