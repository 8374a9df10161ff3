"""The base of every real provider: each kind of data it does not serve refuses the same way.

A real provider serves a few kinds (``collectors.providers.registry``) and
subclasses ``ServesSome``, whose every method raises ``PermanentError`` naming
the providers that do serve that kind. ``--check-config`` refuses such a task
before it runs; this is what a direct call meets.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NoReturn

import pandas as pd

from collectors.providers.registry import providers_serving
from orchestrator.errors import PermanentError


def not_served(provider: str, kind: str) -> NoReturn:
    serving = ", ".join(providers_serving(kind)) or "none yet"
    raise PermanentError(
        f"{provider} does not serve {kind}; choose a provider that does (serving {kind}: {serving})"
    )


class ServesSome:
    """Every ``Provider`` method, refusing; a provider overrides those it serves."""

    name: str

    def universe(self, as_of: datetime) -> pd.DataFrame:
        not_served(self.name, "universe")

    def daily_bars(self, symbols: Sequence[str], sessions: Sequence[date]) -> pd.DataFrame:
        not_served(self.name, "daily_bars")

    def intraday_bars(
        self, symbols: Sequence[str], session: date, since: datetime, as_of: datetime
    ) -> pd.DataFrame:
        not_served(self.name, "intraday_bars")

    def fundamentals(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        not_served(self.name, "fundamentals")

    def insider_trades(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        not_served(self.name, "insider_trades")

    def analyst_ratings(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        not_served(self.name, "analyst_ratings")

    def economic_series(self, since: date, as_of: datetime) -> pd.DataFrame:
        not_served(self.name, "economic_series")

    def news(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        not_served(self.name, "news")

    def options_chain(self, symbols: Sequence[str], session: date, as_of: datetime) -> pd.DataFrame:
        not_served(self.name, "options_chain")

    def earnings_calendar(
        self, symbols: Sequence[str], since: date, as_of: datetime
    ) -> pd.DataFrame:
        not_served(self.name, "earnings")

    def earnings_results(
        self, symbols: Sequence[str], since: date, as_of: datetime
    ) -> pd.DataFrame:
        not_served(self.name, "earnings")
