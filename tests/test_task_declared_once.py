"""A task is declared once, in the config: real snakemake and orchestrator runs prove it.

- a user's script task is one ``config.yaml`` entry with ``needs:``, and its
  generated rule runs after what it needs and is re-run by ``--forcerun``;
- a bad ``needs:`` or script stops every entry point with one line;
- ``orchestrator --config FILE`` uses FILE end to end;
- failure markers belong to one run: an intraday tick finishing during a
  daily run neither clears nor blames the daily run's non-critical failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_project import (
    FAKE_TASK,
    FRIDAY_MORNING,
    daily_sentinel,
    fake_tasks,
    make_project,
    orchestrator,
    project_config,
    snakemake,
)

from tests.helpers import wait_for

pytestmark = pytest.mark.slow
SESSION = "2026-11-27"

# Counts 3 records when the universe (assets) was built before it started, else 0.
MY_SOURCE = """\
import json, os
session = os.environ["ORCHESTRATOR_SESSION"]
assets = os.path.exists(f"state/targets/daily/{session}/assets.json")
with open(os.environ["ORCHESTRATOR_RESULT_FILE"], "w") as out:
    json.dump({"records_processed": 3 if assets else 0}, out)
"""


def built(project: Path, task: str, session: str = SESSION) -> dict[str, Any]:
    return json.loads(daily_sentinel(project, session, task).read_text())


def test_a_script_task_added_as_one_entry_runs_after_its_needs_and_follows_forcerun(tmp_path):
    config = fake_tasks(project_config())
    script = tmp_path / "my_source.py"
    script.write_text(MY_SOURCE)
    config["tasks"]["my_source"] = {"family": "daily", "script": str(script), "needs": ["assets"]}
    project = make_project(tmp_path / "project", config)

    first = snakemake(project, "daily", "--cores", "4")
    assert first.returncode == 0, first.stderr
    session = SESSION
    assert built(project, "my_source")["records_processed"] == 3  # assets was there first

    daily = [name for name, task in config["tasks"].items() if task["family"] == "daily"]
    before = {t: daily_sentinel(project, session, t).stat().st_mtime_ns for t in daily}
    forced = snakemake(project, "daily", "--forcerun", "assets")
    assert forced.returncode == 0, forced.stderr
    after = {t: daily_sentinel(project, session, t).stat().st_mtime_ns for t in daily}
    rerun = {t for t in before if after[t] != before[t]}
    assert "my_source" in rerun  # downstream of assets
    assert "economic" not in rerun  # needs nothing


def _cycle(tasks: dict[str, Any]) -> None:
    tasks["assets"]["needs"] = ["signals"]


def _unknown(tasks: dict[str, Any]) -> None:
    tasks["news"]["needs"] = ["assets", "newswire"]


def _other_family(tasks: dict[str, Any]) -> None:
    tasks["intraday_features"]["needs"] = ["price_data", "assets"]


def _missing_script(tasks: dict[str, Any]) -> None:
    tasks["insider"]["script"] = "scripts/no_such_collector.py"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            _cycle,
            "tasks.assets.needs: the needs form a cycle: assets -> signals -> ml_features -> ",
        ),
        (_unknown, "tasks.news.needs: 'newswire' is not a task"),
        (_other_family, "tasks.intraday_features.needs: 'assets' is a daily task"),
        (_missing_script, "tasks.insider.script: no such file"),
    ],
    ids=["cycle", "unknown", "other-family", "missing-script"],
)
def test_a_bad_need_or_script_stops_every_entry_point_with_one_line(tmp_path, change, problem):
    config = fake_tasks(project_config())
    change(config["tasks"])
    project = make_project(tmp_path / "project", config)

    workflow = snakemake(project, "daily")
    assert workflow.returncode == 1
    assert f"config.yaml: {problem}" in workflow.stderr
    assert "Traceback" not in workflow.stderr

    for command in (("--check-config",), ("--daily",)):
        result = orchestrator(project, *command)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"orchestrator: bad configuration: {project / 'config.yaml'}: ")
        assert problem in line
    assert not (project / "state" / "targets").exists()


def test_orchestrator_config_file_is_used_end_to_end(tmp_path):
    project = make_project(tmp_path / "project", fake_tasks(project_config()))
    fake = {"script": str(FAKE_TASK), "args": ["--records", "5"]}
    alt = {
        "now": FRIDAY_MORNING,
        "provider": {"name": "synthetic", "seed": 3, "universe_size": 7},
        "tasks": {
            "assets": {"family": "daily", "collector": "assets", "critical": True},
            "alt_only": {
                "family": "daily",
                "needs": ["assets"],
                **fake,
                # Never known fresh, so --update-stale always refreshes it.
                "freshness": {"green": "1h", "yellow": "2h", "data_time_sql": "SELECT NULL"},
            },
            "alt_ticks": {"family": "intraday", "interval": "5m", **fake},
        },
    }
    alt_file = project / "alt.yaml"
    alt_file.write_text(yaml.safe_dump(alt, sort_keys=False))

    daily = orchestrator(project, "--daily", "--config", str(alt_file))
    assert daily.returncode == 0, daily.stderr
    assert built(project, "assets")["records_processed"] == 7  # alt.yaml's universe_size
    assert built(project, "alt_only")["records_processed"] == 5
    assert not daily_sentinel(project, SESSION, "signals").exists()  # config.yaml's task
    assert "2/2 tasks built" in daily.stdout

    tick = orchestrator(project, "--intraday", "--once", "--config", str(alt_file))
    assert tick.returncode == 0, tick.stderr
    slots = project / "state" / "targets" / "intraday" / SESSION
    assert sorted(p.name for p in slots.iterdir()) == ["alt_ticks"]
    assert (slots / "alt_ticks" / "1000.json").is_file()

    health = orchestrator(project, "--health", "--json", "--config", str(alt_file))
    assert health.returncode in (0, 1), health.stderr
    report = json.loads(health.stdout)
    assert [task["task"] for task in report["tasks"]] == ["assets", "alt_only", "alt_ticks"]

    before = daily_sentinel(project, SESSION, "alt_only").stat().st_mtime_ns
    stale = orchestrator(project, "--update-stale", "--config", str(alt_file))
    assert stale.returncode == 0, stale.stderr
    assert f"--configfile {alt_file}" in stale.stdout
    assert daily_sentinel(project, SESSION, "alt_only").stat().st_mtime_ns != before


WAIT_FOR_GO = """\
import json, os, sys, time
go = sys.argv[1]
deadline = time.monotonic() + 120
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.02)
with open(os.environ["ORCHESTRATOR_RESULT_FILE"], "w") as out:
    json.dump({"records_processed": 1}, out)
"""


def test_a_tick_during_a_daily_run_neither_clears_nor_blames_its_non_critical_failure(tmp_path):
    config = fake_tasks(project_config(), args={"analyst": ["--exit", "65"]})
    # ml_features (downstream of analyst) holds the daily run open until the tick is done.
    waiter, go = tmp_path / "wait_for_go.py", tmp_path / "go"
    waiter.write_text(WAIT_FOR_GO)
    config["tasks"]["ml_features"].update(script=str(waiter), args=[str(go)])
    project = make_project(tmp_path / "project", config)
    failed = daily_sentinel(project, SESSION, "analyst")
    command = [sys.executable, "-m", "snakemake", "daily", "--cores", "4"]
    daily = subprocess.Popen(
        [*command, "--config", f"now={FRIDAY_MORNING}"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: failed.is_file(), what="the failed analyst sentinel")
        tick = snakemake(project, "intraday")
        assert daily.poll() is None, "the daily run ended before the tick did"
        assert tick.returncode == 0, tick.stderr
        assert "analyst" not in tick.stderr
        assert json.loads(failed.read_text())["status"] == "failed"  # still there mid-run
        go.touch()
        _, daily_err = daily.communicate(timeout=120)
    finally:
        if daily.poll() is None:
            daily.kill()
    assert daily.returncode == 1
    assert "non-critical task(s) failed: analyst" in daily_err
    assert not failed.exists()  # the next run retries it
    assert built(project, "ml_features")["status"] == "degraded"
    assert not (project / "state" / "run" / "runs").exists() or not any(
        (project / "state" / "run" / "runs").iterdir()
    )
