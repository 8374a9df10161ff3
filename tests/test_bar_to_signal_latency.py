"""Bar-to-signal latency, measured in the product: sentinels, health, metrics, dashboard.

The runner records when each intraday slot became due and how long after it
the sentinel was written; the latency of the family's last task (the
signals) is summed up per session as p50/p95 for ``--health --json``,
``/metrics`` and the overview. Runs are real runner runs at moved moments.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from orchestrator.clock import fixed_clock
from orchestrator.config import build_config
from orchestrator.health import collect_health, render_text, report_dict
from orchestrator.latency import last_intraday_tasks, session_latency
from orchestrator.market_calendar import load_calendar
from orchestrator.metrics import render_metrics
from orchestrator.pipeline import Period
from orchestrator.web.app import create_app
from tests.helpers import fixture, run_once

ET = ZoneInfo("America/New_York")
SESSION = datetime(2026, 11, 24, tzinfo=ET).date()
# Seconds after each 5-minute slot began when its signals were written.
SIGNAL_DELAYS = {"1000": 1.0, "1005": 2.0, "1010": 3.0, "1015": 4.0, "1020": 10.0}
TASKS = {
    "prices": {"family": "intraday", "script": fixture("succeed.py"), "interval": "1m"},
    "features": {
        "family": "intraday",
        "script": fixture("succeed.py"),
        "interval": "5m",
        "needs": ["prices"],
    },
    "signals": {
        "family": "intraday",
        "script": fixture("succeed.py"),
        "interval": "5m",
        "needs": ["features"],
    },
}


def _slot_start(slot: str) -> datetime:
    return datetime(2026, 11, 24, int(slot[:2]), int(slot[2:]), tzinfo=ET)


@pytest.fixture
def measured(tmp_path: Path):
    """A project whose intraday tasks ran live for five slots, signals at SIGNAL_DELAYS."""
    config = build_config({"tasks": TASKS}, "config.yaml", tmp_path)
    for slot, delay in SIGNAL_DELAYS.items():
        written = _slot_start(slot) + timedelta(seconds=delay)
        for task in ("prices", "features", "signals"):
            run_once(config, task, Period(SESSION, slot), written)
    return config, load_calendar(config.calendar_name, config.cache_dir)


def test_the_signals_task_is_where_a_tick_ends(measured) -> None:
    config, _ = measured
    assert last_intraday_tasks(config) == ("signals",)


def test_each_slot_latency_is_from_its_start_to_its_signals_sentinel(measured) -> None:
    config, calendar = measured
    latency = session_latency(config, calendar, _slot_start("1030"))
    assert dict(latency.seconds_by_slot) == SIGNAL_DELAYS
    assert latency.quantile(0.5) == 3.0
    assert latency.quantile(0.95) == pytest.approx(8.8)  # inclusive, between 4 s and 10 s
    assert latency.last_seconds == 10.0


def test_a_backfilled_slot_is_not_counted(measured) -> None:
    config, calendar = measured
    tomorrow = _slot_start("1030") + timedelta(days=1)
    run_once(config, "signals", Period(SESSION, "1025"), tomorrow)
    assert "1025" not in dict(
        session_latency(config, calendar, _slot_start("1030")).seconds_by_slot
    )


def test_health_json_and_text_show_p50_and_p95(measured) -> None:
    config, calendar = measured
    report = collect_health(config, _slot_start("1030"), calendar)
    document = json.loads(json.dumps(report_dict(report)))
    assert document["bar_to_signal_latency"] == {
        "session": "2026-11-24",
        "tasks": ["signals"],
        "slots": 5,
        "p50_seconds": 3.0,
        "p95_seconds": pytest.approx(8.8),
        "last_seconds": 10.0,
    }
    assert "Bar to signal 2026-11-24: p50 3.0s, p95 8.8s, last 10.0s over 5 slots" in render_text(
        report, color=False
    )


def test_metrics_expose_the_quantiles_and_the_last_slot(measured) -> None:
    config, calendar = measured
    text = render_metrics(config, _slot_start("1030"), calendar).decode()
    samples = {
        (sample.name, sample.labels.get("quantile")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name.startswith("pipeline_bar_to_signal")
    }
    assert samples[("pipeline_bar_to_signal_latency_seconds", "0.5")] == 3.0
    assert samples[("pipeline_bar_to_signal_latency_seconds", "0.95")] == pytest.approx(8.8)
    assert samples[("pipeline_bar_to_signal_latency_last_seconds", None)] == 10.0
    assert samples[("pipeline_bar_to_signal_slots", None)] == 5


def test_the_overview_shows_the_latency(measured, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(json.dumps({"tasks": TASKS}))
    app = create_app(
        tmp_path / "config.yaml", base_dir=tmp_path, clock=fixed_clock(_slot_start("1030"))
    )
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/api/overview").json()["bar_to_signal_latency"]["p50_seconds"] == 3.0
    page = client.get("/").text
    assert "bar to signal: p50 3.0 s" in page
    assert "p95 8.8 s over 5 slots today" in " ".join(page.split())
