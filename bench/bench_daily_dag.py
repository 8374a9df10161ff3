"""Benchmark: how close ``snakemake daily --cores 4`` comes to the DAG's critical path.

Every task is replaced by ``tests/workflow_tasks/fake_task.py --sleep 2`` (a
fixed 2 s of work), so the best possible wall time is the critical path: the
longest chain of tasks in the daily DAG times 2 s. The chain is computed from
the workflow itself (``snakemake daily --rulegraph``), not assumed. Each
repeat builds a fresh temp project and times, side by side:

- the full run (``snakemake daily --cores 4``), as a user runs it;
- the task span: first task start to last task finish (sentinel mtimes minus
  the recorded durations), i.e. the run without Snakemake's start and exit;
- the no-op second run on the built session.

Target: median wall <= critical path + 3 s. Exit 1 when missed.
Run: ``.venv/bin/python bench/bench_daily_dag.py [--repeat 3] [--sleep 2]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import check, median, run_timed, snakemake_command, table, verdict
from workflow_project import fake_tasks, make_project, project_config

NOW = "2026-11-27T10:00:00-05:00"  # Friday 2026-11-27, after the open
SESSION = "2026-11-27"
SLACK_SECONDS = 3.0
TARGET_RULE = "daily"  # the aggregate target: runs no command


def rule_graph(project: Path) -> dict[str, set[str]]:
    """``rule -> rules it reads`` for the daily DAG, from ``snakemake --rulegraph``."""
    _, result = run_timed(snakemake_command(project, TARGET_RULE, "--rulegraph", now=NOW), project)
    check(result, "snakemake --rulegraph")
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', result.stdout, re.MULTILINE))
    graph: dict[str, set[str]] = {name: set() for name in names.values()}
    for source, target in re.findall(r"^\s*(\d+) -> (\d+)", result.stdout, re.MULTILINE):
        graph[names[target]].add(names[source])
    graph.pop(TARGET_RULE, None)
    for inputs in graph.values():
        inputs.discard(TARGET_RULE)
    return graph


def longest_chains(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every longest chain of tasks (upstream first)."""

    @cache
    def chains_to(rule: str) -> tuple[tuple[str, ...], ...]:
        if not graph[rule]:
            return ((rule,),)
        upstream = [chain for up in sorted(graph[rule]) for chain in chains_to(up)]
        depth = max(len(chain) for chain in upstream)
        return tuple((*chain, rule) for chain in upstream if len(chain) == depth)

    every = [chain for rule in graph for chain in chains_to(rule)]
    depth = max(len(chain) for chain in every)
    return sorted(list(chain) for chain in every if len(chain) == depth)


def schedule(project: Path, sleep: float) -> tuple[float, list[list[str]]]:
    """The task span (first start to last finish) and the waves tasks started in.

    Times come from the sentinels' mtimes (written at the finish) minus the
    recorded durations. A task starting ``sleep / 2`` or more after the first
    start of the current wave opens the next wave.
    """
    times = {}
    for sentinel in (project / "state" / "targets" / "daily" / SESSION).glob("*.json"):
        finished = sentinel.stat().st_mtime
        duration = json.loads(sentinel.read_text())["duration_seconds"]
        times[sentinel.stem] = (finished - duration, finished)
    waves: list[list[str]] = []
    wave_start = None
    for task, (start, _) in sorted(times.items(), key=lambda item: item[1][0]):
        if wave_start is None or start - wave_start >= sleep / 2:
            waves.append([])
            wave_start = start
        waves[-1].append(task)
    span = max(end for _, end in times.values()) - min(start for start, _ in times.values())
    return span, waves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh projects to time")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each fake task takes")
    parser.add_argument("--cores", type=int, default=4)
    args = parser.parse_args()

    walls, spans, noops, wave_counts = [], [], [], []
    waves: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-daily-dag-") as scratch:
        config = fake_tasks(project_config(), sleep=args.sleep)
        first = make_project(Path(scratch) / "graph", config)
        graph = rule_graph(first)
        chains = longest_chains(graph)
        depth = len(chains[0])
        critical = depth * args.sleep
        for attempt in range(args.repeat):
            project = make_project(Path(scratch) / f"run-{attempt}", config)
            daily = snakemake_command(project, TARGET_RULE, "--cores", str(args.cores), now=NOW)
            wall, result = run_timed(daily, project)
            check(result, "snakemake daily")
            built = list((project / "state" / "targets" / "daily" / SESSION).glob("*.json"))
            if len(built) != len(graph):
                raise SystemExit(f"built {len(built)} of {len(graph)} daily targets")
            walls.append(wall)
            span, waves = schedule(project, args.sleep)
            spans.append(span)
            wave_counts.append(len(waves))
            for _ in range(3):
                noop, result = run_timed(daily, project)
                check(result, "snakemake daily (no-op)")
                noops.append(noop)

    wall, span, noop = median(walls), median(spans), median(noops)
    print(f"daily DAG: {len(graph)} tasks, each a {args.sleep:g} s sleep, --cores {args.cores}")
    print(f"longest chains ({depth} tasks):")
    for chain in chains:
        print("  " + " -> ".join(chain))
    print(f"critical path: {depth} x {args.sleep:g} s = {critical:.1f} s")
    rows = [
        ("critical path (baseline)", f"{critical:.2f}", "1.00", ""),
        ("snakemake daily, wall", f"{wall:.2f}", f"{wall / critical:.2f}", _spread(walls)),
        ("  task span (first start..last end)", f"{span:.2f}", f"{span / critical:.2f}", ""),
        ("  snakemake start + exit", f"{wall - span:.2f}", "", ""),
        ("no-op second run, wall", f"{noop:.2f}", f"{noop / critical:.2f}", _spread(noops)),
    ]
    print(table(("measure", "median s", "x crit", "runs s"), rows))
    print(f"waves per run: {' '.join(map(str, wave_counts))} (the DAG's depth is {depth})")
    print("last run's waves: " + " | ".join(" ".join(wave) for wave in waves))
    ok = wall <= critical + SLACK_SECONDS
    print(
        verdict(
            "daily DAG",
            ok,
            f"wall {wall:.1f} s vs critical path {critical:.1f} s + {SLACK_SECONDS:g} s slack; "
            f"overhead {wall - critical:+.1f} s",
        )
    )
    return 0 if ok else 1


def _spread(values: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


if __name__ == "__main__":
    raise SystemExit(main())
