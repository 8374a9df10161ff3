"""The health dashboard: a prepared status store and market DB with every status level."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import orchestrator.config as config_module
import orchestrator.health as health
from orchestrator.config import Config, load_config, load_config_cached
from orchestrator.errors import ConfigError
from orchestrator.freshness import GREEN, RED, UNKNOWN, YELLOW
from orchestrator.health import (
    HealthError,
    collect_health,
    exit_code,
    main_health,
    render_json,
    render_text,
    summary_line,
)
from orchestrator.market_calendar import MarketCalendar, load_calendar
from orchestrator.status_store import StatusStore
from tests.helpers import daily_config, fixture

ET = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=ET)  # a Monday, half an hour after the open

CONFIG = """\
market: {calendar: XNYS, timezone: America/New_York}
tasks:
  fresh_wall:
    family: daily
    script: job.py
    freshness: {green: 1h, yellow: 2h}
  stale_wall:
    family: daily
    script: job.py
    freshness: {green: 1h, yellow: 2h}
  dead_wall:
    family: daily
    script: job.py
    critical: true
    freshness: {green: 1h, yellow: 2h}
  prices_content:
    family: daily
    script: job.py
    freshness: {green: 6h, yellow: 12h, clock: market,
                data_time_sql: "SELECT MAX(ts) FROM daily_bars"}
  never_ran:
    family: daily
    script: job.py
    freshness: {green: 1h, yellow: 2h}
  price_data:
    family: intraday
    script: job.py
    interval: 1m
    hours: [regular]
    freshness: {green: 5m, yellow: 15m, clock: market,
                data_time_sql: "SELECT MAX(ts) FROM intraday_bars"}
  no_freshness:
    family: daily
    script: job.py
"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calendar_cache: Path) -> Path:
    """A working directory with config.yaml, a script and the calendar cache; no databases."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "job.py").write_text("print('ok')\n")
    shutil.copytree(calendar_cache, tmp_path / "state" / "cache")
    return tmp_path


def _run(store: StatusStore, task: str, end: datetime, ok: bool, seconds: float = 2.0) -> None:
    start = end - timedelta(seconds=seconds)
    store.mark_started(task, start)
    if ok:
        store.record_success(task, start, end, records_processed=100)
    else:
        store.record_failure(task, end, "provider down: HTTP 503")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.fixture()
def populated(project: Path) -> Path:
    """Runs and data giving every level: green, yellow, red (by run and by content), unknown."""
    store = StatusStore(project / "state" / "status.db")
    _run(store, "fresh_wall", NOW - timedelta(minutes=10), ok=True)
    _run(store, "stale_wall", NOW - timedelta(minutes=90), ok=True, seconds=4.0)
    _run(store, "stale_wall", NOW - timedelta(minutes=60), ok=False)
    _run(store, "stale_wall", NOW - timedelta(minutes=30), ok=False)
    _run(store, "dead_wall", NOW - timedelta(hours=5), ok=True)
    # Succeeded five minutes ago, but what it stored is from last Monday's close.
    _run(store, "prices_content", NOW - timedelta(minutes=5), ok=True)
    _run(store, "price_data", NOW - timedelta(minutes=1), ok=True)
    _run(store, "no_freshness", NOW - timedelta(minutes=1), ok=True)
    with sqlite3.connect(project / "state" / "market.db") as market:
        market.execute("CREATE TABLE daily_bars (ts INTEGER)")
        market.execute("CREATE TABLE intraday_bars (ts INTEGER)")
        market.executemany(
            "INSERT INTO daily_bars VALUES (?)",
            [(_epoch(datetime(2026, 11, 23, 16, tzinfo=ET)),), (_epoch(NOW - timedelta(days=30)),)],
        )
        market.execute(
            "INSERT INTO intraday_bars VALUES (?)", (_epoch(NOW - timedelta(minutes=2)),)
        )
    market.close()
    return project


def _collect(now: datetime = NOW) -> tuple[Config, MarketCalendar, health.HealthReport]:
    config = load_config("config.yaml")
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    return config, calendar, collect_health(config, now, calendar)


# -- collecting ----------------------------------------------------------------------


def test_every_status_level(populated: Path) -> None:
    _, _, report = _collect()
    statuses = {source.task: source.status for source in report.sources}
    assert statuses == {
        "fresh_wall": GREEN,
        "stale_wall": YELLOW,
        "dead_wall": RED,
        "prices_content": RED,
        "never_ran": UNKNOWN,
        "price_data": GREEN,
        "no_freshness": GREEN,  # the daily family's default thresholds
    }
    assert [s.status for s in report.sources_by_severity()] == [
        RED, RED, YELLOW, GREEN, GREEN, GREEN, UNKNOWN,
    ]  # fmt: skip
    assert summary_line(report) == "3 healthy, 1 stale, 2 critical, 1 unknown (Total: 7)"
    assert exit_code(report) == 2


def test_content_not_runs_decides(populated: Path) -> None:
    _, _, report = _collect()
    prices = next(s for s in report.sources if s.task == "prices_content")
    assert prices.basis == "data"
    assert prices.data_time == datetime(2026, 11, 23, 16, tzinfo=ET)
    # Since last Monday's close: two sessions, Thanksgiving, the half day, Monday's first 30m.
    assert prices.age_seconds == (2 * 6.5 + 3.5 + 0.5) * 3600
    assert prices.message == "data as of 2026-11-23 16:00 ET, 17h of market time"
    intraday = next(s for s in report.sources if s.task == "price_data")
    assert (intraday.basis, intraday.age_seconds) == ("data", 120)
    fresh = next(s for s in report.sources if s.task == "fresh_wall")
    assert (fresh.basis, fresh.age_seconds, fresh.message) == (
        "last success",
        600,
        "updated 10m ago",
    )


def test_task_statistics(populated: Path) -> None:
    _, _, report = _collect()
    tasks = {task.task: task for task in report.tasks}
    assert list(tasks) == [
        "fresh_wall", "stale_wall", "dead_wall", "prices_content", "never_ran", "price_data",
        "no_freshness",
    ]  # fmt: skip
    stale = tasks["stale_wall"]
    assert (stale.status, stale.runs, stale.successes, stale.failures) == ("FAILED", 3, 1, 2)
    assert stale.consecutive_failures == 2
    assert stale.success_rate == pytest.approx(1 / 3)
    assert stale.last_success_age_seconds == 90 * 60
    assert stale.average_runtime_seconds == 4.0
    assert stale.last_records_processed == 100
    assert stale.last_error == "provider down: HTTP 503"
    never = tasks["never_ran"]
    assert (never.status, never.runs, never.success_rate, never.last_success) == (
        "NEVER RUN",
        0,
        None,
        None,
    )


def test_weekend_keeps_market_sources_green(populated: Path) -> None:
    saturday = datetime(2026, 11, 28, 12, tzinfo=ET)
    with sqlite3.connect(populated / "state" / "market.db") as market:
        market.execute("DELETE FROM intraday_bars")
        close_bar = _epoch(datetime(2026, 11, 27, 12, 59, tzinfo=ET))  # the half day's last bar
        market.execute("INSERT INTO intraday_bars VALUES (?)", (close_bar,))
    market.close()
    _, _, report = _collect(saturday)
    intraday = next(s for s in report.sources if s.task == "price_data")
    assert (intraday.status, intraday.age_seconds) == (GREEN, 60)


def test_missing_databases_make_sources_unknown(project: Path) -> None:
    _, _, report = _collect()
    assert {source.status for source in report.sources} == {UNKNOWN}
    assert exit_code(report) == 1
    assert any("no status database yet" in note for note in report.notes)
    prices = next(s for s in report.sources if s.task == "prices_content")
    assert prices.message.startswith("no market database yet")
    assert not (project / "state" / "status.db").exists()  # read-only: nothing created
    assert not (project / "state" / "market.db").exists()


def test_empty_status_database_is_no_runs(project: Path) -> None:
    sqlite3.connect(project / "state" / "status.db").close()
    _, _, report = _collect()
    assert any("no runs recorded yet" in note for note in report.notes)


def test_bad_data_time_sql_makes_one_source_unknown(populated: Path) -> None:
    with sqlite3.connect(populated / "state" / "market.db") as market:
        market.execute("DROP TABLE daily_bars")
    market.close()
    _, _, report = _collect()
    prices = next(s for s in report.sources if s.task == "prices_content")
    assert prices.status == UNKNOWN
    assert prices.message == "data_time_sql failed: no such table: daily_bars"
    assert next(s for s in report.sources if s.task == "price_data").status == GREEN


def test_corrupt_status_database_is_one_clear_error(project: Path) -> None:
    (project / "state" / "status.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(HealthError, match=r"cannot read the status database .*status\.db"):
        _collect()


def test_naive_now_is_refused(populated: Path) -> None:
    config, calendar, _ = _collect()
    with pytest.raises(ValueError, match="naive"):
        collect_health(config, datetime(2026, 11, 30, 10), calendar)  # noqa: DTZ001


# -- exit codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ((), 0),
        ((GREEN, GREEN), 0),
        ((GREEN, UNKNOWN), 1),
        ((GREEN, YELLOW), 1),
        ((YELLOW, UNKNOWN, GREEN), 1),
        ((RED, GREEN), 2),
        ((RED, YELLOW, UNKNOWN), 2),
    ],
)
def test_exit_code(populated: Path, statuses: tuple[str, ...], code: int) -> None:
    _, _, report = _collect()
    template = report.sources[0]
    sources = tuple(replace(template, task=f"s{i}", status=s) for i, s in enumerate(statuses))
    healthy_tasks = tuple(replace(t, status="SUCCESS") for t in report.tasks)
    assert exit_code(replace(report, sources=sources, tasks=healthy_tasks)) == code


@pytest.mark.parametrize(
    ("status", "critical", "code"),
    [("FAILED", False, 1), ("FAILED", True, 2), ("INTERRUPTED", True, 2), ("SKIPPED", True, 0)],
)
def test_a_failed_last_run_sets_the_exit_code_even_while_sources_are_green(
    populated: Path, status: str, critical: bool, code: int
) -> None:
    _, _, report = _collect()
    green = tuple(replace(source, status=GREEN) for source in report.sources)
    tasks = tuple(replace(t, status="SUCCESS") for t in report.tasks)
    tasks = (replace(tasks[0], status=status, critical=critical), *tasks[1:])
    assert exit_code(replace(report, sources=green, tasks=tasks)) == code


def test_a_task_running_longer_than_it_could_is_shown_interrupted(project: Path) -> None:
    store = StatusStore(project / "state" / "status.db")
    # 3 attempts of 600 s and waits of 10 + 30 s: a run takes 30m40s at most.
    store.mark_started("dead_wall", NOW - timedelta(minutes=31))  # critical
    store.mark_started("stale_wall", NOW - timedelta(minutes=30))
    _, _, report = _collect()
    tasks = {task.task: task for task in report.tasks}
    assert tasks["dead_wall"].status == "INTERRUPTED"
    assert "RUNNING since" in (tasks["dead_wall"].last_error or "")
    assert tasks["stale_wall"].status == "RUNNING"  # may still be on its last attempt
    assert exit_code(report) == 2


# -- rendering ---------------------------------------------------------------------------


def test_plain_text(populated: Path) -> None:
    _, _, report = _collect()
    text = render_text(report, color=False)
    assert "\033[" not in text
    assert "🔴" not in text
    lines = text.splitlines()
    assert lines[0] == "Data sources at 2026-11-30 10:00 ET"
    order = [line.split()[1] for line in lines[2:9]]
    assert order == [
        "dead_wall", "prices_content", "stale_wall", "fresh_wall", "price_data", "no_freshness",
        "never_ran",
    ]  # fmt: skip
    assert lines[2].split()[:3] == ["RED", "dead_wall", "5h"]
    assert "3 healthy, 1 stale, 2 critical, 1 unknown (Total: 7)" in lines
    stale_row = next(line for line in lines if line.lstrip().startswith("stale_wall  "))
    assert stale_row.split()[1:5] == ["FAILED", "33%", "(1/3)", "1h"]
    assert stale_row.endswith("provider down: HTTP 503")
    fresh_row = next(line for line in lines if line.lstrip().startswith("fresh_wall  "))
    assert fresh_row.split()[1:] == ["SUCCESS", "100%", "(1/1)", "10m", "ago", "0", "2.0s", "100",
                                     "-"]  # fmt: skip
    never_row = next(line for line in lines if line.lstrip().startswith("never_ran  "))
    assert never_row.split()[1:] == ["NEVER", "RUN", "-", "never", "0", "-", "-", "-"]


def test_color_text(populated: Path) -> None:
    _, _, report = _collect()
    text = render_text(report, color=True)
    assert "\033[31m" in text and "\033[33m" in text and "\033[32m" in text
    assert "🔴 RED" in text and "🟡 YELLOW" in text and "🟢 GREEN" in text and "⚪ UNKNOWN" in text


def test_json(populated: Path) -> None:
    _, _, report = _collect()
    document = json.loads(render_json(report))
    assert document["now"] == "2026-11-30T15:00:00+00:00"
    assert document["exit_code"] == 2
    assert document["summary"] == {
        "healthy": 3,
        "stale": 1,
        "critical": 2,
        "unknown": 1,
        "total": 7,
        "text": "3 healthy, 1 stale, 2 critical, 1 unknown (Total: 7)",
    }
    assert [s["task"] for s in document["sources"]][:2] == ["dead_wall", "prices_content"]
    prices = next(s for s in document["sources"] if s["task"] == "prices_content")
    assert prices["data_time"] == "2026-11-23T21:00:00+00:00"
    assert prices["basis"] == "data"
    stale = next(t for t in document["tasks"] if t["task"] == "stale_wall")
    assert stale["consecutive_failures"] == 2
    assert stale["last_error"] == "provider down: HTTP 503"


# -- the entry point ----------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_main_health_plain_when_not_a_terminal(populated: Path) -> None:
    out = io.StringIO()
    assert main_health(Path("config.yaml"), as_json=False, now=NOW, stream=out) == 2
    assert "\033[" not in out.getvalue()
    assert "(Total: 7)" in out.getvalue()


def test_main_health_colour_on_a_terminal_unless_no_color(
    populated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = FakeTerminal()
    main_health(Path("config.yaml"), as_json=False, now=NOW, stream=terminal)
    assert "\033[31m" in terminal.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = FakeTerminal()
    main_health(Path("config.yaml"), as_json=False, now=NOW, stream=terminal)
    assert "\033[" not in terminal.getvalue()


def test_main_health_json(populated: Path) -> None:
    out = FakeTerminal()  # JSON is never coloured
    assert main_health(Path("config.yaml"), as_json=True, now=NOW, stream=out) == 2
    assert json.loads(out.getvalue())["summary"]["critical"] == 2


def test_main_health_without_databases(project: Path) -> None:
    out = io.StringIO()
    assert main_health(Path("config.yaml"), as_json=False, now=NOW, stream=out) == 1
    assert "0 healthy, 0 stale, 0 critical, 7 unknown (Total: 7)" in out.getvalue()


def test_validation_stamp(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_config_cached("config.yaml")
    stamps = list((project / "state" / "run").glob("validated-*.json"))
    assert len(stamps) == 1

    def no_full_validation(path: object) -> Config:
        raise AssertionError("validated again although the stamp matches")

    monkeypatch.setattr(config_module, "load_config", no_full_validation)
    assert load_config_cached("config.yaml") == first
    monkeypatch.undo()
    monkeypatch.chdir(project)
    # Any change of the bytes means a full validation, and a bad config is an error.
    (project / "config.yaml").write_text(CONFIG.replace("yellow: 2h}", "yellow: 30m}", 1))
    with pytest.raises(ConfigError, match=r"tasks\.fresh_wall\.freshness\.yellow"):
        load_config_cached("config.yaml")
    (project / "config.yaml").write_text(CONFIG + "\n")
    assert load_config_cached("config.yaml").pipeline == first.pipeline
    assert len(list((project / "state" / "run").glob("validated-*.json"))) == 2


def test_missing_config_is_a_config_error(project: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        main_health(Path("nowhere.yaml"), as_json=False, now=NOW, stream=io.StringIO())


def test_health_path_imports_nothing_heavy(populated: Path) -> None:
    load_config_cached("config.yaml")  # the stamp, as after any earlier run
    script = (
        "import sys, io\n"
        "from datetime import datetime\n"
        "from orchestrator.health import main_health\n"
        f"code = main_health('config.yaml', False, datetime.fromisoformat({NOW.isoformat()!r}),"
        " io.StringIO())\n"
        "heavy = {'pandas', 'numpy', 'snakemake', 'jsonschema', 'exchange_calendars', 'rich',"
        " 'importlib.metadata', 'logging'}\n"
        "print(sorted(heavy & set(sys.modules)), code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=populated
    )
    assert result.stdout.split("\n")[0] == "[] 2"


def test_module_entry_point_reports_errors_in_one_line(project: Path) -> None:
    (project / "config.yaml").write_text("tasks: [oops\n")
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.health", "--now", NOW.isoformat()],
        capture_output=True,
        text=True,
        cwd=project,
    )
    assert result.returncode == 3
    assert result.stderr.startswith("orchestrator --health: config.yaml: YAML syntax error")
    assert len(result.stderr.strip().splitlines()) == 1


def test_now_is_utc_in_the_report(populated: Path) -> None:
    _, _, report = _collect()
    assert report.now == NOW.astimezone(UTC)
    assert report.now.tzinfo is UTC


def test_failed_upstream_names_the_nearest_failed_ancestor(base: Path) -> None:
    job = {"script": fixture("succeed.py")}
    dependencies = daily_config(
        base,
        assets=job,
        prices_daily={**job, "needs": ["assets"]},
        news={**job, "needs": ["assets"]},
        ml_features={**job, "needs": ["prices_daily", "news"]},
        signals={**job, "needs": ["ml_features"]},
    ).pipeline
    rows = {"assets": {"status": "SUCCESS"}, "prices_daily": {"status": "FAILED"}}
    assert health.failed_upstream("signals", dependencies, rows) == "prices_daily"
    assert health.failed_upstream("news", dependencies, rows) is None
    rows["ml_features"] = {"status": "FAILED"}
    assert health.failed_upstream("signals", dependencies, rows) == "ml_features"
