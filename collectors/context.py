"""What a collector is given and what it gives back.

This is the seam between the engine (``orchestrator``) and the data side
(``collectors``). A collector receives a ``CollectContext`` and returns a
``CollectResult``; it raises ``orchestrator.errors.TransientError`` for
failures worth retrying and ``PermanentError`` for the rest.

Invariant: a collector reads and writes nothing stamped after ``ctx.as_of``.
That is what makes a backfill of a past session reproduce what a live run on
that day would have seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from orchestrator.market_calendar import MarketCalendar
from orchestrator.sharding import Shard


@dataclass(frozen=True)
class CollectContext:
    """Everything a collector needs for one run.

    ``session`` is the NYSE trading date the run belongs to. ``as_of`` (UTC)
    is the point-in-time cutoff: for a daily run the session's open, for an
    intraday run the current minute. ``now`` is the wall clock (UTC) of the
    run, never earlier than ``as_of``. ``slot`` is ``None`` for daily tasks and
    the ``HHMM`` slot (exchange time) for intraday ones.
    """

    task: str
    session: date
    as_of: datetime
    now: datetime
    market_db: Path | str  # the market store: a SQLite file, or a URL (orchestrator.database)
    calendar: MarketCalendar
    # One provider's settings, or several: a per-symbol fallback chain, in order.
    provider_settings: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    options: Mapping[str, Any] = field(default_factory=dict)
    slot: str | None = None
    # One shard of a sharded task: the collector works on that part of the universe only.
    shard: Shard | None = None


@dataclass(frozen=True)
class CollectResult:
    """What one collector run achieved.

    ``records_processed`` counts rows stored (inserted or replaced);
    ``rows_rejected`` counts rows sent to quarantine; ``data_as_of`` is the
    newest timestamp of the data now stored for this source (UTC), used by
    the freshness monitor.
    """

    records_processed: int
    data_as_of: datetime | None = None
    rows_rejected: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)
