"""Per-task cluster resources and the ``shards:`` setting: from config.yaml to the rules.

A task's ``resources:`` (memory, cpus, partition) inherit from
``defaults.resources``; its wall-time limit follows from its timeout, attempts
and backoff. A bad value stops ``--check-config`` with one message naming the
file and the key. The generated rules carry the resources (what a Slurm
executor submits with); a local run ignores them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_project import fake_tasks, make_project, project_config, snakemake

from orchestrator.config import load_config
from orchestrator.errors import ConfigError


def write_config(directory: Path, raw: dict[str, Any]) -> Path:
    path = directory / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def two_tasks() -> dict[str, Any]:
    return {
        "defaults": {"resources": {"mem_mb": 2000}},
        "tasks": {
            "alpha": {
                "family": "daily",
                "script": "task.py",
                "max_runtime_seconds": 100,
                "retry": {"attempts": 3, "backoff_seconds": [10, 30]},
                "resources": {"cpus_per_task": 4, "slurm_partition": "short"},
            },
            "beta": {"family": "daily", "script": "task.py", "needs": ["alpha"]},
        },
    }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "task.py").write_text("print('ok')\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_task_resources_inherit_from_defaults_and_runtime_follows_the_retry_policy(
    workdir: Path,
) -> None:
    config = load_config(write_config(workdir, two_tasks()))

    alpha, beta = config.pipeline.task("alpha"), config.pipeline.task("beta")

    # 3 attempts of 100 s and waits of 10 s and 30 s: 340 s, rounded up to 6 minutes.
    assert alpha.snakemake_resources() == {
        "runtime": 6,
        "mem_mb": 2000,
        "cpus_per_task": 4,
        "slurm_partition": "short",
    }
    # The schema's defaults: 600 s, 3 attempts, waits 10 and 30: 1840 s is 31 minutes.
    assert beta.snakemake_resources() == {"runtime": 31, "mem_mb": 2000, "cpus_per_task": 1}
    assert (alpha.shards, beta.shards) == (1, 1)


BAD_VALUES = [
    (("tasks", "alpha", "resources", "mem_mb"), 0, "tasks.alpha.resources.mem_mb", "minimum"),
    (("tasks", "alpha", "resources", "mem_mb"), "2G", "tasks.alpha.resources.mem_mb", "integer"),
    (
        ("tasks", "alpha", "resources", "cpus_per_task"),
        0,
        "tasks.alpha.resources.cpus_per_task",
        "minimum",
    ),
    (
        ("tasks", "alpha", "resources", "slurm_partition"),
        "short queue",
        "tasks.alpha.resources.slurm_partition",
        "does not match",
    ),
    (("tasks", "alpha", "resources", "gpus"), 1, "tasks.alpha.resources.gpus", "unknown key"),
    (("defaults", "resources", "mem_mb"), -5, "defaults.resources.mem_mb", "minimum"),
    (("tasks", "alpha", "shards"), 0, "tasks.alpha.shards", "minimum"),
    (("tasks", "alpha", "shards"), 2.5, "tasks.alpha.shards", "integer"),
]


@pytest.mark.parametrize(
    ("keys", "value", "key", "problem"),
    [pytest.param(*case, id=case[2] + "=" + repr(case[1])) for case in BAD_VALUES],
)
def test_a_bad_resource_or_shard_count_names_the_file_and_key(
    workdir: Path, keys: tuple[str, ...], value: Any, key: str, problem: str
) -> None:
    raw = two_tasks()
    target = raw
    for part in keys[:-1]:
        target = target.setdefault(part, {})
    target[keys[-1]] = value
    path = write_config(workdir, raw)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.path == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_only_daily_tasks_can_be_sharded(workdir: Path) -> None:
    raw = two_tasks()
    raw["tasks"]["gamma"] = {"family": "intraday", "script": "task.py", "shards": 2}

    with pytest.raises(ConfigError) as caught:
        load_config(write_config(workdir, raw))

    assert caught.value.key == "tasks.gamma.shards"
    assert "only daily tasks" in caught.value.problem


def test_a_task_may_not_take_the_name_of_a_join_rule(workdir: Path) -> None:
    raw = two_tasks()
    raw["tasks"]["alpha"]["shards"] = 2
    raw["tasks"]["alpha_join"] = {"family": "daily", "script": "task.py"}

    with pytest.raises(ConfigError) as caught:
        load_config(write_config(workdir, raw))

    assert caught.value.key == "tasks.alpha_join"
    assert "joining alpha's shards" in caught.value.problem


def test_check_config_reports_a_bad_resource_in_one_line(tmp_path: Path) -> None:
    raw = project_config()
    raw["tasks"]["prices_daily"]["resources"] = {"mem_mb": 0}
    project = make_project(tmp_path / "project", raw)

    checked = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--check-config"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert checked.returncode != 0
    assert "Traceback" not in checked.stderr
    message = (checked.stdout + checked.stderr).strip()
    assert "config.yaml: tasks.prices_daily.resources.mem_mb: 0 is less than the minimum of 1" in (
        message
    ), message


def test_the_rules_carry_the_resources_and_a_local_run_ignores_them(tmp_path: Path) -> None:
    raw = fake_tasks(project_config())
    raw["tasks"]["prices_daily"]["resources"] = {"mem_mb": 64000, "slurm_partition": "big"}
    project = make_project(tmp_path / "project", raw)

    planned = snakemake(project, "-n", "daily", "--cores", "2")
    assert planned.returncode == 0, planned.stderr
    prices = planned.stdout.split("rule prices_daily:", 1)[1].split("\n\n", 1)[0]
    assert "mem_mb=64000" in prices and "slurm_partition=big" in prices
    # The fake tasks try once with no timeout set: the default 600 s, one attempt.
    assert "runtime=10" in prices

    built = snakemake(project, "daily", "--cores", "2")
    assert built.returncode == 0, built.stderr
    assert (project / "state/targets/daily/2026-11-27/prices_daily.json").is_file()
