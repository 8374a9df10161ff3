"""The collector fork server: an attempt forked from preloaded imports is the same attempt.

A built-in collector forked by the server stores exactly what one started
in a fresh interpreter stores; its timeout still kills it (the child has its
own process group) and leaves no sentinel; a runner whose server is gone
starts the interpreter as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator import task_runner
from orchestrator.collector_forkserver import ForkedChild, ForkServer
from orchestrator.pipeline import Period
from orchestrator.task_launcher import SOCKET_VARIABLE
from tests.helpers import daily_config, process_gone, run_once, wait_for

ET = ZoneInfo("America/New_York")
SESSION = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 17, 0, tzinfo=ET)
COLLECTORS = {
    "assets": {"collector": "assets", "critical": True},
    "prices_daily": {"collector": "prices_daily", "needs": ["assets"], "critical": True},
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ForkServer]:
    server = ForkServer(tmp_path)
    assert server.wait_ready(), "the fork server did not start listening"
    yield server
    server.close()


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[ForkedChild | None]:
    """What each built-in collector attempt got from the fork server (None: no server)."""
    spawned: list[ForkedChild | None] = []
    real_spawn = task_runner.spawn_collector

    def spying_spawn(*args: Any) -> ForkedChild | None:
        child = real_spawn(*args)
        spawned.append(child)
        return child

    monkeypatch.setattr(task_runner, "spawn_collector", spying_spawn)
    return spawned


def table_rows(market_db: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(market_db) as connection:
        return connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


def collect(base: Path, **overrides: Any) -> Path:
    config = daily_config(base, **{**COLLECTORS, **overrides})
    for task in COLLECTORS:
        report, _, _ = run_once(config, task, Period(SESSION), NOW)
        assert report.status == "success", report.error
    return config.market_db


def test_a_forked_collector_stores_what_a_fresh_interpreter_stores(
    tmp_path: Path, server: ForkServer, forked: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_db = collect(tmp_path / "fresh")
    assert forked == []  # no server named: no fork asked for

    monkeypatch.setenv(SOCKET_VARIABLE, server.socket_path)
    forked_db = collect(tmp_path / "forked")
    assert len(forked) == 2 and all(isinstance(child, ForkedChild) for child in forked)
    assert [child.returncode for child in forked] == [0, 0]
    for table in ("assets", "prices_daily"):
        rows = table_rows(forked_db, table)
        assert rows and rows == table_rows(fresh_db, table)


def test_a_forked_collector_past_its_timeout_is_killed_and_writes_no_sentinel(
    tmp_path: Path, server: ForkServer, forked: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SOCKET_VARIABLE, server.socket_path)
    config = daily_config(
        tmp_path,
        assets={
            "collector": "assets",
            "critical": True,
            "max_runtime_seconds": 0.001,
            "retry": {"attempts": 2, "backoff_seconds": [0]},
        },
    )
    report, sentinel, _ = run_once(config, "assets", Period(SESSION), NOW)
    assert report.status == "failed"
    assert "timed out" in (report.error or "")
    assert not sentinel.exists()
    assert len(forked) == 2  # each attempt forked anew
    for child in forked:
        assert child.returncode is not None and child.returncode < 0  # killed by a signal
        assert wait_for(lambda child=child: process_gone(child.pid))


def test_a_runner_whose_server_is_gone_starts_the_interpreter(
    tmp_path: Path, forked: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SOCKET_VARIABLE, str(tmp_path / "no-such-socket"))
    market_db = collect(tmp_path / "p")
    assert forked == [None, None]
    assert table_rows(market_db, "prices_daily")


def live_children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, zombies left out."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(stat.parent.name))
    return found


def test_a_child_that_cannot_start_ends_and_the_server_serves_on(
    tmp_path: Path, server: ForkServer, forked: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A runner asked for in a working folder that no longer exists: the child fails
    # before it reports a pid; it must end, not go on as a second server.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(30)
        connection.connect(server.socket_path)
        request = {"kind": "runner", "argv": [], "env": {}, "cwd": str(tmp_path / "gone")}
        line = (json.dumps(request) + "\n").encode()
        with open(os.devnull, "rb") as devnull:
            socket.send_fds(connection, [line], [devnull.fileno()] * 3)
        assert connection.recv(4096) == b""  # no pid, no exit: its end closed
    assert wait_for(lambda: live_children(server.process.pid) == [], what="the failed child to end")

    monkeypatch.setenv(SOCKET_VARIABLE, server.socket_path)
    market_db = collect(tmp_path / "after")  # the server still serves
    assert [child.returncode for child in forked if child] == [0, 0]
    assert table_rows(market_db, "prices_daily")
