"""The intraday loop's schedule, on a moved clock: no snakemake, no sleeping.

The tick itself is injected; what is proven here is when ticks happen, that
the loop sleeps through closed hours to the next open, survives failed and
crashing ticks, stops on request, and prunes old sessions' sentinels.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator.config import build_config
from orchestrator.intraday_loop import IntradayLoop, LoopControl
from orchestrator.market_calendar import load_calendar
from orchestrator.pruning import prune_intraday

ET = ZoneInfo("America/New_York")
TASKS = {
    "price_data": {"family": "intraday", "script": "task.py", "interval": "1m"},
    "intraday_features": {"family": "intraday", "script": "task.py", "interval": "5m"},
}


class MovedClock:
    """A clock that only moves when the loop sleeps (or a tick takes time)."""

    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def calendar(calendar_cache):
    return load_calendar("XNYS", calendar_cache)


@pytest.fixture
def config(tmp_path, monkeypatch):
    (tmp_path / "task.py").write_text("")
    monkeypatch.chdir(tmp_path)
    return build_config({"tasks": TASKS, "intraday": {"keep_sessions": 2}}, "config.yaml")


def run_loop(config, calendar, start, ticks, outcomes=None):
    """Run the loop from ``start`` until ``ticks`` ticks happened; return tick times."""
    clock = MovedClock(start)
    control = LoopControl()
    tick_times: list[datetime] = []
    results = iter(outcomes or [])

    def tick() -> int:
        tick_times.append(clock())
        if len(tick_times) >= ticks:
            control.request_stop()
        outcome = next(results, 0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    loop = IntradayLoop(
        config, calendar, clock, interval=30, control=control, run_tick=tick, sleeper=clock.sleep
    )
    code = loop.run()
    return tick_times, clock, code


def local(moment):
    return moment.astimezone(ET).strftime("%a %H:%M:%S")


def test_ticks_as_each_slot_begins_plus_the_settle_delay(config, calendar):
    start = datetime(2026, 11, 24, 10, 0, 30, tzinfo=ET)
    ticks, clock, _ = run_loop(config, calendar, start, ticks=4)
    assert [local(t) for t in ticks] == [
        "Tue 10:00:30",
        "Tue 10:01:02",
        "Tue 10:02:02",
        "Tue 10:03:02",
    ]
    # loop_interval_seconds (30) is only the longest sleep: no wake-up ticks in between.
    assert max(clock.sleeps) == 30


def test_a_loop_started_as_a_slot_begins_waits_for_the_bar_to_settle(config, calendar):
    start = datetime(2026, 11, 24, 10, 0, 0, tzinfo=ET)
    ticks, _, _ = run_loop(config, calendar, start, ticks=2)
    assert [local(t) for t in ticks] == ["Tue 10:00:02", "Tue 10:01:02"]


def test_the_settle_delay_is_configurable(tmp_path, monkeypatch, calendar):
    (tmp_path / "task.py").write_text("")
    monkeypatch.chdir(tmp_path)
    config = build_config({"tasks": TASKS, "intraday": {"settle_seconds": 5}}, "config.yaml")
    start = datetime(2026, 11, 24, 10, 0, 30, tzinfo=ET)
    ticks, _, _ = run_loop(config, calendar, start, ticks=2)
    assert [local(t) for t in ticks] == ["Tue 10:00:30", "Tue 10:01:05"]


COLLECTOR_TASKS = {
    "price_data": {"family": "intraday", "collector": "price_data", "interval": "1m"},
    "intraday_features": {
        "family": "intraday",
        "collector": "intraday_features",
        "interval": "5m",
        "needs": ["price_data"],
    },
}


def test_the_settle_delay_defaults_to_none_on_the_synthetic_market(tmp_path, monkeypatch, calendar):
    monkeypatch.chdir(tmp_path)
    config = build_config({"tasks": COLLECTOR_TASKS}, "config.yaml")
    assert config.settle_seconds == 0.0  # its bars are final as their minute ends

    start = datetime(2026, 11, 24, 10, 0, 30, tzinfo=ET)
    ticks, _, _ = run_loop(config, calendar, start, ticks=2)
    assert [local(t) for t in ticks] == ["Tue 10:00:30", "Tue 10:01:00"]


def test_the_settle_delay_defaults_to_a_real_providers_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tasks = {
        name: {**task, "provider": "alpaca"} if name == "price_data" else task
        for name, task in COLLECTOR_TASKS.items()
    }
    config = build_config({"tasks": tasks, "universe": {"symbols": ["AAPL"]}}, "config.yaml")
    assert config.settle_seconds == 2.0


def test_the_settle_delay_of_a_script_is_a_real_providers(config):
    assert config.settle_seconds == 2.0  # its source is unknown (the fixture's tasks are scripts)


def test_sleeps_through_the_weekend_and_thanksgiving_to_the_next_open(config, calendar):
    start = datetime(2026, 11, 25, 15, 59, 30, tzinfo=ET)  # Wednesday before Thanksgiving
    ticks, _, _ = run_loop(config, calendar, start, ticks=4)
    # 16:00 begins the closing slots (the 1-minute task's collects the 15:59 bar);
    # no slot begins after that until Friday's open.
    assert [local(t) for t in ticks] == [
        "Wed 15:59:30",
        "Wed 16:00:02",
        "Fri 09:30:02",
        "Fri 09:31:02",
    ]


def test_the_half_day_ends_at_13_00(config, calendar):
    start = datetime(2026, 11, 27, 12, 59, 30, tzinfo=ET)
    ticks, _, _ = run_loop(config, calendar, start, ticks=3)
    stamps = [t.astimezone(ET).strftime("%m-%d %H:%M:%S") for t in ticks]
    assert stamps == ["11-27 12:59:30", "11-27 13:00:02", "11-30 09:30:02"]


def test_failed_and_crashing_ticks_do_not_stop_the_loop(config, calendar):
    start = datetime(2026, 11, 24, 10, 0, 30, tzinfo=ET)
    ticks, _, code = run_loop(
        config, calendar, start, ticks=4, outcomes=[1, RuntimeError("snakemake vanished"), 0, 0]
    )
    assert len(ticks) == 4
    assert code == 0


def test_a_failed_tick_is_tried_again_after_an_interval_not_at_once(config, calendar):
    start = datetime(2026, 11, 24, 10, 0, 5, tzinfo=ET)
    ticks, _, _ = run_loop(config, calendar, start, ticks=3, outcomes=[1, 0, 0])
    assert [local(t) for t in ticks] == ["Tue 10:00:05", "Tue 10:00:35", "Tue 10:01:02"]


def slow_loop(config, calendar, start, tick_seconds, ticks):
    """Run the loop with ticks that each take ``tick_seconds``; return (start, periods) of each."""
    clock = MovedClock(start)
    control = LoopControl()
    runs = []

    def slow_tick() -> int:
        runs.append((clock(), config.pipeline.due_slots(calendar, clock())))
        clock.now += timedelta(seconds=tick_seconds)
        if len(runs) == ticks:
            control.request_stop()
        return 0

    loop = IntradayLoop(
        config,
        calendar,
        clock,
        interval=30,
        control=control,
        run_tick=slow_tick,
        sleeper=clock.sleep,
    )
    loop.run()
    return runs, clock


def test_a_tick_that_overruns_a_slot_boundary_is_followed_at_once_never_overlapped(
    config, calendar
):
    start = datetime(2026, 11, 24, 10, 0, 30, tzinfo=ET)
    runs, clock = slow_loop(config, calendar, start, tick_seconds=45, ticks=3)
    # 10:00:30 + 45 s = 10:01:15, past the 10:01 boundary: the next tick starts at
    # once; it ends at 10:02:00, and the one after waits for the 10:02 bar to settle.
    assert [local(moment) for moment, _ in runs] == ["Tue 10:00:30", "Tue 10:01:15", "Tue 10:02:02"]
    assert clock.sleeps == [2.0]


def test_slots_missed_by_a_long_tick_are_caught_up_once_not_replayed(config, calendar):
    start = datetime(2026, 11, 24, 10, 0, 30, tzinfo=ET)
    runs, _ = slow_loop(config, calendar, start, tick_seconds=150, ticks=2)
    (_, first_periods), (second, second_periods) = runs
    assert local(second) == "Tue 10:03:02"
    # The 10:01 and 10:02 slots are never built; the catch-up tick is for 10:03.
    assert first_periods["price_data"].slot == "1000"
    assert second_periods["price_data"].slot == "1003"


def test_once_when_closed_runs_nothing(config, calendar):
    clock = MovedClock(datetime(2026, 11, 28, 12, 0, tzinfo=ET))
    ran = []
    loop = IntradayLoop(
        config,
        calendar,
        clock,
        interval=30,
        run_tick=lambda: ran.append(1) or 0,
        sleeper=clock.sleep,
    )
    assert loop.run(once=True) == 0
    assert ran == []
    assert clock.sleeps == []


def test_prune_removes_intraday_sentinels_of_sessions_older_than_keep_sessions(config, calendar):
    for session in ("2026-11-20", "2026-11-24", "2026-11-25", "not-a-session"):
        slot = Path(config.targets_dir / "intraday" / session / "price_data" / "1000.json")
        slot.parent.mkdir(parents=True)
        slot.write_text("{}")
    (config.targets_dir / "daily" / "2026-11-20").mkdir(parents=True)
    metadata = config.base_dir / ".snakemake" / "metadata"
    metadata.mkdir(parents=True)
    for session in ("2026-11-20", "2026-11-25"):
        path = f"state/targets/intraday/{session}/price_data/1000.json"
        (metadata / base64.urlsafe_b64encode(path.encode()).decode()).write_text("{}")
    removed = prune_intraday(config, calendar, datetime(2026, 11, 25, 10, 0, tzinfo=ET))
    assert [path.name for path in removed] == ["2026-11-20"]
    left = sorted(p.name for p in (config.targets_dir / "intraday").iterdir())
    assert left == ["2026-11-24", "2026-11-25", "not-a-session"]
    assert (config.targets_dir / "daily" / "2026-11-20").is_dir()  # daily is never pruned
    kept = [base64.urlsafe_b64decode(entry.name).decode() for entry in metadata.iterdir()]
    assert kept == ["state/targets/intraday/2026-11-25/price_data/1000.json"]
