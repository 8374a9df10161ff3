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


def test_ticks_every_interval_while_the_market_is_open(config, calendar):
    start = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
    ticks, _, _ = run_loop(config, calendar, start, ticks=4)
    assert [local(t) for t in ticks] == [
        "Tue 10:00:00",
        "Tue 10:00:30",
        "Tue 10:01:00",
        "Tue 10:01:30",
    ]


def test_sleeps_through_the_weekend_and_thanksgiving_to_the_next_open(config, calendar):
    start = datetime(2026, 11, 25, 15, 59, 30, tzinfo=ET)  # Wednesday before Thanksgiving
    ticks, _, _ = run_loop(config, calendar, start, ticks=13)
    # Ticks go on through the closing slots (the 1-minute task's collects the 15:59
    # bar; the 5-minute task's lasts until 16:05), then sleep to Friday's open.
    assert [local(t) for t in ticks][:3] == ["Wed 15:59:30", "Wed 16:00:00", "Wed 16:00:30"]
    assert [local(t) for t in ticks][-3:] == ["Wed 16:04:30", "Fri 09:30:00", "Fri 09:30:30"]


def test_the_half_day_ends_at_13_00(config, calendar):
    start = datetime(2026, 11, 27, 12, 59, 30, tzinfo=ET)
    ticks, _, _ = run_loop(config, calendar, start, ticks=12)
    stamps = [t.astimezone(ET).strftime("%m-%d %H:%M:%S") for t in ticks]
    assert stamps[:2] == ["11-27 12:59:30", "11-27 13:00:00"]
    assert stamps[-2:] == ["11-27 13:04:30", "11-30 09:30:00"]


def test_failed_and_crashing_ticks_do_not_stop_the_loop(config, calendar):
    start = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
    ticks, _, code = run_loop(
        config, calendar, start, ticks=4, outcomes=[1, RuntimeError("snakemake vanished"), 0, 0]
    )
    assert len(ticks) == 4
    assert code == 0


def test_a_tick_that_overruns_the_interval_is_followed_at_once_never_overlapped(config, calendar):
    clock = MovedClock(datetime(2026, 11, 24, 10, 0, tzinfo=ET))
    control = LoopControl()
    starts = []

    def slow_tick() -> int:
        starts.append(clock())
        clock.now += timedelta(seconds=45)  # the tick itself takes 45 s
        if len(starts) == 3:
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
    assert [local(t) for t in starts] == ["Tue 10:00:00", "Tue 10:00:45", "Tue 10:01:30"]
    assert clock.sleeps and set(clock.sleeps) == {0.0}  # never a wait after an overrun


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
