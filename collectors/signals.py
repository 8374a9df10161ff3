"""Daily trading signals: a score in [-1, 1] and a direction per symbol.

The score is ``tanh`` of a weighted sum of cross-sectional z-scores (clipped at
3) of the session's ML features: medium-term momentum, short-term mean
reversion (RSI), news sentiment, earnings surprise, insider buying, analyst
drift. A missing input contributes 0. ``direction`` is ``long`` above
``options.threshold`` (default 0.25), ``short`` below its negative, else
``flat``. Each signal stores the as-of time of every input it used
(``inputs_json``: the feature row's own inputs plus the feature row itself).
"""

from __future__ import annotations

import json
import logging
from types import MappingProxyType

import numpy as np
import pandas as pd

from collectors.context import CollectContext, CollectResult
from collectors.market_store import epoch
from collectors.support import open_store, result, universe
from orchestrator.errors import PermanentError

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.25
WEIGHTS = MappingProxyType(
    {
        "return_63d": 0.35,
        "return_21d": 0.2,
        "rsi_14": -0.15,
        "sentiment_mean_3d": 0.2,
        "earnings_surprise_pct": 0.15,
        "insider_net_value_90d": 0.1,
        "rating_drift_30d": 0.1,
    }
)


def zscores(frame: pd.DataFrame) -> pd.DataFrame:
    """Cross-sectional z-scores clipped to [-3, 3]; NaN (and constant columns) become 0."""
    spread = frame.std().replace(0.0, np.nan)
    return ((frame - frame.mean()) / spread).clip(-3.0, 3.0).fillna(0.0)


def score(features: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """score, direction and per-component contributions for each feature row."""
    inputs = features[list(WEIGHTS)].astype(float)
    inputs["insider_net_value_90d"] = np.sign(inputs["insider_net_value_90d"]) * np.log1p(
        inputs["insider_net_value_90d"].abs()
    )
    contributions = zscores(inputs) * pd.Series(WEIGHTS)
    total = np.tanh(contributions.sum(axis=1))
    direction = np.where(total > threshold, "long", np.where(total < -threshold, "short", "flat"))
    frame = pd.DataFrame({"score": total.round(6), "direction": direction}, index=features.index)
    frame["contributions"] = contributions.round(6).to_dict(orient="records")
    return frame


def collect(ctx: CollectContext) -> CollectResult:
    as_of_ts = epoch(ctx.as_of)
    threshold = float(ctx.options.get("threshold", DEFAULT_THRESHOLD))
    with open_store(ctx) as store:
        symbols = universe(store, ctx)
        features = store.query(
            "SELECT * FROM ml_features WHERE session = ? AND as_of_ts <= ?",
            (ctx.session.isoformat(), as_of_ts),
        )
        if features.empty:
            raise PermanentError(
                f"{ctx.task}: no ml_features for session {ctx.session} at or before "
                f"{ctx.as_of.isoformat()}; run ml_features first"
            )
        scored = score(features, threshold)
        inputs = [
            json.dumps({**json.loads(text), "ml_features": int(stamp)}, sort_keys=True)
            for text, stamp in zip(features["inputs_json"], features["as_of_ts"], strict=True)
        ]
        signals = pd.DataFrame(
            {
                "symbol": features["symbol"],
                "session": features["session"],
                "score": scored["score"],
                "direction": scored["direction"],
                "components_json": [json.dumps(c, sort_keys=True) for c in scored["contributions"]],
                "inputs_json": inputs,
                "max_input_ts": np.maximum(features["max_input_ts"], features["as_of_ts"]),
                "as_of_ts": as_of_ts,
            }
        )
        outcome = store.store(ctx.task, "signals", signals, as_of=ctx.as_of, known_symbols=symbols)
        counts = {str(k): int(v) for k, v in signals["direction"].value_counts().items()}
        logger.info("%s: %d signals %s", ctx.task, outcome.written, counts)
        return result(
            store, ctx, {"signals": outcome}, time_column="as_of_ts", details={"directions": counts}
        )
