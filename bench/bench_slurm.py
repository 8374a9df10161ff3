"""Benchmark: what running each task as a Slurm job costs, against a local run of the same DAG.

Two temp projects hold the shipped 12-task daily DAG with every task swapped
for the fake task (``tests/workflow_tasks/fake_task.py``, no sleep), so what
is timed is the orchestration, not the data. Round after round, each in turn
builds the session from scratch: ``snakemake daily --cores 2`` (local) and
``snakemake daily --profile profiles/slurm`` (on the local cluster of
``scripts/local-slurm``), interleaved so a shared machine's noise falls on
both alike.

Reported, from Slurm's own records (``squeue`` keeps finished jobs): per job,
the wait from submission to start (the scheduler's share) and the job's run
time less the task runner's own duration (the sentinel's ``duration_seconds``):
the start-up inside the job (the executor's job step: a Snakemake started
through ``srun``, which parses the workflow again). Then the wall time of the
whole DAG on each, and their ratio. On a cluster the start-up is paid per job
whatever the task, so a task shorter than it is worth grouping (the profile
groups the four event collectors); the status polling (first check 5 s after
a submission, then every 10 s more while nothing finishes) adds to the wall
time, not to a job.

Needs a running local Slurm: without one it says so and exits 0 (skipped).
Needs ``make slurm-setup`` too. Run: ``.venv/bin/python bench/bench_slurm.py [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, check, median, run_timed, snakemake_command, table
from workflow_project import fake_tasks, make_project, project_config

NOW = "2026-11-27T10:00:00-05:00"  # the open of a session (a half day)
SESSION = "2026-11-27"
LOCAL_SLURM = REPO / "scripts" / "local-slurm"
# The Slurm executor is the `slurm` extra, in a virtualenv of its own (`make slurm-setup`).
SLURM_PYTHON = str(REPO / ".venv-slurm" / "bin" / "python")


def slurm_is_up() -> bool:
    status = subprocess.run([LOCAL_SLURM, "status"], capture_output=True, check=False)
    return status.returncode == 0


def slurm_times(project: Path) -> dict[int, tuple[str, datetime, datetime, datetime]]:
    """Each finished job run in ``project``: its comment (rule), submit, start and end times."""
    listing = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%V|%S|%e|%Z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = {}
    for line in listing.splitlines():
        job_id, state, comment, submit, start, end, workdir = line.split("|")
        if Path(workdir) == project and state == "COMPLETED":
            # squeue prints the controller's local time; aware, only differences are used
            submitted, started, ended = (
                datetime.fromisoformat(stamp).astimezone() for stamp in (submit, start, end)
            )
            jobs[int(job_id)] = (comment, submitted, started, ended)
    return jobs


def runner_seconds(project: Path) -> dict[str, float]:
    """Each task's runner duration, from its sentinel."""
    folder = project / "state" / "targets" / "daily" / SESSION
    return {
        path.stem: float(json.loads(path.read_text())["duration_seconds"])
        for path in folder.glob("*.json")
    }


def rule_of(comment: str) -> str:
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def fresh(project: Path) -> None:
    """Forget the built session, so the next run builds every task again."""
    shutil.rmtree(project / "state" / "targets", ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not slurm_is_up():
        print("skipped: no local Slurm answers (start one with: scripts/local-slurm up)")
        return 0
    if not Path(SLURM_PYTHON).exists():
        print("skipped: no virtualenv with the Slurm executor (make it with: make slurm-setup)")
        return 0

    config = fake_tasks(project_config())
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as scratch:
        local = make_project(Path(scratch) / "local", config)
        slurm = make_project(Path(scratch) / "slurm", config)
        walls: dict[str, list[float]] = {"local": [], "slurm": []}
        waits: list[float] = []
        startups: list[float] = []
        for round_number in range(1, args.rounds + 1):
            fresh(local)
            seconds, done = run_timed(
                snakemake_command(local, "daily", "--cores", "2", now=NOW), local
            )
            check(done, f"the local run, round {round_number}")
            walls["local"].append(seconds)

            fresh(slurm)
            known = set(slurm_times(slurm))
            command = snakemake_command(
                slurm, "daily", "--profile", "profiles/slurm", now=NOW, python=SLURM_PYTHON
            )
            seconds, done = run_timed(command, slurm, timeout=1800)
            check(done, f"the Slurm run, round {round_number}")
            walls["slurm"].append(seconds)
            runners = runner_seconds(slurm)
            for job_id, (comment, submitted, started, ended) in slurm_times(slurm).items():
                if job_id in known:
                    continue
                waits.append((started - submitted).total_seconds())
                rule = rule_of(comment)
                if rule in runners:  # a group job runs several tasks: no one runner time
                    startups.append((ended - started).total_seconds() - runners[rule])
            print(
                f"round {round_number}: local {walls['local'][-1]:.1f} s, "
                f"slurm {walls['slurm'][-1]:.1f} s",
                flush=True,
            )

    local_wall, slurm_wall = median(walls["local"]), median(walls["slurm"])
    print()
    print("12-task daily DAG, fake tasks (no sleep), 2 cores, single-node Slurm")
    print(
        table(
            ["measure", "median s", "jobs"],
            [
                ("Slurm: submit to start, per job", f"{median(waits):.1f}", len(waits)),
                ("Slurm: start-up inside a job", f"{median(startups):.1f}", len(startups)),
                ("whole DAG, local", f"{local_wall:.1f}", ""),
                ("whole DAG, Slurm", f"{slurm_wall:.1f}", ""),
            ],
        )
    )
    print("(squeue's times are whole seconds)")
    print(f"ratio Slurm / local wall time of the DAG: {slurm_wall / local_wall:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
