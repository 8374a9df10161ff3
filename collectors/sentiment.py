"""News sentiment: VADER scores of stored headlines, with a finance overlay lexicon.

VADER is tuned on social media, where "shares" is a friendly word and
"beats"/"plunges"/"downgrade" are unknown; ``FINANCE_OVERLAY`` fixes those
(valence on VADER's -4..+4 scale). Only headlines published at or before
``ctx.as_of`` and not yet scored are scored; a score inherits the article's
``available_ts``, so features see a headline's sentiment exactly when they
could see the headline.
"""

from __future__ import annotations

import logging
from types import MappingProxyType

import pandas as pd
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from collectors.context import CollectContext, CollectResult
from collectors.market_store import epoch
from collectors.support import open_store, result

logger = logging.getLogger(__name__)


FINANCE_OVERLAY = MappingProxyType(
    {
        "beats": 2.0, "beat": 1.8, "tops": 1.8, "surge": 2.2, "surges": 2.2, "soars": 2.5,
        "soar": 2.5, "rallies": 2.0, "jumps": 1.5, "upgrade": 2.0, "upgrades": 2.0,
        "upgraded": 2.0, "outperform": 1.8, "raises": 1.2, "record": 1.0, "buyback": 1.0,
        "misses": -2.0, "miss": -2.0, "missed": -2.0, "plunge": -3.0, "plunges": -3.0,
        "plunged": -3.0, "tumbles": -2.5, "slumps": -2.3, "slump": -2.3, "sinks": -2.0,
        "downgrade": -2.0, "downgrades": -2.0, "downgraded": -2.0, "underperform": -1.8,
        "cuts": -1.5, "probe": -1.5, "recall": -1.5, "lawsuit": -2.0, "bankruptcy": -3.2,
        "shares": 0.0, "share": 0.0, "stock": 0.0, "flat": 0.0,
    }
)  # fmt: skip


def analyzer() -> SentimentIntensityAnalyzer:
    """A VADER analyzer with the finance overlay (a fresh one: no shared mutable state)."""
    instance = SentimentIntensityAnalyzer()
    instance.lexicon.update(FINANCE_OVERLAY)
    return instance


def score_headlines(headlines: pd.Series) -> pd.DataFrame:
    """compound, positive, negative, neutral for each headline (index preserved)."""
    vader = analyzer()
    scores = [vader.polarity_scores(text) for text in headlines]
    frame = pd.DataFrame.from_records(scores, index=headlines.index)
    if frame.empty:
        return pd.DataFrame(columns=["compound", "positive", "negative", "neutral"])
    return frame.rename(columns={"pos": "positive", "neg": "negative", "neu": "neutral"})


def collect(ctx: CollectContext) -> CollectResult:
    with open_store(ctx) as store:
        pending = store.query(
            "SELECT n.article_id, n.symbol, n.headline, n.available_ts FROM news n "
            "LEFT JOIN news_sentiment s ON s.article_id = n.article_id "
            "WHERE n.available_ts <= ? AND s.article_id IS NULL",
            (epoch(ctx.as_of),),
        )
        if pending.empty:
            pending = pd.DataFrame(columns=["article_id", "symbol", "headline", "available_ts"])
        scored = pd.concat([pending, score_headlines(pending["headline"])], axis=1)
        outcome = store.store(
            ctx.task, "news_sentiment", scored.drop(columns="headline"), as_of=ctx.as_of
        )
        logger.info("%s: %d headlines scored", ctx.task, outcome.written)
        return result(store, ctx, {"news_sentiment": outcome})
