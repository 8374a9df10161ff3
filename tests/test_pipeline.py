"""The pipeline model: targets, the graph of needs, slots, and what config refuses."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator import graph
from orchestrator.config import build_config, load_config
from orchestrator.errors import ConfigError, UsageError
from orchestrator.market_calendar import MarketCalendar
from orchestrator.pipeline import Period, session_of_run
from tests.helpers import fixture

ROOT = Path(__file__).resolve().parent.parent
ET = ZoneInfo("America/New_York")
SESSION = date(2026, 11, 20)


@pytest.fixture
def shipped(base: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(ROOT)
    return load_config(ROOT / "config.yaml").pipeline


def job(**settings: Any) -> dict[str, Any]:
    return {"family": "daily", "script": fixture("succeed.py"), **settings}


def test_targets_and_logs_follow_the_period_stamped_templates(shipped) -> None:
    assets, price = shipped.task("assets"), shipped.task("price_data")
    assert assets.target(SESSION) == "state/targets/daily/2026-11-20/assets.json"
    assert assets.log(SESSION) == "state/logs/daily/2026-11-20/assets.log"
    assert price.target(SESSION, "0935") == "state/targets/intraday/2026-11-20/price_data/0935.json"
    assert price.target_pattern == "state/targets/intraday/{session}/price_data/{slot}.json"
    assert shipped.daily_targets(SESSION)[0] == assets.target(SESSION)
    assert len(shipped.daily_targets(SESSION)) == 12


def test_tiers_downstream_and_the_critical_path_of_the_shipped_dag(shipped) -> None:
    assert shipped.tiers("daily") == [
        ["assets", "economic"],
        ["prices_daily", "fundamentals", "insider", "analyst", "news"],
        ["sentiment", "options", "earnings"],
        ["ml_features"],
        ["signals"],
    ]
    assert shipped.tiers("intraday") == [
        ["price_data"],
        ["intraday_features"],
        ["intraday_signals"],
    ]
    assert shipped.downstream("prices_daily") == ("options", "earnings", "ml_features")
    assert shipped.upstream_closure("sentiment") == ["news", "assets"]
    on_path = {t.name for t in shipped.family("daily") if shipped.on_critical_path(t.name)}
    # Both 5-deep chains: assets > prices_daily > options|earnings > ml_features > signals,
    # and assets > news > sentiment > ml_features > signals.
    assert on_path == {
        "assets", "prices_daily", "options", "earnings", "news", "sentiment", "ml_features",
        "signals",
    }  # fmt: skip


def test_a_dependent_reads_the_upstream_slot_that_contains_its_own(shipped) -> None:
    period = Period(SESSION, "1035")
    assert shipped.input_targets("intraday_features", period) == [
        "state/targets/intraday/2026-11-20/price_data/1035.json"
    ]
    assert shipped.task("intraday_features").floor_slot("1039") == "1035"
    assert shipped.input_targets("price_data", period) == []


def test_due_slots_in_hours_at_the_closing_slot_and_never_when_closed(
    shipped, calendar: MarketCalendar
) -> None:
    due = shipped.due_slots(calendar, datetime(2026, 11, 20, 10, 7, 30, tzinfo=ET))
    assert due == {
        "price_data": Period(SESSION, "1007"),
        "intraday_features": Period(SESSION, "1005"),
        "intraday_signals": Period(SESSION, "1005"),
    }
    closing = shipped.due_slots(calendar, datetime(2026, 11, 20, 16, 0, 20, tzinfo=ET))
    assert closing["price_data"] == Period(SESSION, "1600")
    assert shipped.due_slots(calendar, datetime(2026, 11, 21, 11, 0, tzinfo=ET)) == {}


def test_the_session_of_a_run(calendar: MarketCalendar) -> None:
    saturday = datetime(2026, 11, 21, 11, 0, tzinfo=ET)
    assert session_of_run(calendar, saturday, None) == SESSION
    assert session_of_run(calendar, saturday, date(2026, 11, 19)) == date(2026, 11, 19)
    with pytest.raises(UsageError, match="2026-11-26 is not a XNYS trading day"):
        session_of_run(calendar, saturday, date(2026, 11, 26))
    with pytest.raises(UsageError, match="2026-11-23 has not started yet"):
        session_of_run(calendar, saturday, date(2026, 11, 23))


@pytest.mark.parametrize(
    ("tasks", "key", "problem"),
    [
        (
            {"a": job(needs=["b"]), "b": job(needs=["c"]), "c": job(needs=["a"])},
            "tasks.a.needs",
            "the needs form a cycle: a -> b -> c -> a (each needs the next)",
        ),
        ({"a": job(needs=["a"])}, "tasks.a.needs", "'a' cannot need itself"),
        ({"a": job(needs=["ghost"])}, "tasks.a.needs", "'ghost' is not a task (tasks: a)"),
        (
            {"a": job(), "p": job(family="intraday", needs=["a"])},
            "tasks.p.needs",
            "'a' is a daily task, and intraday tasks can only need intraday tasks",
        ),
        ({"a": job(script="nowhere.py")}, "tasks.a.script", "no such file"),
    ],
)
def test_needs_and_scripts_are_checked_when_the_config_is_built(
    base: Path, tasks: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"tasks": tasks}, "pipeline.yaml", base)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"pipeline.yaml: {key}: ")


def test_a_script_must_be_executable_or_python(base: Path) -> None:
    script = base / "collect.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(ConfigError, match=r"tasks\.a\.script: .*collect.sh is not executable"):
        build_config({"tasks": {"a": job(script=str(script))}}, "p.yaml", base)
    script.chmod(0o755)
    assert build_config({"tasks": {"a": job(script=str(script))}}, "p.yaml", base)


def test_defaults_come_from_the_schema_and_defaults_section(base: Path) -> None:
    config = build_config({"tasks": {"a": job(), "p": job(family="intraday")}}, "p.yaml", base)
    a, p = config.pipeline.task("a"), config.pipeline.task("p")
    assert (a.critical, a.max_runtime_seconds, a.needs, a.args) == (False, 600, (), ())
    assert (a.retry.attempts, a.retry.backoff_seconds) == (3, (10, 30, 60))
    assert (p.interval_seconds, p.hours) == (60, ("regular",))
    assert (config.daily_cores, config.loop_interval_seconds, config.keep_sessions) == (4, 30, 5)
    assert config.provider == {"name": "synthetic", "seed": 42, "universe_size": 50}
    assert config.timezone == "America/New_York"  # the calendar's own


@pytest.mark.parametrize(
    ("provider", "key"),
    [
        ({"name": "synthetic", "universe_szie": 5}, "provider.universe_szie"),
        ({"faults": {"rate": "abc"}}, "provider.faults.rate"),
        ({"faults": {"rate": 0.1, "kinds": ["meteor"]}}, "provider.faults.kinds.0"),
    ],
)
def test_the_provider_section_is_closed_and_checked(
    base: Path, provider: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"provider": provider, "tasks": {"a": job()}}, "p.yaml", base)
    assert caught.value.key == key


def test_graph_text_and_dot(shipped) -> None:
    text = graph.render_text(shipped)
    assert "daily (12 tasks)" in text
    assert "  tier 4  signals [critical]  <- ml_features" in text
    assert "intraday_features [every 5m, regular hours, critical]  <- price_data" in text
    dot = graph.render_dot(shipped)
    assert dot.startswith("digraph pipeline {")
    assert '"news" -> "sentiment";' in dot
    assert dot.count("->") == sum(len(task.needs) for task in shipped)
