"""What each provider serves and needs: the light catalogue read by config checks and the CLI.

Importing this module imports no HTTP library: ``orchestrator --check-config``
and ``orchestrator providers`` read it, and each provider's code is imported
only when a task uses it (``collectors.providers.get_provider``).

A *kind* of data is one method of ``collectors.providers.base.Provider``;
``COLLECTOR_KINDS`` says which kind each built-in collector asks its provider
for (derived collectors, such as features and signals, ask none).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orchestrator.errors import PermanentError

KINDS = (
    "universe",
    "daily_bars",
    "intraday_bars",
    "fundamentals",
    "insider_trades",
    "analyst_ratings",
    "economic_series",
    "news",
    "options_chain",
    "earnings",
)
COLLECTOR_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "assets": "universe",
        "prices_daily": "daily_bars",
        "price_data": "intraday_bars",
        "fundamentals": "fundamentals",
        "insider": "insider_trades",
        "analyst": "analyst_ratings",
        "economic": "economic_series",
        "news": "news",
        "options": "options_chain",
        "earnings": "earnings",
    }
)


@dataclass(frozen=True)
class Credential:
    """An environment variable a provider needs, and where its value comes from."""

    variable: str
    where: str  # e.g. "the Alpaca dashboard, API Keys"
    aliases: tuple[str, ...] = ()

    def value(self) -> str | None:
        for name in (self.variable, *self.aliases):
            if os.environ.get(name):
                return os.environ[name]
        return None

    def require(self, provider: str) -> str:
        found = self.value()
        if found is None:
            raise PermanentError(
                f"{provider}: set {self.variable} in the environment or .env (from {self.where})"
            )
        return found


@dataclass(frozen=True)
class ProviderInfo:
    """One provider: the kinds it serves, its keys, its settings' defaults, its code."""

    name: str
    serves: frozenset[str]
    factory: str  # "module:callable", called as callable(settings, calendar)
    credentials: tuple[Credential, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    about: str = ""
    # How long after a bar's minute ends the provider serves it final: the intraday
    # loop's default `settle_seconds` (a bar provider's own figure; 2 s unless measured).
    bar_settle_seconds: float = 2.0


PROVIDERS: Mapping[str, ProviderInfo] = MappingProxyType(
    {
        info.name: info
        for info in (
            ProviderInfo(
                "synthetic",
                frozenset(KINDS),
                "collectors.providers.synthetic:SyntheticProvider.from_settings",
                about="a deterministic market built in: no keys, no network",
                bar_settle_seconds=0.0,  # its bars are a function of the minute: final at once
            ),
            ProviderInfo(
                "alpaca",
                frozenset({"universe", "daily_bars", "intraday_bars", "news"}),
                "collectors.providers.alpaca:AlpacaProvider.from_settings",
                (
                    Credential("ALPACA_API_KEY_ID", "the Alpaca dashboard, API Keys"),
                    Credential("ALPACA_API_SECRET_KEY", "the Alpaca dashboard, API Keys"),
                ),
                {
                    "feed": "iex",
                    "data_url": "https://data.alpaca.markets",
                    "trading_url": "https://paper-api.alpaca.markets",
                },
                "Alpaca Market Data v2: bars (IEX free, SIP paid), assets, news",
            ),
            ProviderInfo(
                "massive",
                frozenset({"universe", "daily_bars", "intraday_bars", "news"}),
                "collectors.providers.massive:MassiveProvider.from_settings",
                (
                    Credential(
                        "MASSIVE_API_KEY",
                        "the Massive (formerly Polygon.io) dashboard, API Keys",
                        aliases=("POLYGON_API_KEY",),
                    ),
                ),
                {"base_url": "https://api.massive.com"},
                "Massive (formerly Polygon.io): aggregates, grouped daily bars, tickers, news",
            ),
            ProviderInfo(
                "sec",
                frozenset({"fundamentals", "insider_trades"}),
                "collectors.providers.sec:SecProvider.from_settings",
                (
                    Credential(
                        "SEC_USER_AGENT",
                        "you: SEC requires a name and an e-mail address, "
                        "e.g. 'Jane Doe jane@example.com'",
                    ),
                ),
                {"base_url": "https://data.sec.gov", "www_url": "https://www.sec.gov"},
                "SEC EDGAR: company facts (fundamentals as filed), Form 4 insider trades",
            ),
            ProviderInfo(
                "fred",
                frozenset({"economic_series"}),
                "collectors.providers.fred:FredProvider.from_settings",
                (Credential("FRED_API_KEY", "fred.stlouisfed.org, My Account, API Keys"),),
                {
                    "base_url": "https://api.stlouisfed.org",
                    "series": ["DGS10", "CPIAUCSL", "UNRATE", "FEDFUNDS"],
                },
                "FRED / ALFRED: economic series in the vintage known at each moment",
            ),
            ProviderInfo(
                "finnhub",
                frozenset({"analyst_ratings", "earnings", "news"}),
                "collectors.providers.finnhub:FinnhubProvider.from_settings",
                (Credential("FINNHUB_API_KEY", "finnhub.io, Dashboard, API key"),),
                {"base_url": "https://finnhub.io/api/v1"},
                "Finnhub: recommendation trends, earnings calendar, company news",
            ),
            ProviderInfo(
                "cboe",
                frozenset({"options_chain"}),
                "collectors.providers.cboe:CboeProvider.from_settings",
                (),
                {"base_url": "https://cdn.cboe.com"},
                "Cboe delayed quotes: option chains, about 15 minutes delayed, no key",
            ),
        )
    }
)


def providers_serving(kind: str) -> list[str]:
    """Names of the providers that serve ``kind``, sorted."""
    return sorted(name for name, info in PROVIDERS.items() if kind in info.serves)
