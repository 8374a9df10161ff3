"""Earnings calendar (scheduled reports, consensus estimate) and reported results.

Two immutable tables: ``earnings_calendar`` rows become available when the
date is announced, ``earnings_results`` rows when the numbers are reported.
Keeping them apart means a backfill (which knows the schedule but not the
result yet) never overwrites a result stored by a later run.
"""

from __future__ import annotations

import logging

from collectors.context import CollectContext, CollectResult
from collectors.support import open_store, provider, result, since, symbols_served, universe

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 120


def collect(ctx: CollectContext) -> CollectResult:
    source = provider(ctx)
    start = since(ctx, DEFAULT_LOOKBACK_DAYS)
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        outcomes = {}
        for table, fetch in (
            ("earnings_calendar", source.earnings_calendar),
            ("earnings_results", source.earnings_results),
        ):
            frame = fetch(symbols, start, ctx.as_of)
            symbols_served(store, ctx, source, table, symbols)
            outcomes[table] = store.store(
                ctx.task, table, frame, as_of=ctx.as_of, known_symbols=symbols
            )
        logger.info("%s: %s", ctx.task, {name: o.written for name, o in outcomes.items()})
        return result(store, ctx, outcomes)
