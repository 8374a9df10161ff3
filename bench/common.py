"""Shared helpers of the benchmarks: temp projects, timing, memory, tables.

Every benchmark works in a temp folder (``tests/workflow_project.py`` links the
real ``Snakefile``, ``rules/`` and ``profiles/`` into it), never in the working
tree's ``state/``. The machine running them is shared and noisy, so figures
are medians of repeats and targets are ratios to a baseline measured in the
same run.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def child_env() -> dict[str, str]:
    """The environment for timed children: unbuffered, bytecode cached as in real use."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_timed(
    command: Sequence[str], cwd: Path, timeout: float = 600
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds of ``command`` run to completion in ``cwd``, and its result."""
    started = time.perf_counter()
    result = subprocess.run(
        list(command),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        check=False,
    )
    return time.perf_counter() - started, result


def snakemake_command(
    project: Path, *args: str, now: str | None = None, python: str = sys.executable
) -> list[str]:
    """``python -m snakemake ARGS`` on ``project``'s Snakefile, the clock pinned at ``now``."""
    command = [python, "-m", "snakemake", *args, "--snakefile", str(project / "Snakefile")]
    if now is not None:
        command += ["--config", f"now={now}"]
    return command


def orchestrator_command(project: Path, *args: str) -> list[str]:
    """The ``orchestrator`` console script (as a user runs it) on ``project``."""
    script = Path(sys.executable).with_name("orchestrator")
    head = [str(script)] if script.is_file() else [sys.executable, "-m", "orchestrator.cli"]
    return [*head, "--project", str(project), *args]


def check(result: subprocess.CompletedProcess[str], what: str) -> None:
    """Stop the benchmark with the child's output tail when ``what`` failed."""
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-3000:]
        raise SystemExit(f"{what} failed (exit {result.returncode}):\n{tail}")


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of one process in MiB (0 if it is gone or not on Linux)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_MIB
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def tree_rss_mib(pid: int) -> float:
    """Summed resident memory of ``pid`` and all its descendants, in MiB."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        total += rss_mib(current)
        pending += _children(current)
    return total


class TreeSampler:
    """Samples a process tree's summed RSS every ``period`` seconds; ``peak`` is the max."""

    def __init__(self, pid: int, period: float = 0.05) -> None:
        self.pid, self.period, self.peak = pid, period, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mib(self.pid))
            self._stop.wait(self.period)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def verdict(name: str, ok: bool, detail: str) -> str:
    """The one line a benchmark ends with; ``run_all`` collects these."""
    return f"TARGET {name}: {'met' if ok else 'MISSED'} ({detail})"


# One ``task_attempts`` row: (task_name, period, attempt, started_at, finished_at,
# duration_seconds, outcome, error_message, records_processed, rows_rejected, data_as_of).
Attempt = tuple[object, ...]
ATTEMPT_COLUMNS = (
    "task_name, period, attempt, started_at, finished_at, duration_seconds, outcome, "
    "error_message, records_processed, rows_rejected, data_as_of"
)


def write_status_history(db_path: Path, attempts: Sequence[Attempt]) -> None:
    """A status store (WAL, the real schema) holding ``attempts`` (each task's in time
    order), and each task's ``data_pipeline_status`` row derived from them as the runner
    keeps it.

    The filler of the benchmarks that read a long history (``bench_health``,
    ``bench_web``): they differ in what history they make, not in how it is stored.
    """
    from orchestrator.status_store import SCHEMA

    by_task: dict[str, list[Attempt]] = {}
    for row in attempts:
        by_task.setdefault(str(row[0]), []).append(row)
    summaries = []
    for task, rows in by_task.items():
        successes = [row for row in rows if row[6] == "success"]
        failures = [row for row in rows if row[6] != "success"]
        streak = 0
        for row in reversed(rows):
            if row[6] == "success":
                break
            streak += 1
        last = rows[-1]
        durations = [float(str(row[5])) for row in rows]
        summaries.append(
            (task, last[3], last[4], successes[-1][4] if successes else None,
             failures[-1][4] if failures else None, streak, len(rows), len(successes),
             len(failures), failures[-1][7] if failures else None, last[8],
             sum(durations) / len(durations), "FAILED" if streak else "SUCCESS")
        )  # fmt: skip
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMA)
        db.executemany(
            f"INSERT INTO task_attempts ({ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 11)})",
            attempts,
        )
        db.executemany(
            "INSERT INTO data_pipeline_status (task_name, last_run_start, last_run_end, "
            "last_success, last_failure, consecutive_failures, total_runs, total_successes, "
            "total_failures, last_error_message, last_records_processed, "
            "average_runtime_seconds, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            summaries,
        )
    db.close()
