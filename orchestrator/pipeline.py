"""The pipeline model: tasks, what they need, where their targets are, which period is built.

``config.yaml`` declares each task once (``needs:`` included); ``config.py``
validates it and builds this model. Everything that asks about tasks reads it:
the generated rules (``rules/tasks.smk``), the task runner, the health monitor,
the intraday loop, the CLI's summary and graph, ``--update-stale``, the soak,
the benchmarks and the tests. Nothing else lists tasks or dependencies.

Invariants, checked when the config is built (``config.check_needs``):

- a task needs only tasks of its own family (intraday tasks read daily data
  from the market database, point in time, never through rule inputs: the two
  families' Snakemake runs must plan disjoint files);
- the needs form no cycle.

Target and log paths are relative to the project folder, exactly as the
rules spell them (``snakemake -d DIR`` moves the whole tree).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from orchestrator.errors import CalendarRangeError, UsageError

if TYPE_CHECKING:
    from orchestrator.market_calendar import MarketCalendar

FAMILIES = ("daily", "intraday")
# The two shapes of a period-stamped sentinel (and of its task's log).
TARGET_TEMPLATES = {
    "daily": "state/targets/daily/{session}/{task}.json",
    "intraday": "state/targets/intraday/{session}/{task}/{slot}.json",
}
LOG_TEMPLATES = {
    "daily": "state/logs/daily/{session}/{task}.log",
    "intraday": "state/logs/intraday/{session}/{task}/{slot}.log",
}
# A sharded (daily) task's shard sentinels and logs; the shard count is in the name, so
# shards of another count are never taken for these. The join writes the task's own target.
SHARD_TARGET_TEMPLATE = "state/targets/daily/{session}/{task}.shards/{shard}-of-{count}.json"
SHARD_LOG_TEMPLATE = "state/logs/daily/{session}/{task}.shards/{shard}-of-{count}.log"
# The name of the rule that joins a sharded task's shards (the shards' rule is the task's).
JOIN_RULE_SUFFIX = "_join"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts in all and the wait before each retry (the last wait repeats)."""

    attempts: int
    backoff_seconds: tuple[float, ...]

    def delay_before_retry(self, retry_number: int) -> float:
        """Wait before retry ``retry_number`` (1 for the second attempt)."""
        index = min(retry_number, len(self.backoff_seconds)) - 1
        return self.backoff_seconds[index]


@dataclass(frozen=True)
class Freshness:
    """Health thresholds of one source, in seconds."""

    green: float
    yellow: float
    clock: str = "wall"
    data_time_sql: str | None = None
    database: str | None = None  # the SQLite file data_time_sql reads (default market.db)


@dataclass(frozen=True)
class TaskResources:
    """What one job of the task asks a cluster for (Snakemake ``resources:``).

    Local runs ignore them: Snakemake only limits what ``--resources`` names.
    ``None`` asks nothing (the cluster's default); the config fills these from
    ``defaults.resources``.
    """

    mem_mb: int | None = None
    cpus_per_task: int | None = None
    slurm_partition: str | None = None


@dataclass(frozen=True)
class TaskConfig:
    """One task as ``config.yaml`` declares it, defaults filled in."""

    name: str
    family: str
    needs: tuple[str, ...]
    collector: str | None
    script: str | None
    args: tuple[str, ...]
    critical: bool
    max_runtime_seconds: float
    retry: RetryPolicy
    freshness: Freshness  # its own, or its family's default
    interval_seconds: int
    hours: tuple[str, ...]
    not_before: time | None
    options: Mapping[str, Any] = field(default_factory=dict)
    providers: tuple[str, ...] = ("synthetic",)  # in fallback order, per symbol
    python: str | None = None  # the interpreter of a .py script (default: this one)
    label: str | None = None  # a display name (an imported task's original name)
    workdir: str | None = None  # where a script runs, first on its PYTHONPATH (default: project)
    resources: TaskResources = field(default_factory=TaskResources)
    shards: int = 1  # 1: one job; N: N shard jobs (symbols split by hash) and a join

    @property
    def longest_run(self) -> timedelta:
        """The longest a run can take: every attempt timing out, every backoff waited."""
        attempts = self.retry.attempts
        waits = sum(self.retry.delay_before_retry(n) for n in range(1, attempts))
        return timedelta(seconds=attempts * self.max_runtime_seconds + waits)

    @property
    def runtime_minutes(self) -> int:
        """A job's wall-time limit on a cluster: ``longest_run`` in whole minutes, rounded up.

        The runner's own timeouts end every attempt before it; the limit only
        stops a runner that hangs itself.
        """
        return max(1, math.ceil(self.longest_run.total_seconds() / 60))

    def snakemake_resources(self) -> dict[str, int | str]:
        """The ``resources:`` of the task's rule (of each of its shard jobs)."""
        asked = {
            "mem_mb": self.resources.mem_mb,
            "cpus_per_task": self.resources.cpus_per_task,
            "slurm_partition": self.resources.slurm_partition,
        }
        return {"runtime": self.runtime_minutes} | {
            name: value for name, value in asked.items() if value is not None
        }

    @property
    def is_sharded(self) -> bool:
        return self.shards > 1

    @property
    def join_rule(self) -> str:
        """The rule that joins the shards: it writes the task's target (``target_pattern``)."""
        return f"{self.name}{JOIN_RULE_SUFFIX}"

    @property
    def shard_target_pattern(self) -> str:
        """A shard's sentinel path, with the ``{session}`` and ``{shard}`` wildcards."""
        return _shard_pattern(SHARD_TARGET_TEMPLATE, self)

    @property
    def shard_log_pattern(self) -> str:
        return _shard_pattern(SHARD_LOG_TEMPLATE, self)

    def shard_targets(self, session: date | str) -> list[str]:
        """The sentinels of every shard of one session (the join's inputs)."""
        return [
            self.shard_target_pattern.format(session=session, shard=index)
            for index in range(self.shards)
        ]

    @property
    def target_pattern(self) -> str:
        """The sentinel path with Snakemake wildcards (``{session}``, ``{slot}``)."""
        return TARGET_TEMPLATES[self.family].replace("{task}", self.name)

    @property
    def log_pattern(self) -> str:
        return LOG_TEMPLATES[self.family].replace("{task}", self.name)

    def target(self, session: date | str, slot: str | None = None) -> str:
        """The sentinel of one period of this task."""
        return self.target_pattern.format(session=session, slot=slot)

    def log(self, session: date | str, slot: str | None = None) -> str:
        return self.log_pattern.format(session=session, slot=slot)

    def floor_slot(self, slot: str) -> str:
        """The slot of this task that contains ``slot`` (``HHMM``) of a finer task."""
        minutes = int(slot[:2]) * 60 + int(slot[2:])
        floored = minutes - minutes % (self.interval_seconds // 60)
        return f"{floored // 60:02d}{floored % 60:02d}"


def _shard_pattern(template: str, task: TaskConfig) -> str:
    return template.replace("{task}", task.name).replace("{count}", str(task.shards))


@dataclass(frozen=True)
class Period:
    """What one run covers: a session, and a slot for intraday tasks."""

    session: date
    slot: str | None = None

    def __str__(self) -> str:
        return f"{self.session}/{self.slot}" if self.slot else str(self.session)

    @property
    def label(self) -> str:
        """For people: ``2026-11-27`` or ``14:35`` (an intraday slot's session is today's)."""
        return f"{self.slot[:2]}:{self.slot[2:]}" if self.slot else str(self.session)


@dataclass(frozen=True)
class Pipeline:
    """The tasks in config order, and the graph their ``needs`` make."""

    tasks: Mapping[str, TaskConfig]

    def __iter__(self) -> Iterator[TaskConfig]:
        return iter(self.tasks.values())

    def task(self, name: str) -> TaskConfig:
        try:
            return self.tasks[name]
        except KeyError:
            raise UsageError(
                f"no task {name!r} in the config (tasks: {', '.join(self.tasks)})"
            ) from None

    def family(self, family: str) -> list[TaskConfig]:
        """Tasks of one family, in config order."""
        return [task for task in self if task.family == family]

    # -- the graph ----------------------------------------------------------

    @cached_property
    def _downstream(self) -> dict[str, tuple[str, ...]]:
        return {
            name: tuple(task.name for task in self if name in task.needs) for name in self.tasks
        }

    def downstream(self, name: str) -> tuple[str, ...]:
        """Tasks that need ``name`` directly, in config order."""
        return self._downstream[name]

    def upstream_closure(self, name: str) -> list[str]:
        """Every task ``name`` depends on, nearest first (breadth first)."""
        order: list[str] = []
        queue = list(self.tasks[name].needs)
        while queue:
            upstream = queue.pop(0)
            if upstream not in order:
                order.append(upstream)
                queue.extend(self.tasks[upstream].needs)
        return order

    @cached_property
    def tier(self) -> dict[str, int]:
        """Each task's depth: 0 needs nothing, else one more than its deepest need."""
        depth: dict[str, int] = {}

        def visit(name: str) -> int:
            if name not in depth:
                needs = self.tasks[name].needs
                depth[name] = 1 + max(map(visit, needs)) if needs else 0
            return depth[name]

        for name in self.tasks:
            visit(name)
        return depth

    def tiers(self, family: str) -> list[list[str]]:
        """The family's tasks by tier, config order within a tier."""
        tasks = self.family(family)
        count = 1 + max((self.tier[t.name] for t in tasks), default=-1)
        return [[t.name for t in tasks if self.tier[t.name] == level] for level in range(count)]

    @cached_property
    def _height(self) -> dict[str, int]:
        """Tasks on the longest chain below each task, itself included."""
        height: dict[str, int] = {}
        for name in sorted(self.tasks, key=lambda n: -self.tier[n]):
            height[name] = 1 + max((height[d] for d in self.downstream(name)), default=0)
        return height

    def on_critical_path(self, name: str) -> bool:
        """Whether ``name`` lies on one of its family's longest chains.

        With more ready jobs than cores Snakemake does not favour these on its
        own, and a run would take a wave longer; the rules give them priority.
        """
        family = self.tasks[name].family
        longest = max(self.tier[t.name] + self._height[t.name] for t in self.family(family))
        return self.tier[name] + self._height[name] == longest

    # -- periods -------------------------------------------------------------

    def upstream_slot(self, upstream: str, slot: str) -> str:
        """The slot of ``upstream`` that a dependent's ``slot`` reads."""
        return self.tasks[upstream].floor_slot(slot)

    def input_targets(self, name: str, period: Period) -> list[str]:
        """The sentinels of ``name``'s needs for ``period``: its rule's inputs."""
        return [
            self.tasks[up].target(
                period.session, self.upstream_slot(up, period.slot) if period.slot else None
            )
            for up in self.tasks[name].needs
        ]

    def daily_targets(self, session: date) -> list[str]:
        return [task.target(session) for task in self.family("daily")]

    def due_slots(self, calendar: MarketCalendar, now: datetime) -> dict[str, Period]:
        """The period each intraday task has to build at ``now``; none when closed.

        A task is due in its hours and in its closing slot (see
        ``MarketCalendar.slot_is_due``).
        """
        due = {}
        for task in self.family("intraday"):
            if calendar.slot_is_due(now, task.hours, task.interval_seconds):
                session = calendar.trading_day(now)
                due[task.name] = Period(session, calendar.slot(now, task.interval_seconds))
        return due

    def intraday_targets(self, calendar: MarketCalendar, now: datetime) -> list[str]:
        """The current slot's sentinel of every intraday task due at ``now``."""
        return [
            self.tasks[name].target(period.session, period.slot)
            for name, period in self.due_slots(calendar, now).items()
        ]


def is_live(task: TaskConfig, period: Period, calendar: MarketCalendar, now: datetime) -> bool:
    """Whether ``period`` is the task's current one: a daily task's current session, an
    intraday task's trading day. Runs of other periods (backfills) are history only."""
    if task.family == "daily":
        return period.session == calendar.current_session(now)
    return period.session == calendar.trading_day(now)


def check_period_is_due(
    task: TaskConfig, period: Period, calendar: MarketCalendar, now: datetime
) -> None:
    """``UsageError`` unless ``task`` may be built for ``period`` at ``now``."""
    where = f"{task.name} {period}"
    try:
        is_session = calendar.is_session(period.session)
    except CalendarRangeError as error:
        raise UsageError(f"{where}: {error}") from None
    if not is_session:
        raise UsageError(f"{where}: {period.session} is not a {calendar.name} trading day")
    if task.family == "daily" or period.slot is None:
        if period.session > calendar.current_session(now):
            raise UsageError(f"{where}: session {period.session} has not started yet")
        return
    start = calendar.slot_time(period.session, period.slot)
    if task.floor_slot(period.slot) != period.slot:
        raise UsageError(f"{where}: not a slot of this task (every {task.interval_seconds // 60}m)")
    if not calendar.slot_is_due(start + timedelta(seconds=1), task.hours, task.interval_seconds):
        raise UsageError(f"{where}: outside the task's hours ({', '.join(task.hours)})")
    if start > now:
        raise UsageError(f"{where}: the slot has not begun yet")


def session_of_run(calendar: MarketCalendar, now: datetime, requested: date | None) -> date:
    """The session a daily run builds: ``requested`` (a backfill) or the current one.

    ``UsageError`` for a requested day that is no session, that lies outside
    the calendar or that has not started at ``now``.
    """
    if requested is None:
        return calendar.current_session(now)
    try:
        is_session = calendar.is_session(requested)
    except CalendarRangeError as error:
        raise UsageError(f"session {requested}: {error}") from None
    if not is_session:
        raise UsageError(f"session {requested} is not a {calendar.name} trading day")
    if requested > calendar.current_session(now):
        raise UsageError(f"session {requested} has not started yet")
    return requested
