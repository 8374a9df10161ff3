"""Analyst opinion: rating changes with price targets, and monthly recommendation counts.

Each run fetches rating changes of the last ``options.lookback_days`` (default
60) days up to ``ctx.as_of``; rows are immutable and keyed naturally, so the
overlap with earlier runs rewrites identical rows and a re-run changes
nothing. A provider that publishes recommendation *trends* instead (Finnhub:
counts of strong buy ... strong sell per month) also gives a snapshot of them,
stored in ``analyst_trends`` with the time it was taken.
"""

from __future__ import annotations

import logging

from collectors.context import CollectContext, CollectResult
from collectors.market_store import StoreOutcome
from collectors.support import open_store, provider, result, since, symbols_served, universe

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 60


def collect(ctx: CollectContext) -> CollectResult:
    source = provider(ctx)
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        frame = source.analyst_ratings(symbols, since(ctx, DEFAULT_LOOKBACK_DAYS), ctx.as_of)
        outcomes: dict[str, StoreOutcome] = {
            "analyst_ratings": store.store(
                ctx.task, "analyst_ratings", frame, as_of=ctx.as_of, known_symbols=symbols
            )
        }
        trends = getattr(source, "analyst_trends", None)
        if trends is not None:
            snapshot = trends(symbols, ctx.as_of)
            symbols_served(store, ctx, source, "analyst_trends", symbols)
            if len(snapshot):
                outcomes["analyst_trends"] = store.store(
                    ctx.task, "analyst_trends", snapshot, as_of=ctx.as_of, known_symbols=symbols
                )
        logger.info("%s: %s", ctx.task, {name: o.written for name, o in outcomes.items()})
        return result(store, ctx, outcomes)
