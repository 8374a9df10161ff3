"""Benchmark: bar-to-signal latency of the intraday loop, today's loop side by side with the new.

Latency is measured from the moment a slot becomes due (its start, in
exchange time) to the moment its ``intraday_signals`` sentinel is written,
over a simulated hour of ticks (10:00:15 to 11:00:15 on Monday 2026-11-30)
on the synthetic provider, at 50 and at 5,000 symbols. Each mode runs in its
own child process on a copy of one project whose daily session is built
(the intraday signals blend the daily ones), through
``orchestrator.intraday_loop.IntradayLoop`` with the real collectors and
real ``snakemake`` (or the loop's worker).

Time: the loop's clock is the project's own (``now:`` in config, passed on
to every tick as ``--config now=...``) and runs at real speed while a tick
works; a sleep moves it forward at once instead of waiting. Sentinel mtimes
(real) are mapped back onto that clock. Never libfaketime.

Modes (the ones the loop supports are detected, see ``available_modes``):

- ``fixed`` (the baseline, today's loop): a tick every
  ``loop_interval_seconds`` (30 s) from the loop's start, whatever the
  slots, each a ``snakemake`` process. The loop starts 15 s into a minute:
  the mean wait of a loop started at a random moment;
- ``slots``: the loop's own schedule (``IntradayLoop.run``), ticking as
  slots begin plus ``settle_seconds``, each tick a ``snakemake`` process;
- ``worker``: the same schedule, each tick built by the loop's
  Snakemake-API worker.

Also the resident memory of the loop process (and its worker), summed over
the process tree between ticks: its peak over a whole simulated session
against its size after the first tick, in the newest mode at the
smallest universe (``--memory-minutes``, 390 by default; 0 skips it).

Targets (issue #14): the newest mode's signals p95 <= 3 s at 50 symbols and
<= 8 s at 5,000; memory after the session <= 1.2 x after the first tick.
Exit 1 when one is missed. Run:
``.venv/bin/python bench/bench_intraday_latency.py [--symbols 50,5000] [--minutes 60]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import check, child_env, median, run_timed, snakemake_command, table, tree_rss_mib
from common import verdict as target_line
from workflow_project import make_project, project_config

SESSION = date(2026, 11, 30)  # a Monday, full day
DAILY_AT = "2026-11-30T09:50:00-05:00"
LATENCY_START = "2026-11-30T10:00:15-05:00"
SESSION_START = "2026-11-30T09:30:15-05:00"
SIGNALS = "intraday_signals"
PRICES = "price_data"
P95_TARGETS = {50: 3.0, 5000: 8.0}  # symbols -> seconds; other sizes: the nearest below
MEMORY_RATIO_TARGET = 1.2
# The loop runs this long past the measured window, so the fixed loop's late tick for the
# window's last slot is counted against it rather than the slot going missing.
GRACE = timedelta(minutes=1)
MODES = {
    "fixed": "today's loop: every 30 s, snakemake per tick",
    "slots": "slot-boundary ticks, snakemake per tick",
    "worker": "slot-boundary ticks, Snakemake-API worker",
}


class VirtualClock:
    """The loop's clock: real speed while a tick works, jumps forward when the loop sleeps."""

    def __init__(self, start: datetime) -> None:
        self._origin = start.astimezone(UTC)
        self._started = time.monotonic()
        self._skipped = 0.0
        # (wall epoch, clock reading) at the start and after every jump.
        self._anchors = [(time.time(), self())]

    def __call__(self) -> datetime:
        elapsed = time.monotonic() - self._started + self._skipped
        return self._origin + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> None:
        self._skipped += max(seconds, 0.0)
        self._anchors.append((time.time(), self()))

    def at_wall(self, epoch: float) -> datetime:
        """The clock's reading when the wall clock read ``epoch`` (a file's mtime)."""
        wall, moment = self._anchors[0]
        for anchor_wall, anchor_moment in self._anchors:
            if anchor_wall > epoch:
                break
            wall, moment = anchor_wall, anchor_moment
        return moment + timedelta(seconds=epoch - wall)


def available_modes() -> list[str]:
    """The modes this checkout's loop supports, the baseline first.

    ``slots`` needs ``intraday_loop.next_slot_start`` (the slot-boundary
    schedule of ``IntradayLoop.run``); ``worker`` needs a ``worker``
    keyword of ``IntradayLoop`` (``True``: the Snakemake-API worker).
    """
    from orchestrator import intraday_loop

    modes = ["fixed"]
    if hasattr(intraday_loop, "next_slot_start"):
        modes.append("slots")
    if "worker" in inspect.signature(intraday_loop.IntradayLoop).parameters:
        modes.append("worker")
    return modes


def loop_options(mode: str) -> dict[str, Any]:
    """Keyword arguments of ``IntradayLoop`` for ``mode``: a CLI tick unless ``worker``."""
    from orchestrator.intraday_loop import IntradayLoop

    if "worker" not in inspect.signature(IntradayLoop).parameters:
        return {}
    return {"worker": mode == "worker"}


def run_loop(project: Path, mode: str, start: datetime, minutes: float) -> dict[str, Any]:
    """Drive the loop in ``mode`` from ``start`` for ``minutes``; ticks, latencies, memory."""
    from orchestrator.config import load_config
    from orchestrator.intraday_loop import IntradayLoop, LoopControl
    from orchestrator.market_calendar import load_calendar

    os.chdir(project)
    config = load_config(project / "config.yaml")
    calendar = load_calendar(config.calendar_name, config.cache_dir)
    clock = VirtualClock(start)
    end = start + timedelta(minutes=minutes)
    control = LoopControl()

    def sleeper(seconds: float) -> None:
        clock.advance(seconds)
        if clock() >= end + GRACE:
            control.finish.set()

    loop = IntradayLoop(
        config,
        calendar,
        clock,
        interval=config.loop_interval_seconds,
        control=control,
        sleeper=sleeper,
        **loop_options(mode),
    )
    ticks: list[dict[str, Any]] = []
    tick = loop.tick

    def recorded_tick() -> Any:
        result = tick()
        ticks.append(
            {
                "started": result.started.isoformat(),
                "seconds": result.seconds,
                "exit_code": result.exit_code,
                "rss_mib": tree_rss_mib(os.getpid()),
            }
        )
        return result

    loop.tick = recorded_tick  # type: ignore[method-assign]
    began = time.perf_counter()
    if mode == "fixed":
        # Today's schedule (before issue #14), kept here as the reference.
        while clock() < end + GRACE:
            result = loop.tick()
            clock.advance(max(loop.interval - result.seconds, 0.0))
    else:
        loop.run()
    real_seconds = time.perf_counter() - began
    close = getattr(loop, "close", None)
    if callable(close):
        close()
    return {
        "mode": mode,
        "real_seconds": real_seconds,
        "ticks": ticks,
        "latencies": {
            task: slot_latencies(config, calendar, clock, task, start, end)
            for task in (PRICES, SIGNALS)
        },
    }


def slot_latencies(
    config: Any, calendar: Any, clock: VirtualClock, task: str, start: datetime, end: datetime
) -> dict[str, float]:
    """``HHMM -> seconds`` from each slot's start to its sentinel's write, slots due in the window.

    The window is ``[start, end)``; a slot due in it but never built is missing from the result.
    """
    folder = config.base_dir / "state" / "targets" / "intraday" / str(SESSION) / task
    found = {}
    for sentinel in sorted(folder.glob("*.json")):
        due = calendar.slot_time(SESSION, sentinel.stem)
        if start <= due < end:
            written = clock.at_wall(sentinel.stat().st_mtime)
            found[sentinel.stem] = (written - due).total_seconds()
    return found


def expected_slots(start: datetime, end: datetime, interval_minutes: int) -> int:
    """How many slots of ``interval_minutes`` begin within ``[start, end)``."""
    first = math.ceil(start.timestamp() / 60 / interval_minutes)
    last = math.ceil(end.timestamp() / 60 / interval_minutes)
    return last - first


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile of ``values``, linear between ranks (``nan`` when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def build_base(scratch: Path, symbols: int) -> Path:
    """A project with ``symbols`` symbols whose daily session is built, its clock pinned."""
    config = project_config()
    config["provider"]["universe_size"] = symbols
    config["now"] = LATENCY_START  # so the loop hands its clock to every tick
    project = make_project(scratch / f"base-{symbols}", config)
    daily = snakemake_command(project, "daily", "--cores", "4", now=DAILY_AT)
    _, result = run_timed(daily, project, timeout=3600)
    check(result, f"the daily run at {symbols} symbols")
    return project


def child_run(
    base: Path, scratch: Path, label: str, mode: str, start: str, minutes: float
) -> dict[str, Any]:
    """``run_loop`` in a child process on a fresh copy of ``base``."""
    project = scratch / label
    shutil.copytree(base, project, symlinks=True)
    result_file = scratch / f"{label}.json"
    command = [sys.executable, __file__, "--child", str(project), mode, start, str(minutes)]
    command += ["--result", str(result_file)]
    with open(scratch / f"{label}.log", "w") as log:
        done = subprocess.run(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            timeout=6 * 3600,
            check=False,
        )
    if done.returncode != 0:
        tail = (scratch / f"{label}.log").read_text()[-3000:]
        raise SystemExit(f"the {mode} loop ({label}) failed (exit {done.returncode}):\n{tail}")
    record: dict[str, Any] = json.loads(result_file.read_text())
    return record


def summary(run: dict[str, Any], start: datetime, minutes: float) -> dict[str, Any]:
    """p50/p95 per task, slots built vs due, ticks, failed ticks, memory first vs last."""
    end = start + timedelta(minutes=minutes)
    ticks = run["ticks"]
    out: dict[str, Any] = {
        "ticks": len(ticks),
        "failed_ticks": sum(1 for tick in ticks if tick["exit_code"] != 0),
        "real_seconds": run["real_seconds"],
        "rss_first": ticks[0]["rss_mib"] if ticks else math.nan,
        "rss_last": ticks[-1]["rss_mib"] if ticks else math.nan,
        # A recycled worker drops out of the tree for a tick: the peak is what the host must hold.
        "rss_peak": max((tick["rss_mib"] for tick in ticks), default=math.nan),
    }
    for task, interval in ((PRICES, 1), (SIGNALS, 5)):
        values = list(run["latencies"][task].values())
        out[task] = {
            "built": len(values),
            "due": expected_slots(start, end, interval),
            "p50": percentile(values, 0.5),
            "p95": percentile(values, 0.95),
            "max": max(values, default=math.nan),
        }
    return out


def p95_target(symbols: int) -> float:
    sizes = sorted(size for size in P95_TARGETS if size <= symbols) or [min(P95_TARGETS)]
    return P95_TARGETS[sizes[-1]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default="50,5000", help="comma-separated universe sizes")
    parser.add_argument("--minutes", type=float, default=60.0, help="simulated minutes of ticks")
    parser.add_argument(
        "--memory-minutes",
        type=float,
        default=390.0,
        help="simulated minutes of the memory run from the open (0: skip it)",
    )
    parser.add_argument("--modes", help=f"comma-separated subset of {', '.join(MODES)}")
    parser.add_argument("--workdir", type=Path, help="keep the projects and loop logs here")
    parser.add_argument("--child", nargs=4, metavar=("PROJECT", "MODE", "START", "MINUTES"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        logging.basicConfig(level=logging.WARNING)
        project, mode, start, minutes = args.child
        record = run_loop(Path(project), mode, datetime.fromisoformat(start), float(minutes))
        args.result.write_text(json.dumps(record))
        return 0

    try:
        sizes = [int(size) for size in args.symbols.split(",")]
    except ValueError:
        parser.error(f"--symbols {args.symbols!r}: expected whole numbers like 50,5000")
    supported = available_modes()
    modes = args.modes.split(",") if args.modes else supported
    missing = [mode for mode in modes if mode not in supported]
    if missing:
        parser.error(f"mode(s) {', '.join(missing)} not supported by this loop; have {supported}")
    start = datetime.fromisoformat(LATENCY_START)

    results: dict[tuple[int, str], dict[str, Any]] = {}
    memory: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-intraday-latency-") as scratch_name:
        scratch = args.workdir or Path(scratch_name)
        scratch.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            base = build_base(scratch, size)
            # Alternate the order across sizes, so neither mode always runs first.
            order = modes if sizes.index(size) % 2 == 0 else modes[::-1]
            for mode in order:
                run = child_run(base, scratch, f"{size}-{mode}", mode, LATENCY_START, args.minutes)
                results[size, mode] = summary(run, start, args.minutes)
            if args.memory_minutes > 0 and size == min(sizes):
                session_start = datetime.fromisoformat(SESSION_START)
                run = child_run(
                    base, scratch, "memory", modes[-1], SESSION_START, args.memory_minutes
                )
                memory = {"mode": modes[-1], **summary(run, session_start, args.memory_minutes)}
            if args.workdir is None:
                shutil.rmtree(base, ignore_errors=True)

    print(
        f"bar-to-signal latency: slot start -> {SIGNALS} sentinel written, {args.minutes:g} "
        f"simulated minutes from {LATENCY_START} (synthetic provider)"
    )
    for mode in modes:
        print(f"  {mode:<7} {MODES[mode]}")
    rows = []
    for size in sizes:
        baseline = results[size, modes[0]][SIGNALS]["p95"]
        for mode in modes:
            found = results[size, mode]
            signals, prices = found[SIGNALS], found[PRICES]
            rows.append(
                (
                    f"{size} symbols, {mode}",
                    f"{signals['p50']:.2f}",
                    f"{signals['p95']:.2f}",
                    f"{signals['p95'] / baseline:.2f}",
                    f"{signals['built']}/{signals['due']}",
                    f"{prices['p50']:.2f}",
                    f"{prices['p95']:.2f}",
                    f"{prices['built']}/{prices['due']}",
                    f"{found['ticks']} ({found['failed_ticks']} failed)",
                    f"{found['rss_first']:.0f}/{found['rss_peak']:.0f}/{found['rss_last']:.0f}",
                    f"{found['real_seconds']:.0f}",
                )
            )
    headers = ("run", "sig p50 s", "sig p95 s", "p95 x base", "sig slots", "px p50 s",
               "px p95 s", "px slots", "ticks", "RSS first/peak/last MiB", "real s")  # fmt: skip
    print(table(headers, rows))

    checks = []
    newest = modes[-1]
    for size in sizes:
        found = results[size, newest][SIGNALS]
        limit = p95_target(size)
        complete = found["built"] == found["due"]
        checks.append(
            (
                f"signal latency at {size} symbols",
                complete and found["p95"] <= limit,
                f"{newest}: p95 {found['p95']:.2f} s = "
                f"{found['p95'] / results[size, modes[0]][SIGNALS]['p95']:.2f} x the fixed "
                f"loop's; target <= {limit:g} s; {found['built']}/{found['due']} slots built",
            )
        )
    if memory is not None:
        ratio = memory["rss_peak"] / memory["rss_first"]
        print(
            f"memory ({memory['mode']}, {memory['ticks']} ticks over {args.memory_minutes:g} "
            f"simulated minutes from {SESSION_START}, {min(sizes)} symbols): loop process tree "
            f"{memory['rss_first']:.1f} MiB after the first tick, peak {memory['rss_peak']:.1f} "
            f"MiB between ticks = {ratio:.2f} x; {memory['rss_last']:.1f} MiB after the last"
        )
        checks.append(
            (
                "loop memory over the session",
                ratio <= MEMORY_RATIO_TARGET,
                f"{memory['mode']}: peak {ratio:.2f} x after the first tick; "
                f"target <= {MEMORY_RATIO_TARGET:g}",
            )
        )
    for name, ok, detail in checks:
        print(target_line(name, ok, detail))
    medians = [results[size, mode]["real_seconds"] for size in sizes for mode in modes]
    print(f"(real time per simulated run: median {median(medians):.0f} s)")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
