"""The peer harness: the daily DAG as Luigi tasks, for timing Luigi side by side with us.

The DAG comes from a JSON file mapping each task to the tasks it reads
(``bench_daily_vs_luigi.py`` writes it from ``snakemake daily --rulegraph``,
so both schedulers run the same graph). Each Luigi task runs the same work as
the workflow's fake tasks: a subprocess of ``tests/workflow_tasks/fake_task.py
--sleep S``, which writes its result file; the task's output (its marker) is
written afterwards by ``os.replace`` and records the task's start and finish
(epoch seconds), so the bench can compute Luigi's task span too.

Run as the whole process the bench times::

    python bench/luigi_peer.py --graph dag.json --out DIR [--sleep 2] [--workers 4]

Luigi runs with ``--workers N`` and its local scheduler (no ``luigid``).
Exit 0 when every task's marker exists, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import luigi

FAKE_TASK = Path(__file__).resolve().parents[1] / "tests" / "workflow_tasks" / "fake_task.py"


class DagTask(luigi.Task):
    """One task of the DAG: its upstream tasks first, then the fake task's subprocess."""

    name = luigi.Parameter()
    graph_file = luigi.Parameter()
    out_dir = luigi.Parameter()
    sleep = luigi.FloatParameter(default=2.0)

    def _graph(self) -> dict[str, list[str]]:
        graph: dict[str, list[str]] = json.loads(Path(str(self.graph_file)).read_text())
        return graph

    def requires(self) -> list[DagTask]:
        return [
            DagTask(
                name=upstream, graph_file=self.graph_file, out_dir=self.out_dir, sleep=self.sleep
            )
            for upstream in sorted(self._graph()[str(self.name)])
        ]

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(Path(str(self.out_dir)) / f"{self.name}.json"))

    def run(self) -> None:
        started = time.time()
        out_dir = Path(str(self.out_dir))
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{self.name}-") as scratch:
            result_file = Path(scratch) / "result.json"
            env = {
                **os.environ,
                "ORCHESTRATOR_TASK": str(self.name),
                "ORCHESTRATOR_RESULT_FILE": str(result_file),
            }
            subprocess.run(
                [sys.executable, str(FAKE_TASK), "--sleep", str(self.sleep)], env=env, check=True
            )
            result = json.loads(result_file.read_text())
            marker = Path(scratch) / "marker.json"
            record: dict[str, Any] = {**result, "started": started, "finished": time.time()}
            marker.write_text(json.dumps(record))
            os.replace(marker, self.output().path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, required=True, help="JSON: task -> tasks it reads")
    parser.add_argument("--out", type=Path, required=True, help="folder for the tasks' markers")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each task's work takes")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        graph = json.loads(args.graph.read_text())
    except (OSError, ValueError) as error:
        parser.error(f"cannot read the DAG from {args.graph}: {error}")
    unknown = sorted({up for ups in graph.values() for up in ups} - set(graph))
    if unknown:
        parser.error(f"{args.graph}: upstream task(s) not in the graph: {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("luigi-interface").setLevel(logging.WARNING)
    tasks = [
        DagTask(name=name, graph_file=str(args.graph), out_dir=str(args.out), sleep=args.sleep)
        for name in sorted(graph)
    ]
    ok = luigi.build(tasks, workers=args.workers, local_scheduler=True, log_level="WARNING")
    built = sum((args.out / f"{name}.json").is_file() for name in graph)
    if not ok or built != len(graph):
        print(f"luigi built {built} of {len(graph)} tasks", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
