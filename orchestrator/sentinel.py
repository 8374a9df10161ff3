"""Period-stamped sentinel targets: "done means the sentinel exists".

A task's target is a small JSON file named by the period it covers (the
templates are in ``orchestrator.pipeline``):

- daily: ``state/targets/daily/<session>/<task>.json``
- intraday: ``state/targets/intraday/<session>/<task>/<HHMM>.json``

The runner writes it last, atomically (temp file + ``os.replace``), so a
reader never sees half a file and a killed task leaves none. Sentinels are
disposable (Snakemake deletes a job's outputs before it runs); the status
store and the market data are the record.

``status`` is ``success``, ``degraded`` (ran, but on inputs whose last run
failed) or ``failed`` (a non-critical task that failed: written so its
dependents can go on with the last good data; removed at the end of the run so
the next run tries again).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator.files import write_atomically


class SentinelStatus(StrEnum):
    SUCCESS = "success"
    DEGRADED = "degraded"
    FAILED = "failed"


def write_sentinel(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` to ``path`` atomically."""
    write_atomically(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_sentinel(path: Path) -> dict[str, Any] | None:
    """The sentinel's record, or ``None`` if it is missing or unreadable."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
