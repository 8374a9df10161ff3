"""The dashboard's web app: pages, a JSON API, server-sent events and ``/metrics``.

``create_app(config_path)`` builds a Starlette app over one project:

- pages: Overview ``/``, Sources ``/sources``, Tasks ``/tasks`` (with the runs
  x tasks grid and a duration chart per task), one run ``/run?task=&period=``,
  Graph ``/graph``, Data ``/data``, a task log ``/logs/<path under state/logs>``;
- the JSON API under ``/api/`` (``/api/`` lists it); ``/api/health`` is the
  document ``orchestrator --health --json`` prints;
- ``/events``: server-sent events; an ``update`` event whenever the status
  store changes (polled every ``poll_interval`` seconds), on which each page
  fetches itself again and swaps its content in place (htmx, no reload);
- ``/metrics`` for Prometheus (``orchestrator.metrics``).

Invariants: read-only (GET only; every database is opened read-only, once per
request, and closed after it; nothing under ``state/`` is written); times are
judged at the config's pinned ``now`` when it has one (as ``--health`` does),
else at the wall clock; every string leaving the app passes the ``Redactor``
(templates through Jinja's ``finalize``, JSON through ``Redactor.document``);
log files are served only from inside ``state/logs/``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from orchestrator.clock import Clock, fixed_clock, parse_time, system_clock
from orchestrator.config import Config, build_config, read_yaml
from orchestrator.errors import CalendarRangeError, OrchestratorError
from orchestrator.freshness import RED, YELLOW, as_of_text, human_age, zone_label
from orchestrator.health import HealthReport, collect_health, report_dict, summary_line
from orchestrator.market_calendar import MarketCalendar, load_calendar
from orchestrator.status_store import TaskStatus
from orchestrator.web import charts, history, market_data
from orchestrator.web.security import (
    COOKIE_NAME,
    DashboardGuard,
    Redactor,
    dashboard_token,
    session_cookie_value,
    token_matches,
)

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
DAILY_GRID_SESSIONS = 14
INTRADAY_GRID_SLOTS = 20
DURATION_CHART_RUNS = 30
LOG_TAIL_BYTES = 512 * 1024
KEEPALIVE_SECONDS = 15.0
PERIOD = re.compile(r"^\d{4}-\d{2}-\d{2}(/\d{4})?$")
# How a task's status is coloured: the palette of the text dashboard.
TASK_STATUS_CLASS: dict[str, str] = {
    TaskStatus.SUCCESS: "green",
    TaskStatus.DEGRADED: "yellow",
    TaskStatus.SKIPPED: "yellow",
    TaskStatus.FAILED: "red",
    TaskStatus.INTERRUPTED: "red",
    TaskStatus.RUNNING: "running",
    TaskStatus.PENDING: "unknown",
    TaskStatus.NEVER_RUN: "unknown",
}
API_ENDPOINTS = {
    "/api/health": "the health document, as `orchestrator --health --json` prints it",
    "/api/overview": "status counts, the market clock, the intraday heartbeat, the next daily run",
    "/api/tasks": "every task: status, statistics, what it needs, its recent runs",
    "/api/runs?family=daily|intraday": "the runs x tasks grid: one cell per task and period",
    "/api/attempts?task=&period=&limit=": "attempts, newest first (limit at most 1000)",
    "/api/quarantine?source=&table=&reason=&limit=": "quarantined rows with their reasons",
    "/api/data?symbol=": "row counts and newest times per table; one symbol's closes",
    "/api/graph": "the DAG: tasks with their status, and edges from a need to its dependent",
    "/api/logs/<path>": "a task log under state/logs/ (text, its last 512 KiB)",
}


# -- what the pages show, beyond the health report ---------------------------------


@dataclass(frozen=True)
class MarketClock:
    """Open or closed, which part of the session, and the next open and close."""

    is_open: bool | None  # None: the calendar cannot say (out of its range)
    phase: str
    session: date | None
    next_open: datetime | None
    next_close: datetime | None


def market_clock(calendar: MarketCalendar, now: datetime) -> MarketClock:
    try:
        is_open = calendar.is_open(now)
        session = calendar.trading_day(now)
        next_open, next_close = calendar.next_open(now), calendar.next_close(now)
        if is_open:
            phase = "regular hours"
        elif calendar.in_scope(now, ("pre",)):
            phase = "pre-market"
        elif calendar.in_scope(now, ("post",)):
            phase = "after hours"
        else:
            phase = "closed"
    except CalendarRangeError as error:
        return MarketClock(None, f"unknown ({error})", None, None, None)
    return MarketClock(is_open, phase, session, next_open, next_close)


def next_daily_run(config: Config, calendar: MarketCalendar, now: datetime) -> datetime | None:
    """The next ``daily.start_time`` (exchange time) on a session, after ``now``."""
    try:
        day = calendar.trading_day(now)
        for _ in range(30):
            start = datetime.combine(day, config.daily_start_time, calendar.tz)
            if start > now:
                return start.astimezone(UTC)
            day = calendar.next_session(day)
    except CalendarRangeError:
        return None
    return None


@dataclass(frozen=True)
class Formatter:
    """Times and durations as the pages print them, in the exchange's zone."""

    now: datetime
    calendar: MarketCalendar

    def when(self, moment: datetime | None) -> str:
        """``15:59 ET`` today, ``Fri 15:59 ET`` this week, else the date too."""
        return as_of_text(moment, self.now, self.calendar) if moment else "-"

    def full(self, moment: datetime | None) -> str:
        if moment is None:
            return "-"
        local = moment.astimezone(self.calendar.tz)
        return f"{local:%Y-%m-%d %H:%M:%S} {zone_label(self.calendar, moment)}"

    def ago(self, moment: datetime | None) -> str:
        if moment is None:
            return "never"
        seconds = (self.now - moment).total_seconds()
        return f"{human_age(seconds)} ago" if seconds >= 0 else f"in {human_age(-seconds)}"

    def age(self, seconds: float | None) -> str:
        return human_age(seconds) if seconds is not None else "-"

    def seconds(self, seconds: float | None) -> str:
        if seconds is None:
            return "-"
        return f"{seconds:.1f}s" if seconds < 60 else human_age(seconds)

    def percent(self, rate: float | None) -> str:
        return f"{rate:.0%}" if rate is not None else "-"

    def epoch(self, stamp: int | None) -> str:
        return self.when(datetime.fromtimestamp(stamp, UTC)) if stamp is not None else "-"

    def period(self, period: str) -> str:
        """A grid column: ``Mon 11-30`` for a session, ``14:35`` for a slot today (else dated)."""
        session, _, slot = period.partition("/")
        day = date.fromisoformat(session)
        if slot:
            today = self.now.astimezone(self.calendar.tz).date()
            time_of_day = f"{slot[:2]}:{slot[2:]}"
            return time_of_day if day == today else f"{day:%m-%d} {time_of_day}"
        return f"{day:%a %m-%d}"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def _run_dict(run: history.Run) -> dict[str, Any]:
    return {
        "task": run.task,
        "period": run.period,
        "outcome": run.outcome,
        "attempts": run.attempts,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_seconds": run.duration_seconds,
        "records_processed": run.records,
        "error": run.error,
    }


@dataclass(frozen=True)
class Cell:
    """One cell of the runs x tasks grid."""

    task: str
    period: str
    css: str  # ok, retried, failed, running, none
    run: history.Run | None


@dataclass(frozen=True)
class Grid:
    family: str
    tasks: list[str]
    periods: list[str]  # newest first
    cells: dict[tuple[str, str], Cell]

    def cell(self, task: str, period: str) -> Cell:
        return self.cells.get((task, period)) or Cell(task, period, "none", None)


def _cell(task: str, period: str, run: history.Run | None, running: bool) -> Cell:
    if running:
        return Cell(task, period, "running", run)
    if run is None:
        return Cell(task, period, "none", None)
    if not run.ok:
        return Cell(task, period, "failed", run)
    return Cell(task, period, "retried" if run.attempts > 1 else "ok", run)


# -- the app ------------------------------------------------------------------------


def _file_stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


class HealthCache:
    """The health report of one second, reused while nothing it reads changes.

    Every page needs the report, and after an update event every open page
    asks for itself at once: they share one. Any commit to a database changes
    its file or its ``-wal`` file (size or modification time), which makes a
    new report; but two commits within one tick of the file system's clock
    can leave both alike (same pages, same size), so the status store's own
    change token (what ``/events`` announces) is part of the key too: a page
    fetched after an update event never gets the report from before it.
    """

    def __init__(self, config: Config, calendar: MarketCalendar) -> None:
        self.config = config
        self.calendar = calendar
        read = {config.status_db, config.market_db}
        read |= {
            config.base_dir / task.freshness.database
            for task in config.pipeline
            if task.freshness.database
        }
        self.files = sorted(read) + sorted(path.with_name(path.name + "-wal") for path in read)
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._report: HealthReport | None = None

    def report(self, now: datetime) -> HealthReport:
        token = history.change_token(self.config.status_store)
        key = (now, token, *(_file_stamp(path) for path in self.files))
        with self._lock:
            if key == self._key and self._report is not None:
                return self._report
        report = collect_health(self.config, now, self.calendar)
        with self._lock:
            self._key, self._report = key, report
        return report


class Dashboard:
    """The endpoints, over one project's config, calendar and clock."""

    def __init__(
        self,
        config: Config,
        calendar: MarketCalendar,
        clock: Clock,
        token: str | None,
        poll_interval: float,
    ) -> None:
        self.config = config
        self.calendar = calendar
        self.clock = clock
        self.token = token
        self.poll_interval = poll_interval
        self.redactor = Redactor(config.base_dir / ".env")
        self.tables = market_data.market_tables()
        self.table_stats = market_data.TableStatsCache(config.market_db)
        self.health_cache = HealthCache(config, calendar)
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(default=True),
            finalize=self._finalize,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # -- helpers ------------------------------------------------------------------

    def _finalize(self, value: Any) -> Any:
        """Every ``{{ value }}`` of every template: redacted of secrets."""
        if isinstance(value, Markup):
            return Markup(self.redactor.text(str(value)))
        if isinstance(value, str):
            return self.redactor.text(value)
        return value

    def now(self) -> datetime:
        """The clock, to the second: what one request shows is judged at one moment."""
        return self.clock().replace(microsecond=0)

    def health(self, now: datetime) -> HealthReport:
        return self.health_cache.report(now)

    def page(self, request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
        self.redactor.refresh()
        now = context["now"]
        refresh_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = self.templates.get_template(name).render(
            request_path=request.url.path,
            refresh_url=refresh_url,
            fmt=Formatter(now, self.calendar),
            zone=zone_label(self.calendar, now),
            **context,
        )
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    def api(self, data: Any) -> JSONResponse:
        self.redactor.refresh()
        return JSONResponse(self.redactor.document(data), headers={"cache-control": "no-store"})

    def _status_db(self) -> Any:
        return history.readonly(self.config.status_store)

    def _market_db(self) -> Any:
        return history.readonly(self.config.market_store)

    # -- shared views -------------------------------------------------------------

    def _overview(self, now: datetime) -> dict[str, Any]:
        report = self.health(now)
        clock = market_clock(self.calendar, now)
        with self._status_db() as status:
            heartbeat = history.intraday_heartbeat(self.config, self.calendar, now, status)
            daily = self._daily_grid(status, now, 1, report)
        latest_session = daily.periods[0] if daily.periods else None
        tally = {"ok": 0, "retried": 0, "failed": 0, "running": 0, "none": 0}
        if latest_session:
            for task in daily.tasks:
                tally[daily.cell(task, latest_session).css] += 1
        attention = [s for s in report.sources_by_severity() if s.status in (RED, YELLOW)]
        failing = [
            t
            for t in report.tasks
            if t.status in (TaskStatus.FAILED, TaskStatus.INTERRUPTED) or t.consecutive_failures
        ]
        return {
            "report": report,
            "summary": summary_line(report),
            "counts": report.counts(),
            "clock": clock,
            "heartbeat": heartbeat,
            "next_daily_run": next_daily_run(self.config, self.calendar, now),
            "latest_session": latest_session,
            "latest_tally": tally,
            "attention": attention,
            "failing": failing,
        }

    def _daily_grid(self, status: Any, now: datetime, sessions: int, report: HealthReport) -> Grid:
        """The last ``sessions`` sessions (newest first) x the daily tasks.

        The newest session's cell of a task whose status is RUNNING and that
        has no attempt there yet shows it running.
        """
        tasks = [task.name for task in self.config.pipeline.family("daily")]
        try:
            current = self.calendar.current_session(now)
            recent = self.calendar.sessions_in_range(
                current - timedelta(days=sessions * 2 + 10), current
            )
        except CalendarRangeError:
            recent = []
        periods = [str(day) for day in reversed(recent[-sessions:])]
        runs = history.runs_for_periods(status, tasks, periods, now)
        report_status = {t.task: t.status for t in report.tasks}
        cells = {}
        for task in tasks:
            for period in periods:
                running = (
                    period == periods[0]
                    and report_status.get(task) == TaskStatus.RUNNING
                    and (task, period) not in runs
                )
                cells[(task, period)] = _cell(task, period, runs.get((task, period)), running)
        return Grid("daily", tasks, periods, cells)

    def _intraday_grid(self, status: Any, now: datetime) -> Grid:
        tasks = [task.name for task in self.config.pipeline.family("intraday")]
        runs = history.latest_runs(status, tasks, now, per_task=INTRADAY_GRID_SLOTS)
        periods = sorted({run.period for run in runs}, reverse=True)[:INTRADAY_GRID_SLOTS]
        cells = {
            (run.task, run.period): _cell(run.task, run.period, run, False)
            for run in runs
            if run.period in periods
        }
        return Grid("intraday", tasks, periods, cells)

    def _grid_dict(self, grid: Grid) -> dict[str, Any]:
        return {
            "family": grid.family,
            "tasks": grid.tasks,
            "periods": grid.periods,
            "cells": [
                {"task": cell.task, "period": cell.period, "state": cell.css}
                | (_run_dict(cell.run) if cell.run else {})
                for cell in grid.cells.values()
            ],
        }

    def _task_log(self, task_name: str, period: str) -> str | None:
        """The log path of one run relative to ``state/logs``, when that file exists."""
        task = self.config.pipeline.tasks.get(task_name)
        if task is None:
            return None
        session, _, slot = period.partition("/")
        path = self.config.base_dir / task.log(session, slot or None)
        try:
            relative = path.relative_to(self.config.logs_dir)
        except ValueError:
            return None
        return relative.as_posix() if path.is_file() else None

    # -- pages ----------------------------------------------------------------------

    def overview_page(self, request: Request) -> Response:
        now = self.now()
        return self.page(
            request, "overview.html", {"now": now, "title": "Overview", **self._overview(now)}
        )

    def sources_page(self, request: Request) -> Response:
        now = self.now()
        report = self.health(now)
        return self.page(
            request,
            "sources.html",
            {"now": now, "title": "Sources", "report": report, "summary": summary_line(report)},
        )

    def tasks_page(self, request: Request) -> Response:
        now = self.now()
        report = self.health(now)
        with self._status_db() as status:
            charts_by_task = {
                task.task: charts.duration_bars(
                    history.recent_task_runs(status, task.task, now, DURATION_CHART_RUNS)
                )
                for task in report.tasks
            }
            grids = [
                grid
                for grid in (
                    self._daily_grid(status, now, DAILY_GRID_SESSIONS, report),
                    self._intraday_grid(status, now),
                )
                if grid.tasks
            ]
        return self.page(
            request,
            "tasks.html",
            {
                "now": now,
                "title": "Tasks",
                "report": report,
                "charts": charts_by_task,
                "grids": grids,
                "pipeline": self.config.pipeline,
                "status_class": TASK_STATUS_CLASS,
            },
        )

    def _run_arguments(self, request: Request) -> tuple[str, str]:
        task = request.query_params.get("task", "")
        period = request.query_params.get("period", "")
        if task not in self.config.pipeline.tasks:
            raise HTTPException(404, f"no task {task!r} in the config")
        if not PERIOD.match(period):
            raise HTTPException(400, "period must be YYYY-MM-DD or YYYY-MM-DD/HHMM")
        return task, period

    def run_page(self, request: Request) -> Response:
        task, period = self._run_arguments(request)
        now = self.now()
        with self._status_db() as status:
            attempts = history.attempt_dicts(status, now, task, period, history.MAX_ATTEMPTS_PAGE)
        for attempt in attempts:
            attempt["started"] = parse_time(attempt["started_at"])
        return self.page(
            request,
            "run.html",
            {
                "now": now,
                "title": f"{task} {period}",
                "task": self.config.pipeline.task(task),
                "period": period,
                "attempts": list(reversed(attempts)),
                "log": self._task_log(task, period),
            },
        )

    def _graph(self, now: datetime) -> tuple[HealthReport, dict[str, str], dict[str, str]]:
        report = self.health(now)
        status_class = {t.task: TASK_STATUS_CLASS.get(t.status, "unknown") for t in report.tasks}
        status_text = {
            t.task: t.status
            + (f" · {t.consecutive_failures} failed" if t.consecutive_failures else "")
            for t in report.tasks
        }
        return report, status_class, status_text

    def graph_page(self, request: Request) -> Response:
        now = self.now()
        _, status_class, status_text = self._graph(now)
        pictures = [
            (family, charts.graph_svg(self.config.pipeline, family, status_class, status_text))
            for family in ("daily", "intraday")
            if self.config.pipeline.family(family)
        ]
        return self.page(
            request, "graph.html", {"now": now, "title": "Graph", "pictures": pictures}
        )

    def _quarantine_filter(self, request: Request) -> market_data.QuarantineFilter:
        query = request.query_params
        return market_data.QuarantineFilter(
            source=query.get("source", "")[:200],
            table=query.get("table", "")[:200],
            reason=query.get("reason", "")[:200],
        )

    def _data(self, request: Request, now: datetime) -> dict[str, Any]:
        wanted = self._quarantine_filter(request)
        with self._market_db() as market:
            stats = self.table_stats.get(market, self.tables, now)
            quarantine = market_data.quarantine(market, wanted)
            symbols = market_data.symbols(market, now)
            symbol = request.query_params.get("symbol") or (symbols[0] if symbols else "")
            daily = market_data.daily_closes(market, symbol, now) if symbol else []
            session, intraday = (
                market_data.intraday_closes(market, symbol, now) if symbol else (None, [])
            )
        return {
            "stats": stats,
            "quarantine": quarantine,
            "wanted": wanted,
            "symbols": symbols,
            "symbol": symbol,
            "daily": daily,
            "intraday_session": session,
            "intraday": intraday,
        }

    def data_page(self, request: Request) -> Response:
        now = self.now()
        data = self._data(request, now)
        daily = data["daily"]
        sessions = [day for day, _ in daily]
        daily_chart = charts.line_chart(
            [(float(index), close) for index, (_, close) in enumerate(daily)],
            lambda x: sessions[int(x)] if sessions else "",
            f"{data['symbol']} daily closes",
        )
        tz = self.calendar.tz
        intraday_chart = charts.line_chart(
            [(float(stamp), close) for stamp, close in data["intraday"]],
            lambda x: f"{datetime.fromtimestamp(x, UTC).astimezone(tz):%H:%M}",
            f"{data['symbol']} minute closes, {data['intraday_session'] or 'no session'}",
        )
        return self.page(
            request,
            "data.html",
            {
                "now": now,
                "title": "Data",
                **data,
                "daily_chart": daily_chart,
                "intraday_chart": intraday_chart,
            },
        )

    def _log_file(self, relative: str) -> Path:
        """The file under ``state/logs`` that ``relative`` names; 400 or 404 otherwise.

        ``..``, absolute paths and NUL bytes are refused before touching the
        disk; a symlink leading outside is refused after resolving it.
        """
        parts = PurePosixPath(relative).parts
        if "\x00" in relative or relative.startswith("/") or "\\" in relative or ".." in parts:
            raise HTTPException(400, "log paths are relative to state/logs/, without '..'")
        root = self.config.logs_dir.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise HTTPException(404, f"no log {relative} under state/logs/")
        return path

    def _log_tail(self, path: Path) -> tuple[str, bool]:
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size > LOG_TAIL_BYTES:
                handle.seek(size - LOG_TAIL_BYTES)
            data = handle.read(LOG_TAIL_BYTES)
        return data.decode("utf-8", errors="replace"), size > LOG_TAIL_BYTES

    def log_page(self, request: Request) -> Response:
        relative = request.path_params["path"]
        path = self._log_file(relative)
        text, truncated = self._log_tail(path)
        return self.page(
            request,
            "log.html",
            {
                "now": self.now(),
                "title": f"log {relative}",
                "relative": relative,
                "text": text,
                "truncated": truncated,
            },
        )

    # -- the API ----------------------------------------------------------------------

    def api_index(self, request: Request) -> Response:
        return self.api({"endpoints": API_ENDPOINTS})

    def api_health(self, request: Request) -> Response:
        """``render_json``'s document, byte for byte, once redacted."""
        self.redactor.refresh()
        document = self.redactor.document(report_dict(self.health(self.now())))
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        return Response(text, media_type="application/json", headers={"cache-control": "no-store"})

    def api_overview(self, request: Request) -> Response:
        now = self.now()
        view = self._overview(now)
        clock: MarketClock = view["clock"]
        beat: history.Heartbeat = view["heartbeat"]
        return self.api(
            {
                "now": _iso(now),
                "summary": report_dict(view["report"])["summary"],
                "market": {
                    "open": clock.is_open,
                    "phase": clock.phase,
                    "session": str(clock.session) if clock.session else None,
                    "next_open": _iso(clock.next_open),
                    "next_close": _iso(clock.next_close),
                },
                "intraday_heartbeat": {
                    "last_tick": _iso(beat.last_tick),
                    "in_hours": beat.in_hours,
                    "late": beat.late,
                    "tolerance_seconds": beat.tolerance_seconds,
                    "message": beat.message,
                },
                "bar_to_signal_latency": (
                    view["report"].latency.as_dict() if view["report"].latency else None
                ),
                "next_daily_run": _iso(view["next_daily_run"]),
                "latest_daily_session": view["latest_session"],
                "latest_daily_session_cells": view["latest_tally"],
            }
        )

    def api_tasks(self, request: Request) -> Response:
        now = self.now()
        report = report_dict(self.health(now))
        pipeline = self.config.pipeline
        with self._status_db() as status:
            for task in report["tasks"]:
                name = task["task"]
                task["needs"] = list(pipeline.task(name).needs)
                task["tier"] = pipeline.tier[name]
                task["recent_runs"] = [
                    _run_dict(run)
                    for run in history.recent_task_runs(status, name, now, DURATION_CHART_RUNS)
                ]
        return self.api({"now": _iso(now), "tasks": report["tasks"]})

    def api_runs(self, request: Request) -> Response:
        family = request.query_params.get("family", "daily")
        if family not in ("daily", "intraday"):
            raise HTTPException(400, "family must be daily or intraday")
        now = self.now()
        with self._status_db() as status:
            grid = (
                self._daily_grid(status, now, DAILY_GRID_SESSIONS, self.health(now))
                if family == "daily"
                else self._intraday_grid(status, now)
            )
        return self.api({"now": _iso(now), **self._grid_dict(grid)})

    def _limit(self, request: Request, default: int) -> int:
        text = request.query_params.get("limit", str(default))
        if not text.isdigit() or int(text) < 1:
            raise HTTPException(400, "limit must be a positive whole number")
        return int(text)

    def api_attempts(self, request: Request) -> Response:
        task = request.query_params.get("task") or None
        period = request.query_params.get("period") or None
        if task is not None and task not in self.config.pipeline.tasks:
            raise HTTPException(404, f"no task {task!r} in the config")
        if period is not None and (task is None or not PERIOD.match(period)):
            raise HTTPException(400, "period needs a task, and is YYYY-MM-DD or YYYY-MM-DD/HHMM")
        now = self.now()
        with self._status_db() as status:
            attempts = history.attempt_dicts(status, now, task, period, self._limit(request, 100))
        return self.api({"now": _iso(now), "attempts": attempts})

    def api_quarantine(self, request: Request) -> Response:
        with self._market_db() as market:
            found = market_data.quarantine(
                market, self._quarantine_filter(request), self._limit(request, 200)
            )
        return self.api(
            {
                "matching": found.matching,
                "total": found.total,
                "sources": found.sources,
                "tables": found.tables,
                "rows": [
                    {**row, "quarantined_at": _iso(row["quarantined_at"])} for row in found.rows
                ],
            }
        )

    def api_data(self, request: Request) -> Response:
        now = self.now()
        data = self._data(request, now)
        return self.api(
            {
                "now": _iso(now),
                "tables": [
                    {
                        "table": stat.name,
                        "rows": stat.rows,
                        "newest": _iso(stat.newest),
                        "time_column": stat.time_column,
                    }
                    for stat in data["stats"]
                ],
                "symbol": data["symbol"],
                "daily_closes": [{"session": s, "close": c} for s, c in data["daily"]],
                "intraday_session": data["intraday_session"],
                "intraday_closes": [
                    {"bar_ts": stamp, "close": close} for stamp, close in data["intraday"]
                ],
            }
        )

    def api_graph(self, request: Request) -> Response:
        report, status_class, _ = self._graph(self.now())
        statuses = {t.task: t.status for t in report.tasks}
        pipeline = self.config.pipeline
        return self.api(
            {
                "tasks": [
                    {
                        "task": task.name,
                        "label": task.label,
                        "family": task.family,
                        "tier": pipeline.tier[task.name],
                        "critical": task.critical,
                        "status": statuses.get(task.name),
                        "colour": status_class.get(task.name),
                    }
                    for task in pipeline
                ],
                "edges": [
                    {"from": need, "to": task.name} for task in pipeline for need in task.needs
                ],
            }
        )

    def api_log(self, request: Request) -> Response:
        path = self._log_file(request.path_params["path"])
        text, _ = self._log_tail(path)
        self.redactor.refresh()
        return PlainTextResponse(self.redactor.text(text), headers={"cache-control": "no-store"})

    # -- live updates, metrics, login ---------------------------------------------------

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``update`` whenever the status store changes.

        The event id is the store's change token: a browser reconnecting with
        ``Last-Event-ID`` gets an update at once if it missed a change.
        """
        status_db = self.config.status_store

        async def stream() -> AsyncIterator[str]:
            token = await anyio.to_thread.run_sync(history.change_token, status_db)
            yield "retry: 2000\n: connected\n\n"
            last_seen = request.headers.get("last-event-id")
            if last_seen and last_seen != token:
                yield f"id: {token}\nevent: update\ndata: {json.dumps({'token': token})}\n\n"
            quiet = 0.0
            while not await request.is_disconnected():
                await anyio.sleep(self.poll_interval)
                current = await anyio.to_thread.run_sync(history.change_token, status_db)
                if current != token:
                    token, quiet = current, 0.0
                    yield f"id: {token}\nevent: update\ndata: {json.dumps({'token': token})}\n\n"
                else:
                    quiet += self.poll_interval
                    if quiet >= KEEPALIVE_SECONDS:  # proxies drop silent connections
                        quiet = 0.0
                        yield ": keepalive\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from orchestrator.metrics import render_metrics

        body = render_metrics(self.config, now=self.now(), calendar=self.calendar)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    def login(self, request: Request) -> Response:
        """``/login?token=...``: sets the session cookie, then sends the browser to ``/``."""
        if self.token is None:
            return RedirectResponse("/", status_code=303)
        if not token_matches(request.query_params.get("token"), self.token):
            return PlainTextResponse("401: wrong or missing token\n", status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            session_cookie_value(self.token),
            httponly=True,
            samesite="strict",
            max_age=30 * 86400,
        )
        response.headers["cache-control"] = "no-store"
        return response

    async def error(self, request: Request, exc: Exception) -> Response:
        """HTTP errors and unreadable stores as one short, redacted sentence."""
        if isinstance(exc, HTTPException):
            status, detail = exc.status_code, str(exc.detail)
        else:
            status, detail = 503, f"cannot read the pipeline's stores: {exc}"
        self.redactor.refresh()
        detail = self.redactor.text(detail)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=status)
        return PlainTextResponse(f"{status}: {detail}\n", status_code=status)


def _load_config(config_path: Path | str, base_dir: Path | None) -> Config:
    """The project's config; relative paths (and the config's own) from ``base_dir``.

    ``base_dir`` defaults to the working directory, as for every command.
    """
    base = Path(base_dir or Path.cwd()).resolve()
    path = Path(config_path)
    if not path.is_absolute():
        path = base / path
    return build_config(read_yaml(path), str(path), base)


def create_app(
    config_path: Path | str,
    *,
    base_dir: Path | None = None,
    clock: Clock | None = None,
    poll_interval: float = 1.0,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The dashboard of the project configured at ``config_path``.

    ``clock`` defaults to the config's pinned ``now`` (a replay), else the wall
    clock. The token is ``ORCHESTRATOR_DASHBOARD_TOKEN`` from the environment
    or ``.env``; without one only loopback host names (or ``allowed_hosts``)
    are answered. ``poll_interval`` is how often ``/events`` looks for changes.
    """
    config = _load_config(config_path, base_dir)
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    if clock is None:
        clock = fixed_clock(config.now) if config.now else system_clock
    token = dashboard_token(config.base_dir)
    board = Dashboard(config, calendar, clock, token, poll_interval)
    routes = [
        Route("/", board.overview_page),
        Route("/sources", board.sources_page),
        Route("/tasks", board.tasks_page),
        Route("/run", board.run_page),
        Route("/graph", board.graph_page),
        Route("/data", board.data_page),
        Route("/logs/{path:path}", board.log_page),
        Route("/api", board.api_index),
        Route("/api/", board.api_index),
        Route("/api/health", board.api_health),
        Route("/api/overview", board.api_overview),
        Route("/api/tasks", board.api_tasks),
        Route("/api/runs", board.api_runs),
        Route("/api/attempts", board.api_attempts),
        Route("/api/quarantine", board.api_quarantine),
        Route("/api/data", board.api_data),
        Route("/api/graph", board.api_graph),
        Route("/api/logs/{path:path}", board.api_log),
        Route("/events", board.events),
        Route("/metrics", board.metrics),
        Route("/login", board.login),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(DashboardGuard, token=token, allowed_hosts=allowed_hosts)],
        exception_handlers={
            HTTPException: board.error,
            OrchestratorError: board.error,
            sqlite3.DatabaseError: board.error,
        },
    )
    app.state.dashboard = board
    return app
