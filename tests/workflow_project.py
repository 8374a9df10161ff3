"""A throw-away copy of the project for end-to-end runs of the real workflow.

``make_project`` links the real ``Snakefile``, ``rules/`` and ``profiles/``
into a temp folder and writes a ``config.yaml`` there, so a real
``snakemake`` (or ``orchestrator``) run works on its own ``state/`` and
never touches the working tree. Tasks can be swapped for
``tests/workflow_tasks/fake_task.py`` to make runs fast and failures exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parent.parent
FAKE_TASK = PROJECT / "tests" / "workflow_tasks" / "fake_task.py"
# A Friday before the close (a half day: the day after Thanksgiving 2026).
FRIDAY_MORNING = "2026-11-27T10:00:00-05:00"


def project_config() -> dict[str, Any]:
    return yaml.safe_load((PROJECT / "config.yaml").read_text())


# The shipped daily tasks, in config order (config.yaml is their one declaration).
DAILY_TASKS = tuple(
    name for name, task in project_config()["tasks"].items() if task["family"] == "daily"
)


def fake_tasks(
    config: dict[str, Any], args: Mapping[str, list[str]] | None = None, sleep: float = 0.0
) -> dict[str, Any]:
    """``config`` with every task replaced by the fake task script, tried once."""
    for name, task in config["tasks"].items():
        task.pop("collector", None)
        task.pop("not_before", None)
        task["script"] = str(FAKE_TASK)
        task["args"] = ["--sleep", str(sleep), *(args or {}).get(name, [])]
        task["retry"] = {"attempts": 1, "backoff_seconds": [0]}
    return config


def make_project(root: Path, config: dict[str, Any] | None = None) -> Path:
    """A project folder in ``root`` running the real workflow with ``config``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "rules", "profiles"):
        (root / name).symlink_to(PROJECT / name)
    (root / "config.yaml").write_text(yaml.safe_dump(config or project_config(), sort_keys=False))
    return root


def snakemake(
    project: Path,
    *args: str,
    now: str | None = FRIDAY_MORNING,
    config: tuple[str, ...] = (),
    timeout: float = 300,
    python: str = sys.executable,
) -> subprocess.CompletedProcess[str]:
    """Run the real snakemake in ``project``; targets and flags go in ``args``.

    ``now`` pins the workflow's clock; ``config`` adds ``--config`` overrides;
    ``python`` is the interpreter of the virtualenv to run it from.
    """
    command = [python, "-m", "snakemake", *args, "--snakefile", str(project / "Snakefile")]
    overrides = [*config, *([f"now={now}"] if now is not None else [])]
    if overrides:
        command += ["--config", *overrides]
    return subprocess.run(
        command,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


def orchestrator(
    project: Path,
    *args: str,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
) -> subprocess.CompletedProcess[str]:
    """Run the ``orchestrator`` CLI on ``project`` (``python``: the virtualenv's interpreter)."""
    command = [python, "-m", "orchestrator.cli", "--project", str(project), *args]
    return subprocess.run(
        command,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def daily_sentinel(project: Path, session: str, task: str) -> Path:
    return project / "state" / "targets" / "daily" / session / f"{task}.json"
