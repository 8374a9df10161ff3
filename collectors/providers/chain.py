"""A fallback chain of providers, per symbol: what the first cannot serve, the next is asked.

``provider: [alpaca, massive]`` on a task makes its collector talk to a
``ProviderChain``. For each call that takes symbols, the first provider is
asked for all of them; the symbols it could not serve (its
``symbol_errors``, after its own retries, or all of them when the call failed)
are asked of the next one, and so on. ``served_by`` counts, per provider,
the symbols it served in the last call; ``symbol_errors`` keeps, for each
symbol no provider served, the last provider's reason. When every provider
failed for every symbol, the first provider's error is raised (a transient
one stays transient, so the runner retries the task).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd

from collectors.providers.base import Provider
from orchestrator.errors import OrchestratorError

logger = logging.getLogger(__name__)


class ProviderChain:
    """Implements ``Provider`` over several providers, tried in order per symbol."""

    def __init__(self, providers: Sequence[Provider], universe: Sequence[str] = ()) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.providers = list(providers)
        self.universe_symbols = list(universe)  # the configured symbols, for ``universe``
        self.name = "+".join(provider.name for provider in self.providers)
        self.served_by: dict[str, int] = {}
        self.symbol_errors: dict[str, str] = {}

    def _per_symbol(
        self,
        symbols: Sequence[str],
        fetch: Callable[[Provider, list[str]], pd.DataFrame],
        symbol_column: str = "symbol",
    ) -> pd.DataFrame:
        self.served_by, self.symbol_errors = {}, {}
        remaining = list(symbols)
        frames: list[pd.DataFrame] = []
        first_error: OrchestratorError | None = None
        for provider in self.providers:
            if not remaining:
                break
            try:
                frame = fetch(provider, remaining)
                if len(frame):
                    frame = frame[frame[symbol_column].isin(remaining)]
            except OrchestratorError as error:
                first_error = first_error or error
                reason = f"{provider.name}: {error}"
                self.symbol_errors = dict.fromkeys(remaining, reason)
                logger.warning("%s failed for %d symbols: %s", provider.name, len(remaining), error)
                continue
            failed = dict(getattr(provider, "symbol_errors", {}) or {})
            served = set(frame[symbol_column]) if len(frame) else set()
            served_here = [symbol for symbol in remaining if symbol in served]
            self.served_by[provider.name] = len(served_here)
            frames.append(frame)
            remaining = [symbol for symbol in remaining if symbol not in served]
            self.symbol_errors = {
                symbol: failed.get(symbol, f"no data from {provider.name}") for symbol in remaining
            }
        if not frames and first_error is not None:
            raise first_error
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- the Provider methods -----------------------------------------------------

    def universe(self, as_of: datetime) -> pd.DataFrame:
        return self._per_symbol(
            self.universe_symbols, lambda provider, some: _universe_of(provider, some, as_of)
        )

    def daily_bars(self, symbols: Sequence[str], sessions: Sequence[date]) -> pd.DataFrame:
        return self._per_symbol(symbols, lambda p, some: p.daily_bars(some, sessions))

    def intraday_bars(
        self, symbols: Sequence[str], session: date, since: datetime, as_of: datetime
    ) -> pd.DataFrame:
        return self._per_symbol(
            symbols, lambda p, some: p.intraday_bars(some, session, since, as_of)
        )

    def news(self, symbols: Sequence[str], since: date, as_of: datetime) -> pd.DataFrame:
        return self._per_symbol(symbols, lambda p, some: p.news(some, since, as_of))

    def __getattr__(self, method: str) -> Any:
        # Kinds without a per-symbol fallback yet: the first provider answers.
        return getattr(self.providers[0], method)


def _universe_of(provider: Provider, symbols: list[str], as_of: datetime) -> pd.DataFrame:
    """``provider``'s universe asked for ``symbols`` only: a fallback asks for what is missing.

    A real provider's universe is its configured symbols; narrowing them to
    those still missing keeps a 5-a-minute plan from being spent on symbols the
    first provider already listed.
    """
    configured = getattr(provider, "symbols", None)
    if not isinstance(configured, list):
        return provider.universe(as_of)
    provider.symbols = list(symbols)  # type: ignore[attr-defined]
    try:
        return provider.universe(as_of)
    finally:
        provider.symbols = configured  # type: ignore[attr-defined]
