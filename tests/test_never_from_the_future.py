"""Nothing is fetched or stored for a moment later than the clock (real snakemake runs).

A target asked for directly, for a session that has not started, a day that is
no session, or an intraday slot outside the task's hours or not yet begun, is
refused before any job runs; a pinned ``now`` ahead of the wall clock is too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from workflow_project import fake_tasks, make_project, orchestrator, project_config, snakemake

pytestmark = pytest.mark.slow
NOW = "2026-11-27T10:05:00-05:00"  # the half day after Thanksgiving, 10:05 ET


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("future") / "p", fake_tasks(project_config()))


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("daily/2026-11-30/assets.json", "assets 2026-11-30: session 2026-11-30 has not started"),
        ("daily/2026-11-26/prices_daily.json", "2026-11-26 is not a XNYS trading day"),
        ("daily/2031-01-02/assets.json", "outside the XNYS calendar's range"),
        ("intraday/2026-11-27/price_data/1010.json", "price_data 2026-11-27/1010: the slot has"),
        ("intraday/2026-11-27/price_data/1400.json", "outside the task's hours (regular)"),
        ("intraday/2026-11-27/intraday_signals/1007.json", "not a slot of this task (every 5m)"),
    ],
)
def test_a_target_not_due_is_refused_in_one_line_before_any_job(project, target, problem):
    result = snakemake(project, f"state/targets/{target}", now=NOW)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "state" / "targets").exists()
    assert not (project / "state" / "status.db").exists()


def test_a_due_target_is_still_built(project):
    result = snakemake(project, "state/targets/intraday/2026-11-27/price_data/1004.json", now=NOW)
    assert result.returncode == 0, result.stderr
    assert (project / "state/targets/intraday/2026-11-27/price_data/1004.json").is_file()


def test_a_pinned_now_ahead_of_the_wall_clock_is_refused(tmp_path):
    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    project = make_project(tmp_path / "p", fake_tasks(project_config()))
    workflow = snakemake(project, "daily", "-n", now=ahead)
    assert workflow.returncode == 1
    assert f"config.yaml: now: {ahead} is later than the wall clock" in workflow.stderr
    assert "Traceback" not in workflow.stderr

    pinned = make_project(tmp_path / "pinned", {**fake_tasks(project_config()), "now": ahead})
    for command in (("--check-config",), ("--daily",)):
        result = orchestrator(pinned, *command)
        assert result.returncode == 2
        assert "now: " in result.stderr and "never ahead" in result.stderr
    assert not (pinned / "state" / "targets").exists()
