"""Pruning what the intraday family leaves behind, so ``state/`` stays bounded.

A session of 1-minute and 5-minute slots leaves about 550 sentinels, as many
task logs, and Snakemake's per-output metadata under ``.snakemake/metadata``
(one file per output, named by the output path in URL-safe base64). All of it
is disposable once a session is old: the status store and the market data are
the record. Daily sentinels are never pruned (they are a dozen a session and
a backfill may want them). Snakemake's run logs (``.snakemake/log``, a file
per run, never rotated) older than ``keep_sessions`` days go too.
"""

from __future__ import annotations

import base64
import binascii
import shutil
from datetime import date, datetime
from pathlib import Path

from orchestrator.config import Config
from orchestrator.market_calendar import MarketCalendar


def _metadata_target(name: str) -> str | None:
    """The output path a ``.snakemake/metadata`` file name encodes, if it is one."""
    try:
        return base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _old_session_dirs(root: Path, keep_from: date) -> list[Path]:
    if not root.is_dir():
        return []
    old = []
    for session_dir in sorted(root.iterdir()):
        try:
            session = date.fromisoformat(session_dir.name)
        except ValueError:
            continue
        if session < keep_from:
            old.append(session_dir)
    return old


def prune_intraday(config: Config, calendar: MarketCalendar, now: datetime) -> list[Path]:
    """Delete what intraday runs left for sessions older than ``keep_sessions``.

    Returns the removed sentinel folders, one per session.
    """
    keep_from = calendar.trading_day(now)
    for _ in range(config.keep_sessions - 1):
        keep_from = calendar.previous_session(keep_from)
    removed = _old_session_dirs(config.targets_dir / "intraday", keep_from)
    for session_dir in [*removed, *_old_session_dirs(config.logs_dir / "intraday", keep_from)]:
        shutil.rmtree(session_dir, ignore_errors=True)

    old_prefixes = tuple(str(d.relative_to(config.base_dir)) + "/" for d in removed)
    metadata = config.base_dir / ".snakemake" / "metadata"
    if old_prefixes and metadata.is_dir():
        for entry in metadata.iterdir():
            target = _metadata_target(entry.name)
            if target is not None and target.startswith(old_prefixes):
                entry.unlink(missing_ok=True)

    run_logs = config.base_dir / ".snakemake" / "log"
    if run_logs.is_dir():
        cutoff = now.timestamp() - config.keep_sessions * 86400
        for log in run_logs.iterdir():
            if log.stat().st_mtime < cutoff:
                log.unlink(missing_ok=True)
    return removed
