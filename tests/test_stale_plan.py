"""--update-stale planning: which sources, and the exact Snakemake arguments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator.config import Config, build_config
from orchestrator.errors import UsageError
from orchestrator.freshness import GREEN, RED, UNKNOWN, YELLOW
from orchestrator.health import HealthReport, SourceHealth
from orchestrator.market_calendar import MarketCalendar
from orchestrator.stale_plan import StaleItem, plan_stale_updates, snakemake_forcerun_args

ET = ZoneInfo("America/New_York")
MONDAY_10 = datetime(2026, 11, 30, 10, tzinfo=ET)
SATURDAY = datetime(2026, 11, 28, 12, tzinfo=ET)


def week_calendar() -> MarketCalendar:
    """XNYS 2026-11-23 to 2026-12-04 by hand (Thanksgiving closed, the 27th a half day)."""
    sessions, opens, closes = [], [], []
    day = date(2026, 11, 23)
    while day <= date(2026, 12, 4):
        if day.weekday() < 5 and day != date(2026, 11, 26):
            sessions.append(day)
            opens.append(datetime(day.year, day.month, day.day, 9, 30, tzinfo=ET).timestamp())
            close = 13 if day == date(2026, 11, 27) else 16
            closes.append(datetime(day.year, day.month, day.day, close, tzinfo=ET).timestamp())
        day += timedelta(days=1)
    return MarketCalendar("XNYS", "America/New_York", sessions, opens, closes)


@pytest.fixture()
def config(tmp_path: Path) -> Config:
    (tmp_path / "job.py").write_text("print('ok')\n")

    def task(family: str, **extra: object) -> dict[str, object]:
        return {"family": family, "script": "job.py", **extra}

    fresh = {"green": "1h", "yellow": "2h"}
    raw = {
        "tasks": {
            "assets": task("daily", freshness=fresh),
            "news": task("daily", freshness={"green": "30m", "yellow": "60m"}),
            "analyst": task("daily", freshness=fresh),
            "signals": task("daily", freshness={**fresh, "clock": "market"}),
            "price_data": task(
                "intraday",
                interval="1m",
                freshness={"green": "5m", "yellow": "15m", "clock": "market"},
            ),
            "premarket_news": task(
                "intraday", interval="5m", hours=["pre"], freshness={**fresh, "clock": "market"}
            ),
            "intraday_signals": task(
                "intraday", interval="5m", freshness={**fresh, "clock": "market"}
            ),
        }
    }
    return build_config(raw, "config.yaml", base_dir=tmp_path)


def source(
    config: Config, task: str, status: str, age: float | None, message: str = ""
) -> SourceHealth:
    spec = config.pipeline.task(task)
    assert spec.freshness is not None
    return SourceHealth(
        task=task,
        family=spec.family,
        clock=spec.freshness.clock,
        status=status,
        age_seconds=age,
        data_time=None,
        basis=None,
        message=message,
        green_seconds=spec.freshness.green,
        yellow_seconds=spec.freshness.yellow,
    )


@pytest.fixture()
def report(config: Config) -> HealthReport:
    sources = (
        # Worst first, as a report holds them; plans come out in config order.
        source(config, "intraday_signals", RED, 3 * 3600),
        source(config, "news", RED, 2 * 3600 + 5 * 60),
        source(config, "price_data", YELLOW, 7 * 60),
        source(config, "analyst", YELLOW, 90 * 60),
        source(config, "assets", GREEN, 60),
        source(config, "premarket_news", GREEN, 60),
        source(config, "signals", UNKNOWN, None, "no successful run yet"),
    )
    return HealthReport(
        now=MONDAY_10.astimezone(UTC),
        timezone_label="ET",
        local_now=MONDAY_10,
        sources=sources,
        tasks=(),
    )


def test_plan_from_yellow(report: HealthReport, config: Config) -> None:
    plan = plan_stale_updates(report, "yellow", config)
    assert plan == [
        StaleItem("news", "daily", RED, "red: 2h 5m old, over 1h"),
        StaleItem("analyst", "daily", YELLOW, "yellow: 1h 30m old, over 1h"),
        StaleItem("signals", "daily", UNKNOWN, "unknown: no successful run yet"),
        StaleItem("price_data", "intraday", YELLOW, "yellow: 7m of market time old, over 5m"),
        StaleItem("intraday_signals", "intraday", RED, "red: 3h of market time old, over 2h"),
    ]


def test_plan_from_red(report: HealthReport, config: Config) -> None:
    plan = plan_stale_updates(report, "red", config)
    assert [(item.task, item.status) for item in plan] == [
        ("news", RED),
        ("signals", UNKNOWN),
        ("intraday_signals", RED),
    ]


def test_plan_without_config_keeps_report_order(report: HealthReport) -> None:
    plan = plan_stale_updates(report, "RED")
    assert [item.task for item in plan] == ["intraday_signals", "news", "signals"]


def test_plan_with_nothing_stale(report: HealthReport, config: Config) -> None:
    green = HealthReport(
        report.now, "ET", report.local_now, tuple(s for s in report.sources if s.status == GREEN),
        (),
    )  # fmt: skip
    assert plan_stale_updates(green, "yellow", config) == []
    assert snakemake_forcerun_args([], config, week_calendar(), MONDAY_10) == {}


def test_plan_drops_tasks_no_longer_configured(report: HealthReport, config: Config) -> None:
    gone = source(config, "news", RED, 9999)
    gone = SourceHealth(**{**gone.__dict__, "task": "removed_source"})
    with_gone = HealthReport(report.now, "ET", report.local_now, (gone,), ())
    assert plan_stale_updates(with_gone, "red", config) == []
    assert len(plan_stale_updates(with_gone, "red")) == 1


def test_unknown_level_is_a_usage_error(report: HealthReport, config: Config) -> None:
    with pytest.raises(UsageError, match="'orange' is not one of: yellow, red"):
        plan_stale_updates(report, "orange", config)


def test_forcerun_args_during_the_session(report: HealthReport, config: Config) -> None:
    plan = plan_stale_updates(report, "yellow", config)
    args = snakemake_forcerun_args(plan, config, week_calendar(), MONDAY_10)
    assert args == {
        "daily": ["daily", "--forcerun", "news", "analyst", "signals"],
        "intraday": ["intraday", "--forcerun", "price_data", "intraday_signals"],
    }
    for arguments in args.values():
        assert arguments.index("--forcerun") == 1  # the target first: -R swallows what follows


def test_forcerun_args_when_the_market_is_closed(report: HealthReport, config: Config) -> None:
    plan = plan_stale_updates(report, "yellow", config)
    args = snakemake_forcerun_args(plan, config, week_calendar(), SATURDAY)
    assert args == {"daily": ["daily", "--forcerun", "news", "analyst", "signals"]}


def test_forcerun_args_only_for_sources_in_scope(config: Config) -> None:
    plan = [
        StaleItem("premarket_news", "intraday", RED, "red"),
        StaleItem("price_data", "intraday", RED, "red"),
    ]
    calendar = week_calendar()
    pre_market = datetime(2026, 11, 30, 8, tzinfo=ET)
    assert snakemake_forcerun_args(plan, config, calendar, pre_market) == {
        "intraday": ["intraday", "--forcerun", "premarket_news"]
    }
    assert snakemake_forcerun_args(plan, config, calendar, MONDAY_10) == {
        "intraday": ["intraday", "--forcerun", "price_data"]
    }


def test_forcerun_args_deduplicate_and_skip_unknown_tasks(config: Config) -> None:
    plan = [
        StaleItem("news", "daily", RED, "red"),
        StaleItem("news", "daily", RED, "red"),
        StaleItem("not_a_task", "daily", RED, "red"),
    ]
    assert snakemake_forcerun_args(plan, config, week_calendar(), MONDAY_10) == {
        "daily": ["daily", "--forcerun", "news"]
    }
