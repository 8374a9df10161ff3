"""The provider interface: one method per kind of market data.

A provider answers "what was knowable at ``as_of``". Every method returns a
``pandas.DataFrame`` in the column layout of the matching market-store table
(see ``collectors.market_store.TABLES``): timestamps as ``int64`` epoch
seconds UTC in columns ending ``_ts``, dates as ISO ``YYYY-MM-DD`` strings.

Invariants every implementation keeps:

- no row has ``available_ts`` after the ``as_of`` it was asked for;
- rows are immutable once available (a restatement is a new row with its own
  key), so storing the same answer twice changes nothing;
- retryable trouble (rate limit, timeout, 5xx) raises
  ``orchestrator.errors.TransientError`` with the provider's ``retry_after``
  hint; anything retrying cannot fix raises ``PermanentError``.

Real providers (keys from the environment, never from the config file) plug in
by implementing this Protocol and registering in ``collectors.providers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class Provider(Protocol):
    """A source of market data; all times UTC-aware, all frames per the store layout."""

    name: str

    def universe(self, as_of: datetime) -> pd.DataFrame:
        """Listed assets: symbol, name, sector, industry, exchange, available_ts."""
        ...

    def daily_bars(self, symbols: Sequence[str], sessions: Sequence[date]) -> pd.DataFrame:
        """End-of-day raw OHLCV with split_ratio and dividend per (symbol, session).

        Only completed sessions are asked for; ``available_ts`` is the close.
        """
        ...

    def intraday_bars(
        self, symbols: Sequence[str], session: date, since: datetime, as_of: datetime
    ) -> pd.DataFrame:
        """1-minute bars with ``since <= bar_ts`` and ``bar_ts + 60 <= as_of``."""
        ...

    def fundamentals(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Quarterly statements filed from ``since`` up to ``as_of``."""
        ...

    def insider_trades(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Form-4-like insider transactions filed from ``since`` up to ``as_of``."""
        ...

    def analyst_ratings(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Analyst rating changes published from ``since`` up to ``as_of``."""
        ...

    def economic_series(self, since: date, as_of: datetime) -> pd.DataFrame:
        """Macro observations (series, period, value) released from ``since`` to ``as_of``."""
        ...

    def news(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        """Headlines published from ``since`` up to ``as_of``."""
        ...

    def options_chain(self, symbols: Sequence[str], session: date, as_of: datetime) -> pd.DataFrame:
        """An options snapshot (a few expiries x strikes) quoted at ``as_of``."""
        ...

    def earnings_calendar(
        self, symbols: Sequence[str], since: date, as_of: datetime
    ) -> pd.DataFrame:
        """Scheduled earnings reports announced by ``as_of``, reporting on/after ``since``."""
        ...

    def earnings_results(
        self, symbols: Sequence[str], since: date, as_of: datetime
    ) -> pd.DataFrame:
        """Reported earnings (actual, estimate, surprise) from ``since`` up to ``as_of``."""
        ...
