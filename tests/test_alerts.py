"""Alerts: the rules, their state across checks and restarts, and real delivery.

Messages go through apprise to a real local HTTP server (``json://127.0.0.1``,
pytest-httpserver) and a real local SMTP server (aiosmtpd on 127.0.0.1, plain
``mailto://`` without TLS or login). Time moves by passing ``now``; nothing
sleeps. Status rows are made with the real ``StatusStore``.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

from orchestrator import alerts, sentinel
from orchestrator.alerts import (
    ALERT,
    FIRING,
    MUTED,
    REMINDER,
    RESOLVED,
    AppriseNotifier,
    alert_states,
    evaluate,
    evaluate_safely,
    pending_messages,
    redact_url,
    rules_from_config,
    send_test,
)
from orchestrator.config import Config, build_config
from orchestrator.errors import CalendarRangeError, ConfigError
from orchestrator.market_calendar import MarketCalendar
from orchestrator.status_store import Attempt, StatusStore
from tests.helpers import fixture

ET = ZoneInfo("America/New_York")
SATURDAY = datetime(2026, 11, 28, 6, 0, tzinfo=ET)  # no session: the daily and loop rules rest
MONDAY = datetime(2026, 11, 30, tzinfo=ET)
SCRIPT = fixture("succeed.py")
WALL = {"green": "1h", "yellow": "2h"}
DAILY_TASKS: dict[str, dict[str, Any]] = {
    "prices_daily": {"family": "daily", "script": SCRIPT, "critical": True, "freshness": WALL},
    "features_daily": {
        "family": "daily",
        "script": SCRIPT,
        "needs": ["prices_daily"],
        "freshness": WALL,
    },
    "sentiment": {"family": "daily", "script": SCRIPT, "freshness": WALL},
}
QUOTES: dict[str, dict[str, Any]] = {
    "quotes": {
        "family": "intraday",
        "script": SCRIPT,
        "interval": "1m",
        "hours": ["regular"],
        "freshness": {"green": "5m", "yellow": "10m"},
    }
}


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_destinations_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no alert URLs or canary from the developer's shell."""
    monkeypatch.delenv(alerts.URLS_VARIABLE, raising=False)
    monkeypatch.delenv("FAKE_API_KEY", raising=False)


def make_config(base: Path, tasks: dict[str, dict[str, Any]] | None = None, **rules: Any) -> Config:
    """A config of ``tasks`` (the three daily ones by default) with alert ``rules``.

    The rules go into ``raw`` directly: the schema has no ``alerts:`` section yet.
    """
    config = build_config({"tasks": tasks or DAILY_TASKS}, "test-config.yaml", base)
    if rules:
        config = replace(config, raw={**config.raw, "alerts": rules})
    return config


@pytest.fixture
def hook(httpserver_ipv4: HTTPServer) -> HTTPServer:
    """A webhook on 127.0.0.1 that accepts JSON posts at /alerts."""
    httpserver_ipv4.expect_request("/alerts", method="POST").respond_with_data("ok")
    return httpserver_ipv4


def hook_url(server: HTTPServer, path: str = "/alerts", userinfo: str = "") -> str:
    return f"json://{userinfo}127.0.0.1:{server.port}{path}"


def posted(server: HTTPServer, path: str = "/alerts") -> list[dict[str, Any]]:
    """The JSON documents apprise posted to ``path``: title, message, type."""
    return [request.get_json() for request, _ in server.log if request.path == path]


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]

    def texts(self) -> list[str]:
        texts = []
        for message in self.messages:
            part = message.get_body(preferencelist=("plain",))
            assert part is not None
            texts.append(part.get_content())
        return texts


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd's Controller needs a number)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, str]]:
    """A plain SMTP server on 127.0.0.1 and the apprise URL that mails to it."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # mailto:// (not mailtos://) is apprise's insecure mode: no STARTTLS; no user, no login.
        yield mailbox, f"mailto://127.0.0.1:{port}?from=pipeline@example.com&to=ops@example.com"
    finally:
        controller.stop()


def succeed(store: StatusStore, task: str, at: datetime) -> None:
    store.mark_started(task, at - timedelta(minutes=1))
    store.record_success(task, at - timedelta(minutes=1), at, 5)


def fail(
    store: StatusStore, task: str, at: datetime, error: str = "HTTP 503 from provider"
) -> None:
    store.mark_started(task, at - timedelta(minutes=1))
    store.record_failure(task, at, error)


def kinds(produced: list[alerts.Alert]) -> list[tuple[str, str]]:
    return [(alert.kind, alert.key) for alert in produced]


# -- task failures ------------------------------------------------------------------


def test_critical_failure_alerts_once_by_http_and_email_then_resolves(
    base: Path, calendar: MarketCalendar, hook: HTTPServer, smtp: tuple[Mailbox, str]
) -> None:
    mailbox, mail_url = smtp
    config = make_config(base)
    notifier = AppriseNotifier([hook_url(hook), mail_url])
    store = StatusStore(config.status_db)
    for task in DAILY_TASKS:
        succeed(store, task, SATURDAY)
    fail(store, "prices_daily", SATURDAY + timedelta(minutes=30))

    produced = evaluate(config, SATURDAY + timedelta(minutes=31), calendar, notifier)

    assert kinds(produced) == [(ALERT, "task:prices_daily")]
    assert produced[0].delivered
    [message] = posted(hook)
    assert message["title"] == "ALERT: task prices_daily failed"
    assert message["type"] == "failure"
    assert "HTTP 503 from provider" in message["message"]
    assert "critical" in message["message"]
    assert "Depends on it: features_daily" in message["message"]
    assert mailbox.subjects() == ["ALERT: task prices_daily failed"]
    assert "HTTP 503 from provider" in mailbox.texts()[0]

    # Failing again, and checked again: no repeat before the reminder is due.
    fail(store, "prices_daily", SATURDAY + timedelta(minutes=40))
    assert evaluate(config, SATURDAY + timedelta(minutes=41), calendar, notifier) == []
    assert len(posted(hook)) == 1
    assert len(mailbox.messages) == 1

    succeed(store, "prices_daily", SATURDAY + timedelta(minutes=50))
    produced = evaluate(config, SATURDAY + timedelta(minutes=51), calendar, notifier)
    assert kinds(produced) == [(RESOLVED, "task:prices_daily")]
    assert posted(hook)[-1]["title"] == "RESOLVED: task prices_daily succeeded again"
    assert posted(hook)[-1]["type"] == "success"
    assert mailbox.subjects()[-1] == "RESOLVED: task prices_daily succeeded again"
    assert evaluate(config, SATURDAY + timedelta(minutes=52), calendar, notifier) == []


@pytest.mark.parametrize(("rules", "needed"), [({}, 3), ({"failures_in_a_row": 2}, 2)])
def test_non_critical_task_alerts_after_n_failed_runs_in_a_row(
    base: Path, calendar: MarketCalendar, hook: HTTPServer, rules: dict[str, Any], needed: int
) -> None:
    config = make_config(base, **rules)
    notifier = AppriseNotifier([hook_url(hook)])
    store = StatusStore(config.status_db)
    for task in DAILY_TASKS:
        succeed(store, task, SATURDAY)
    for run in range(1, needed + 1):
        at = SATURDAY + timedelta(minutes=run)
        fail(store, "sentiment", at)
        produced = evaluate(config, at + timedelta(seconds=30), calendar, notifier)
        if run < needed:
            assert produced == [], f"alerted after {run} failures"
        else:
            assert kinds(produced) == [(ALERT, "task:sentiment")]
    [message] = posted(hook)
    assert f"{needed} runs in a row" in message["message"]
    assert "non-critical" in message["message"]


def test_a_success_between_failures_restarts_the_count(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base)
    notifier = AppriseNotifier([hook_url(hook)])
    store = StatusStore(config.status_db)
    moments = iter(SATURDAY + timedelta(minutes=minute) for minute in range(1, 30))
    for outcome in ("fail", "fail", "ok", "fail", "fail"):
        at = next(moments)
        (fail if outcome == "fail" else succeed)(store, "sentiment", at)
        assert evaluate(config, next(moments), calendar, notifier) == []
    assert posted(hook) == []


# -- sources: transitions, flaps, reminders -------------------------------------------


def test_a_source_alerts_after_two_red_checks_and_a_flap_does_not(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base, {"sentiment": DAILY_TASKS["sentiment"]})
    notifier = AppriseNotifier([hook_url(hook)])
    store = StatusStore(config.status_db)
    succeed(store, "sentiment", SATURDAY)
    red = SATURDAY + timedelta(hours=2, minutes=1)  # older than yellow (2h): red

    assert evaluate(config, red, calendar, notifier) == []  # one red check: pending
    assert alert_states(config)["source:sentiment"].checks == 1
    succeed(store, "sentiment", red + timedelta(minutes=1))  # green again: a flap
    assert evaluate(config, red + timedelta(minutes=2), calendar, notifier) == []

    red_again = red + timedelta(hours=2, minutes=3)
    assert evaluate(config, red_again, calendar, notifier) == []  # counting starts over
    produced = evaluate(config, red_again + timedelta(minutes=1), calendar, notifier)

    assert kinds(produced) == [(ALERT, "source:sentiment")]
    [message] = posted(hook)  # the flap sent nothing: no alert, no "resolved"
    assert message["title"] == "ALERT: source sentiment is red"
    assert "updated 2h" in message["message"]


def test_red_checks_is_a_rule(base: Path, calendar: MarketCalendar, hook: HTTPServer) -> None:
    config = make_config(base, {"sentiment": DAILY_TASKS["sentiment"]}, red_checks=3)
    notifier = AppriseNotifier([hook_url(hook)])
    succeed(StatusStore(config.status_db), "sentiment", SATURDAY)
    red = SATURDAY + timedelta(hours=3)
    assert evaluate(config, red, calendar, notifier) == []
    assert evaluate(config, red + timedelta(minutes=1), calendar, notifier) == []
    produced = evaluate(config, red + timedelta(minutes=2), calendar, notifier)
    assert kinds(produced) == [(ALERT, "source:sentiment")]


def test_reminders_every_repeat_while_red_then_resolved(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base, {"sentiment": DAILY_TASKS["sentiment"]})
    notifier = AppriseNotifier([hook_url(hook)])
    store = StatusStore(config.status_db)
    succeed(store, "sentiment", SATURDAY)
    first = SATURDAY + timedelta(hours=2, minutes=1)
    evaluate(config, first, calendar, notifier)
    fired = first + timedelta(minutes=1)
    assert kinds(evaluate(config, fired, calendar, notifier)) == [(ALERT, "source:sentiment")]

    timeline = {
        timedelta(hours=1): [],
        timedelta(hours=3, minutes=59): [],
        timedelta(hours=4): [(REMINDER, "source:sentiment")],
        timedelta(hours=5): [],
        timedelta(hours=8): [(REMINDER, "source:sentiment")],
    }
    for offset, expected in timeline.items():
        assert kinds(evaluate(config, fired + offset, calendar, notifier)) == expected, offset
    reminder = posted(hook)[-1]
    assert reminder["title"] == "REMINDER: source sentiment is red"
    assert "reminder 3" in reminder["message"]  # the third message of this episode
    assert reminder["type"] == "warning"

    succeed(store, "sentiment", fired + timedelta(hours=9))
    produced = evaluate(config, fired + timedelta(hours=9, minutes=1), calendar, notifier)
    assert kinds(produced) == [(RESOLVED, "source:sentiment")]
    assert posted(hook)[-1]["title"] == "RESOLVED: source sentiment is green again"
    assert len(posted(hook)) == 4
    assert alert_states(config)["source:sentiment"].state == "ok"


def test_repeat_is_a_rule(base: Path, calendar: MarketCalendar, hook: HTTPServer) -> None:
    config = make_config(base, {"sentiment": DAILY_TASKS["sentiment"]}, repeat="30m")
    notifier = AppriseNotifier([hook_url(hook)])
    succeed(StatusStore(config.status_db), "sentiment", SATURDAY)
    red = SATURDAY + timedelta(hours=3)
    evaluate(config, red, calendar, notifier)
    evaluate(config, red + timedelta(minutes=1), calendar, notifier)
    produced = evaluate(config, red + timedelta(minutes=31), calendar, notifier)
    assert kinds(produced) == [(REMINDER, "source:sentiment")]


# -- mute rules -------------------------------------------------------------------------


def test_intraday_source_is_muted_outside_its_hours(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base, QUOTES)
    notifier = AppriseNotifier([hook_url(hook)])
    succeed(StatusStore(config.status_db), "quotes", MONDAY.replace(hour=15, minute=59))
    after_close = MONDAY.replace(hour=16, minute=30)  # 31 minutes old: red on a wall clock

    for minute in range(3):
        produced = evaluate(config, after_close + timedelta(minutes=minute), calendar, notifier)
        assert "source:quotes" not in [alert.key for alert in produced]
    state = alert_states(config)["source:quotes"]
    assert state.state == MUTED
    assert "outside its hours" in (state.detail or "")

    tuesday_open = datetime(2026, 12, 1, 9, 31, tzinfo=ET)
    first = evaluate(config, tuesday_open, calendar, notifier)
    second = evaluate(config, tuesday_open + timedelta(minutes=1), calendar, notifier)
    assert "source:quotes" not in [alert.key for alert in first]  # one check in hours
    assert (ALERT, "source:quotes") in kinds(second)
    assert [m["title"] for m in posted(hook)].count("ALERT: source quotes is red") == 1


def test_a_source_downstream_of_an_alerted_task_is_muted_and_named_by_its_alert(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base)
    notifier = AppriseNotifier([hook_url(hook)])
    store = StatusStore(config.status_db)
    for task in DAILY_TASKS:
        succeed(store, task, SATURDAY)
    fail(store, "prices_daily", SATURDAY + timedelta(hours=1))
    fired = SATURDAY + timedelta(hours=1, minutes=1)
    assert kinds(evaluate(config, fired, calendar, notifier)) == [(ALERT, "task:prices_daily")]

    # Two hours on every source is red; only sentiment's has no alerted root cause.
    red = SATURDAY + timedelta(hours=2, minutes=1)
    seen = []
    for minute in range(4):
        seen += kinds(evaluate(config, red + timedelta(minutes=minute), calendar, notifier))
    assert seen == [(ALERT, "source:sentiment")]
    states = alert_states(config)
    for muted in ("source:prices_daily", "source:features_daily"):
        assert states[muted].state == MUTED
        assert states[muted].detail == "explained by the alert on task prices_daily"

    # The root cause's reminder names what it took down.
    produced = evaluate(config, fired + timedelta(hours=4), calendar, notifier)
    assert (REMINDER, "task:prices_daily") in kinds(produced)
    reminder = next(m for m in posted(hook) if m["title"].startswith("REMINDER: task"))
    assert "features_daily (red)" in reminder["message"]

    # Fixed: the task resolves; the muted sources go green without a message of their own.
    for task in ("prices_daily", "features_daily"):
        succeed(store, task, fired + timedelta(hours=5))
    produced = evaluate(config, fired + timedelta(hours=5, minutes=1), calendar, notifier)
    assert (RESOLVED, "task:prices_daily") in kinds(produced)
    titles = [m["title"] for m in posted(hook)]
    assert not [title for title in titles if "prices_daily is" in title or "features" in title]


# -- restart, failing destinations --------------------------------------------------------


def test_a_restart_neither_repeats_nor_forgets(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base)
    store = StatusStore(config.status_db)
    for task in DAILY_TASKS:
        succeed(store, task, SATURDAY)
    fail(store, "prices_daily", SATURDAY + timedelta(minutes=5))
    first = AppriseNotifier([hook_url(hook)])
    produced = evaluate(config, SATURDAY + timedelta(minutes=6), calendar, first)
    assert kinds(produced) == [(ALERT, "task:prices_daily")]

    # A new process: a config loaded afresh, a new notifier, the same state folder.
    restarted = make_config(base)
    again = evaluate(
        restarted, SATURDAY + timedelta(minutes=7), calendar, AppriseNotifier([hook_url(hook)])
    )
    assert again == []
    assert alert_states(restarted)["task:prices_daily"].state == FIRING

    succeed(store, "prices_daily", SATURDAY + timedelta(minutes=20))
    after = evaluate(
        make_config(base),
        SATURDAY + timedelta(minutes=21),
        calendar,
        AppriseNotifier([hook_url(hook)]),
    )
    assert kinds(after) == [(RESOLVED, "task:prices_daily")]
    assert [m["title"].split(":")[0] for m in posted(hook)] == ["ALERT", "RESOLVED"]


def test_a_failing_destination_does_not_fail_the_run_and_is_retried_next_time(
    base: Path, calendar: MarketCalendar, hook: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    hook.expect_request("/broken", method="POST").respond_with_data("down", status=500)
    config = make_config(base)
    notifier = AppriseNotifier([hook_url(hook), hook_url(hook, "/broken")])
    store = StatusStore(config.status_db)
    for task in DAILY_TASKS:
        succeed(store, task, SATURDAY)
    fail(store, "prices_daily", SATURDAY + timedelta(minutes=5))

    with caplog.at_level(logging.WARNING, logger="orchestrator.alerts"):
        produced = evaluate(config, SATURDAY + timedelta(minutes=6), calendar, notifier)

    assert kinds(produced) == [(ALERT, "task:prices_daily")]
    assert not produced[0].delivered  # one destination refused: partial is not delivered
    assert len(posted(hook)) == 1
    assert len(posted(hook, "/broken")) == 1
    [pending] = pending_messages(config)
    assert pending["attempts"] == 1
    assert "not delivered to json://127.0.0.1" in caplog.text
    assert "/broken" not in caplog.text  # the URL is shown as scheme and host only

    # The destination is back: the next check retries it, and only it.
    hook.clear()
    hook.expect_request("/alerts", method="POST").respond_with_data("ok")
    hook.expect_request("/broken", method="POST").respond_with_data("ok")
    assert evaluate(config, SATURDAY + timedelta(minutes=10), calendar, notifier) == []
    assert posted(hook) == []
    [retried] = posted(hook, "/broken")
    assert retried["title"] == "ALERT: task prices_daily failed"
    assert pending_messages(config) == []


def test_an_unreachable_or_invalid_destination_never_raises(
    base: Path, calendar: MarketCalendar
) -> None:
    config = make_config(base)
    notifier = AppriseNotifier([f"json://127.0.0.1:{free_port()}/nobody", "nonsense-scheme://x"])
    store = StatusStore(config.status_db)
    fail(store, "prices_daily", SATURDAY)
    produced = evaluate(config, SATURDAY + timedelta(minutes=1), calendar, notifier)
    assert kinds(produced) == [(ALERT, "task:prices_daily")]
    assert not produced[0].delivered
    assert len(pending_messages(config)) == 1
    # Still refused a day later: the stale message is dropped, not kept for ever
    # (the reminder that check queues is the news now).
    evaluate(config, SATURDAY + timedelta(days=1, minutes=2), calendar, notifier)
    assert [row["kind"] for row in pending_messages(config)] == [REMINDER]


def test_evaluate_safely_logs_instead_of_raising(
    base: Path, calendar: MarketCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(base)
    long_ago = datetime(1990, 1, 2, 12, 0, tzinfo=ET)  # before the calendar's range
    with pytest.raises(CalendarRangeError):
        evaluate(config, long_ago, calendar, AppriseNotifier([]))
    with caplog.at_level(logging.ERROR, logger="orchestrator.alerts"):
        assert evaluate_safely(config, long_ago, calendar, AppriseNotifier([])) == []
    assert "alerts not checked" in caplog.text


# -- secrets ------------------------------------------------------------------------------


def test_no_secret_in_any_alert_body_state_or_log(
    base: Path,
    calendar: MarketCalendar,
    hook: HTTPServer,
    smtp: tuple[Mailbox, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailbox, mail_url = smtp
    config = make_config(base)
    store = StatusStore(config.status_db)
    # Stored before the key was known to the process, so the store kept it as it came:
    # the alert must redact it itself.
    fail(store, "prices_daily", SATURDAY, "401 for https://api.example.com/?apikey=canary1234")
    assert "canary1234" in store.task_statuses()["prices_daily"]["last_error_message"]
    monkeypatch.setenv("FAKE_API_KEY", "canary1234")
    hook_with_password = hook_url(hook, userinfo="ops:hooksecret99@")
    notifier = AppriseNotifier([hook_with_password, mail_url])

    with caplog.at_level(logging.DEBUG):
        produced = evaluate(config, SATURDAY + timedelta(minutes=1), calendar, notifier)
        results = send_test(config, notifier)

    assert produced and produced[0].delivered
    assert results == [("json://127.0.0.1", True), ("mailto://127.0.0.1", True)]
    texts = [m["title"] + m["message"] for m in posted(hook)]
    texts += [str(message) for message in mailbox.messages]
    texts += [alert.title + alert.body for alert in produced]
    assert len(texts) == 2 + 2 + 1
    assert "apikey=***" in posted(hook)[0]["message"]
    with sqlite3.connect(config.status_db) as connection:
        stored = connection.execute("SELECT * FROM alert_state").fetchall()
    texts.append(repr(stored))
    for text in texts:
        assert "canary1234" not in text
        assert "hooksecret99" not in text
    assert "canary1234" not in caplog.text
    assert "hooksecret99" not in caplog.text


# -- the intraday loop and the daily run ----------------------------------------------------


def intraday_attempt(store: StatusStore, at: datetime) -> None:
    slot = at.astimezone(ET).strftime("%H%M")
    store.record_attempt(
        Attempt("quotes", f"2026-11-30/{slot}", 1, at, at + timedelta(seconds=5), "success")
    )


def test_the_intraday_loop_missing_ticks_in_market_hours_alerts_and_resolves(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base, QUOTES)
    notifier = AppriseNotifier([hook_url(hook)])
    store = StatusStore(config.status_db)
    # Closed market: no ticks are expected, even though none ever came.
    assert evaluate(config, datetime(2026, 11, 29, 12, tzinfo=ET), calendar, notifier) == []

    intraday_attempt(store, MONDAY.replace(hour=10))
    assert evaluate(config, MONDAY.replace(hour=10, minute=2), calendar, notifier) == []
    # Three tick periods (1m slots, a 30 s loop: 1 minute each) without a sign of life.
    produced = evaluate(config, MONDAY.replace(hour=10, minute=4), calendar, notifier)
    assert kinds(produced) == [(ALERT, "intraday-loop:late")]
    assert "Last activity: 2026-11-30 10:00 ET" in posted(hook)[0]["message"]

    intraday_attempt(store, MONDAY.replace(hour=10, minute=5))
    produced = evaluate(config, MONDAY.replace(hour=10, minute=5, second=30), calendar, notifier)
    assert kinds(produced) == [(RESOLVED, "intraday-loop:late")]


def test_an_intraday_sentinel_counts_as_a_tick(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base, QUOTES)
    target = config.base_dir / config.pipeline.task("quotes").target("2026-11-30", "1003")
    done = MONDAY.replace(hour=10, minute=4, second=2)
    sentinel.write_sentinel(target, {"finished_at": done.isoformat(), "status": "success"})
    notifier = AppriseNotifier([hook_url(hook)])
    assert evaluate(config, MONDAY.replace(hour=10, minute=6), calendar, notifier) == []
    produced = evaluate(config, MONDAY.replace(hour=10, minute=8), calendar, notifier)
    assert kinds(produced) == [(ALERT, "intraday-loop:late")]


def test_the_daily_run_not_finished_after_its_start_alerts_until_it_settles(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base)  # daily.start_time 09:30, daily_late 30m
    notifier = AppriseNotifier([hook_url(hook)])
    assert evaluate(config, MONDAY.replace(hour=9, minute=59), calendar, notifier) == []
    produced = evaluate(config, MONDAY.replace(hour=10, minute=1), calendar, notifier)
    assert kinds(produced) == [(ALERT, "daily-run:late")]
    message = posted(hook)[0]["message"]
    assert "session 2026-11-30" in message
    assert "prices_daily, features_daily, sentiment" in message

    # sentiment built; prices_daily failed today, which leaves features_daily skipped.
    task = config.pipeline.task("sentiment")
    sentinel.write_sentinel(config.base_dir / task.target("2026-11-30"), {"status": "success"})
    fail(StatusStore(config.status_db), "prices_daily", MONDAY.replace(hour=10, minute=5))
    produced = evaluate(config, MONDAY.replace(hour=10, minute=6), calendar, notifier)
    assert sorted(kinds(produced)) == [(ALERT, "task:prices_daily"), (RESOLVED, "daily-run:late")]


# -- the test command, destinations, rules ----------------------------------------------------


def test_send_test_reports_each_destination_from_the_environment(
    base: Path, hook: HTTPServer, smtp: tuple[Mailbox, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, mail_url = smtp
    hook.expect_request("/broken", method="POST").respond_with_data("down", status=500)
    urls = [hook_url(hook), mail_url, hook_url(hook, "/broken")]
    monkeypatch.setenv(alerts.URLS_VARIABLE, " ".join(urls))
    results = send_test(make_config(base))
    assert results == [
        ("json://127.0.0.1", True),
        ("mailto://127.0.0.1", True),
        ("json://127.0.0.1", False),
    ]
    [message] = posted(hook)
    assert message["type"] == "info"
    assert message["title"].startswith("TEST")
    assert mailbox.subjects() == [message["title"]]


def test_destinations_come_from_dotenv_when_the_environment_has_none(
    base: Path, hook: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (base / ".env").write_text(f"{alerts.URLS_VARIABLE}={hook_url(hook)}\n")
    config = make_config(base)
    assert alerts.alert_urls(config) == [hook_url(hook)]
    assert send_test(config) == [("json://127.0.0.1", True)]
    monkeypatch.setenv(alerts.URLS_VARIABLE, "json://127.0.0.1:1/env-wins")
    assert alerts.alert_urls(config) == ["json://127.0.0.1:1/env-wins"]
    monkeypatch.setenv(alerts.URLS_VARIABLE, "")
    assert send_test(config) == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("json://127.0.0.1:8080/hook?token=abc", "json://127.0.0.1"),
        (
            "mailtos://me:app-password@smtp.example.com:587?to=ops@example.com",
            "mailtos://smtp.example.com",
        ),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops", "slack://***"),
        ("tgram://123456789:AABBccdd/987654", "tgram://***"),
        ("ntfy://localhost/alerts", "ntfy://localhost"),
        ("not a url", "(not a URL)"),
    ],
)
def test_a_destination_is_shown_as_its_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_reading_the_state_never_creates_it(base: Path) -> None:
    config = make_config(base)
    assert alert_states(config) == {}
    assert pending_messages(config) == []
    StatusStore(config.status_db)  # a status database from before alerts existed
    assert alert_states(config) == {}
    assert pending_messages(config) == []
    with sqlite3.connect(config.status_db) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "alert_state" not in names


def test_rules_have_defaults_and_refuse_urls_and_nonsense(base: Path) -> None:
    rules = rules_from_config(make_config(base))
    assert (rules.failures_in_a_row, rules.red_checks, rules.missed_ticks) == (3, 2, 3)
    assert rules.repeat == timedelta(hours=4)
    assert rules.daily_late == timedelta(minutes=30)
    assert rules_from_config(make_config(base, daily_late="45m")).daily_late == timedelta(
        minutes=45
    )
    for bad, key in (
        ({"urls": ["json://x"]}, "alerts.urls"),
        ({"red_checks": 0}, "alerts.red_checks"),
        ({"repeat": "soon"}, "alerts.repeat"),
        ({"resolved": "yes"}, "alerts.resolved"),
        ({"colour": "red"}, "alerts.colour"),
    ):
        with pytest.raises(ConfigError) as error:
            rules_from_config(make_config(base, **bad))
        assert error.value.key == key


def test_disabled_alerts_send_nothing(
    base: Path, calendar: MarketCalendar, hook: HTTPServer
) -> None:
    config = make_config(base, enabled=False)
    fail(StatusStore(config.status_db), "prices_daily", SATURDAY)
    notifier = AppriseNotifier([hook_url(hook)])
    assert evaluate(config, SATURDAY + timedelta(minutes=1), calendar, notifier) == []
    assert posted(hook) == []
