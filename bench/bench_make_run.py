"""Benchmark: ``orchestrator --daily`` (what ``make run`` does) in a fresh project.

A temp project with the real ``config.yaml`` (synthetic market, 50 symbols,
real collectors, the wall clock: today's session) runs ``orchestrator
--daily`` once per repeat, each in a fresh project. Measured side by side:

- wall time of the whole command, next to the critical path of the tasks'
  own recorded durations (the longest chain of the daily DAG, weighted by
  ``duration_seconds`` from the sentinels) and their serial sum;
- peak memory: the largest single process (``getrusage(RUSAGE_CHILDREN)``)
  and the whole process tree's summed RSS, sampled every 50 ms.

Targets: wall <= the tasks' critical path + 4 s (Snakemake's start and exit
take ~2 s, the orchestrator's start and summary, and one job dispatch per
tier), and the tree's peak RSS <= 1 GiB (a small VPS runs it). Exit 1 when
missed. Run: ``.venv/bin/python bench/bench_make_run.py [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_daily_dag import rule_graph
from common import TreeSampler, child_env, median, orchestrator_command, table, verdict
from workflow_project import make_project, project_config

SLACK_SECONDS = 4.0
PEAK_MIB_TARGET = 1024.0


def weighted_critical_path(graph: dict[str, set[str]], seconds: dict[str, float]) -> float:
    """The longest chain of ``graph`` with each task weighted by its ``seconds``."""

    @cache
    def finish(task: str) -> float:
        return seconds[task] + max((finish(up) for up in graph[task]), default=0.0)

    return max(finish(task) for task in graph)


def run_once(project: Path) -> tuple[float, float, float, str]:
    """Wall seconds, largest process MiB, peak tree MiB, and the output of one run."""
    command = orchestrator_command(project, "--daily")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(),
    )
    sampler = TreeSampler(process.pid)
    output, _ = process.communicate(timeout=1800)
    wall = time.perf_counter() - started
    tree_peak = sampler.stop()
    if process.returncode != 0:
        raise SystemExit(f"orchestrator --daily failed (exit {process.returncode}):\n{output}")
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss is KiB on Linux; it only ever grows, so a later, smaller run reads as before.
    largest_mib = max(largest, before) / 1024 if sys.platform != "darwin" else largest / 2**20
    return wall, largest_mib, tree_peak, output


def durations(project: Path) -> dict[str, float]:
    """Recorded ``duration_seconds`` of every daily sentinel of the run's session."""
    sessions = sorted((project / "state" / "targets" / "daily").iterdir())
    return {
        sentinel.stem: json.loads(sentinel.read_text())["duration_seconds"]
        for sentinel in sessions[-1].glob("*.json")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="fresh projects to run")
    args = parser.parse_args()

    walls, largest, peaks, criticals, serials = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-make-run-") as scratch:
        config = project_config()
        graph = rule_graph(make_project(Path(scratch) / "graph", config))
        for attempt in range(args.repeat):
            project = make_project(Path(scratch) / f"run-{attempt}", config)
            wall, biggest, peak, output = run_once(project)
            seconds = durations(project)
            if set(seconds) != set(graph):
                raise SystemExit(f"built {sorted(seconds)}, expected {sorted(graph)}:\n{output}")
            walls.append(wall)
            largest.append(biggest)
            peaks.append(peak)
            criticals.append(weighted_critical_path(graph, seconds))
            serials.append(sum(seconds.values()))

    wall, critical, serial = median(walls), median(criticals), median(serials)
    peak, biggest = max(peaks), max(largest)
    universe = config["provider"]["universe_size"]
    print(f"orchestrator --daily, fresh project, real config ({universe} symbols, synthetic)")
    rows = [
        ("tasks' critical path (baseline)", f"{critical:.2f}", "1.00"),
        ("orchestrator --daily, wall", f"{wall:.2f}", f"{wall / critical:.2f}"),
        ("tasks' serial sum", f"{serial:.2f}", f"{serial / critical:.2f}"),
    ]
    print(table(("time", "median s", "x crit"), rows))
    print(
        table(
            ("memory", "peak MiB"),
            [
                ("largest single process", f"{biggest:.0f}"),
                ("whole process tree (summed)", f"{peak:.0f}"),
            ],
        )
    )
    time_ok = wall <= critical + SLACK_SECONDS
    memory_ok = peak <= PEAK_MIB_TARGET
    print(
        verdict(
            "make run",
            time_ok and memory_ok,
            f"wall {wall:.1f} s vs tasks' critical path {critical:.1f} s + {SLACK_SECONDS:g} s; "
            f"tree peak {peak:.0f} MiB vs {PEAK_MIB_TARGET:.0f} MiB",
        )
    )
    return 0 if time_ok and memory_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
