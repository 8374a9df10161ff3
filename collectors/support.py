"""Plumbing every collector shares: store, provider, universe, result.

Kept separate so each source module reads as "fetch, store, report". The
universe always comes from the ``assets`` table as of ``ctx.as_of`` (only the
``assets`` collector asks the provider for it), narrowed to the run's shard
when the task is sharded (``orchestrator/sharding.py``), and ``data_as_of`` reports the
newest stored timestamp at or before ``ctx.as_of``, so a backfill reports the
time of the data it reproduced, not the newest data in the file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from collectors.context import CollectContext, CollectResult
from collectors.market_store import MarketStore, StoreOutcome, epoch
from collectors.providers import provider_for
from collectors.providers.base import Provider
from orchestrator.errors import PermanentError

logger = logging.getLogger(__name__)


def open_store(ctx: CollectContext) -> MarketStore:
    return MarketStore(ctx.market_db)


def provider(ctx: CollectContext) -> Provider:
    return provider_for(ctx.provider_settings, ctx.calendar)


def symbols_served(
    store: MarketStore, ctx: CollectContext, source: Provider, table: str, asked: Sequence[str]
) -> dict[str, int]:
    """How many of the ``asked`` symbols each provider served; the others are quarantined.

    A symbol no provider could serve (unknown to it, or failing after its
    retries) is recorded in ``quarantine`` with the reason, so it is visible
    and the rest of the batch is stored.
    """
    errors = dict(getattr(source, "symbol_errors", {}) or {})
    if errors:
        rejects = pd.DataFrame({"symbol": list(errors), "reason": list(errors.values())})
        store.quarantine(ctx.task, table, rejects, epoch(ctx.now))
        logger.warning("%s: %d symbols not served: %s", ctx.task, len(errors), errors)
    served = getattr(source, "served_by", None)
    if served is None:
        served = {source.name: len([symbol for symbol in asked if symbol not in errors])}
    return dict(served)


def universe(store: MarketStore, ctx: CollectContext) -> list[str]:
    """Symbols listed at ``ctx.as_of`` (of ``ctx.shard`` only, in a shard's run).

    ``PermanentError`` if the assets task never ran. A shard may have no symbols
    (a universe smaller than its shard count).
    """
    symbols = store.symbols(epoch(ctx.as_of))
    if not symbols:
        raise PermanentError(
            f"{ctx.task}: the assets table has no symbols listed by {ctx.as_of.isoformat()}; "
            "run the assets task first"
        )
    return ctx.shard.symbols(symbols) if ctx.shard else symbols


def since(ctx: CollectContext, default_days: int) -> date:
    """The first date of the look-back window (``options.lookback_days``)."""
    days = int(ctx.options.get("lookback_days", default_days))
    return (ctx.as_of - timedelta(days=days)).date()


def newest_at_or_before(
    store: MarketStore, table: str, column: str, as_of_ts: int
) -> datetime | None:
    """The newest ``column`` value of ``table`` not after ``as_of_ts``, as UTC."""
    value = store.scalar(f"SELECT MAX({column}) FROM {table} WHERE {column} <= ?", (as_of_ts,))
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def result(
    store: MarketStore,
    ctx: CollectContext,
    outcomes: Mapping[str, StoreOutcome],
    time_column: str = "available_ts",
    details: Mapping[str, Any] | None = None,
) -> CollectResult:
    """A ``CollectResult`` summing the outcomes of the tables written."""
    as_of_ts = epoch(ctx.as_of)
    stamps = [newest_at_or_before(store, table, time_column, as_of_ts) for table in outcomes]
    known = [stamp for stamp in stamps if stamp is not None]
    extra = dict(details or {})
    extra["tables"] = {table: outcome.written for table, outcome in outcomes.items()}
    rejected_reasons = {
        f"{table}: {reason}": count
        for table, outcome in outcomes.items()
        for reason, count in outcome.reasons.items()
    }
    if rejected_reasons:
        extra["rejected"] = rejected_reasons
    if ctx.shard is not None:  # the join reports the symbols of all its shards
        extra["symbols"] = len(universe(store, ctx))
    return CollectResult(
        records_processed=sum(outcome.written for outcome in outcomes.values()),
        data_as_of=max(known) if known else None,
        rows_rejected=sum(outcome.rejected for outcome in outcomes.values()),
        details=extra,
    )
