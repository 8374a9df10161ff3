"""Period-stamped sentinel targets: "done means the sentinel exists".

A task's target is a small JSON file named by the period it covers:

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
from datetime import date
from pathlib import Path
from typing import Any

from orchestrator.files import write_atomically

SUCCESS = "success"
DEGRADED = "degraded"
FAILED = "failed"


def daily_target(targets_dir: Path, session: date | str, task: str) -> Path:
    return Path(targets_dir) / "daily" / str(session) / f"{task}.json"


def intraday_target(targets_dir: Path, session: date | str, task: str, slot: str) -> Path:
    return Path(targets_dir) / "intraday" / str(session) / task / f"{slot}.json"


def parse_target(path: Path | str) -> tuple[str, date, str, str | None]:
    """``(family, session, task, slot)`` named by a sentinel path (slot ``None`` for daily).

    Raises ``ValueError`` for a path that is not a sentinel target.
    """
    parts = Path(path).parts
    try:
        index = len(parts) - 1 - parts[::-1].index("targets")
    except ValueError:
        raise ValueError(f"{path} is not under a targets/ folder") from None
    tail = parts[index + 1 :]
    if len(tail) == 3 and tail[0] == "daily" and tail[2].endswith(".json"):
        return "daily", date.fromisoformat(tail[1]), tail[2].removesuffix(".json"), None
    if len(tail) == 4 and tail[0] == "intraday" and tail[3].endswith(".json"):
        return "intraday", date.fromisoformat(tail[1]), tail[2], tail[3].removesuffix(".json")
    raise ValueError(f"{path} is not a daily or intraday sentinel path")


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
