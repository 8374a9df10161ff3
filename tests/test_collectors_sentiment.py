"""Sentiment scoring: the finance overlay points the right way."""

from __future__ import annotations

import pandas as pd
import pytest

from collectors.sentiment import FINANCE_OVERLAY, analyzer, score_headlines


@pytest.mark.parametrize(
    ("headline", "sign"),
    [
        ("Apex Labs beats Q3 estimates", 1),
        ("Apex Labs tops forecasts", 1),
        ("Broker upgrades APEX", 1),
        ("Apex Labs misses Q3 estimates", -1),
        ("Apex Labs shares plunge", -1),
        ("Broker downgrades APEX", -1),
        ("Apex Labs downgrade", -1),
        ("Apex Labs shares", 0),
    ],
)
def test_overlay_signs(headline, sign):
    compound = score_headlines(pd.Series([headline]))["compound"].iloc[0]
    if sign == 0:
        assert compound == 0.0
    else:
        assert compound * sign > 0.2


def test_plain_vader_gets_these_wrong_which_is_why_the_overlay_exists():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    plain = SentimentIntensityAnalyzer()
    assert plain.polarity_scores("Apex Labs shares")["compound"] > 0
    assert plain.polarity_scores("Apex Labs shares plunge")["compound"] >= 0


def test_analyzers_do_not_share_a_lexicon():
    first = analyzer()
    first.lexicon["beats"] = -4.0
    assert analyzer().lexicon["beats"] == FINANCE_OVERLAY["beats"]
