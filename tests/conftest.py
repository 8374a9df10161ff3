"""Fixtures shared by the whole suite, and the rule that no test reaches the network.

``ORCHESTRATOR_LOOPBACK_ONLY`` is set for the whole run, so every process a
test starts (runners, collectors, snakemake jobs) inherits it and the
providers' HTTP layer refuses any host but loopback; in this process, a
socket connecting anywhere else fails the test too.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.market_calendar import MarketCalendar, load_calendar


@pytest.fixture(scope="session")
def calendar_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One built XNYS calendar cache for the whole run (building it costs ~0.5 s).

    Tests that need a project's ``state/cache`` copy it; none writes to it.
    """
    cache = tmp_path_factory.mktemp("xnys-calendar-cache")
    load_calendar("XNYS", cache)
    return cache


@pytest.fixture(scope="session")
def calendar(calendar_cache: Path) -> MarketCalendar:
    """The XNYS calendar, built once for the run."""
    return load_calendar("XNYS", calendar_cache)


@pytest.fixture
def base(tmp_path: Path, calendar_cache: Path) -> Path:
    """A project folder whose ``state/cache`` already holds the calendar."""
    shutil.copytree(calendar_cache, tmp_path / "state" / "cache")
    return tmp_path


@pytest.fixture(autouse=True, scope="session")
def no_network() -> Iterator[None]:
    """Loopback only, in this process and every child it starts."""
    os.environ["ORCHESTRATOR_LOOPBACK_ONLY"] = "1"
    connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                allowed = host == "localhost" or ipaddress.ip_address(host).is_loopback
            except ValueError:
                allowed = False
            if not allowed:
                raise AssertionError(f"a test tried to reach the network: {address!r}")
        connect(sock, address)  # type: ignore[arg-type]

    socket.socket.connect = loopback_only  # type: ignore[method-assign]
    yield
    socket.socket.connect = connect  # type: ignore[method-assign]


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL: its URL (role and database ``pipeline``, no password in it)."""

    url: str
    password: str  # the role's, given to clients as PGPASSWORD


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the run, from ``scripts/local-postgres`` (installed if missing).

    Its folder is outside pytest's private temp tree, which the unprivileged
    server user could not enter; ``down`` stops the server and deletes it.
    """
    script = Path(__file__).resolve().parent.parent / "scripts" / "local-postgres"
    folder = tempfile.mkdtemp(prefix="local-postgres-")
    env = {**os.environ, "LOCAL_POSTGRES_DIR": folder}
    up = subprocess.run(
        [script, "up"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if up.returncode != 0:
        pytest.fail(f"scripts/local-postgres up failed: {up.stderr.strip()}")
    try:
        password = (Path(folder) / "password").read_text().strip()
        yield PostgresServer(up.stdout.strip(), password)
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, timeout=120, check=False)
