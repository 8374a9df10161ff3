"""Prometheus metrics of the pipeline, read from the stores at scrape time.

``PipelineCollector`` is a ``prometheus_client`` custom collector: nothing is
counted in memory, every scrape reads the status store (and, through the
health report, the market store), so the counts survive restarts and are the
same whichever process serves them: the dashboard's ``/metrics``,
``render_metrics`` or ``write_textfile`` (``orchestrator metrics --textfile``,
for node_exporter's textfile collector). Read-only.

Metrics (labels hold config names and fixed words only: never a run id, a
period or an error text, which would make a new series every run):

- ``pipeline_source_last_update_timestamp_seconds{source}``: the source's data
  time (its stored data, or its last successful run); absent while unknown;
- ``pipeline_source_data_age_seconds{source}``: its age as the health check
  judges it (market time for ``clock: market`` sources);
- ``pipeline_source_health_status{source,status}``: 1 for its current status
  (green, yellow, red, unknown), 0 for the others;
- ``pipeline_task_runs_total{task,outcome}``: runs of the live period that
  ended in ``success`` or ``failure`` (``data_pipeline_status``' counters);
- ``pipeline_task_attempts_total{task,outcome}``: every recorded attempt, by
  ``task_attempts.outcome`` (success, transient, permanent, timeout);
- ``pipeline_task_duration_seconds{task}``: a histogram of attempt durations;
- ``pipeline_task_consecutive_failures{task}``;
- ``pipeline_intraday_last_tick_timestamp_seconds``: the intraday loop's last
  tick (``web.history.intraday_heartbeat``); absent before the first;
- ``pipeline_market_open``: 1 during regular hours, else 0;
- ``pipeline_build_info{version,python}``: always 1.
"""

from __future__ import annotations

import contextlib
import itertools
import platform
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from orchestrator import database
from orchestrator.config import Config
from orchestrator.errors import CalendarRangeError
from orchestrator.files import write_atomically
from orchestrator.freshness import SEVERITY
from orchestrator.health import HealthReport, SourceHealth, collect_health
from orchestrator.market_calendar import MarketCalendar, load_calendar
from orchestrator.web.history import intraday_heartbeat, readonly, rows

DISTRIBUTION = "market-pipeline-orchestrator"
# Seconds: collectors run from under a second to the ten-minute default limit.
DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
TEXTFILE_MODE = 0o644  # node_exporter often runs as another user


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def _attempt_tallies(
    connection: database.Connection | None,
) -> dict[tuple[str, str], tuple[list[int], float]]:
    """Per (task, outcome): attempts per duration bucket (not cumulative) and their summed time.

    One scan of the history, grouped by SQLite: no attempt row is brought
    into Python. Bucket ``len(DURATION_BUCKETS)`` is beyond the last bound.
    """
    bucket = " ".join(
        f"WHEN duration_seconds <= {bound} THEN {index}"
        for index, bound in enumerate(DURATION_BUCKETS)
    )
    tallies: dict[tuple[str, str], tuple[list[int], float]] = {}
    for task, outcome, index, count, seconds in rows(
        connection,
        f"SELECT task_name, outcome, CASE {bucket} ELSE {len(DURATION_BUCKETS)} END, "
        "COUNT(*), TOTAL(duration_seconds) FROM task_attempts GROUP BY 1, 2, 3",
    ):
        counts, total = tallies.get((task, outcome), ([0] * (len(DURATION_BUCKETS) + 1), 0.0))
        counts[index] += int(count)
        tallies[(task, outcome)] = (counts, total + float(seconds))
    return tallies


class PipelineCollector(Collector):
    """Reads the stores of ``config`` at each ``collect`` (each scrape)."""

    def __init__(
        self,
        config: Config,
        calendar: MarketCalendar | None = None,
        now: datetime | None = None,
    ) -> None:
        self.config = config
        self.calendar = calendar or load_calendar(config.calendar_name, config.cache_dir)
        self.now = now  # None: the config's pinned now, else the wall clock at each scrape

    def _moment(self) -> datetime:
        return self.now or self.config.now or datetime.now(UTC)

    def collect(self) -> Iterator[Metric]:
        now = self._moment()
        report = collect_health(self.config, now, self.calendar)
        yield from self._source_metrics(report.sources)
        consecutive = GaugeMetricFamily(
            "pipeline_task_consecutive_failures",
            "Runs in a row that failed, per task (0 after a success).",
            labels=["task"],
        )
        for task in report.tasks:
            consecutive.add_metric([task.task], task.consecutive_failures)
        yield consecutive
        with readonly(self.config.status_store) as connection:
            yield from self._history_metrics(connection)
            heartbeat = intraday_heartbeat(self.config, self.calendar, now, connection)
        tick = GaugeMetricFamily(
            "pipeline_intraday_last_tick_timestamp_seconds",
            "When the intraday loop last started a task (Unix time); absent before its first tick.",
        )
        if heartbeat.last_tick is not None:
            tick.add_metric([], heartbeat.last_tick.timestamp())
        yield tick
        yield from self._latency_metrics(report)
        market_open = GaugeMetricFamily(
            "pipeline_market_open", "1 during the exchange's regular trading hours, else 0."
        )
        # Beyond the calendar's range the market's state is unknown: no sample.
        with contextlib.suppress(CalendarRangeError):
            market_open.add_metric([], 1.0 if self.calendar.is_open(now) else 0.0)
        yield market_open
        info = GaugeMetricFamily(
            "pipeline_build_info",
            "The orchestrator's version and Python's, as labels; always 1.",
            labels=["version", "python"],
        )
        info.add_metric([_version(), platform.python_version()], 1.0)
        yield info

    def _latency_metrics(self, report: HealthReport) -> Iterator[Metric]:
        """Bar-to-signal latency over the session: p50, p95 and the last slot's."""
        latency = GaugeMetricFamily(
            "pipeline_bar_to_signal_latency_seconds",
            "From a slot becoming due to its signals written, over the trading day's slots.",
            labels=["quantile"],
        )
        last = GaugeMetricFamily(
            "pipeline_bar_to_signal_latency_last_seconds",
            "The latest slot's bar-to-signal latency; absent before the first live slot.",
        )
        slots = GaugeMetricFamily(
            "pipeline_bar_to_signal_slots", "Slots of the trading day whose latency was measured."
        )
        measured = report.latency
        if measured is not None and measured.count:
            for fraction in (0.5, 0.95):
                value = measured.quantile(fraction)
                if value is not None:
                    latency.add_metric([str(fraction)], value)
            last.add_metric([], measured.last_seconds or 0.0)
        slots.add_metric([], measured.count if measured else 0)
        yield latency
        yield last
        yield slots

    def _source_metrics(self, sources: tuple[SourceHealth, ...]) -> Iterator[Metric]:
        updated = GaugeMetricFamily(
            "pipeline_source_last_update_timestamp_seconds",
            "The source's data time (Unix time): its newest stored data, or its last success.",
            labels=["source"],
        )
        age = GaugeMetricFamily(
            "pipeline_source_data_age_seconds",
            "The source's age as the health check judges it (market time where it applies).",
            labels=["source"],
        )
        status = GaugeMetricFamily(
            "pipeline_source_health_status",
            "1 for the source's current health status, 0 for the others.",
            labels=["source", "status"],
        )
        for source in sources:
            if source.data_time is not None:
                updated.add_metric([source.task], source.data_time.timestamp())
            if source.age_seconds is not None:
                age.add_metric([source.task], source.age_seconds)
            for level in SEVERITY:
                status.add_metric(
                    [source.task, level.lower()], 1.0 if source.status == level else 0.0
                )
        yield from (updated, age, status)

    def _history_metrics(self, connection: database.Connection | None) -> Iterator[Metric]:
        tasks = list(self.config.pipeline.tasks)
        runs = CounterMetricFamily(
            "pipeline_task_runs",
            "Runs of a task's live period, by how they ended (success or failure).",
            labels=["task", "outcome"],
        )
        counters = {
            row["task_name"]: row
            for row in rows(
                connection,
                "SELECT task_name, total_successes, total_failures FROM data_pipeline_status",
            )
        }
        for task in tasks:
            row = counters.get(task)
            runs.add_metric([task, "success"], float(row["total_successes"] or 0) if row else 0.0)
            runs.add_metric([task, "failure"], float(row["total_failures"] or 0) if row else 0.0)
        yield runs
        tallies = _attempt_tallies(connection)
        attempts = CounterMetricFamily(
            "pipeline_task_attempts",
            "Attempts of a task, by outcome (success, transient, permanent, timeout).",
            labels=["task", "outcome"],
        )
        durations = HistogramMetricFamily(
            "pipeline_task_duration_seconds",
            "Durations of a task's attempts, in seconds.",
            labels=["task"],
        )
        for task in tasks:  # a task removed from the config is no series any more
            per_bucket = [0] * (len(DURATION_BUCKETS) + 1)
            total = 0.0
            for (name, outcome), (counts, seconds) in sorted(tallies.items()):
                if name != task:
                    continue
                attempts.add_metric([task, outcome], float(sum(counts)))
                per_bucket = [a + b for a, b in zip(per_bucket, counts, strict=True)]
                total += seconds
            cumulative = list(itertools.accumulate(per_bucket))
            buckets = [
                (_bound(bound), float(value))
                for bound, value in zip(DURATION_BUCKETS, cumulative, strict=False)
            ]
            buckets.append(("+Inf", float(cumulative[-1])))
            durations.add_metric([task], buckets, total)
        yield attempts
        yield durations


def _bound(value: float) -> str:
    """A bucket bound as Prometheus prints it: ``0.5``, ``1.0``, ``600.0``."""
    return repr(float(value))


def render_metrics(
    config: Config, now: datetime | None = None, calendar: MarketCalendar | None = None
) -> bytes:
    """The metrics in Prometheus' text format, judged at ``now`` (default: as ``--health``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(config, calendar, now))
    return generate_latest(registry)


def write_textfile(
    config: Config,
    path: Path | str,
    now: datetime | None = None,
    calendar: MarketCalendar | None = None,
) -> None:
    """Write the metrics to ``path`` atomically (node_exporter never reads half a file).

    Name it ``*.prom`` in node_exporter's ``--collector.textfile.directory``;
    the temp file is a dot file there, which the collector ignores.
    """
    write_atomically(Path(path), render_metrics(config, now, calendar), mode=TEXTFILE_MODE)
