"""Provider faults and bad provider data, through the real task runner and collectors.

Cases 4 (transient errors then success; permanent errors not retried) and 8
(bad rows quarantined, an all-bad batch fails the task) of the reliability
suite. Faults come from ``collectors/providers/faulty.py``, switched on by
the config's ``provider.faults``; each attempt is a real child process
running a real collector on a 5-symbol synthetic market. Time is a fixed
clock and waits go to a recording sleeper.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from collectors.providers.faulty import (
    FaultSettings,
    FaultyProvider,
    corrupt,
    fault_for,
    wrap,
)
from collectors.providers.synthetic import SyntheticProvider
from orchestrator.config import Config, build_config
from orchestrator.errors import PermanentError, TransientError
from orchestrator.market_calendar import load_calendar
from orchestrator.pipeline import Period
from orchestrator.status_store import StatusStore
from orchestrator.task_runner import RunReport
from tests.helpers import RecordingSleeper, run_once

pytestmark = pytest.mark.faults

SESSION = date(2026, 11, 20)  # a Friday
NOW = datetime(2026, 11, 20, 15, 8, tzinfo=UTC)  # 10:08 ET
UNIVERSE = 5


def make_config(base: Path, faults: dict[str, Any] | None = None, **task: Any) -> Config:
    provider: dict[str, Any] = {"name": "synthetic", "seed": 42, "universe_size": UNIVERSE}
    if faults is not None:
        provider["faults"] = faults
    raw = {
        "provider": provider,
        "tasks": {
            "assets": {"family": "daily", "collector": "assets", "critical": True, **task},
            "price_data": {
                "family": "intraday",
                "collector": "price_data",
                "interval": "1m",
                "hours": ["regular"],
                "critical": True,
                **task,
            },
        },
    }
    return build_config(raw, "faults-config.yaml", base)


def run(
    config: Config, task: str, slot: str | None = None
) -> tuple[RunReport, Path, RecordingSleeper]:
    return run_once(config, task, Period(SESSION, slot), NOW)


def market_rows(config: Config, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(config.market_db) as connection:
        return connection.execute(sql).fetchall()


# -- the fault draw ----------------------------------------------------------------------


def test_fault_draws_are_deterministic_per_task_period_and_attempt() -> None:
    settings = FaultSettings.from_mapping({"rate": 0.05, "seed": 7})
    runs = [
        ("price_data", "2026-11-20", f"{h:02d}{m:02d}", 1) for h in range(9, 16) for m in range(60)
    ]
    first = [fault_for(settings, *run) for run in runs]
    assert first == [fault_for(settings, *run) for run in runs]
    hits = [kind for kind in first if kind]
    assert 0.02 < len(hits) / len(runs) < 0.09
    assert set(hits) <= {"reset", "http_429", "http_503"}
    retried = [fault_for(settings, task, s, slot, 2) for task, s, slot, _ in runs]
    assert retried != first  # a retry draws anew
    other_seed = FaultSettings.from_mapping({"rate": 0.05, "seed": 8})
    assert [fault_for(other_seed, *run) for run in runs] != first


def test_only_the_listed_attempts_meet_faults() -> None:
    settings = FaultSettings.from_mapping({"rate": 1.0, "kinds": ["http_503"], "attempts": [1]})
    assert fault_for(settings, "assets", "2026-11-20", None, 1) == "http_503"
    assert fault_for(settings, "assets", "2026-11-20", None, 2) is None


@pytest.mark.parametrize(
    ("faults", "key"),
    [
        ({"rate": 0.1, "kinds": ["gremlins"]}, "provider.faults.kinds"),
        ({"rate": 1.5}, "provider.faults.rate"),
        ({"rate": "often"}, "provider.faults"),
    ],
)
def test_bad_fault_settings_name_the_key(faults: dict[str, Any], key: str) -> None:
    with pytest.raises(PermanentError, match=key):
        FaultSettings.from_mapping(faults)


def test_the_wrapper_reads_the_attempt_from_the_runner_environment(calendar_cache: Path) -> None:
    inner = SyntheticProvider(42, UNIVERSE, load_calendar("XNYS", calendar_cache))
    env = {"ORCHESTRATOR_TASK": "assets", "ORCHESTRATOR_SESSION": "2026-11-20"}
    faults = {"rate": 1.0, "kinds": ["http_429"], "retry_after": 45, "attempts": [1]}
    provider = wrap(inner, faults, {**env, "ORCHESTRATOR_ATTEMPT": "1"})
    with pytest.raises(TransientError) as raised:
        provider.universe(NOW)
    assert raised.value.retry_after == 45
    assert len(provider.universe(NOW)) == UNIVERSE  # one fault per attempt, at the first call
    clean = wrap(inner, faults, {**env, "ORCHESTRATOR_ATTEMPT": "2"})
    assert isinstance(clean, FaultyProvider) and clean.fault is None
    assert len(clean.universe(NOW)) == UNIVERSE


def test_corrupt_makes_one_row_of_each_defect_and_a_duplicate() -> None:
    frame = pd.DataFrame(
        {
            "symbol": list("ABCDEFGHIJ"),
            "bar_ts": range(10),
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 100.0,
            "available_ts": range(60, 70),
        }
    )
    bad = corrupt(frame)
    assert len(bad) == 11
    assert bad.duplicated(["symbol", "bar_ts"]).sum() == 1
    assert pd.isna(bad["close"]).sum() == 1
    assert (corrupt(frame, every_row=True)["close"].isna()).all()


# -- case 4: transient errors, then success ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "waits", "message"),
    [
        ("reset", [10, 30], "ConnectionResetError"),
        ("http_429", [45, 45], "HTTP 429 Too Many Requests (Retry-After: 45 s)"),
        ("http_503", [10, 30], "HTTP 503 Service Unavailable"),
    ],
)
def test_transient_provider_errors_are_retried_with_backoff_then_succeed_once(
    base: Path, kind: str, waits: list[float], message: str
) -> None:
    faults = {"rate": 1.0, "kinds": [kind], "retry_after": 45, "attempts": [1, 2]}
    config = make_config(base, faults, retry={"attempts": 3, "backoff_seconds": [10, 30, 60]})
    report, output, sleeper = run(config, "assets")

    assert (report.status, report.attempts, report.exit_code) == ("success", 3, 0)
    # The configured backoff, or the provider's Retry-After when that is longer.
    assert sleeper.calls == waits
    store = StatusStore(config.status_db)
    attempts = store.attempts("assets")
    assert [a["outcome"] for a in attempts] == ["transient", "transient", "success"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert message in (attempts[0]["error_message"] or "")
    status = store.task_statuses()["assets"]
    assert (status["total_runs"], status["total_successes"], status["total_failures"]) == (1, 1, 0)
    assert (status["status"], status["consecutive_failures"]) == ("SUCCESS", 0)
    record = json.loads(output.read_text())
    assert (record["attempts"], record["records_processed"]) == (3, UNIVERSE)
    assert market_rows(config, "SELECT COUNT(*) FROM assets") == [(UNIVERSE,)]


def test_transient_errors_on_every_attempt_fail_after_the_last(base: Path) -> None:
    config = make_config(
        base,
        {"rate": 1.0, "kinds": ["http_503"]},
        retry={"attempts": 2, "backoff_seconds": [5]},
    )
    report, output, sleeper = run(config, "assets")
    assert (report.status, report.attempts, report.exit_code) == ("failed", 2, 1)
    assert sleeper.calls == [5]
    assert "HTTP 503" in (report.error or "")
    assert not output.exists()
    status = StatusStore(config.status_db).task_statuses()["assets"]
    assert (status["status"], status["total_failures"], status["total_runs"]) == ("FAILED", 1, 1)


# -- case 4: permanent errors are not retried and say what to fix -----------------------------


@pytest.mark.parametrize(
    ("kind", "fix"),
    [
        (
            "http_401",
            "HTTP 401 Unauthorized: the API key was refused; set a valid SYNTHETIC_API_KEY",
        ),
        (
            "http_404",
            "HTTP 404 Not Found: the endpoint or symbol does not exist; check provider.name",
        ),
        ("schema", "schema mismatch: "),
    ],
)
def test_permanent_provider_errors_are_not_retried_and_say_what_to_fix(
    base: Path, kind: str, fix: str
) -> None:
    config = make_config(base, {"rate": 1.0, "kinds": [kind]})
    report, output, sleeper = run(config, "assets")
    assert (report.status, report.attempts, report.exit_code) == ("failed", 1, 1)
    assert sleeper.calls == []
    assert fix in (report.error or "")
    if kind == "schema":
        assert "update collectors/providers/synthetic.py" in (report.error or "")
    assert not output.exists()
    store = StatusStore(config.status_db)
    assert [a["outcome"] for a in store.attempts("assets")] == ["permanent"]
    assert fix in store.task_statuses()["assets"]["last_error_message"]


# -- case 8: bad rows from the provider, end to end ----------------------------------------


def _assets_then_price_data(base: Path, kind: str) -> tuple[Config, RunReport, Path]:
    assert run(make_config(base), "assets")[0].status == "success"
    config = make_config(base, {"rate": 1.0, "kinds": [kind]}, retry={"attempts": 1})
    report, output, _ = run(config, "price_data", slot="1007")
    return config, report, output


def test_bad_rows_are_quarantined_with_reason_and_source_and_counted(base: Path) -> None:
    config, report, output = _assets_then_price_data(base, "bad_rows")
    assert (report.status, report.exit_code) == ("success", 0)
    bars = 38 * UNIVERSE  # 09:30 to 10:07, complete by 10:08
    rejected = market_rows(
        config, "SELECT source, reason, natural_key FROM quarantine ORDER BY reason"
    )
    assert {source for source, _, _ in rejected} == {"price_data"}
    assert sorted(reason for _, reason, _ in rejected) == sorted(
        [
            "duplicate key in batch",
            "high below low",
            "malformed: non-numeric volume",
            "malformed: null required value",
            "negative or NaN volume",
            "non-positive or NaN open",
            "stamped after as_of",
            "unknown symbol",
        ]
    )
    good = bars + 1 - len(rejected)  # the duplicate was an extra row
    assert market_rows(config, "SELECT COUNT(*) FROM intraday_bars") == [(good,)]
    assert market_rows(config, "SELECT COUNT(*) FROM intraday_bars WHERE close <= 0") == [(0,)]
    record = json.loads(output.read_text())
    assert (record["records_processed"], record["rows_rejected"]) == (good, len(rejected))
    attempt = StatusStore(config.status_db).attempts("price_data")[-1]
    assert (attempt["records_processed"], attempt["rows_rejected"]) == (good, len(rejected))


def test_an_entirely_bad_batch_fails_the_task_with_a_clear_message(base: Path) -> None:
    config, report, output = _assets_then_price_data(base, "all_bad")
    assert (report.status, report.attempts, report.exit_code) == ("failed", 1, 1)
    bars = 38 * UNIVERSE
    assert f"price_data: all {bars} rows for intraday_bars were rejected" in (report.error or "")
    assert "see the quarantine table" in (report.error or "")
    assert not output.exists()
    assert market_rows(config, "SELECT COUNT(*) FROM intraday_bars") == [(0,)]
    assert market_rows(config, "SELECT COUNT(*) FROM quarantine") == [(bars,)]
    assert [a["outcome"] for a in StatusStore(config.status_db).attempts("price_data")] == [
        "permanent"
    ]
