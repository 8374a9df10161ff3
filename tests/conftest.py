"""Fixtures shared by the whole suite."""

from __future__ import annotations

import shutil
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
