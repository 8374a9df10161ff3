"""Benchmark: ``orchestrator --daily`` against Luigi and the critical path, side by side.

The daily DAG is read from the workflow (``snakemake daily --rulegraph``) and
every task replaced by ``tests/workflow_tasks/fake_task.py --sleep S``. The
peer, ``bench/luigi_peer.py``, runs the same graph as Luigi tasks, each a
subprocess of the same fake task with the same sleep, ``--workers 4`` and the
local scheduler. Every figure is a whole process (start to exit), measured
interleaved in each repeat, each run on a fresh project that has only what
a project keeps after its first command: the exchange calendar's cache and
its config's validation stamps (``state/run``), as every scheduled daily run
finds them; nothing built:

- ``orchestrator --daily --cores 4`` at S s a task (default 2), and Luigi's
  run of the same DAG; a bare ``snakemake daily --cores 4`` for reference;
- the critical path (the longest chain x S), the best any scheduler can do;
- the same with 0 s tasks: ``orchestrator --daily`` vs a bare ``snakemake
  daily`` CLI run (what is left is pure orchestration cost);
- the no-op ``orchestrator --daily`` on the session just built, next to a
  bare no-op ``snakemake daily``.

Targets (issue #14): orchestrator <= Luigi's median and <= critical path +
1.0 s; with 0 s tasks <= 0.6 x the bare snakemake run; no-op <= 0.3 s.
Exit 1 when one is missed. Run:
``.venv/bin/python bench/bench_daily_vs_luigi.py [--repeat 3] [--sleep 2]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_daily_dag import NOW, SESSION, TARGET_RULE, longest_chains, rule_graph, schedule
from common import (
    check,
    median,
    orchestrator_command,
    run_timed,
    snakemake_command,
    table,
    verdict,
)
from workflow_project import fake_tasks, make_project, project_config

from orchestrator.market_calendar import load_calendar

LUIGI_PEER = Path(__file__).resolve().parent / "luigi_peer.py"
CRITICAL_SLACK_SECONDS = 1.0
ZERO_TASK_RATIO_TARGET = 0.6
NOOP_TARGET_SECONDS = 0.3


class Projects:
    """Fresh temp projects for one task duration, numbered so no run reuses another's state.

    Each has what a project keeps after its first command, as every scheduled
    daily run finds it: the exchange calendar's cache in ``state/cache`` (its
    first run computes it: 1.3 s here) and its config's validation stamps in
    ``state/run`` (an untimed ``orchestrator --health`` writes them; checking a
    new config costs a run about 0.25 s); nothing else of an earlier run.
    """

    def __init__(self, scratch: Path, sleep: float) -> None:
        self.scratch, self.sleep, self.count = scratch, sleep, 0
        config = fake_tasks(project_config(), sleep=sleep)
        config["now"] = NOW  # the orchestrator reads its clock from config.yaml
        self.config = config
        self.calendar_cache = scratch / f"calendar-cache-{sleep:g}s"
        load_calendar(config["market"]["calendar"], self.calendar_cache)

    def fresh(self, label: str) -> Path:
        self.count += 1
        project = make_project(self.scratch / f"{label}-{self.sleep:g}s-{self.count}", self.config)
        shutil.copytree(self.calendar_cache, project / "state" / "cache")
        # Its exit says how healthy the (empty) project is: the stamps are what matter.
        run_timed(orchestrator_command(project, "--health"), project)
        if not list((project / "state" / "run").glob("validated-*.json")):
            raise SystemExit(f"orchestrator --health left no config stamp in {project}")
        return project


def built_sessions(project: Path, tasks: int, what: str) -> None:
    """Stop the bench unless ``project`` has a sentinel for each of the ``tasks`` tasks."""
    built = list((project / "state" / "targets" / "daily" / SESSION).glob("*.json"))
    if len(built) != tasks:
        raise SystemExit(f"{what} built {len(built)} of {tasks} daily targets in {project}")


def luigi_run(
    scratch: Path, graph_file: Path, sleep: float, workers: int, number: int
) -> tuple[float, float]:
    """Wall seconds of the whole Luigi process, and its task span (first start..last end)."""
    out = scratch / f"luigi-{sleep:g}s-{number}"
    command = [sys.executable, str(LUIGI_PEER), "--graph", str(graph_file), "--out", str(out)]
    command += ["--sleep", str(sleep), "--workers", str(workers)]
    wall, result = run_timed(command, scratch)
    check(result, "the Luigi peer")
    marks = [json.loads(path.read_text()) for path in out.glob("*.json")]
    span = max(mark["finished"] for mark in marks) - min(mark["started"] for mark in marks)
    return wall, span


def orchestrator_daily(project: Path, cores: int) -> list[str]:
    return orchestrator_command(project, "--daily", "--cores", str(cores))


def bare_daily(project: Path, cores: int) -> list[str]:
    return snakemake_command(project, TARGET_RULE, "--cores", str(cores), now=NOW)


def timed_build(command: list[str], project: Path, tasks: int, what: str) -> float:
    wall, result = run_timed(command, project)
    check(result, what)
    built_sessions(project, tasks, what)
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each fake task takes")
    parser.add_argument("--cores", type=int, default=4, help="cores and Luigi workers")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    runs: dict[str, list[float]] = {
        key: []
        for key in (
            "orch",
            "orch_span",
            "luigi",
            "luigi_span",
            "bare",
            "orch0",
            "bare0",
            "luigi0",
            "noop",
            "bare_noop",
        )
    }
    with tempfile.TemporaryDirectory(prefix="bench-daily-luigi-") as scratch_name:
        scratch = Path(scratch_name)
        timed, zero = Projects(scratch, args.sleep), Projects(scratch, 0.0)
        graph = rule_graph(timed.fresh("graph"))
        tasks = len(graph)
        chains = longest_chains(graph)
        depth = len(chains[0])
        critical = depth * args.sleep
        graph_file = scratch / "daily-dag.json"
        graph_file.write_text(json.dumps({task: sorted(ups) for task, ups in graph.items()}))
        # Warm-up, untimed: bytecode caches and the page cache for both schedulers.
        warm = zero.fresh("warm")
        timed_build(orchestrator_daily(warm, args.cores), warm, tasks, "warm-up")
        luigi_run(scratch, graph_file, 0.0, args.cores, 0)

        for number in range(1, args.repeat + 1):
            project = timed.fresh("orchestrator")
            runs["orch"].append(
                timed_build(orchestrator_daily(project, args.cores), project, tasks, "orchestrator")
            )
            runs["orch_span"].append(schedule(project, args.sleep)[0])
            for _ in range(3):
                noop, result = run_timed(orchestrator_daily(project, args.cores), project)
                check(result, "the no-op orchestrator --daily")
                runs["noop"].append(noop)
            wall, span = luigi_run(scratch, graph_file, args.sleep, args.cores, number)
            runs["luigi"].append(wall)
            runs["luigi_span"].append(span)
            project = timed.fresh("snakemake")
            runs["bare"].append(
                timed_build(bare_daily(project, args.cores), project, tasks, "snakemake daily")
            )
            for _ in range(3):
                noop, result = run_timed(bare_daily(project, args.cores), project)
                check(result, "the no-op snakemake daily")
                runs["bare_noop"].append(noop)
            project = zero.fresh("orchestrator")
            runs["orch0"].append(
                timed_build(orchestrator_daily(project, args.cores), project, tasks, "0 s tasks")
            )
            project = zero.fresh("snakemake")
            runs["bare0"].append(
                timed_build(bare_daily(project, args.cores), project, tasks, "0 s snakemake")
            )
            runs["luigi0"].append(luigi_run(scratch, graph_file, 0.0, args.cores, number)[0])

    med = {key: median(values) for key, values in runs.items()}
    print(
        f"daily DAG: {tasks} tasks, --cores {args.cores} / Luigi --workers {args.cores}, "
        f"{args.repeat} interleaved rounds, whole processes, medians"
    )
    print(f"longest chains ({depth} tasks), critical path {depth} x {args.sleep:g} s:")
    for chain in chains:
        print("  " + " -> ".join(chain))

    def row(label: str, key: str, base: float) -> tuple[str, str, str, str]:
        return (label, f"{med[key]:.2f}", f"{med[key] / base:.2f}", _runs(runs[key]))

    print()
    print(
        table(
            (f"{args.sleep:g} s tasks", "median s", "x crit", "runs s"),
            [
                ("critical path (ideal)", f"{critical:.2f}", "1.00", ""),
                row("orchestrator --daily", "orch", critical),
                row("  its task span", "orch_span", critical),
                row(f"Luigi {_luigi_version()} (peer)", "luigi", critical),
                row("  its task span", "luigi_span", critical),
                row("snakemake daily (bare CLI)", "bare", critical),
            ],
        )
    )
    print()
    print(
        table(
            ("0 s tasks", "median s", "x bare", "runs s"),
            [
                row("snakemake daily (bare CLI)", "bare0", med["bare0"]),
                row("orchestrator --daily", "orch0", med["bare0"]),
                row("Luigi (peer)", "luigi0", med["bare0"]),
            ],
        )
    )
    print()
    print(
        table(
            ("no-op on the built session", "median s", "x bare", "runs s"),
            [
                row("snakemake daily (bare CLI)", "bare_noop", med["bare_noop"]),
                row("orchestrator --daily", "noop", med["bare_noop"]),
            ],
        )
    )
    print()
    orch, luigi, zero_ratio = med["orch"], med["luigi"], med["orch0"] / med["bare0"]
    checks = [
        (
            "daily vs Luigi",
            orch <= luigi,
            f"orchestrator {orch:.2f} s = {orch / luigi:.2f} x Luigi's {luigi:.2f} s; target <= 1",
        ),
        (
            "daily vs critical path",
            orch <= critical + CRITICAL_SLACK_SECONDS,
            f"orchestrator {orch:.2f} s, critical path {critical:.1f} s "
            f"+ {CRITICAL_SLACK_SECONDS:g} s; overhead {orch - critical:+.2f} s",
        ),
        (
            "daily with 0 s tasks",
            zero_ratio <= ZERO_TASK_RATIO_TARGET,
            f"orchestrator {med['orch0']:.2f} s = {zero_ratio:.2f} x bare snakemake "
            f"{med['bare0']:.2f} s; target <= {ZERO_TASK_RATIO_TARGET:g}",
        ),
        (
            "no-op daily",
            med["noop"] <= NOOP_TARGET_SECONDS,
            f"{med['noop']:.2f} s, target <= {NOOP_TARGET_SECONDS:g} s "
            f"({med['noop'] / med['bare_noop']:.2f} x a bare no-op snakemake daily)",
        ),
    ]
    for name, ok, detail in checks:
        print(verdict(name, ok, detail))
    return 0 if all(ok for _, ok, _ in checks) else 1


def _luigi_version() -> str:
    try:
        return version("luigi")
    except PackageNotFoundError:
        raise SystemExit("luigi is not installed: .venv/bin/python -m pip install luigi") from None


def _runs(values: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


if __name__ == "__main__":
    raise SystemExit(main())
