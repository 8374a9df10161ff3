"""The dashboard in a real headless Chromium: what a person sees, live updates, no outside request.

Debian's ``chromium`` (``scripts/install-chromium``) driven by Playwright with
``executable_path``: Playwright never downloads a browser here. Skipped, with
the reason, when ``chromium`` is not on PATH. The server is uvicorn on
127.0.0.1 and a free port, in a thread (``BackgroundServer``).

``UPDATE_SCREENSHOT=1`` writes the overview's screenshot to
``docs/dashboard.png`` (the README shows it); otherwise it goes to the test's
temp folder, so an ordinary run changes nothing in the tree.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from orchestrator.clock import fixed_clock
from orchestrator.status_store import StatusStore
from orchestrator.web.app import create_app
from orchestrator.web.security import TOKEN_VARIABLE
from orchestrator.web.server import BackgroundServer
from tests.test_web import NOW, SESSIONS, TOKEN, make_dashboard_project, record_run

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
REPO = Path(__file__).resolve().parents[1]
RED = "rgb(207, 34, 46)"  # --red in dashboard.css
TIMEOUT_MS = 15_000

if CHROMIUM is None:
    pytest.skip(
        "Debian's chromium is not installed (run `bash scripts/install-chromium`)",
        allow_module_level=True,
    )

from playwright.sync_api import (  # noqa: E402
    APIResponse,
    Browser,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def project_template(tmp_path_factory: pytest.TempPathFactory, calendar_cache: Path) -> Path:
    return make_dashboard_project(tmp_path_factory.mktemp("dashboard") / "project", calendar_cache)


@pytest.fixture
def project(tmp_path: Path, project_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    return Path(shutil.copytree(project_template, tmp_path / "project", symlinks=True))


@pytest.fixture
def server(project: Path) -> Iterator[BackgroundServer]:
    app = create_app(
        project / "config.yaml", base_dir=project, clock=fixed_clock(NOW), poll_interval=0.1
    )
    with BackgroundServer(app) as running:
        yield running


class Visit:
    """A browser tab on the dashboard that remembers every request it made."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.requests: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.set_default_timeout(TIMEOUT_MS)

    def open(self, path: str) -> Page:
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.ok, path
        return self.page

    def outside_requests(self) -> list[str]:
        return [url for url in self.requests if urlsplit(url).hostname != "127.0.0.1"]


@pytest.fixture
def visit(browser: Browser, server: BackgroundServer) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    tab = Visit(context.new_page(), server.url)
    yield tab
    context.close()
    assert tab.requests, "the browser made no request at all"
    assert tab.outside_requests() == [], "a request left localhost"


def test_the_overview_shows_the_counts_the_clock_and_what_needs_attention(
    visit: Visit, tmp_path: Path
) -> None:
    page = visit.open("/")
    expect(page.locator('.count[data-status="RED"] .number')).to_have_text("2")
    expect(page.locator('.count[data-status="GREEN"] .number')).to_have_text("2")
    expect(page.locator('.count[data-status="UNKNOWN"] .number')).to_have_text("1")
    expect(page.locator("#market-clock .big")).to_have_text("Open")
    expect(page.locator("#heartbeat .big")).to_have_text("Ticking")
    features = page.locator('#attention tr[data-source="features"]')
    expect(features).to_contain_text("upstream prices_daily failed")
    expect(features.locator(".badge")).to_have_css("background-color", RED)
    expect(page.locator('#failing tr[data-task="prices_daily"]')).to_contain_text("HTTP 503")
    # Every vendored script loaded (the page would still render without them).
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("htmx.version").startswith("2.")
    wanted = os.environ.get("UPDATE_SCREENSHOT") == "1"
    shot = REPO / "docs" / "dashboard.png" if wanted else tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_a_red_source_shows_red_with_its_reason(visit: Visit) -> None:
    page = visit.open("/sources")
    row = page.locator("#source-features")
    badge = row.locator(".badge")
    expect(badge).to_have_text("RED")
    expect(badge).to_have_css("background-color", RED)
    expect(row.locator(".reason")).to_contain_text("upstream prices_daily failed")
    expect(row.locator(".reason")).to_have_css("color", RED)
    green = page.locator("#source-universe .badge")
    expect(green).to_have_text("GREEN")
    expect(green).to_have_css("background-color", "rgb(26, 127, 55)")


def test_a_grid_cell_opens_the_runs_attempts_and_its_log(visit: Visit) -> None:
    page = visit.open("/tasks")
    expect(page.locator("#task-prices_daily .badge")).to_have_text("FAILED")
    expect(page.locator("#task-prices_daily svg.duration-chart rect.bar")).to_have_count(6)
    cell = page.locator(
        f'#grid-daily a.cell[data-task="prices_daily"][data-period="{SESSIONS[-1]}"]'
    )
    expect(cell).to_have_css("background-color", RED)
    expect(cell).to_have_text("3")  # three attempts
    cell.click()
    expect(page.locator("h1")).to_contain_text(f"prices_daily {SESSIONS[-1]}")
    expect(page.locator("#attempts tbody tr")).to_have_count(3)
    expect(page.locator("#attempts")).to_contain_text("permanent")
    page.locator("#log-link").click()
    expect(page.locator("#log")).to_contain_text("prices_daily failed: provider down: HTTP 503")


def test_the_graph_draws_each_task_in_its_status_colour(visit: Visit) -> None:
    page = visit.open("/graph")
    node = page.locator('#graph-daily a[data-task="prices_daily"]')
    expect(node).to_contain_text("FAILED")
    expect(node.locator("rect")).to_have_css("fill", "rgb(255, 235, 233)")  # --red-bg
    expect(page.locator("#graph-daily path.edge")).to_have_count(3)
    expect(page.locator("#graph-intraday a.node")).to_have_count(1)


def test_the_data_page_charts_a_symbol_and_filters_the_quarantine(visit: Visit) -> None:
    page = visit.open("/data")
    expect(page.locator("svg.line-chart polyline.series")).to_have_count(2)
    expect(page.locator('#tables tr[data-table="prices_daily"]')).to_contain_text("10")
    expect(page.locator("#quarantine tbody tr")).to_have_count(2)
    page.locator('input[name="reason"]').fill("volume")
    page.locator('#data-filters button[type="submit"]').click()
    expect(page.locator("#quarantine-count")).to_contain_text("1 of 2")
    expect(page.locator("#quarantine tbody tr")).to_have_count(1)
    expect(page.locator("#quarantine")).to_contain_text("negative volume")


def test_a_task_failure_arrives_live_without_a_reload(visit: Visit, project: Path) -> None:
    page = visit.page
    # Set before any page script runs: the SSE extension says when its stream is open.
    page.add_init_script(
        "document.addEventListener('htmx:sseOpen', () => { window.sseOpen = true; });"
    )
    visit.open("/tasks")
    page.wait_for_function("() => window.sseOpen === true")
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#task-news")).to_have_attribute("data-status", "NEVER RUN")
    record_run(
        StatusStore(project / "state" / "status.db"),
        "news",
        SESSIONS[-1],
        NOW.astimezone(UTC),
        ["permanent"],
        error="news provider refused the request",
    )
    expect(page.locator("#task-news")).to_have_attribute("data-status", "FAILED")
    expect(page.locator("#task-news .error")).to_contain_text("news provider refused")
    assert page.evaluate("window.notReloaded") is True


def test_a_change_while_a_refresh_is_in_flight_still_reaches_the_page(
    visit: Visit, project: Path
) -> None:
    """The update that comes during a refresh is fetched after it: the page ends on the newest."""
    page = visit.page
    page.add_init_script(
        "window.updates = 0;"
        "document.addEventListener('htmx:sseOpen', () => { window.sseOpen = true; });"
        "document.addEventListener('htmx:sseMessage', () => { window.updates += 1; });"
    )
    visit.open("/tasks")
    page.wait_for_function("() => window.sseOpen === true")
    store = StatusStore(project / "state" / "status.db")
    started = NOW.astimezone(UTC)
    held: list[tuple[Route, APIResponse]] = []

    def answer_the_first_refresh_late(route: Route) -> None:
        if held:
            route.continue_()
            return
        # The server answers at once (the task runs); the task fails while that answer
        # is still on its way to the page.
        held.append((route, route.fetch()))
        store.record_failure("news", started, "news provider refused the request")

    page.route("**/tasks", answer_the_first_refresh_late)
    store.mark_started("news", started)
    page.wait_for_function("() => window.updates >= 2")
    route, running = held[0]
    assert 'data-status="RUNNING"' in running.text()
    route.fulfill(response=running)
    expect(page.locator("#task-news")).to_have_attribute("data-status", "FAILED")
    expect(page.locator("#task-news .error")).to_contain_text("news provider refused")


def test_with_a_token_the_login_link_lets_the_browser_in(
    browser: Browser, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    app = create_app(project / "config.yaml", base_dir=project, clock=fixed_clock(NOW))
    with BackgroundServer(app) as guarded:
        context = browser.new_context()
        tab = Visit(context.new_page(), guarded.url)
        refused = tab.page.goto(guarded.url + "/")
        assert refused is not None and refused.status == 401
        tab.open(f"/login?token={TOKEN}")
        assert urlsplit(tab.page.url).path == "/"
        assert TOKEN not in tab.page.url
        expect(tab.page.locator("h1")).to_have_text("Overview")
        context.close()
        assert tab.outside_requests() == []
