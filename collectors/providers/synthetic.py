"""The synthetic provider: a deterministic market with no network and no keys.

Settings (the config's ``provider`` section): ``name: synthetic``, ``seed``
(int, default 42) and ``universe_size`` (default 50). The same (seed, symbol,
date) gives the same values in every process (see ``randomness``); prices
follow the exchange calendar (no bars on holidays, 210 one-minute bars on half
days); every row carries ``available_ts``, the moment it became knowable, and
no method returns a row stamped after the ``as_of`` it was given.

The generators live in ``synthetic_universe`` (symbols and traits),
``synthetic_prices`` (daily and intraday bars) and ``synthetic_events``
(fundamentals, earnings, insiders, analysts, macro, news, options).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd

from collectors.providers.synthetic_events import EventModel
from collectors.providers.synthetic_prices import ANCHOR, PriceModel, epoch_of_ordinal
from collectors.providers.synthetic_universe import SymbolProfiles, profiles, tickers
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

logger = logging.getLogger(__name__)

DEFAULT_SEED = 42
DEFAULT_UNIVERSE_SIZE = 50
MAX_UNIVERSE_SIZE = 20_000


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PermanentError(f"{what} must be timezone-aware, got {moment!r}")


class SyntheticProvider:
    """Implements ``collectors.providers.base.Provider`` from a seed."""

    name = "synthetic"

    def __init__(self, seed: int, universe_size: int, calendar: MarketCalendar) -> None:
        self.seed = seed
        self.universe_size = universe_size
        self.calendar = calendar
        self._prices = PriceModel(seed, calendar)
        self._events = EventModel(seed, self._prices)

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], calendar: MarketCalendar
    ) -> SyntheticProvider:
        """Build from the config's ``provider`` section; bad values raise ``PermanentError``."""
        try:
            seed = int(settings.get("seed", DEFAULT_SEED))
            size = int(settings.get("universe_size", DEFAULT_UNIVERSE_SIZE))
        except (TypeError, ValueError) as error:
            raise PermanentError(
                f"provider: seed and universe_size must be integers ({error})"
            ) from None
        if not 1 <= size <= MAX_UNIVERSE_SIZE:
            raise PermanentError(
                f"provider.universe_size: must be 1..{MAX_UNIVERSE_SIZE}, got {size}"
            )
        return cls(seed, size, calendar)

    def _profiles(self, symbols: Sequence[str]) -> SymbolProfiles:
        return profiles(self.seed, list(symbols))

    def universe(self, as_of: datetime) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        traits = self._profiles(tickers(self.universe_size))
        listed = int(epoch_of_ordinal(ANCHOR.toordinal(), 0))
        frame = pd.DataFrame(
            {
                "symbol": list(traits.symbols),
                "name": traits.name,
                "sector": traits.sector,
                "industry": traits.industry,
                "exchange": traits.exchange,
                "available_ts": listed,
            }
        )
        return frame[frame["available_ts"] <= as_of.timestamp()].reset_index(drop=True)

    def daily_bars(self, symbols: Sequence[str], sessions: Sequence[date]) -> pd.DataFrame:
        not_sessions = [day for day in sessions if not self.calendar.is_session(day)]
        if not_sessions:
            raise PermanentError(f"daily bars asked for non-sessions: {not_sessions[:3]}")
        return self._prices.daily_bars(self._profiles(symbols), sessions)

    def intraday_bars(
        self, symbols: Sequence[str], session: date, since: datetime, as_of: datetime
    ) -> pd.DataFrame:
        _require_aware(since, "since")
        _require_aware(as_of, "as_of")
        return self._prices.intraday_bars(self._profiles(symbols), session, since, as_of)

    def fundamentals(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        return self._events.fundamentals(self._profiles(symbols), since, as_of)

    def insider_trades(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        return self._events.insider_trades(self._profiles(symbols), since, as_of)

    def analyst_ratings(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        return self._events.analyst_ratings(self._profiles(symbols), since, as_of)

    def economic_series(self, since: date, as_of: datetime) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        return self._events.economic_series(since, as_of)

    def news(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        return self._events.news(self._profiles(symbols), since, as_of)

    def options_chain(self, symbols: Sequence[str], session: date, as_of: datetime) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        return self._events.options_chain(self._profiles(symbols), session, as_of)

    def earnings_calendar(
        self, symbols: Sequence[str], since: date, as_of: datetime
    ) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        return self._events.earnings_calendar(self._profiles(symbols), since, as_of)

    def earnings_results(
        self, symbols: Sequence[str], since: date, as_of: datetime
    ) -> pd.DataFrame:
        _require_aware(as_of, "as_of")
        return self._events.earnings_results(self._profiles(symbols), since, as_of)
