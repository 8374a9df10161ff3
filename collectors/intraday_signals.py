"""Intraday signals: the latest intraday features blended with the daily signal.

Point-in-time at ``ctx.as_of``: the newest intraday feature row per symbol
with ``available_ts <= as_of``, and the newest daily signal and ML feature row
with ``as_of_ts <= as_of`` (so today's daily signal once it exists, else the
last one). The intraday score is ``tanh`` of cross-sectional z-scores of
15-minute return (momentum), VWAP gap (mean reversion) and session return;
the blended score is ``0.6 * daily + 0.4 * intraday`` (intraday alone when a
symbol has no daily signal). ``inputs_json`` records the as-of time of each.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from collectors.context import CollectContext, CollectResult
from collectors.market_store import StoreOutcome, epoch
from collectors.signals import zscores
from collectors.support import open_store, result, universe

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.25
SLOT_SECONDS = 300


def collect(ctx: CollectContext) -> CollectResult:
    as_of_ts = epoch(ctx.as_of)
    session = ctx.session.isoformat()
    threshold = float(ctx.options.get("threshold", DEFAULT_THRESHOLD))
    slot = ctx.slot or ctx.calendar.slot(ctx.as_of, SLOT_SECONDS)
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        intraday = store.query(
            "SELECT f.symbol, f.return_15m, f.vwap_gap, f.return_session, f.available_ts "
            "FROM intraday_features f JOIN (SELECT symbol, MAX(bar_ts) AS bar_ts "
            " FROM intraday_features WHERE session = ? AND available_ts <= ? GROUP BY symbol) m "
            "ON f.symbol = m.symbol AND f.bar_ts = m.bar_ts",
            (session, as_of_ts),
        ).set_index("symbol")
        if intraday.empty:
            return result(store, ctx, {"intraday_signals": StoreOutcome(0, 0, {})}, "as_of_ts")
        daily = store.query(
            "SELECT s.symbol, s.score, s.as_of_ts FROM signals s JOIN (SELECT symbol, "
            " MAX(session) AS session FROM signals WHERE as_of_ts <= ? GROUP BY symbol) m "
            "ON s.symbol = m.symbol AND s.session = m.session",
            (as_of_ts,),
        ).set_index("symbol")
        components = pd.DataFrame(
            {
                "momentum": intraday["return_15m"],
                "reversion": -intraday["vwap_gap"],
                "trend": intraday["return_session"],
            }
        ).astype(float)
        intraday_score = np.tanh((zscores(components) * [0.5, 0.3, 0.2]).sum(axis=1))
        daily_score = daily["score"].reindex(intraday.index).astype(float)
        blended = np.where(
            daily_score.notna(), 0.6 * daily_score + 0.4 * intraday_score, intraday_score
        )
        daily_ts = daily["as_of_ts"].reindex(intraday.index).astype(float)
        inputs = [
            json.dumps(
                {"intraday_features": int(bar)} | ({} if np.isnan(day) else {"signals": int(day)}),
                sort_keys=True,
            )
            for bar, day in zip(intraday["available_ts"], daily_ts, strict=True)
        ]
        frame = pd.DataFrame(
            {
                "symbol": intraday.index,
                "session": session,
                "slot": slot,
                "score": np.round(blended, 6),
                "direction": np.where(
                    blended > threshold, "long", np.where(blended < -threshold, "short", "flat")
                ),
                "intraday_score": np.round(intraday_score.to_numpy(), 6),
                "daily_score": daily_score.to_numpy(),
                "inputs_json": inputs,
                "max_input_ts": np.fmax(intraday["available_ts"], daily_ts).astype("int64"),
                "as_of_ts": as_of_ts,
            }
        )
        outcome = store.store(
            ctx.task, "intraday_signals", frame, as_of=ctx.as_of, known_symbols=symbols
        )
        logger.info("%s: %d intraday signals for slot %s", ctx.task, outcome.written, slot)
        return result(store, ctx, {"intraday_signals": outcome}, time_column="as_of_ts")
