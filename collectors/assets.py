"""Asset universe: the listed symbols with name, sector, industry and exchange.

The only collector that asks the provider for the universe; every other source
reads it from the ``assets`` table (as of its own ``as_of``). ``available_ts``
is the listing time (what point-in-time reads filter on); ``confirmed_ts`` is
the newest ``as_of`` at which the provider listed the symbol (what freshness
watches). It only moves forward, so a backfill does not make the list look
stale, and re-running a session rewrites identical rows.
"""

from __future__ import annotations

import logging

import pandas as pd

from collectors.context import CollectContext, CollectResult
from collectors.market_store import epoch
from collectors.support import open_store, provider, result, symbols_served

logger = logging.getLogger(__name__)


def collect(ctx: CollectContext) -> CollectResult:
    source = provider(ctx)
    frame = source.universe(ctx.as_of)
    with open_store(ctx) as store:
        served = symbols_served(store, ctx, source, "assets", list(frame["symbol"]))
        known = store.query("SELECT symbol, available_ts, confirmed_ts FROM assets")
        listed = dict(zip(known["symbol"], known["available_ts"], strict=True))
        confirmed = dict(zip(known["symbol"], known["confirmed_ts"], strict=True))
        # A symbol stays listed from when it was first seen: a later run (whose provider
        # says "listed as of now") must not take it out of earlier sessions' universe.
        first_seen = frame["symbol"].map(listed).fillna(frame["available_ts"])
        frame["available_ts"] = (
            pd.concat([first_seen, frame["available_ts"]], axis=1).min(axis=1).astype("int64")
        )
        previous = frame["symbol"].map(confirmed)
        frame["confirmed_ts"] = previous.fillna(0).astype("int64").clip(lower=epoch(ctx.as_of))
        outcome = store.store(ctx.task, "assets", frame, as_of=ctx.as_of)
        logger.info("%s: %d assets stored", ctx.task, outcome.written)
        return result(
            store,
            ctx,
            {"assets": outcome},
            time_column="confirmed_ts",
            details={"served_by": served},
        )
