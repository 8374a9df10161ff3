"""Benchmark: intraday ticks at 5,000 symbols, and what a tick costs when nothing is due.

In a temp project with the real collectors and ``provider.universe_size``
5,000 (Monday 2026-11-30 on the synthetic market):

1. set-up: the daily run of the session (the intraday signals blend the
   daily ones), then a tick every minute from 10:00 as the loop would run them;
2. the 5-minute ticks (10:05, 10:10, ...: price_data + intraday_features +
   intraday_signals): wall time of ``snakemake intraday`` against the 60 s
   price interval. Target: <= 10 % (6 s);
3. the no-op tick once the current slots are built: ``orchestrator --intraday
   --once`` next to a bare ``snakemake intraday`` (interleaved, medians), and
   the loop's own per-tick cost (``IntradayLoop.tick`` in a living process,
   which pays the orchestrator's start once, not per tick; the loop skips
   Snakemake when every current slot's sentinel exists). Target: both <= 1.1 x
   the bare no-op;
4. the alternative to a CLI subprocess per tick: a process that keeps
   Snakemake loaded and plans the no-op tick through ``snakemake.api``
   (``SnakemakeApi().workflow(...).dag(...).execute_workflow(...)``) N times,
   in its own child process: seconds per tick and RSS growth per tick.

Exit 1 when a target is missed. Run:
``.venv/bin/python bench/bench_intraday_tick.py [--symbols 5000] [--cycles 2] [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    check,
    median,
    orchestrator_command,
    rss_mib,
    run_timed,
    snakemake_command,
    table,
    verdict,
)
from workflow_project import make_project, project_config

SESSION = "2026-11-30"  # a Monday, full day
DAILY_AT = f"{SESSION}T09:50:00-05:00"
INTERVAL_SECONDS = 60.0  # price_data's interval: a tick must fit well inside it
TICK_SHARE_TARGET = 0.10
NOOP_RATIO_TARGET = 1.10
TASKS = ("price_data", "intraday_features", "intraday_signals")


def at(minute: int) -> str:
    """The pinned clock ``minute`` minutes after 10:00, 10 s into the minute."""
    return f"{SESSION}T{10 + minute // 60:02d}:{minute % 60:02d}:10-05:00"


def slot(minute: int) -> str:
    return f"{10 + minute // 60:02d}{minute % 60:02d}"


def task_seconds(project: Path, minute: int) -> dict[str, float]:
    """Recorded durations of the tasks built for ``minute``'s slot."""
    root = project / "state" / "targets" / "intraday" / SESSION
    found = {}
    for task in TASKS:
        sentinel = root / task / f"{slot(minute)}.json"
        if sentinel.is_file():
            found[task] = json.loads(sentinel.read_text())["duration_seconds"]
    return found


def api_ticks(project: Path, now: str, ticks: int) -> dict[str, float]:
    """Plan the no-op tick ``ticks`` times through the Python API, in this process."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ExecutionSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )

    def tick() -> None:
        with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            workflow = api.workflow(
                ResourceSettings(cores=2),
                ConfigSettings(config={"now": now}),
                snakefile=project / "Snakefile",
                workdir=project,
            )
            dag = workflow.dag(DAGSettings(targets={"intraday"}, force_incomplete=True))
            dag.execute_workflow(
                executor="local", execution_settings=ExecutionSettings(keep_going=True)
            )

    warm = min(10, ticks // 4)
    times, rss_after_warm = [], 0.0
    started_rss = rss_mib()
    for number in range(ticks):
        began = time.perf_counter()
        tick()
        times.append(time.perf_counter() - began)
        if number == warm - 1:
            rss_after_warm = rss_mib()
    logs = len(list((project / ".snakemake" / "log").glob("*.log")))
    return {
        "median": median(times[warm:]),
        "first": times[0],
        "rss_start": started_rss,
        "rss_end": rss_mib(),
        "growth_per_tick": (rss_mib() - rss_after_warm) / (ticks - warm),
        "ticks": ticks,
        "snakemake_logs": logs,
    }


def loop_ticks(project: Path, repeat: int) -> list[float]:
    """Seconds of ``IntradayLoop.tick`` (the real ``snakemake intraday`` subprocess), in process."""
    from orchestrator.clock import clock_for
    from orchestrator.config import load_config
    from orchestrator.intraday_loop import IntradayLoop
    from orchestrator.market_calendar import load_calendar

    here = Path.cwd()
    os.chdir(project)
    try:
        config = load_config(project / "config.yaml")
        calendar = load_calendar(config.calendar_name, config.cache_dir)
        times = []
        for _ in range(repeat):
            loop = IntradayLoop(config, calendar, clock_for(config.now), interval=60)
            with contextlib.redirect_stdout(io.StringIO()):
                result = loop.tick()
            if result.exit_code != 0:
                raise SystemExit(f"in-process loop tick failed (exit {result.exit_code})")
            times.append(result.seconds)
    finally:
        os.chdir(here)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--cycles", type=int, default=2, help="5-minute ticks to time")
    parser.add_argument("--repeat", type=int, default=7, help="no-op ticks of each kind")
    parser.add_argument("--api-ticks", type=int, default=200)
    parser.add_argument(
        "--api-child", nargs=3, metavar=("PROJECT", "NOW", "TICKS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.api_child:
        project, now, ticks = args.api_child
        print(json.dumps(api_ticks(Path(project), now, int(ticks))))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-intraday-") as scratch:
        config = project_config()
        config["provider"]["universe_size"] = args.symbols
        project = make_project(Path(scratch) / "project", config)

        daily_seconds, result = run_timed(
            snakemake_command(project, "daily", "--cores", "4", now=DAILY_AT), project, 3600
        )
        check(result, "the daily run")

        full_ticks, price_ticks, task_sums = [], [], []
        for minute in range(5 * args.cycles + 1):
            tick = snakemake_command(project, "intraday", "--cores", "2", now=at(minute))
            seconds, result = run_timed(tick, project)
            check(result, f"the tick at {at(minute)}")
            if minute == 0:
                first_tick = seconds  # from the open: 30 minutes of bars, features from scratch
            elif minute % 5 == 0:
                tasks = task_seconds(project, minute)
                if set(tasks) != set(TASKS):
                    raise SystemExit(f"the {slot(minute)} tick built {sorted(tasks)}, not {TASKS}")
                full_ticks.append(seconds)
                task_sums.append(sum(tasks.values()))
            else:
                price_ticks.append(seconds)

        # Nothing due: the clock stays in the last slot built.
        last = at(5 * args.cycles)
        config["now"] = last
        (project / "config.yaml").write_text(yaml.safe_dump(config))
        once = orchestrator_command(project, "--intraday", "--once")
        bare = snakemake_command(project, "intraday", now=last)
        once_times, bare_times = [], []
        for command in (once, bare):  # warm-up: bytecode, page cache
            check(run_timed(command, project)[1], " ".join(command[-3:]))
        for _ in range(args.repeat):
            for command, times in ((once, once_times), (bare, bare_times)):
                seconds, result = run_timed(command, project)
                check(result, "a no-op tick")
                if "rule " in result.stdout + result.stderr:
                    raise SystemExit(f"the no-op tick ran jobs:\n{result.stdout}{result.stderr}")
                times.append(seconds)
        loop_times = loop_ticks(project, args.repeat)

        api_run = subprocess.run(
            [sys.executable, __file__, "--api-child", str(project), last, str(args.api_ticks)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        check(api_run, "the Python API ticks")
        api = json.loads(api_run.stdout.strip().splitlines()[-1])

    full, price, tasks_sum = median(full_ticks), median(price_ticks), median(task_sums)
    bare_noop, once_noop, loop_noop = median(bare_times), median(once_times), median(loop_times)
    share = full / INTERVAL_SECONDS
    print(f"intraday ticks, {args.symbols} symbols, session {SESSION} (synthetic market)")
    print(f"set-up: daily run {daily_seconds:.1f} s; first tick (from the open) {first_tick:.1f} s")
    print(
        table(
            ("tick", "median s", "of 60 s", "runs s"),
            [
                ("5-minute tick (3 tasks)", f"{full:.2f}", f"{share:.1%}", _runs(full_ticks)),
                ("  tasks' own time (runner)", f"{tasks_sum:.2f}", f"{tasks_sum / 60:.1%}", ""),
                ("  snakemake + runner start", f"{full - tasks_sum:.2f}", "", ""),
                ("1-minute tick (price_data)", f"{price:.2f}", f"{price / 60:.1%}", ""),
            ],
        )
    )
    once_ratio, loop_ratio = once_noop / bare_noop, loop_noop / bare_noop
    noop_rows = [
        ("snakemake intraday (bare)", f"{bare_noop:.3f}", "1.00", _runs(bare_times)),
        (
            "orchestrator --intraday --once",
            f"{once_noop:.3f}",
            f"{once_ratio:.2f}",
            _runs(once_times),
        ),
        (
            "IntradayLoop.tick in the loop",
            f"{loop_noop:.3f}",
            f"{loop_ratio:.2f}",
            _runs(loop_times),
        ),
    ]
    print()
    print(table(("no-op tick", "median s", "x bare", "runs s"), noop_rows))
    api_ratio = api["median"] / bare_noop
    api_rows = [
        ("snakemake CLI subprocess", f"{bare_noop:.3f}", "1.00", "0 (fresh process)"),
        ("Python API, living process", f"{api['median']:.3f}", f"{api_ratio:.3f}",
         f"{api['growth_per_tick']:.2f} MiB/tick"),
    ]  # fmt: skip
    print()
    print(f"keeping Snakemake loaded (Python API, {api['ticks']} no-op ticks in one process):")
    print(table(("per no-op tick", "seconds", "x CLI", "RSS growth"), api_rows))
    print(
        f"API process RSS {api['rss_start']:.0f} -> {api['rss_end']:.0f} MiB over {api['ticks']} "
        f"ticks (first tick {api['first']:.2f} s); each tick also adds a .snakemake/log file"
    )
    saved = bare_noop - api["median"]
    hours = 6.5 * 3600 / INTERVAL_SECONDS
    print(
        f"a session of {hours:.0f} one-minute ticks: the API saves ~{saved:.2f} s a tick "
        f"and grows ~{api['growth_per_tick'] * hours:.0f} MiB unless recycled"
    )

    tick_ok = share <= TICK_SHARE_TARGET
    noop_ok = max(once_ratio, loop_ratio) <= NOOP_RATIO_TARGET
    print(
        verdict(
            "intraday 5-minute tick",
            tick_ok,
            f"{full:.1f} s = {share:.1%} of the 60 s interval, target <= {TICK_SHARE_TARGET:.0%}",
        )
    )
    print(
        verdict(
            "intraday no-op tick",
            noop_ok,
            f"orchestrator --intraday --once {once_ratio:.2f} x a bare snakemake no-op, "
            f"a tick inside the loop {loop_ratio:.2f} x; target <= {NOOP_RATIO_TARGET:g}",
        )
    )
    return 0 if tick_ok and noop_ok else 1


def _runs(values: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


if __name__ == "__main__":
    raise SystemExit(main())
