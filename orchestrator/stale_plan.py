"""``--update-stale`` planning: which sources to refresh, and the Snakemake arguments.

Two pure functions; the CLI runs the result (one ``snakemake`` per family,
under that family's lock):

- ``plan_stale_updates`` picks the sources of a ``HealthReport`` at or beyond
  a staleness level, in config order;
- ``snakemake_forcerun_args`` turns the plan into, per family, the target
  first and then ``--forcerun`` with the stale rules. ``--forcerun`` re-runs a
  rule *and everything downstream of it* in the requested DAG, so features
  and signals follow the sources they read. The target must come first:
  ``--forcerun`` takes several values and would swallow a target after it.

Invariants: unknown sources (no data yet, or unreadable) are always planned,
whatever the level, since running them is how they get data; an intraday
source is re-run only while it is in scope (a forced rule outside the
requested DAG becomes a target of its own, which Snakemake refuses because of
its wildcards), so out of hours it waits for the loop at the next open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.config import Config
from orchestrator.freshness import GREEN, RED, UNKNOWN, YELLOW, human_age
from orchestrator.health import HealthReport, SourceHealth
from orchestrator.market_calendar import MarketCalendar
from orchestrator.pipeline import FAMILIES

LEVELS = {YELLOW.lower(): (YELLOW, RED, UNKNOWN), RED.lower(): (RED, UNKNOWN)}


@dataclass(frozen=True)
class StaleItem:
    """One source to refresh and why."""

    task: str
    family: str
    status: str
    reason: str


def _reason(source: SourceHealth) -> str:
    if source.status == UNKNOWN:
        return f"unknown: {source.message}"
    age = human_age(source.age_seconds or 0.0)
    limit = source.yellow_seconds if source.status == RED else source.green_seconds
    clock = " of market time" if source.clock == "market" else ""
    return f"{source.status.lower()}: {age}{clock} old, over {human_age(limit)}"


def plan_stale_updates(
    report: HealthReport, min_staleness: str = "yellow", config: Config | None = None
) -> list[StaleItem]:
    """Sources at least as stale as ``min_staleness`` (``"yellow"`` or ``"red"``).

    Unknown sources are included at both levels. With ``config``, sources
    whose task is no longer configured are dropped and the order is the
    config's (the report's otherwise).
    """
    try:
        wanted = LEVELS[min_staleness.lower()]
    except KeyError:
        from orchestrator.errors import UsageError

        raise UsageError(f"staleness level {min_staleness!r} is not one of: yellow, red") from None
    sources = [s for s in report.sources if s.status in wanted and s.status != GREEN]
    if config is not None:
        order = {name: index for index, name in enumerate(config.pipeline.tasks)}
        sources = sorted((s for s in sources if s.task in order), key=lambda s: order[s.task])
    return [StaleItem(s.task, s.family, s.status, _reason(s)) for s in sources]


def snakemake_forcerun_args(
    plan: list[StaleItem], config: Config, calendar: MarketCalendar, now: datetime
) -> dict[str, list[str]]:
    """Per family with work to do: ``[target, "--forcerun", rule, ...]``.

    ``daily`` rebuilds the current session; ``intraday`` the current slots,
    with only the sources in scope at ``now`` (none when the market is
    closed: the family is then left out). Families come in ``FAMILIES``
    order, rules in plan order, each rule once.
    """
    rules: dict[str, list[str]] = {family: [] for family in FAMILIES}
    for item in plan:
        task = config.pipeline.tasks.get(item.task)
        if task is None or item.task in rules[task.family]:
            continue
        if task.family == "intraday" and not calendar.in_scope(now, task.hours):
            continue
        rules[task.family].append(item.task)
    return {family: [family, "--forcerun", *names] for family, names in rules.items() if names}
