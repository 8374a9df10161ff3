"""The dashboard's web app through Starlette's TestClient: pages, API, logs, tokens, secrets.

``make_dashboard_project`` builds a project whose stores show every case a
page has to draw: a critical task failing after retries, a source red because
of it ("upstream prices_daily failed"), a source never run, an intraday loop
ticking, quarantined rows, a task log. The browser tests and the benchmark use
it too. The clock is pinned at ``NOW`` (a Monday, half an hour after the open).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.testclient import TestClient

from orchestrator.clock import fixed_clock
from orchestrator.config import build_config, read_yaml
from orchestrator.errors import UsageError
from orchestrator.health import collect_health, render_json
from orchestrator.market_calendar import load_calendar
from orchestrator.status_store import Attempt, StatusStore
from orchestrator.web import app as web_app
from orchestrator.web.app import create_app
from orchestrator.web.security import (
    COOKIE_NAME,
    TOKEN_VARIABLE,
    check_bind,
    is_loopback,
    session_cookie_value,
)
from orchestrator.web.server import BackgroundServer

ET = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=ET)
SESSIONS = ["2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27", "2026-11-30"]
PRICE_ERROR = "provider down: HTTP 503"
TOKEN = "a-dashboard-token-long-enough-0123"
CANARY = "canary1234"

CONFIG = """\
market: {calendar: XNYS, timezone: America/New_York}
tasks:
  universe:
    family: daily
    script: job.py
    critical: true
    freshness: {green: 24h, yellow: 48h}
  prices_daily:
    family: daily
    script: job.py
    needs: [universe]
    critical: true
    freshness:
      green: 7h
      yellow: 14h
      clock: market
      data_time_sql: "SELECT MAX(available_ts) FROM prices_daily WHERE available_ts <= :now"
  features:
    family: daily
    script: job.py
    needs: [prices_daily]
    freshness: {green: 1h, yellow: 2h}
  news:
    family: daily
    script: job.py
    needs: [universe]
    freshness: {green: 7h, yellow: 14h}
  price_data:
    family: intraday
    script: job.py
    interval: 1m
    hours: [regular]
    freshness:
      green: 5m
      yellow: 15m
      clock: market
      data_time_sql: "SELECT MAX(available_ts) FROM intraday_bars WHERE available_ts <= :now"
"""


def _at(session: str, hour: int, minute: int, second: int = 0) -> datetime:
    day = datetime.fromisoformat(session)
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ET).astimezone(UTC)


def record_run(
    store: StatusStore,
    task: str,
    period: str,
    started: datetime,
    outcomes: list[str],
    error: str = PRICE_ERROR,
    live: bool = True,
) -> None:
    """One run of ``task``: an attempt per outcome (2 s each, 1 s apart), then its status."""
    if live:
        store.mark_started(task, started)
    moment = started
    for number, outcome in enumerate(outcomes, start=1):
        store.record_attempt(
            Attempt(
                task_name=task,
                period=period,
                attempt=number,
                started_at=moment,
                finished_at=moment + timedelta(seconds=2),
                outcome=outcome,
                error_message=None if outcome == "success" else error,
                records_processed=100 if outcome == "success" else None,
            )
        )
        moment += timedelta(seconds=3)
    if not live:
        return
    if outcomes[-1] == "success":
        store.record_success(task, started, moment, records_processed=100)
    else:
        store.record_failure(task, moment, error)


def make_dashboard_project(
    root: Path, calendar_cache: Path, error: str = PRICE_ERROR, intraday_minutes: int = 30
) -> Path:
    """A project at ``root`` with a config, a calendar cache, a status store and a market DB."""
    from collectors.market_store import MarketStore

    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(CONFIG)
    (root / "job.py").write_text("print('ok')\n")
    shutil.copytree(calendar_cache, root / "state" / "cache", dirs_exist_ok=True)
    store = StatusStore(root / "state" / "status.db")
    for session in SESSIONS:
        today = session == SESSIONS[-1]
        record_run(store, "universe", session, _at(session, 9, 30, 5), ["success"])
        if today:
            record_run(
                store,
                "prices_daily",
                session,
                _at(session, 9, 31),
                ["transient", "transient", "permanent"],
                error=error,
            )
        else:
            record_run(store, "prices_daily", session, _at(session, 9, 31), ["success"])
            record_run(store, "features", session, _at(session, 9, 33), ["success"])
    # The intraday loop ticked every minute from the open to 09:59.
    for minute in range(intraday_minutes):
        slot = _at(SESSIONS[-1], 9, 30) + timedelta(minutes=minute)
        period = f"{SESSIONS[-1]}/{slot.astimezone(ET):%H%M}"
        record_run(store, "price_data", period, slot + timedelta(seconds=5), ["success"])
    with MarketStore(root / "state" / "market.db") as market, market.transaction():
        connection = market.connection
        for symbol in ("AAA", "BBB"):
            connection.execute(
                "INSERT INTO assets VALUES (?, ?, 'Tech', 'Software', 'XNAS', ?, ?)",
                (
                    symbol,
                    f"{symbol} Inc",
                    int(_at("2026-11-02", 9, 0).timestamp()),
                    int(NOW.timestamp()) - 3600,
                ),
            )
            # Daily bars up to Friday the 20th only: the prices are a week old (red).
            for index, session in enumerate(["2026-11-16", "2026-11-17", "2026-11-18",
                                             "2026-11-19", "2026-11-20"]):  # fmt: skip
                close = 100.0 + index + (5 if symbol == "BBB" else 0)
                connection.execute(
                    "INSERT INTO prices_daily VALUES (?, ?, ?, ?, ?, ?, 1000, 1, 0, ?)",
                    (symbol, session, close, close + 1, close - 1, close,
                     int(_at(session, 16, 0).timestamp())),
                )  # fmt: skip
            for minute in range(intraday_minutes):
                bar = int((_at(SESSIONS[-1], 9, 30) + timedelta(minutes=minute)).timestamp())
                close = 100.0 + minute / 10
                connection.execute(
                    "INSERT INTO intraday_bars VALUES (?, ?, ?, ?, ?, ?, ?, 10, ?)",
                    (symbol, SESSIONS[-1], bar, close, close, close, close, bar + 60),
                )
        quarantined = int(_at(SESSIONS[-1], 9, 32).timestamp())
        connection.executemany(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("prices_daily", "prices_daily", "AAA|2026-11-20", "negative volume",
                 json.dumps({"symbol": "AAA", "volume": -5}), quarantined),
                ("news", "news", "n-17", "missing headline",
                 json.dumps({"article_id": "n-17", "note": error}), quarantined - 60),
            ],
        )  # fmt: skip
    log = root / "state" / "logs" / "daily" / SESSIONS[-1] / "prices_daily.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"2026-11-30 09:31:00 - ERROR - prices_daily failed: {error}\n")
    (root / "state" / "logs" / "orchestrator.log").write_text("2026-11-30 09:30:00 - INFO - ok\n")
    return root


@pytest.fixture(scope="module")
def project_template(tmp_path_factory: pytest.TempPathFactory, calendar_cache: Path) -> Path:
    """Built once per module (about 3 s of SQLite commits); each test gets a copy."""
    return make_dashboard_project(tmp_path_factory.mktemp("dashboard") / "project", calendar_cache)


@pytest.fixture
def project(tmp_path: Path, project_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    return Path(shutil.copytree(project_template, tmp_path / "project", symlinks=True))


def dashboard(project: Path) -> TestClient:
    """A client of the project's dashboard at ``NOW``, naming the host 127.0.0.1."""
    app = create_app(project / "config.yaml", base_dir=project, clock=fixed_clock(NOW))
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def client(project: Path) -> Iterator[TestClient]:
    with dashboard(project) as test_client:
        yield test_client


PAGES = [
    "/",
    "/sources",
    "/tasks",
    "/graph",
    "/data",
    "/data?symbol=BBB&reason=volume",
    f"/run?task=prices_daily&period={SESSIONS[-1]}",
    f"/logs/daily/{SESSIONS[-1]}/prices_daily.log",
]
API = [
    "/api/",
    "/api/health",
    "/api/overview",
    "/api/tasks",
    "/api/runs?family=daily",
    "/api/runs?family=intraday",
    "/api/attempts",
    "/api/attempts?task=prices_daily",
    f"/api/attempts?task=prices_daily&period={SESSIONS[-1]}",
    "/api/quarantine",
    "/api/data?symbol=AAA",
    "/api/graph",
    f"/api/logs/daily/{SESSIONS[-1]}/prices_daily.log",
]


# -- every page and endpoint answers ------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_with_html(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert 'sse-connect="/events"' in response.text
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize("path", API)
def test_every_api_endpoint_answers_with_json(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    if "/api/logs/" in path:
        assert PRICE_ERROR in response.text
    else:
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()


def test_the_health_api_is_the_document_health_json_prints(
    client: TestClient, project: Path
) -> None:
    config = build_config(read_yaml(project / "config.yaml"), str(project / "config.yaml"), project)
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    expected = render_json(collect_health(config, NOW, calendar))
    response = client.get("/api/health")
    assert response.text == expected
    assert response.json()["summary"]["critical"] >= 1


def test_a_status_change_the_database_files_do_not_show_still_makes_a_new_report(
    client: TestClient, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two commits within one tick of the file system's clock can leave the files'
    # modification time and size alike: the health report must not be the old one.
    monkeypatch.setattr(web_app, "_file_stamp", lambda path: (0, 0))
    before = {t["task"]: t for t in client.get("/api/health").json()["tasks"]}
    assert before["news"]["status"] == "NEVER RUN"
    StatusStore(project / "state" / "status.db").mark_started("news", NOW.astimezone(UTC))
    after = {t["task"]: t for t in client.get("/api/health").json()["tasks"]}
    assert after["news"]["status"] == "RUNNING"


def test_the_overview_shows_counts_the_market_clock_the_heartbeat_and_the_next_run(
    client: TestClient,
) -> None:
    overview = client.get("/api/overview").json()
    assert overview["summary"]["critical"] == 2  # prices_daily (old data) and features
    assert overview["summary"]["unknown"] == 1  # news never ran
    assert overview["market"] == {
        "open": True,
        "phase": "regular hours",
        "session": "2026-11-30",
        "next_open": "2026-12-01T14:30:00+00:00",
        "next_close": "2026-11-30T21:00:00+00:00",
    }
    beat = overview["intraday_heartbeat"]
    assert beat["last_tick"] == "2026-11-30T14:59:05+00:00"
    assert beat["late"] is False
    assert overview["next_daily_run"] == "2026-12-01T14:30:00+00:00"
    assert overview["latest_daily_session_cells"] == {
        "ok": 1,  # universe
        "retried": 0,
        "failed": 1,  # prices_daily
        "running": 0,
        "none": 2,  # features, news
    }
    page = client.get("/").text
    assert "Open" in page and "Ticking" in page
    assert "upstream prices_daily failed" in page


def test_the_loop_is_late_when_it_missed_ticks_in_market_hours(project: Path) -> None:
    app = create_app(
        project / "config.yaml", base_dir=project, clock=fixed_clock(NOW + timedelta(minutes=10))
    )
    with TestClient(app, base_url="http://127.0.0.1") as late_client:
        beat = late_client.get("/api/overview").json()["intraday_heartbeat"]
        assert beat["late"] is True
        assert "no tick for 10m" in beat["message"]
        assert "Late" in late_client.get("/").text


def test_the_loop_is_idle_not_late_when_the_market_is_closed(project: Path) -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=ET)
    app = create_app(project / "config.yaml", base_dir=project, clock=fixed_clock(saturday))
    with TestClient(app, base_url="http://127.0.0.1") as closed_client:
        overview = closed_client.get("/api/overview").json()
        assert overview["market"]["open"] is False
        assert overview["intraday_heartbeat"]["late"] is False
        assert overview["next_daily_run"] == "2026-11-30T14:30:00+00:00"


def test_the_sources_page_shows_a_red_source_with_its_reason(client: TestClient) -> None:
    page = client.get("/sources").text
    row = page.split('id="source-features"', 1)[1].split("</tr>", 1)[0]
    assert 'data-status="RED"' in row
    assert "badge status-red" in row
    assert "upstream prices_daily failed" in row
    assert "last run" in row  # its basis: no data_time_sql


def test_the_tasks_page_has_the_grid_and_a_duration_chart_per_task(client: TestClient) -> None:
    page = client.get("/tasks").text
    assert page.count('class="chart duration-chart"') == 5
    failed_cell = f'href="/run?task=prices_daily&amp;period={SESSIONS[-1]}"'
    assert failed_cell in page
    cell = page.split(failed_cell, 1)[0].rsplit("<a", 1)[1]
    assert 'class="cell failed"' in cell
    runs = client.get("/api/runs?family=daily").json()
    assert runs["periods"][0] == SESSIONS[-1]
    cells = {(cell["task"], cell["period"]): cell for cell in runs["cells"]}
    today = cells[("prices_daily", SESSIONS[-1])]
    assert (today["state"], today["attempts"], today["outcome"]) == ("failed", 3, "permanent")
    assert cells[("features", SESSIONS[-2])]["state"] == "ok"
    assert cells[("features", SESSIONS[-1])]["state"] == "none"
    intraday = client.get("/api/runs?family=intraday").json()
    assert intraday["periods"][0] == f"{SESSIONS[-1]}/0959"


def test_a_run_page_lists_its_attempts_and_links_its_log(client: TestClient) -> None:
    page = client.get(f"/run?task=prices_daily&period={SESSIONS[-1]}").text
    assert page.count("<td>transient</td>") == 2 and "<td>permanent</td>" in page
    assert f'href="/logs/daily/{SESSIONS[-1]}/prices_daily.log"' in page
    attempts = client.get(f"/api/attempts?task=prices_daily&period={SESSIONS[-1]}").json()
    assert [a["attempt"] for a in attempts["attempts"]] == [3, 2, 1]
    assert client.get("/run?task=nope&period=2026-11-30").status_code == 404
    assert client.get("/run?task=prices_daily&period=yesterday").status_code == 400


def test_the_graph_colours_each_task_by_its_status(client: TestClient) -> None:
    page = client.get("/graph").text
    node = page.split('data-task="prices_daily"', 1)[1].split("</a>", 1)[0]
    assert 'class="status-red"' in node and "FAILED" in node
    graph = client.get("/api/graph").json()
    assert {"from": "universe", "to": "prices_daily"} in graph["edges"]


def test_the_data_page_counts_tables_filters_the_quarantine_and_charts_a_symbol(
    client: TestClient,
) -> None:
    data = client.get("/api/data?symbol=BBB").json()
    tables = {table["table"]: table for table in data["tables"]}
    assert tables["prices_daily"]["rows"] == 10
    assert tables["intraday_bars"]["rows"] == 60
    assert tables["prices_daily"]["newest"] == "2026-11-20T21:00:00+00:00"
    assert [row["close"] for row in data["daily_closes"]] == [105.0, 106.0, 107.0, 108.0, 109.0]
    assert len(data["intraday_closes"]) == 30
    filtered = client.get("/api/quarantine?reason=VOLUME").json()
    assert (filtered["matching"], filtered["total"]) == (1, 2)
    assert filtered["rows"][0]["natural_key"] == "AAA|2026-11-20"
    assert client.get("/api/quarantine?source=news").json()["rows"][0]["reason"] == (
        "missing headline"
    )
    page = client.get("/data?symbol=BBB&reason=volume").text
    assert "1 of 2 quarantined rows match" in page
    assert "negative volume" in page and "missing headline" not in page
    assert page.count('<polyline class="series"') == 2


def test_the_api_refuses_bad_arguments(client: TestClient) -> None:
    assert client.get("/api/runs?family=weekly").status_code == 400
    assert client.get("/api/attempts?limit=0").status_code == 400
    assert client.get("/api/attempts?task=nope").status_code == 404
    assert client.get("/api/attempts?period=2026-11-30").status_code == 400


def _state_files(project: Path) -> dict[Path, int]:
    """Every file under state/ and when it changed, but SQLite's -shm and -wal.

    A reader of a WAL database creates those two when the last writer removed
    them (that is SQLite's locking, not a write): the databases are compared.
    """
    return {
        path: path.stat().st_mtime_ns
        for path in (project / "state").rglob("*")
        if path.is_file() and not path.name.endswith(("-shm", "-wal"))
    }


def test_nothing_changes_state(client: TestClient, project: Path) -> None:
    before = _state_files(project)
    for path in [*PAGES, *API, "/metrics"]:
        client.get(path)
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/api/health").status_code == 405
    assert _state_files(project) == before


def test_a_missing_project_state_shows_empty_pages(tmp_path: Path, calendar_cache: Path) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "job.py").write_text("print('ok')\n")
    shutil.copytree(calendar_cache, tmp_path / "state" / "cache")
    with dashboard(tmp_path) as empty:
        for path in [*PAGES[:6], "/api/health", "/api/tasks", "/api/runs", "/metrics"]:
            assert empty.get(path).status_code == 200, path
        assert empty.get("/api/overview").json()["summary"]["unknown"] == 5


# -- logs: only inside state/logs ----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/logs/..%2F..%2Fconfig.yaml",
        "/logs/%2e%2e/%2e%2e/config.yaml",
        "/logs/daily/..%2F..%2F..%2Fjob.py",
        "/logs/%2Fetc%2Fpasswd",
        "/logs/daily%5C..%5C..%5Cjob.py",
        "/api/logs/..%2F..%2Fconfig.yaml",
        "/logs/nul%00.log",
    ],
)
def test_path_traversal_is_refused(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert "tasks:" not in response.text and "print('ok')" not in response.text


def test_a_symlink_out_of_the_logs_is_refused(client: TestClient, project: Path) -> None:
    (project / "state" / "logs" / "escape.log").symlink_to(project / "config.yaml")
    assert client.get("/logs/escape.log").status_code == 404
    assert client.get("/logs/missing.log").status_code == 404
    assert client.get("/logs/orchestrator.log").status_code == 200


# -- who may read it -------------------------------------------------------------------


def test_without_a_token_only_loopback_host_names_are_answered(project: Path) -> None:
    with dashboard(project) as loopback:
        assert loopback.get("/", headers={"host": "localhost:8787"}).status_code == 200
        # A page elsewhere that rebinds its own name to 127.0.0.1 gets nothing.
        assert loopback.get("/api/health", headers={"host": "evil.example"}).status_code == 400


def test_with_a_token_every_request_needs_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    with dashboard(project) as guarded:
        for path in ("/", "/api/health", "/metrics", "/events", "/static/htmx.min.js"):
            response = guarded.get(path)
            assert response.status_code == 401, path
            assert TOKEN_VARIABLE in response.text
        bearer = {"authorization": f"Bearer {TOKEN}"}
        assert guarded.get("/api/health", headers=bearer).status_code == 200
        wrong = {"authorization": f"Bearer {TOKEN}x"}
        assert guarded.get("/api/health", headers=wrong).status_code == 401
        assert guarded.get("/login?token=wrong", follow_redirects=False).status_code == 401


def test_the_login_link_sets_a_cookie_without_the_token_in_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    with dashboard(project) as browser:
        response = browser.get(f"/login?token={TOKEN}", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        cookie = response.headers["set-cookie"]
        assert TOKEN not in cookie
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert browser.cookies.get(COOKIE_NAME) == session_cookie_value(TOKEN)
        assert browser.get("/tasks").status_code == 200
        browser.cookies.set(COOKIE_NAME, "forged")
        assert browser.get("/tasks").status_code == 401


def test_serving_beyond_loopback_needs_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    check_bind("127.0.0.1", None)
    with pytest.raises(UsageError, match=TOKEN_VARIABLE):
        check_bind("0.0.0.0", None)
    with pytest.raises(UsageError, match="too short"):
        check_bind("0.0.0.0", "short")
    check_bind("0.0.0.0", TOKEN)


# -- no secret anywhere ------------------------------------------------------------------


def test_no_secret_appears_in_any_page_api_or_metric(
    tmp_path: Path, calendar_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stores were written by a process that did not know the key, so they hold it.
    monkeypatch.delenv("FAKE_API_KEY", raising=False)
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    leak = f"HTTP 401 for https://api.example/v1?apikey={CANARY}"
    project = make_dashboard_project(tmp_path / "project", calendar_cache, error=leak)
    with sqlite3.connect(project / "state" / "status.db") as status:
        assert status.execute(
            "SELECT COUNT(*) FROM task_attempts WHERE error_message LIKE ?", (f"%{CANARY}%",)
        ).fetchone()[0]
    status.close()
    monkeypatch.setenv("FAKE_API_KEY", CANARY)
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    with dashboard(project) as guarded:
        checked = 0
        for path in [*PAGES, *API, "/metrics", "/data?source=news"]:
            response = guarded.get(path, headers=bearer)
            assert response.status_code == 200, path
            for secret in (CANARY, TOKEN):
                assert secret not in response.text, f"{secret} leaked in {path}"
            checked += 1
        assert "***" in guarded.get("/api/health", headers=bearer).text
        assert "***" in guarded.get(PAGES[-1], headers=bearer).text  # the log
        assert checked == len(PAGES) + len(API) + 2


# -- live updates --------------------------------------------------------------------------


def test_an_update_event_arrives_when_a_task_fails(project: Path) -> None:
    app = create_app(
        project / "config.yaml", base_dir=project, clock=fixed_clock(NOW), poll_interval=0.05
    )
    store = StatusStore(project / "state" / "status.db")
    with (
        BackgroundServer(app) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream("GET", "/events") as events,
    ):
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        assert next(line for line in lines if line.startswith(":")) == ": connected"
        record_run(store, "news", SESSIONS[-1], NOW.astimezone(UTC), ["permanent"])
        event = next(line for line in lines if line.startswith("event:"))
        assert event == "event: update"
        data = next(line for line in lines if line.startswith("data:"))
        assert json.loads(data.removeprefix("data:"))["token"]


def test_a_reconnecting_browser_gets_the_change_it_missed(project: Path) -> None:
    app = create_app(
        project / "config.yaml", base_dir=project, clock=fixed_clock(NOW), poll_interval=0.05
    )
    with (
        BackgroundServer(app) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream("GET", "/events", headers={"last-event-id": "stale"}) as events,
    ):
        lines = events.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: update"
