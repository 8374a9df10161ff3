"""What the Snakemake workflow asks of the engine while it is parsed and when a run ends.

``rules/common.smk`` calls these: validating the config into the pipeline
model, naming the run, and the bookkeeping of each run's non-critical
failures. They live here, importable and tested, so the rule files stay
declarative.

**Failure markers belong to one run.** A non-critical task that fails writes
a ``failed`` sentinel, so its dependents run on the last good data, and a
marker in its run's folder ``state/run/runs/<run id>/``. The run id is made
when the main Snakemake process parses the workflow and reaches the jobs
through ``$ORCHESTRATOR_RUN_ID``. Each run's end hook removes only its own
failed sentinels and exits 1, so a daily run and intraday ticks overlapping
never clear (or blame) each other's failures. A run that died before its end
hook (SIGKILL) leaves its folder; the next run started on the same host
sweeps the folders of runs whose process is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from orchestrator import sentinel
from orchestrator.config import Config, build_config, read_yaml, schema_stamp
from orchestrator.errors import OrchestratorError
from orchestrator.pipeline import TaskConfig

RUN_ID_VARIABLE = "ORCHESTRATOR_RUN_ID"


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn an ``OrchestratorError`` into a one-line message and exit status 1.

    Snakemake prints an exception raised while parsing with a traceback;
    ``SystemExit`` it passes through as a plain message.
    """
    try:
        yield
    except OrchestratorError as error:
        sys.exit(f"error: {error}")


def pipeline_config(snakemake_config: Mapping[str, Any], workflow: Any) -> Config:
    """Validate Snakemake's merged ``config`` and return the model.

    The config files are re-read strictly first: Snakemake's own YAML loader
    keeps the last of duplicate keys without a word. Messages name the file
    given with ``--configfile`` if there is one (``orchestrator --config``
    passes it with ``--replace-workflow-config``), else the Snakefile's. The
    content the schema accepted last (``schema_stamp``: ``orchestrator``'s own
    check, or the previous parse) is not checked against the schema again.
    """
    files = [str(path) for path in workflow.configfiles]
    for path in files:
        read_yaml(Path(path))
    given = [str(path) for path in workflow.overwrite_configfiles]
    source = (given or files or ["config"])[-1]
    return build_config(dict(snakemake_config), source, stamp=schema_stamp(Path.cwd()))


NO_TIME_BOUND = 2**62  # `:now` for a data_time_sql asked "is there any row?"


def sentinel_without_data(config: Config, task: TaskConfig, session: date) -> bool:
    """Whether ``task``'s daily sentinel of ``session`` says built while its data is gone.

    A sentinel says "built"; the market database is the record. It lies when
    the database was deleted or replaced (for a built-in collector's
    sentinel), or the source's table was emptied (its ``data_time_sql`` finds
    nothing).
    """
    from orchestrator import database

    record = sentinel.read_sentinel(config.base_dir / task.target(session)) or {}
    built = record.get("status") in (
        sentinel.SentinelStatus.SUCCESS,
        sentinel.SentinelStatus.DEGRADED,
    )
    if not (task.collector and built and int(record.get("records_processed") or 0) > 0):
        return False
    store = config.market_store
    if not store.exists():
        return True
    sql = task.freshness.data_time_sql
    if sql is None:
        return False
    try:
        connection = database.open_store(store, readonly=True)
    except sqlite3.Error:
        return False  # a server out of reach says nothing about the data: the task will tell
    # Whether the source has any rows at all (no time bound: a later build may have
    # moved their times on, as assets' confirmations do, without losing data).
    try:
        return connection.execute(sql, {"now": NO_TIME_BOUND}).fetchone()[0] is None
    except sqlite3.Error:
        return True  # its table is gone
    finally:
        connection.close()


def forget_sentinel_without_data(config: Config, task: TaskConfig, session: date) -> bool:
    """Remove ``task``'s daily sentinel of ``session`` if its data is gone; whether it did.

    Then Snakemake builds the task again, and what depends on it after.
    Called from the daily rules' input function, when Snakemake plans that
    job: never by intraday runs.
    """
    if not sentinel_without_data(config, task, session):
        return False
    store = config.market_store
    path = config.base_dir / task.target(session)
    path.unlink(missing_ok=True)
    if task.is_sharded:  # the join's inputs too, or only the join would run again
        for shard_target in task.shard_targets(session):
            (config.base_dir / shard_target).unlink(missing_ok=True)
    print(
        f"warning: {store} has no data for {task.name}; its sentinel for "
        f"{session} is removed so it (and what needs it) is built again",
        file=sys.stderr,
    )
    return True


# -- the run and its failure markers ---------------------------------------------


def run_id(is_main_process: bool) -> str:
    """This run's id: made by the main process, inherited by a job's own parse.

    ``<UTC time>-<host>-<pid>``: the host and pid let a later run tell
    whether the run is still alive.
    """
    inherited = os.environ.get(RUN_ID_VARIABLE)
    if inherited and not is_main_process:
        return inherited
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{socket.gethostname()}-{os.getpid()}"


def _run_dir(config: Config, run: str) -> Path:
    return config.runs_dir / run


def note_failed_sentinel(
    config: Config, run: str, task: str, target: Path, reported: bool = True
) -> None:
    """Remember that ``task`` of run ``run`` wrote the failed sentinel ``target``.

    A failed shard's sentinel is removed at the end of the run too, but not
    ``reported``: its join reports the task (``orchestrator/sharding.py``).
    """
    markers = _run_dir(config, run)
    markers.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"task": task, "target": str(Path(target).resolve())}
    if not reported:
        record["reported"] = False
    name = record["target"].strip("/").replace("/", "__")
    (markers / f"{name}.failed").write_text(json.dumps(record))


def finish_run(config: Config, run: str) -> list[str]:
    """Remove run ``run``'s failed sentinels and its folder; return the failed tasks.

    Removing the sentinel makes the next run try the task again (and refresh
    what depends on it). A sentinel rewritten since (a later success) stays.
    """
    folder = _run_dir(config, run)
    failed: list[str] = []
    for marker in sorted(folder.glob("*.failed")):
        with suppress(OSError, ValueError):
            record = json.loads(marker.read_text())
            target = Path(record["target"])
            found = sentinel.read_sentinel(target)
            if found is not None and found.get("status") == sentinel.SentinelStatus.FAILED:
                target.unlink(missing_ok=True)
            if record.get("reported", True):
                failed.append(str(record["task"]))
    shutil.rmtree(folder, ignore_errors=True)
    return sorted(set(failed))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_runs(config: Config, current: str) -> list[str]:
    """Finish the runs of this host whose Snakemake process is gone; return their ids."""
    host = socket.gethostname()
    swept: list[str] = []
    if not config.runs_dir.is_dir():
        return swept
    for folder in sorted(config.runs_dir.iterdir()):
        _stamp, _, rest = folder.name.partition("-")
        run_host, _, pid = rest.rpartition("-")
        if folder.name == current or run_host != host or not pid.isdigit():
            continue
        if not _is_alive(int(pid)):
            finish_run(config, folder.name)
            swept.append(folder.name)
    return swept


def end_of_run(config: Config, run: str) -> None:
    """The workflow's ``onsuccess``/``onerror`` hook.

    Non-critical failures did not stop Snakemake (their dependents ran
    degraded), but the run as a whole must still fail, so this exits with
    status 1 once its own failed sentinels are cleared (``SystemExit`` is the
    one exception Snakemake reports without a traceback).
    """
    failed = finish_run(config, run)
    if failed:
        sys.exit(
            f"error: non-critical task(s) failed: {', '.join(failed)}; their dependents ran on "
            "the last good data (degraded). See `orchestrator --health` and the task logs "
            "under state/logs/."
        )
