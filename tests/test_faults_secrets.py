"""Case 13 of the reliability suite: a provider key never reaches ``state/`` or any output.

The whole pipeline runs for real (``orchestrator --daily``, then an intraday
tick) on a 5-symbol synthetic market with one canary key in the environment
and another only in ``.env``. One task is a user script that fails with a
message, a stdout line and a stderr line quoting both keys; it is retried
once, then recorded. Afterwards every byte under ``state/`` (databases and
their WAL files, sentinels, logs), Snakemake's own logs and everything the
commands printed is searched for the canaries.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from workflow_project import make_project, orchestrator, project_config

pytestmark = [pytest.mark.faults, pytest.mark.slow]

ENV_CANARY = "canary-env-7f3a9c1e5b"
DOTENV_CANARY = "canary-dotenv-2d8e4f6a0c"
LEAKY_SCRIPT = """\
import json, os, sys
keys = [os.environ.get("SYNTH_API_KEY", "?"), os.environ.get("SYNTH_SECRET_TOKEN", "?")]
print("stdout: calling the provider with", *keys)
print("stderr: provider refused", *keys, file=sys.stderr)
with open(os.environ["ORCHESTRATOR_RESULT_FILE"], "w") as out:
    json.dump({"error": "HTTP 503 for key=%s token=%s" % tuple(keys)}, out)
sys.exit(75)
"""


def test_canary_keys_appear_nowhere_in_state_or_output(tmp_path: Path) -> None:
    config = project_config()
    config["now"] = "2026-11-27T10:07:10-05:00"
    config["provider"]["universe_size"] = 5
    config["tasks"]["earnings"].pop("not_before", None)
    leaky = tmp_path / "leaky_task.py"
    leaky.write_text(LEAKY_SCRIPT)
    analyst = config["tasks"]["analyst"]
    analyst.pop("collector")
    analyst.update(script=str(leaky), retry={"attempts": 2, "backoff_seconds": [0]})
    project = make_project(tmp_path / "project", config)
    (project / ".env").write_text(f"SYNTH_SECRET_TOKEN={DOTENV_CANARY}\n")
    env = {"SYNTH_API_KEY": ENV_CANARY}

    daily = orchestrator(project, "--daily", env=env)
    tick = orchestrator(project, "--intraday", "--once", env=env)

    assert daily.returncode == 1, daily.stdout + daily.stderr  # analyst failed, non-critical
    assert tick.returncode == 0, tick.stdout + tick.stderr
    # The failure was really recorded (redacted), so the search below is meaningful.
    with sqlite3.connect(project / "state" / "status.db") as connection:
        (message,) = connection.execute(
            "SELECT last_error_message FROM data_pipeline_status WHERE task_name = 'analyst'"
        ).fetchone()
        attempts = connection.execute(
            "SELECT COUNT(*) FROM task_attempts WHERE task_name = 'analyst'"
        ).fetchone()
    assert message == "HTTP 503 for key=*** token=***"
    assert attempts == (2,)
    log = (project / "state" / "logs" / "daily" / "2026-11-27" / "analyst.log").read_text()
    assert "stdout: calling the provider with *** ***" in log
    assert (project / "state" / "market.db").exists()

    searched = [
        path
        for root in (project / "state", project / ".snakemake")
        for path in root.rglob("*")
        if path.is_file()
    ]
    names = {path.name for path in searched}
    assert {"status.db", "market.db", "orchestrator.log"} <= names
    leaks = [
        str(path.relative_to(project))
        for path in searched
        for canary in (ENV_CANARY, DOTENV_CANARY)
        if canary.encode() in path.read_bytes()
    ]
    outputs = daily.stdout + daily.stderr + tick.stdout + tick.stderr
    leaks += [f"output: {canary}" for canary in (ENV_CANARY, DOTENV_CANARY) if canary in outputs]
    assert leaks == []
