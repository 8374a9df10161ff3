"""The daily DAG as jobs of a real Slurm cluster, through ``profiles/slurm``.

The cluster is this machine: ``scripts/local-slurm up`` (Debian's slurmctld,
slurmd and munge, installed when missing) is started by a session fixture and
stopped after, unless it was already up. The market is the synthetic one, the
session a past one (2026-11-20), ``prices_daily`` sharded 4 ways and both
stores on a real PostgreSQL (``scripts/local-postgres``), as a cluster needs
them; the reference is a plain local run of the same session on SQLite.

Slurm itself is the witness that every task ran as its job: ``squeue`` keeps
finished jobs (``MinJobAge``), each with the rule (and wildcards) the executor
put in its comment and the project it ran in. A shard cancelled with
``scancel`` while it runs is submitted again (the profile's ``retries: 1``)
and the tables end up exactly as the plain run's: nothing lost, nothing twice.
Backfills and ``--update-stale`` submit their jobs through the profile too,
and stopping ``orchestrator`` cancels the run's jobs rather than leaving them.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PostgresServer
from helpers import wait_for
from test_postgres_stores import new_database, status_counters, table_checksums
from workflow_project import (
    DAILY_TASKS,
    FRIDAY_MORNING,
    PROJECT,
    fake_tasks,
    make_project,
    orchestrator,
    project_config,
    snakemake,
)

from orchestrator import database

LOCAL_SLURM = PROJECT / "scripts" / "local-slurm"
# The Slurm executor is the project's `slurm` extra, kept out of .venv (Snakemake would
# import it at every start): the cluster's commands run from a virtualenv with it.
SLURM_PYTHON = str(PROJECT / ".venv-slurm" / "bin" / "python")
CLI = (SLURM_PYTHON, "-m", "orchestrator.cli")
SESSION = "2026-11-20"
SHARDS = 4
EVENTS_GROUP = ("insider", "analyst", "news", "sentiment")  # one group job (profiles/slurm)


def on_slurm(test: Any) -> Any:
    """Marks of a test on the local cluster: one xdist worker runs them all (one fixture)."""
    for mark in (pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm")):
        test = mark(test)
    return test


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    """A running local Slurm: started here (and stopped after) unless it already runs.

    The virtualenv with the Slurm executor (``make slurm-setup``) is made first.
    """
    setup = subprocess.run(
        ["make", "-C", str(PROJECT), "slurm-setup"], capture_output=True, text=True, timeout=900
    )
    if setup.returncode != 0:
        pytest.fail(f"make slurm-setup failed: {setup.stderr.strip() or setup.stdout.strip()}")
    if subprocess.run([LOCAL_SLURM, "status"], capture_output=True, check=False).returncode == 0:
        yield
        return
    up = subprocess.run([LOCAL_SLURM, "up"], capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        pytest.fail(f"scripts/local-slurm up failed: {up.stderr.strip() or up.stdout.strip()}")
    try:
        yield
    finally:
        subprocess.run([LOCAL_SLURM, "down"], capture_output=True, timeout=120, check=False)


def session_config(stores: dict[str, str] | None = None, shards: int = 1) -> dict[str, Any]:
    config = project_config()
    config["provider"]["universe_size"] = 12
    config["now"] = FRIDAY_MORNING
    if stores:
        config["stores"] = stores
    if shards > 1:
        config["tasks"]["prices_daily"]["shards"] = shards
    return config


@dataclass(frozen=True)
class LocalRun:
    tables: dict[str, tuple[int, str]]
    counters: list[tuple[Any, ...]]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> LocalRun:
    """The session built by a plain local snakemake on SQLite, unsharded: the reference."""
    project = make_project(tmp_path_factory.mktemp("local") / "p", session_config())
    result = snakemake(project, "daily", "--cores", "2", config=(f"session={SESSION}",))
    assert result.returncode == 0, result.stderr[-3000:]
    tables = table_checksums(database.store_url(project / "state" / "market.db"))
    assert tables["prices_daily"][0] > 0 and tables["signals"][0] > 0
    return LocalRun(tables, status_counters(database.store_url(project / "state" / "status.db")))


@dataclass(frozen=True)
class Stores:
    status: str
    market: str

    def checked(self) -> tuple[dict[str, tuple[int, str]], list[tuple[Any, ...]]]:
        return (
            table_checksums(database.store_url(self.market)),
            status_counters(database.store_url(self.status)),
        )


@pytest.fixture
def postgres_stores(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """Two fresh PostgreSQL databases; the password reaches the jobs as PGPASSWORD."""
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    return Stores(new_database(postgres_server), new_database(postgres_server))


@dataclass(frozen=True)
class SlurmJob:
    id: int
    state: str
    comment: str  # the executor's: rule_<rule>[_wildcards_<values>]


def _squeue() -> list[list[str]]:
    listing = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%Z"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("|") for line in listing.splitlines()]


def newest_job_id() -> int:
    """The newest job Slurm knows: a test's jobs are the ones after it (paths repeat)."""
    return max((int(fields[0]) for fields in _squeue()), default=0)


def slurm_jobs(project: Path, since: int) -> list[SlurmJob]:
    """Every job submitted after job ``since`` that ran in ``project``, oldest first."""
    jobs = [
        SlurmJob(int(job_id), state, comment)
        for job_id, state, comment, workdir in _squeue()
        if Path(workdir) == project and int(job_id) > since
    ]
    return sorted(jobs, key=lambda job: job.id)


def jobs_of(jobs: list[SlurmJob], rule: str) -> list[SlurmJob]:
    return [job for job in jobs if job.comment.startswith(f"rule_{rule}_wildcards_")]


def assert_every_task_was_a_slurm_job(project: Path, jobs: list[SlurmJob]) -> None:
    """One job per ungrouped task, one per shard, one for the event group; their logs kept."""
    for task in DAILY_TASKS:
        if task in EVENTS_GROUP:
            continue
        expected = SHARDS if task == "prices_daily" else 1
        ran = [job for job in jobs_of(jobs, task) if job.state == "COMPLETED"]
        assert len(ran) == expected, (task, jobs)
    groups = [job for job in jobs if job.comment.startswith("rule_events")]
    assert [job.state for job in groups] == ["COMPLETED"], jobs
    assert all(name in groups[0].comment for name in EVENTS_GROUP)
    slurm_logs = project / "state" / "logs" / "slurm"
    for job in jobs:
        assert list(slurm_logs.rglob(f"{job.id}.log")), f"no Slurm log of job {job.id}"


def assert_counters_add_up(counters: list[tuple[Any, ...]]) -> None:
    for task, runs, successes, failures, consecutive, _records, status in counters:
        assert runs == successes + failures, task
        assert (consecutive, status) == (0, "SUCCESS"), task


def cancel_jobs_of(project: Path, since: int) -> None:
    """Cancel what a failed test left queued or running in ``project``."""
    left = [
        str(job.id) for job in slurm_jobs(project, since) if job.state in ("PENDING", "RUNNING")
    ]
    if left:
        subprocess.run(["scancel", *left], check=False)


@on_slurm
def test_the_daily_dag_on_slurm_stores_what_a_local_run_does_and_a_cancelled_shard_reruns(
    tmp_path, slurm_cluster, local_run, postgres_stores
):
    config = session_config(
        {"status": postgres_stores.status, "market": postgres_stores.market}, shards=SHARDS
    )
    project = make_project(tmp_path / "p", config)
    since = newest_job_id()
    daily = subprocess.Popen(
        [*CLI, "--project", str(project), "--daily", "--profile", "slurm", "--session", SESSION],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        running = wait_for(
            lambda: [
                j
                for j in jobs_of(slurm_jobs(project, since), "prices_daily")
                if j.state == "RUNNING"
            ],
            within=600,
            what="a prices_daily shard running on Slurm",
        )[0]
        subprocess.run(["scancel", str(running.id)], check=True)
        output, _ = daily.communicate(timeout=900)
    finally:
        if daily.poll() is None:
            daily.terminate()  # the CLI stops its snakemake's process group
            daily.communicate(timeout=60)
        cancel_jobs_of(project, since)

    # The run succeeded and summed up the session, every task built.
    assert daily.returncode == 0, output[-4000:]
    assert f"Daily session {SESSION}" in output and "12/12 tasks built" in output
    jobs = slurm_jobs(project, since)
    assert_every_task_was_a_slurm_job(project, jobs)
    # The cancelled shard was killed while it ran and submitted again.
    again = [job.state for job in jobs if job.comment == running.comment]
    assert again == ["CANCELLED", "COMPLETED"], f"job {running.id} of {running.comment}: {again}"
    # Every table holds exactly the plain run's rows: the killed shard lost nothing and
    # its second run doubled nothing; the counters are the plain run's and add up.
    tables, counters = postgres_stores.checked()
    assert tables == local_run.tables
    assert counters == local_run.counters
    assert_counters_add_up(counters)
    assert not (project / "state" / "market.db").exists()  # every job wrote to PostgreSQL

    # Snakemake's own command with the profile sees the session built: nothing submitted.
    rerun = snakemake(
        project,
        "daily",
        "--profile",
        "profiles/slurm",
        config=(f"session={SESSION}",),
        python=SLURM_PYTHON,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    assert slurm_jobs(project, since) == jobs


@on_slurm
def test_backfill_and_update_stale_run_their_jobs_on_slurm(tmp_path, slurm_cluster):
    config = project_config()
    config["tasks"] = {name: config["tasks"][name] for name in ("assets", "economic")}
    config["tasks"]["economic"]["freshness"] = {"green": "1h", "yellow": "2h"}
    config["provider"]["universe_size"] = 5
    config["now"] = "2026-11-20T10:00:00-05:00"
    project = make_project(tmp_path / "p", config)
    since = newest_job_id()

    backfill = orchestrator(
        project,
        *("backfill", "--from", "2026-11-19", "--to", SESSION, "--profile", "slurm"),
        python=SLURM_PYTHON,
    )

    assert backfill.returncode == 0, backfill.stdout[-3000:] + backfill.stderr[-3000:]
    assert "2/2 sessions built" in backfill.stdout
    jobs = slurm_jobs(project, since)
    for task in ("assets", "economic"):
        ran = sorted(job.comment for job in jobs_of(jobs, task) if job.state == "COMPLETED")
        assert ran == [f"rule_{task}_wildcards_2026-11-19", f"rule_{task}_wildcards_{SESSION}"]

    config["now"] = "2026-11-20T15:00:00-05:00"  # economic is five hours old: red
    (project / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    stale = orchestrator(project, "--update-stale", "--profile", "slurm", python=SLURM_PYTHON)

    assert stale.returncode == 0, stale.stdout[-3000:] + stale.stderr[-3000:]
    assert "--profile" in stale.stdout  # the command it ran, printed
    forced = [job for job in jobs_of(slurm_jobs(project, since), "economic") if job not in jobs]
    assert [(job.comment, job.state) for job in forced] == [
        (f"rule_economic_wildcards_{SESSION}", "COMPLETED")
    ]


@on_slurm
def test_stopping_orchestrator_daily_on_slurm_cancels_its_jobs(tmp_path, slurm_cluster):
    config = fake_tasks(project_config(), sleep=300)
    config["now"] = FRIDAY_MORNING
    project = make_project(tmp_path / "p", config)
    since = newest_job_id()
    daily = subprocess.Popen(
        [*CLI, "--project", str(project), "--daily", "--profile", "slurm"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        running = wait_for(
            lambda: [job for job in slurm_jobs(project, since) if job.state == "RUNNING"],
            within=300,
            what="a task running on Slurm",
        )
        daily.send_signal(signal.SIGTERM)
        output, _ = daily.communicate(timeout=120)
    finally:
        if daily.poll() is None:
            daily.kill()
        cancel_jobs_of(project, since)

    assert daily.returncode == 1, output[-3000:]
    assert "daily run stopped" in output
    # Slurm's jobs were cancelled with the run, not left to finish (and write) on their own.
    states = {job.id: job.state for job in slurm_jobs(project, since)}
    assert all(states[job.id] == "CANCELLED" for job in running), states
    assert not [state for state in states.values() if state in ("PENDING", "RUNNING")]
    assert not list((project / "state" / "targets").rglob("*.json"))


def test_a_missing_profile_is_one_message_naming_it_and_the_profiles_there_are(tmp_path):
    project = make_project(tmp_path / "p")

    result = orchestrator(project, "--daily", "--profile", "slrum")

    assert result.returncode == 2
    assert "--profile 'slrum'" in result.stderr
    assert "profiles here: default, slurm" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "state" / "locks" / "daily.lock").exists()  # refused before running


def test_a_profile_whose_executor_is_not_installed_names_the_extra_to_install(tmp_path):
    project = make_project(tmp_path / "p")

    result = orchestrator(project, "--daily", "--profile", "slurm")  # .venv: no Slurm plugin

    assert result.returncode == 2
    assert "executor 'slurm' (snakemake-executor-plugin-slurm) is not installed" in result.stderr
    assert "pip install -e '.[slurm]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "state" / "locks" / "daily.lock").exists()


def test_profile_is_refused_where_no_daily_run_takes_it(tmp_path):
    result = orchestrator(make_project(tmp_path / "p"), "--intraday", "--profile", "slurm")

    assert result.returncode == 2
    assert "--profile needs --daily" in result.stderr
