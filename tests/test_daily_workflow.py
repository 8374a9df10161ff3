"""The daily DAG, run for real by snakemake in a temp project with fake tasks.

Proves the workflow's contract: dry runs plan without running, tiers run in
parallel, a built session is a no-op, ``--forcerun`` reaches only what is
downstream, critical and non-critical failures, backfills, bad input.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from workflow_project import (
    DAILY_TASKS,
    FRIDAY_MORNING,
    PROJECT,
    daily_sentinel,
    fake_tasks,
    make_project,
    project_config,
    snakemake,
)

pytestmark = pytest.mark.slow
SESSION = "2026-11-27"


def sentinel(project, task, session=SESSION):
    return json.loads(daily_sentinel(project, session, task).read_text())


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project", fake_tasks(project_config()))


def test_dry_run_lists_every_job_with_its_reason_and_runs_nothing(project):
    result = snakemake(project, "daily", "-n")
    assert result.returncode == 0, result.stderr
    for task in DAILY_TASKS:
        assert f"rule {task}:" in result.stdout
    assert result.stdout.count("reason: Missing output files") == len(DAILY_TASKS)
    assert not (project / "state" / "targets").exists()
    assert not (project / "state" / "status.db").exists()


def test_independent_tasks_of_a_tier_run_in_parallel_and_a_built_session_is_a_no_op(tmp_path):
    project = make_project(tmp_path / "p", fake_tasks(project_config(), sleep=1.5))
    # The wall clock (no pinned `now`), so start and finish times compare across processes.
    result = snakemake(project, "daily", "--cores", "4", now=None)
    assert result.returncode == 0, result.stderr
    session = next((project / "state" / "targets" / "daily").iterdir()).name
    events = []
    for task in DAILY_TASKS:
        record = sentinel(project, task, session)
        events += [(datetime.fromisoformat(record["started_at"]), 1)]
        events += [(datetime.fromisoformat(record["finished_at"]), -1)]
    running, most = 0, 0
    for _moment, change in sorted(events):  # a finish sorts before a start at the same moment
        running += change
        most = max(most, running)
    # Tier 1 is five tasks wide: with 4 cores, 4 of them run at once.
    assert most == 4, sorted(events)

    again = snakemake(project, "daily", "--cores", "4", now=None)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_forcerun_sentiment_reruns_it_and_only_what_is_downstream(project):
    assert snakemake(project, "daily").returncode == 0
    before = {t: daily_sentinel(project, SESSION, t).stat().st_mtime_ns for t in DAILY_TASKS}
    result = snakemake(project, "daily", "--forcerun", "sentiment")
    assert result.returncode == 0, result.stderr
    after = {t: daily_sentinel(project, SESSION, t).stat().st_mtime_ns for t in DAILY_TASKS}
    rerun = {t for t in DAILY_TASKS if after[t] != before[t]}
    assert rerun == {"sentiment", "ml_features", "signals"}


def test_a_critical_failure_skips_its_dependents_and_fails_the_run(tmp_path):
    config = fake_tasks(project_config(), args={"prices_daily": ["--exit", "65"]})
    project = make_project(tmp_path / "p", config)
    result = snakemake(project, "daily")
    assert result.returncode == 1
    built = {t for t in DAILY_TASKS if daily_sentinel(project, SESSION, t).exists()}
    assert built == {
        "assets",
        "fundamentals",
        "insider",
        "analyst",
        "economic",
        "news",
        "sentiment",
    }


def test_a_non_critical_failure_lets_dependents_run_degraded_and_is_retried_next_run(tmp_path):
    config = fake_tasks(project_config(), args={"analyst": ["--exit", "65"]})
    project = make_project(tmp_path / "p", config)
    result = snakemake(project, "daily")
    assert result.returncode == 1
    assert "non-critical task(s) failed: analyst" in result.stderr
    assert not daily_sentinel(project, SESSION, "analyst").exists()
    features = sentinel(project, "ml_features")
    assert features["status"] == "degraded"
    assert features["degraded_inputs"] == ["analyst"]
    assert sentinel(project, "signals")["status"] == "degraded"

    dry = snakemake(project, "daily", "-n")
    planned = {
        line.split()[0]
        for line in dry.stdout.splitlines()
        if line.split() and line.split()[0] in DAILY_TASKS and line.split()[-1] == "1"
    }
    assert planned == {"analyst", "ml_features", "signals"}


def test_a_past_session_can_be_built_as_a_backfill(project):
    result = snakemake(project, "daily", config=("session=2026-11-20",))
    assert result.returncode == 0, result.stderr
    record = sentinel(project, "signals", session="2026-11-20")
    assert record["as_of"] == "2026-11-20T14:30:00+00:00"  # that session's open, in UTC


def test_a_session_that_is_no_trading_day_is_refused_in_one_line(project):
    result = snakemake(project, "daily", "-n", config=("session=2026-11-26",))
    assert result.returncode == 1
    assert "error: session 2026-11-26 is not a XNYS trading day" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["tasks"]["news"].update(max_runtime_seconds=-5),
            "tasks.news.max_runtime_seconds",
        ),
        (
            lambda c: c["tasks"]["news"].update(freshness={"green": "2h", "yellow": "1h"}),
            "tasks.news.freshness.yellow",
        ),
        (lambda c: c.update(colour="blue"), "colour: unknown key"),
        (
            lambda c: c["tasks"]["signals"].update(needs=["ml_features", "price_data"]),
            "tasks.signals.needs: 'price_data' is an intraday task",
        ),
    ],
)
def test_a_bad_config_stops_before_any_task_with_one_message(tmp_path, change, message):
    config = fake_tasks(project_config())
    change(config)
    project = make_project(tmp_path / "p", config)
    result = snakemake(project, "daily")
    assert result.returncode == 1
    assert message in result.stderr
    assert "config.yaml" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "state" / "targets").exists()


def test_the_workflow_is_formatted_and_lint_clean_but_for_the_justified_lint(project):
    snakefmt = Path(sys.executable).with_name("snakefmt")
    formatted = subprocess.run(
        [str(snakefmt), "--check", "Snakefile", "rules/"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert formatted.returncode == 0, formatted.stderr
    lint = snakemake(project, "--lint")
    lints = {
        line.strip()
        for line in lint.stdout.splitlines() + lint.stderr.splitlines()
        if line.strip().startswith("* ")
    }
    # Justified in rules/common.smk: every task runs in the project's own virtualenv, and
    # `{rule}` is the rule's own name (the linter knows only input, output, params...).
    assert lints == {
        "* Specify a conda environment or container for each rule.:",
        "* Shell command directly uses variable rule from outside of the rule:",
    }


def test_a_parse_of_content_the_schema_accepted_does_not_import_jsonschema(project, monkeypatch):
    """jsonschema costs 0.3 s to import: the workflow checks a config's content once."""
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")

    def parse_imports_jsonschema(now: str = FRIDAY_MORNING) -> bool:
        result = snakemake(project, "daily", "-n", now=now)
        assert result.returncode == 0, result.stderr[-3000:]
        return re.search(r"\|\s+jsonschema$", result.stderr, re.MULTILINE) is not None

    assert parse_imports_jsonschema()  # content never checked
    assert not parse_imports_jsonschema()  # the same content again
    # A replay's clock moves on from one run to the next (orchestrator passes it on).
    assert not parse_imports_jsonschema("2026-11-27T10:00:00.250000-05:00")
    config = project / "config.yaml"
    config.write_text(config.read_text().replace("green: 7h", "green: 6h", 1))
    assert parse_imports_jsonschema()  # new content
