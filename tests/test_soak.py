"""Case 14 of the reliability suite: the soak benchmark, on a shorter window.

``bench/soak.py`` simulates a trading day of intraday ticks through the real
task runner with 5% of attempts meeting a provider fault; here two hours of
it with a higher fault rate, so retries and re-runs of failed slots happen.
The full day is ``make soak`` / ``python bench/soak.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import soak

# Five seconds: part of `make test`; the whole day is `make soak` (bench/soak.py).
pytestmark = pytest.mark.faults


def test_two_hours_of_ticks_with_faults_lose_no_bar_and_counters_add_up(tmp_path: Path) -> None:
    report = soak.simulate(tmp_path, minutes=120, fault_rate=0.15, universe_size=10)
    assert sum(report.faults_injected.values()) > 10
    assert report.ticks == 120
    assert report.duplicate_bars == 0
    assert report.bars_outside_session == 0
    assert report.counters_consistent, report.counter_problems
    # Every bar complete by the last tick is stored: retries and re-run slots catch up.
    assert report.stored_bars == report.collectable_bars == 10 * 119
    assert report.task_runs["price_data"] >= 120
