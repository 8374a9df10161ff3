"""Benchmark: ``orchestrator --health`` against ``python -c "import sqlite3"``.

Builds a throw-away project (10 sources, a year of history: ~100,000
``task_attempts`` rows, and 100,000 bars in the market DB), then times the
health command and the bare interpreter, interleaved, in the same run, and
prints the medians and their ratio. The target is a ratio under 3.

    .venv/bin/python bench/bench_health.py [--repeat 10] [--attempts 100000] [--keep]

The command is ``orchestrator --health`` when ``orchestrator/cli.py`` offers
``--health``, else ``python -m orchestrator.health``. Child processes may
write bytecode (``PYTHONDONTWRITEBYTECODE`` is dropped) so that, as in real
use, modules are not recompiled on every run; a warm-up run of each command
is not counted (it also writes the config validation stamp).

Exit status: 0 when the ratio is under the target, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 3.0
SOURCES = 10
NOW = datetime.now(UTC)  # the commands judge at the wall clock: build the history up to it

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from common import write_status_history  # noqa: E402

from orchestrator.market_calendar import load_calendar  # noqa: E402


def _config_text() -> str:
    lines = ["market: {calendar: XNYS, timezone: America/New_York}", "tasks:"]
    for index in range(SOURCES):
        if index < 3:
            lines += [
                f"  intraday_{index}:",
                "    family: intraday",
                "    script: job.py",
                "    interval: 1m",
                "    freshness: {green: 5m, yellow: 15m, clock: market,",
                f'                data_time_sql: "SELECT MAX(ts) FROM bars WHERE source = {index}"'
                "}",
            ]
        else:
            clock = "market" if index % 2 else "wall"
            lines += [
                f"  daily_{index}:",
                "    family: daily",
                "    script: job.py",
                f"    freshness: {{green: 24h, yellow: 48h, clock: {clock}}}",
            ]
    return "\n".join(lines) + "\n"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def build_project(root: Path, attempts: int) -> list[str]:
    """Config, calendar cache, a status store with ``attempts`` rows, a market DB."""
    (root / "config.yaml").write_text(_config_text())
    (root / "job.py").write_text("print('ok')\n")
    state = root / "state"
    load_calendar("XNYS", state / "cache")
    tasks = [f"intraday_{i}" for i in range(3)] + [f"daily_{i}" for i in range(3, SOURCES)]
    rng = random.Random(7)
    start = NOW - timedelta(days=365)
    step = timedelta(days=365) / (attempts // len(tasks) or 1)
    history = []
    for task in tasks:
        moment = start
        for number in range(attempts // len(tasks)):
            ok = rng.random() > 0.03
            end = moment + timedelta(seconds=rng.uniform(1, 30))
            outcome, error = ("success", None) if ok else ("failed", "provider down")
            seconds = (end - moment).total_seconds()
            history.append((task, _iso(moment)[:10], 1, _iso(moment), _iso(end), seconds,
                            outcome, error, 500 + number % 7, 0, _iso(end)))  # fmt: skip
            moment += step
    write_status_history(state / "status.db", history)
    with sqlite3.connect(state / "market.db") as market:
        market.execute("CREATE TABLE bars (source INTEGER, ts INTEGER)")
        market.execute("CREATE INDEX bars_by_source_ts ON bars (source, ts)")
        first = int(start.timestamp())
        market.executemany(
            "INSERT INTO bars VALUES (?, ?)",
            ((i % 3, first + i * 315) for i in range(100_000)),
        )
    market.close()
    return tasks


def health_command() -> tuple[list[str], str]:
    cli = REPO / "orchestrator" / "cli.py"
    script = Path(sys.executable).with_name("orchestrator")
    if cli.is_file() and "--health" in cli.read_text() and script.is_file():
        return [str(script), "--health", "--config", "config.yaml"], "orchestrator --health"
    return [sys.executable, "-m", "orchestrator.health"], "python -m orchestrator.health"


def _time(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def _in_process_collect(root: Path, repeat: int) -> float:
    """Median seconds of ``collect_health`` alone (queries, freshness), in this process."""
    from orchestrator.config import load_config_cached
    from orchestrator.health import collect_health
    from orchestrator.market_calendar import load_calendar

    here = Path.cwd()
    os.chdir(root)
    try:
        config = load_config_cached("config.yaml")
        calendar = load_calendar(config.calendar_name, config.cache_dir)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            collect_health(config, NOW, calendar)
            times.append(time.perf_counter() - started)
    finally:
        os.chdir(here)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the temp project")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-health-"))
    try:
        built = time.perf_counter()
        build_project(root, args.attempts)
        print(f"project: {root} ({args.attempts} attempts, {SOURCES} sources, "
              f"built in {time.perf_counter() - built:.1f}s)")  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPATH"] = str(REPO)
        env.pop("NO_COLOR", None)
        health, label = health_command()
        baseline = [sys.executable, "-c", "import sqlite3"]
        for command in (health, baseline):  # warm-up: bytecode, validation stamp, page cache
            _time(command, root, env)
        health_times, base_times = [], []
        for _ in range(args.repeat):
            health_times.append(_time(health, root, env))
            base_times.append(_time(baseline, root, env))
        health_median = statistics.median(health_times)
        base_median = statistics.median(base_times)
        ratio = health_median / base_median
        collect = _in_process_collect(root, args.repeat)
        print(f'python -c "import sqlite3": median {base_median * 1000:6.1f} ms '
              f"(min {min(base_times) * 1000:.1f})")  # fmt: skip
        print(f"{label + ':':27} median {health_median * 1000:6.1f} ms "
              f"(min {min(health_times) * 1000:.1f})")  # fmt: skip
        print(f"collect_health in process:  median {collect * 1000:6.2f} ms")
        verdict = "OK" if ratio < TARGET_RATIO else "OVER TARGET"
        print(f"ratio: {ratio:.2f} (target < {TARGET_RATIO:g}) {verdict}")
        return 0 if ratio < TARGET_RATIO else 1
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
