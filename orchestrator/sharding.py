"""Sharded tasks: which symbols a shard takes, and the join that makes N shards one run.

A daily task with ``shards: N`` (config.yaml) is N shard jobs and a join
(``rules/tasks.smk``). The shards' rule keeps the task's name, so
``--forcerun TASK`` re-runs every shard and, downstream of them, the join and
the task's dependents; the join rule is ``<task>_join`` and writes the task's
own target, the one its dependents, the health monitor and the summary read.

Invariants:

- a symbol's shard is ``sha1(symbol) mod N``: stable across processes,
  machines and Python versions (``hash()`` is salted per process), so every
  symbol is in exactly one shard of a run and stays there from run to run;
- a shard runs the task's own runner and collector on its part of the
  universe, and records its attempts as the task's (``task_attempts``); it
  writes its shard sentinel even when it failed (and exits 0), so the join
  always runs; the failed shard's sentinel is removed when its Snakemake run
  ends (``workflow_support.finish_run``), so the next run retries that shard
  alone;
- ``data_pipeline_status`` counts a sharded run once, in the join: one
  success when every shard succeeded (its records the shards' sum), else
  one failure naming the failed shards. A critical task's failed join exits 1
  (its dependents do not run); a non-critical one writes a ``failed`` target,
  as an unsharded task does;
- the health monitor never shows a sharded source green while a shard of the
  current session is built and the join is not (``incomplete_shards``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import sentinel
from orchestrator.errors import UsageError
from orchestrator.sentinel import SentinelStatus

if TYPE_CHECKING:
    from orchestrator.clock import Clock
    from orchestrator.config import Config
    from orchestrator.pipeline import Period, TaskConfig

logger = logging.getLogger(__name__)

BUILT = (SentinelStatus.SUCCESS, SentinelStatus.DEGRADED)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``; written ``index/count`` on command lines."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise UsageError(f"shard {self}: the index must be 0 to {self.count - 1}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` as ``Shard(2, 4)``; ``UsageError`` for anything else."""
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit()):
            raise UsageError(f"shard {text!r}: write it INDEX/COUNT, e.g. 0/4")
        return cls(int(index), int(count))

    def target(self, task: TaskConfig, session: date | str) -> str:
        """This shard's sentinel of ``session``."""
        return task.shard_target_pattern.format(session=session, shard=self.index)

    def takes(self, symbol: str) -> bool:
        return shard_of(symbol, self.count) == self.index

    def symbols(self, symbols: Iterable[str]) -> list[str]:
        """The symbols of ``symbols`` in this shard, in their order."""
        return [symbol for symbol in symbols if self.takes(symbol)]


def shard_of(symbol: str, count: int) -> int:
    """The shard of ``symbol`` among ``count``: the first 8 bytes of its SHA-1, mod ``count``."""
    from hashlib import sha1

    return int.from_bytes(sha1(symbol.encode()).digest()[:8], "big") % count


# -- the join ---------------------------------------------------------------------


def _sum(values: Sequence[Any]) -> int | None:
    """The sum of the shards' counts, or None when a shard did not report one."""
    return None if any(value is None for value in values) else sum(int(v) for v in values)


def _merged_served_by(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    served: dict[str, int] = {}
    for record in records:
        for provider, count in (record.get("served_by") or {}).items():
            served[provider] = served.get(provider, 0) + int(count)
    return {"served_by": served} if served else {}


def join_shards(
    config: Config, task_name: str, period: Period, clock: Clock, run_id: str | None = None
) -> int:
    """Make the shards of ``task_name`` for ``period`` one run of the task; the exit status.

    Reads the shard sentinels (the join rule's inputs), records the run once
    in ``data_pipeline_status`` when every shard ran live, and writes the
    task's target: ``shards``, ``symbols`` and ``records_processed`` are the
    shards' count and sums. See the module docstring for a failed shard.
    """
    from orchestrator.status_store import StatusStore, clean_error
    from orchestrator.workflow_support import note_failed_sentinel

    task = config.pipeline.task(task_name)
    shards = [Shard(index, task.shards) for index in range(task.shards)]
    records: list[dict[str, Any]] = []
    for shard in shards:
        found = sentinel.read_sentinel(config.base_dir / shard.target(task, period.session))
        records.append(
            found
            if found is not None
            else {"status": SentinelStatus.FAILED, "error": "wrote no sentinel", "live": False}
        )
    failed = [
        (shard, record)
        for shard, record in zip(shards, records, strict=True)
        if record.get("status") not in BUILT
    ]
    # A replay's clock starts at the pinned moment in every process: the run ends no
    # earlier than its last shard did.
    ends = [datetime.fromisoformat(r["finished_at"]) for r in records if r.get("finished_at")]
    finished = max([clock(), *ends])
    starts = [datetime.fromisoformat(r["started_at"]) for r in records if r.get("started_at")]
    started = min(starts, default=finished)
    live = all(record.get("live") for record in records)
    store = StatusStore(config.status_store)
    output = config.base_dir / task.target(period.session)
    degraded_inputs = sorted({name for r in records for name in r.get("degraded_inputs", [])})
    joined = {
        "task": task.name,
        "family": task.family,
        "period": str(period),
        "session": str(period.session),
        "slot": None,
        "as_of": next((r["as_of"] for r in records if r.get("as_of")), None),
        "started_at": started.isoformat(timespec="milliseconds"),
        "finished_at": finished.isoformat(timespec="milliseconds"),
        "duration_seconds": round((finished - started).total_seconds(), 3),
        "attempts": sum(int(r.get("attempts") or 0) for r in records),
        "degraded_inputs": degraded_inputs,
        "shards": task.shards,
        "symbols": _sum([r.get("symbols") for r in records]),
    }
    if not failed:
        degraded = any(r["status"] == SentinelStatus.DEGRADED for r in records)
        total = sum(int(r.get("records_processed") or 0) for r in records)
        if live:
            store.record_success(task.name, started, finished, total, degraded=degraded)
        data_times = [r["data_as_of"] for r in records if r.get("data_as_of")]
        sentinel.write_sentinel(
            output,
            {
                **joined,
                "status": SentinelStatus.DEGRADED if degraded else SentinelStatus.SUCCESS,
                "records_processed": total,
                "rows_rejected": sum(int(r.get("rows_rejected") or 0) for r in records),
                # The oldest shard's: the source is only as fresh as its stalest part.
                "data_as_of": min(data_times, default=None),
                **_merged_served_by(records),
                "records_counted_from": "the shards' sum",
            },
        )
        logger.info(
            "%s %s: %d shards joined, %d records", task.name, period.label, task.shards, total
        )
        return 0
    error = clean_error(
        "; ".join(f"shard {shard}: {record.get('error') or 'failed'}" for shard, record in failed)
    )
    if live:
        store.record_failure(task.name, finished, error)
    logger.error(
        "%s %s: %d of %d shards failed: %s",
        task.name,
        period.label,
        len(failed),
        task.shards,
        error,
    )
    if task.critical:
        return 1
    sentinel.write_sentinel(
        output, {**joined, "status": SentinelStatus.FAILED, "error": error, "records_processed": 0}
    )
    if run_id:
        note_failed_sentinel(config, run_id, task.name, output)
    return 0


# -- health ---------------------------------------------------------------------


def incomplete_shards(base_dir: Path, task: TaskConfig, session: date) -> str | None:
    """Why ``task``'s ``session`` is incomplete (some shards built, no join), or None.

    Cheap (a few ``stat`` calls and small reads): the health monitor asks it
    for each sharded task. A session with no shard built is not incomplete
    here: the source's data time shows its age.
    """

    def built(path: str) -> bool:
        return (sentinel.read_sentinel(base_dir / path) or {}).get("status") in BUILT

    if built(task.target(session)):
        return None
    shards = [Shard(index, task.shards) for index in range(task.shards)]
    done = sum(built(shard.target(task, session)) for shard in shards)
    if not done:
        return None
    return f"{done} of {task.shards} shards built for {session}, the join not yet"
