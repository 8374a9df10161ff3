"""Helpers shared by the test modules: a recording sleeper, polling, running one task.

Polling (``wait_for``) waits for an event another process makes visible (a
file, a status row); it never sleeps to hit a race window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.clock import fixed_clock
from orchestrator.config import Config, build_config
from orchestrator.market_calendar import load_calendar
from orchestrator.pipeline import Period
from orchestrator.task_runner import RunReport, run_task

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> str:
    """The path of a fake task script in ``tests/fixtures``."""
    return str(FIXTURES / name)


class RecordingSleeper:
    """A sleeper that only records the waits it was asked for."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def wait_for(condition: Callable[[], Any], within: float = 60.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy (and return it), failing after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def process_gone(pid: int, within: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        return state in ("Z", "X")

    try:
        wait_for(gone, within, f"pid {pid} to end")
    except AssertionError:
        return False
    return True


def daily_config(
    base: Path,
    source: str = "test-config.yaml",
    now: datetime | None = None,
    **tasks: dict[str, Any],
) -> Config:
    """A config of daily tasks (each ``family: daily`` plus the given settings) in ``base``.

    ``now`` pins the clock of the processes that read it (the runner's ``main``).
    """
    raw: dict[str, Any] = {
        "tasks": {name: {"family": "daily", **task} for name, task in tasks.items()}
    }
    if now is not None:
        raw["now"] = now.isoformat()
    return build_config(raw, source, base)


def run_once(
    config: Config,
    task: str,
    period: Period,
    now: datetime,
    sleeper: RecordingSleeper | None = None,
    run_id: str | None = None,
) -> tuple[RunReport, Path, RecordingSleeper]:
    """Run ``task`` for ``period`` through the real runner at a fixed ``now``.

    Returns the report, the task's sentinel path and the sleeper.
    """
    sleeper = sleeper or RecordingSleeper()
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    report = run_task(
        config, task, period, calendar, clock=fixed_clock(now), sleeper=sleeper, run_id=run_id
    )
    output = config.base_dir / config.pipeline.task(task).target(period.session, period.slot)
    return report, output, sleeper
