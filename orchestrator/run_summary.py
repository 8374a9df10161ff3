"""The short report printed after a daily run: what ran, records, durations, failures.

It reads the session's sentinels (what was built, degraded or failed) and the
status store (why a task has no sentinel: its last error). Cheap: no pandas.
"""

from __future__ import annotations

from datetime import date

from orchestrator import sentinel
from orchestrator.config import Config
from orchestrator.sentinel import SentinelStatus
from orchestrator.status_store import StatusStore, TaskStatus


def daily_summary(config: Config, session: date) -> tuple[str, bool]:
    """The summary table of ``session`` and whether every daily task succeeded."""
    store = config.status_store
    statuses = StatusStore(store).task_statuses() if store.exists() else {}
    rows = []
    all_ok = True
    total_records = 0
    for task in config.pipeline.family("daily"):
        name = task.name
        record = sentinel.read_sentinel(config.base_dir / task.target(session))
        if record is None:
            status = statuses.get(name, {})
            failed = status.get("status") == TaskStatus.FAILED
            error = status.get("last_error_message") if failed else None
            rows.append((name, "failed" if error else "not built", "-", "-", "-", error or ""))
            all_ok = False
            continue
        records = int(record.get("records_processed") or 0)
        total_records += records
        note = record.get("error") or ""
        if record.get("degraded_inputs"):
            note = f"inputs failed: {', '.join(record['degraded_inputs'])}"
        all_ok = all_ok and record.get("status") == SentinelStatus.SUCCESS
        rows.append(
            (
                name,
                str(record.get("status")),
                str(records),
                f"{float(record.get('duration_seconds') or 0):.1f}s",
                str(record.get("attempts", 1)),
                note,
            )
        )
    header = ("task", "status", "records", "duration", "attempts", "note")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [f"Daily session {session}:"]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append(("  " + "  ".join(cells) + "  " + row[-1]).rstrip())
    built = sum(1 for row in rows if row[1] in (SentinelStatus.SUCCESS, SentinelStatus.DEGRADED))
    lines.append(
        f"{built}/{len(rows)} tasks built, {total_records} records"
        + ("" if all_ok else "; see `orchestrator --health` and state/logs/")
    )
    return "\n".join(lines), all_ok
