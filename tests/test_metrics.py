"""Prometheus metrics: parsed with prometheus_client's own parser, checked against filled stores."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.testclient import TestClient

from orchestrator.clock import fixed_clock
from orchestrator.config import Config, build_config, read_yaml
from orchestrator.market_calendar import MarketCalendar, load_calendar
from orchestrator.metrics import DURATION_BUCKETS, render_metrics, write_textfile
from orchestrator.status_store import Attempt, StatusStore
from orchestrator.web.app import create_app

ET = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=ET)  # Monday, half an hour after the open
SATURDAY = datetime(2026, 11, 28, 12, 0, tzinfo=ET)
BARS_UNTIL = datetime(2026, 11, 30, 9, 58, tzinfo=ET)
SECRET_ERROR = "HTTP 500 from https://api.example/?token=abc run 7f3e"

CONFIG = """\
market: {calendar: XNYS, timezone: America/New_York}
tasks:
  loader:
    family: daily
    script: job.py
    critical: true
    freshness: {green: 1h, yellow: 2h}
  features:
    family: daily
    script: job.py
    needs: [loader]
    freshness: {green: 1h, yellow: 2h}
  prices:
    family: intraday
    script: job.py
    interval: 1m
    hours: [regular]
    freshness: {green: 5m, yellow: 15m, clock: market,
                data_time_sql: "SELECT MAX(ts) FROM bars WHERE ts <= :now"}
"""
EXPECTED_NAMES = {
    "pipeline_source_last_update_timestamp_seconds",
    "pipeline_source_data_age_seconds",
    "pipeline_source_health_status",
    "pipeline_task_runs",
    "pipeline_task_attempts",
    "pipeline_task_duration_seconds",
    "pipeline_task_consecutive_failures",
    "pipeline_intraday_last_tick_timestamp_seconds",
    "pipeline_market_open",
    "pipeline_build_info",
    "pipeline_bar_to_signal_latency_seconds",
    "pipeline_bar_to_signal_latency_last_seconds",
    "pipeline_bar_to_signal_slots",
}


def _attempt(
    task: str, period: str, number: int, start: datetime, seconds: float, outcome: str
) -> Attempt:
    return Attempt(
        task_name=task,
        period=period,
        attempt=number,
        started_at=start.astimezone(UTC),
        finished_at=(start + timedelta(seconds=seconds)).astimezone(UTC),
        outcome=outcome,
        error_message=None if outcome == "success" else SECRET_ERROR,
    )


@pytest.fixture
def project(tmp_path: Path, calendar_cache: Path) -> Path:
    """loader: 2 successes then a failed run (3 attempts); features: never ran; prices: ticking."""
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "job.py").write_text("print('ok')\n")
    shutil.copytree(calendar_cache, tmp_path / "state" / "cache")
    store = StatusStore(tmp_path / "state" / "status.db")
    for day, seconds in ((26, 0.3), (27, 4.0)):
        start = datetime(2026, 11, day, 9, 30, tzinfo=ET)
        store.mark_started("loader", start.astimezone(UTC))
        store.record_attempt(_attempt("loader", f"2026-11-{day}", 1, start, seconds, "success"))
        end = (start + timedelta(seconds=seconds)).astimezone(UTC)
        store.record_success("loader", start.astimezone(UTC), end, records_processed=10)
    start = datetime(2026, 11, 30, 9, 30, tzinfo=ET)
    store.mark_started("loader", start.astimezone(UTC))
    for number, (seconds, outcome) in enumerate(
        ((40.0, "transient"), (700.0, "timeout"), (2.0, "permanent")), start=1
    ):
        store.record_attempt(_attempt("loader", "2026-11-30", number, start, seconds, outcome))
    store.record_failure("loader", (start + timedelta(minutes=13)).astimezone(UTC), SECRET_ERROR)
    store.record_attempt(
        _attempt("prices", "2026-11-30/0959", 1, NOW - timedelta(seconds=55), 1.5, "success")
    )
    with sqlite3.connect(tmp_path / "state" / "market.db") as market:
        market.execute("CREATE TABLE bars (ts INTEGER)")
        market.execute("INSERT INTO bars VALUES (?)", (int(BARS_UNTIL.timestamp()),))
    market.close()
    return tmp_path


def _config(project: Path) -> tuple[Config, MarketCalendar]:
    config = build_config(read_yaml(project / "config.yaml"), "config.yaml", project)
    return config, load_calendar(config.calendar_name, config.cache_dir)


def _samples(text: str) -> dict[str, list[Sample]]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def test_every_metric_is_there_with_the_stores_values(project: Path) -> None:
    config, calendar = _config(project)
    families = _samples(render_metrics(config, NOW, calendar).decode())
    assert set(families) == EXPECTED_NAMES

    runs = families["pipeline_task_runs"]
    assert _value(runs, "pipeline_task_runs_total", task="loader", outcome="success") == 2
    assert _value(runs, "pipeline_task_runs_total", task="loader", outcome="failure") == 1
    assert _value(runs, "pipeline_task_runs_total", task="features", outcome="success") == 0

    attempts = families["pipeline_task_attempts"]
    assert {(s.labels["task"], s.labels["outcome"]): s.value for s in attempts} == {
        ("loader", "success"): 2,
        ("loader", "transient"): 1,
        ("loader", "timeout"): 1,
        ("loader", "permanent"): 1,
        ("prices", "success"): 1,
    }

    durations = families["pipeline_task_duration_seconds"]
    name = "pipeline_task_duration_seconds"
    # loader's attempts took 0.3, 4, 40, 700 and 2 seconds.
    assert _value(durations, f"{name}_bucket", task="loader", le="0.5") == 1
    assert _value(durations, f"{name}_bucket", task="loader", le="5.0") == 3
    assert _value(durations, f"{name}_bucket", task="loader", le="60.0") == 4
    assert _value(durations, f"{name}_bucket", task="loader", le="600.0") == 4
    assert _value(durations, f"{name}_bucket", task="loader", le="+Inf") == 5
    assert _value(durations, f"{name}_count", task="loader") == 5
    assert _value(durations, f"{name}_sum", task="loader") == pytest.approx(746.3)
    assert _value(durations, f"{name}_count", task="features") == 0
    buckets = [s for s in durations if s.name.endswith("_bucket") and s.labels["task"] == "loader"]
    assert len(buckets) == len(DURATION_BUCKETS) + 1

    failures = families["pipeline_task_consecutive_failures"]
    assert _value(failures, "pipeline_task_consecutive_failures", task="loader") == 1
    assert _value(failures, "pipeline_task_consecutive_failures", task="features") == 0

    health = families["pipeline_source_health_status"]
    assert {
        s.labels["status"] for s in health if s.value == 1 and s.labels["source"] == "loader"
    } == {
        "red"  # its last success was Friday
    }
    assert _value(health, "pipeline_source_health_status", source="prices", status="green") == 1
    assert _value(health, "pipeline_source_health_status", source="features", status="unknown") == 1
    assert sum(s.value for s in health) == 3  # exactly one status per source

    updated = families["pipeline_source_last_update_timestamp_seconds"]
    assert (
        _value(updated, "pipeline_source_last_update_timestamp_seconds", source="prices")
        == BARS_UNTIL.timestamp()
    )
    assert not [s for s in updated if s.labels["source"] == "features"]  # no data: no sample
    age = families["pipeline_source_data_age_seconds"]
    assert _value(age, "pipeline_source_data_age_seconds", source="prices") == 120

    tick = families["pipeline_intraday_last_tick_timestamp_seconds"]
    assert tick[0].value == (NOW - timedelta(seconds=55)).timestamp()
    assert families["pipeline_market_open"][0].value == 1
    info = families["pipeline_build_info"][0]
    assert info.value == 1 and info.labels["version"] and info.labels["python"]


def test_labels_hold_no_run_ids_periods_or_error_text(project: Path) -> None:
    config, calendar = _config(project)
    text = render_metrics(config, NOW, calendar).decode()
    allowed = {
        "loader", "features", "prices", "success", "failure", "transient", "timeout",
        "permanent", "green", "yellow", "red", "unknown",
    }  # fmt: skip
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for key, value in sample.labels.items():
                if key in ("le", "version", "python"):
                    continue
                assert value in allowed, f"{sample.name} label {key}={value!r}"
    assert "2026-11-30" not in text and "api.example" not in text and "abc" not in text


def test_the_market_is_closed_on_saturday(project: Path) -> None:
    config, calendar = _config(project)
    families = _samples(render_metrics(config, SATURDAY, calendar).decode())
    assert families["pipeline_market_open"][0].value == 0


def test_a_project_that_never_ran_has_zeros_not_errors(
    tmp_path: Path, calendar_cache: Path
) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "job.py").write_text("print('ok')\n")
    shutil.copytree(calendar_cache, tmp_path / "state" / "cache")
    config, calendar = _config(tmp_path)
    families = _samples(render_metrics(config, NOW, calendar).decode())
    assert set(families) == EXPECTED_NAMES
    assert families["pipeline_intraday_last_tick_timestamp_seconds"] == []
    assert all(s.value == 0 for s in families["pipeline_task_runs"])
    assert not (tmp_path / "state" / "status.db").exists()  # reading created nothing


def test_the_textfile_is_the_same_metrics_written_atomically(project: Path) -> None:
    config, calendar = _config(project)
    target = project / "textfile" / "pipeline.prom"
    write_textfile(config, target, NOW, calendar)
    assert target.read_bytes() == render_metrics(config, NOW, calendar)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # node_exporter may be another user
    assert [p.name for p in target.parent.iterdir()] == ["pipeline.prom"]  # no temp file left
    write_textfile(config, target, SATURDAY, calendar)  # replaced in place
    assert _samples(target.read_text())["pipeline_market_open"][0].value == 0


def test_the_dashboard_serves_the_same_metrics(project: Path) -> None:
    config, calendar = _config(project)
    app = create_app(project / "config.yaml", base_dir=project, clock=fixed_clock(NOW))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.content == render_metrics(config, NOW, calendar)
