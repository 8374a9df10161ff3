"""Macro series (CPI, unemployment, policy rate, PMI, jobless claims) by release time.

Each run fetches releases from the last ``options.lookback_days`` (default
400) days up to ``ctx.as_of``; observations are immutable per (series, period).
"""

from __future__ import annotations

import logging

import pandas as pd

from collectors.context import CollectContext, CollectResult
from collectors.market_store import epoch
from collectors.support import open_store, provider, result, since

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 400


def collect(ctx: CollectContext) -> CollectResult:
    source = provider(ctx)
    frame = source.economic_series(since(ctx, DEFAULT_LOOKBACK_DAYS), ctx.as_of)
    with open_store(ctx) as store:
        unknown = dict(getattr(source, "symbol_errors", {}) or {})
        if unknown:  # series the provider does not know: recorded, the rest stored
            rejects = pd.DataFrame({"series": list(unknown), "reason": list(unknown.values())})
            store.quarantine(ctx.task, "economic_series", rejects, epoch(ctx.now))
            logger.warning("%s: series not served: %s", ctx.task, unknown)
        outcome = store.store(ctx.task, "economic_series", frame, as_of=ctx.as_of)
        logger.info("%s: %d observations stored", ctx.task, outcome.written)
        return result(store, ctx, {"economic_series": outcome})
