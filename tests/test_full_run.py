"""``orchestrator --full``: the daily run, then a supervised intraday loop.

The loop runs in a child process; when it dies it is restarted (with backoff)
until the supervisor is told to stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from workflow_project import fake_tasks, make_project, project_config

from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def loop_holder(project):
    try:
        holder = project / "state" / "locks" / "intraday-loop.holder"
        return json.loads(holder.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def test_full_builds_the_session_then_restarts_a_dead_loop_until_stopped(tmp_path):
    config = fake_tasks(project_config())
    config["now"] = "2026-11-28T10:00:00-05:00"  # Saturday: the loop sleeps till Monday
    project = make_project(tmp_path / "p", config)
    full = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "--project", str(project), "--full"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_loop = wait_for(lambda: loop_holder(project))
        assert len(list((project / "state/targets/daily/2026-11-27").glob("*.json"))) == 12

        os.kill(first_loop, signal.SIGKILL)
        second_loop = wait_for(
            lambda: (loop_holder(project) or first_loop) != first_loop and loop_holder(project)
        )
        assert second_loop != first_loop
    finally:
        full.send_signal(signal.SIGTERM)
        _, stderr = full.communicate(timeout=60)
    assert full.returncode == 0, stderr
    assert "the intraday loop exited with status -9; restarting" in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(second_loop, 0)  # the supervisor stopped its loop on the way out
