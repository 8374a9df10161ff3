"""Running the built-in collectors in tests: contexts, single runs, a whole daily session.

The ``calendar`` fixture they take is in ``conftest.py``.
"""

from __future__ import annotations

import importlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from collectors.context import CollectContext, CollectResult
from orchestrator.market_calendar import MarketCalendar


def _daily_order() -> tuple[str, ...]:
    """The shipped daily tasks, tier by tier: an order in which each runs after its needs."""
    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())
    raw["tasks"] = {n: t for n, t in raw["tasks"].items() if t["family"] == "daily"}
    order: list[str] = []
    while len(order) < len(raw["tasks"]):
        order += [
            name
            for name, task in raw["tasks"].items()
            if name not in order and set(task.get("needs", [])) <= set(order)
        ]
    return tuple(order)


DAILY_ORDER = _daily_order()


def make_context(
    calendar: MarketCalendar,
    market_db: Path,
    task: str,
    session: date,
    as_of: datetime | None = None,
    *,
    universe_size: int = 8,
    seed: int = 7,
    options: dict[str, Any] | None = None,
    slot: str | None = None,
) -> CollectContext:
    """A context for ``task``; ``as_of`` defaults to the session's open (a daily run)."""
    moment = as_of or calendar.hours(session).open
    return CollectContext(
        task=task,
        session=session,
        as_of=moment,
        now=moment,
        market_db=market_db,
        calendar=calendar,
        provider_settings={"name": "synthetic", "seed": seed, "universe_size": universe_size},
        options=options or {},
        slot=slot,
    )


def run(task: str, **kwargs: Any) -> CollectResult:
    """Run the collector module named ``task`` with ``make_context(**kwargs)``."""
    module = importlib.import_module(f"collectors.{task}")
    return module.collect(make_context(task=task, **kwargs))


def run_daily(
    calendar: MarketCalendar, market_db: Path, session: date, **kwargs: Any
) -> dict[str, CollectResult]:
    """Every daily collector in dependency order for ``session``."""
    return {
        task: run(task, calendar=calendar, market_db=market_db, session=session, **kwargs)
        for task in DAILY_ORDER
    }
