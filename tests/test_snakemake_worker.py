"""The loop's Snakemake worker, for real: one living process builds tick after tick.

It builds what ``snakemake intraday`` would, with no process per tick; it
is killed with its tasks when it hangs and replaced when it dies, never
taking the loop down; it is recycled after a bound; the loop built on it
ticks as before.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime
from pathlib import Path

import pytest
from workflow_project import fake_tasks, make_project, project_config

from orchestrator import snakemake_worker
from orchestrator.config import load_config
from orchestrator.intraday_loop import IntradayLoop, LoopControl
from orchestrator.market_calendar import load_calendar
from orchestrator.snakemake_worker import SnakemakeWorker, WorkerFailed
from tests.helpers import process_gone, wait_for

pytestmark = pytest.mark.slow
MOMENT = "2026-11-27T10:07:10-05:00"  # Friday, the half day after Thanksgiving


def slot_sentinels(project: Path) -> list[str]:
    folder = project / "state" / "targets" / "intraday"
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.json"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "p", fake_tasks(project_config()))


@pytest.fixture
def worker(project: Path):
    worker = SnakemakeWorker(project, output=open(os.devnull, "w"))  # noqa: SIM115
    yield worker
    worker.close(kill=True)


def test_one_worker_builds_tick_after_tick(project: Path, worker: SnakemakeWorker) -> None:
    assert worker.run(("intraday",), {"now": MOMENT}, 2, timeout=120) == 0
    first_pid = worker.pid
    assert slot_sentinels(project) == [
        "2026-11-27/intraday_features/1005.json",
        "2026-11-27/intraday_signals/1005.json",
        "2026-11-27/price_data/1005.json",
        "2026-11-27/price_data/1007.json",
    ]
    assert worker.run(("intraday",), {"now": "2026-11-27T10:08:02-05:00"}, 2, timeout=120) == 0
    assert "2026-11-27/price_data/1008.json" in slot_sentinels(project)
    assert worker.pid == first_pid  # the same process: no interpreter start per tick
    assert worker.started == 1


def test_a_failed_job_is_exit_code_1_and_the_worker_lives_on(tmp_path: Path) -> None:
    config = fake_tasks(project_config(), args={"price_data": ["--exit", "65"]})
    config["tasks"]["price_data"]["critical"] = True
    project = make_project(tmp_path / "p", config)
    worker = SnakemakeWorker(project, output=open(os.devnull, "w"))  # noqa: SIM115
    try:
        assert worker.run(("intraday",), {"now": MOMENT}, 2, timeout=120) == 1
        assert worker.run(("intraday",), {"now": MOMENT}, 2, timeout=120) == 1
        assert worker.started == 1
    finally:
        worker.close(kill=True)


def test_a_hung_tick_kills_the_worker_with_its_tasks_and_the_next_starts_anew(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "hang.pids"
    config = fake_tasks(project_config())
    config["tasks"]["price_data"]["script"] = str(Path(__file__).parent / "fixtures" / "hang.py")
    config["tasks"]["price_data"]["args"] = [str(pids)]
    project = make_project(tmp_path / "p", config)
    worker = SnakemakeWorker(project, output=open(os.devnull, "w"))  # noqa: SIM115
    try:
        with pytest.raises(WorkerFailed, match="did not answer within 20 s"):
            worker.run(("intraday",), {"now": MOMENT}, 2, timeout=20)
        hung = [int(pid) for pid in pids.read_text().split()]
        assert hung and all(wait_for(lambda pid=pid: process_gone(pid)) for pid in hung)
        assert worker.pid is None

        config["tasks"]["price_data"]["script"] = config["tasks"]["intraday_features"]["script"]
        config["tasks"]["price_data"]["args"] = []
        (project / "config.yaml").write_text(json.dumps(config))
        assert worker.run(("intraday",), {"now": MOMENT}, 2, timeout=120) == 0
        assert worker.started == 2
        assert "2026-11-27/price_data/1007.json" in slot_sentinels(project)
    finally:
        worker.close(kill=True)


def test_a_worker_that_died_between_ticks_is_replaced(project: Path, worker: SnakemakeWorker):
    assert worker.run(("intraday",), {"now": MOMENT}, 2, timeout=120) == 0
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    assert wait_for(lambda: worker.exited)
    assert worker.run(("intraday",), {"now": "2026-11-27T10:08:02-05:00"}, 2, timeout=120) == 0
    assert worker.started == 2


def test_the_worker_is_recycled_after_its_bound(
    project: Path, worker: SnakemakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snakemake_worker, "MAX_TICKS", 2)
    for minute in ("07", "08", "09"):
        now = f"2026-11-27T10:{minute}:02-05:00"
        assert worker.run(("intraday",), {"now": now}, 2, timeout=120) == 0
    assert worker.started == 2  # the third tick ran in a fresh worker


def test_the_loop_on_its_worker_builds_each_slot_as_it_begins(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = project / "config.yaml"
    config = fake_tasks(project_config())
    config["now"] = "2026-11-27T10:07:30-05:00"
    config_file.write_text(json.dumps(config))
    monkeypatch.chdir(project)
    loaded = load_config(config_file)
    calendar = load_calendar(loaded.calendar_name, loaded.cache_dir)
    moments = iter(
        datetime.fromisoformat(m)
        for m in ("2026-11-27T10:07:30-05:00", "2026-11-27T10:08:02-05:00")
    )
    current = [next(moments)]
    control = LoopControl()

    def sleeper(_seconds: float) -> None:
        try:
            current[0] = next(moments)
        except StopIteration:
            control.finish.set()

    loop = IntradayLoop(
        loaded,
        calendar,
        lambda: current[0],
        interval=30,
        control=control,
        sleeper=sleeper,
        worker=True,
    )
    try:
        loop.run()
    finally:
        loop.close()
    assert {"2026-11-27/price_data/1007.json", "2026-11-27/price_data/1008.json"} <= set(
        slot_sentinels(project)
    )
