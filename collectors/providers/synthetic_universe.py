"""The synthetic universe: tickers, names, sectors and per-symbol traits.

Symbol ``i`` is the same ticker whatever the universe size or seed (a fixed
bijection of the index onto four-letter codes), so a 50-symbol universe is the
first 50 of the 5,000-symbol one. Everything else about a symbol (name,
sector, volatility, dividend policy...) is a pure function of
``(seed, symbol)`` through ``randomness``, so it needs no index and no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from collectors.providers.randomness import blake_keys, pick, uniform

_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_CODE_SPACE = 26**4
_CODE_MULTIPLIER = 7919  # coprime with 26**4, so index -> code is a bijection

SECTORS = (
    "Technology",
    "Health Care",
    "Financials",
    "Consumer Discretionary",
    "Consumer Staples",
    "Industrials",
    "Energy",
    "Materials",
    "Utilities",
    "Real Estate",
    "Communication Services",
)
_SECTOR_VOL = np.array([0.38, 0.34, 0.28, 0.36, 0.2, 0.27, 0.4, 0.32, 0.18, 0.26, 0.33])
_NAME_FIRST = (
    "Apex", "Blue", "Cedar", "Delta", "Evergreen", "Falcon", "Granite", "Harbor", "Iron",
    "Juniper", "Keystone", "Lumen", "Meridian", "Northern", "Orion", "Pioneer", "Quantum",
    "Redwood", "Summit", "Titan", "Union", "Vertex", "Willow", "Zenith",
)  # fmt: skip
_NAME_SECOND = (
    "Analytics", "Bio", "Capital", "Dynamics", "Energy", "Foods", "Genomics", "Holdings",
    "Industries", "Labs", "Logistics", "Materials", "Networks", "Pharma", "Power", "Realty",
    "Robotics", "Semiconductor", "Software", "Systems", "Telecom", "Therapeutics",
)  # fmt: skip
_NAME_SUFFIX = ("Inc.", "Corp.", "Group", "Co.", "Ltd.", "plc")
_INDUSTRY_KIND = ("Products", "Services", "Equipment", "Platforms")
_EXCHANGES = ("XNYS", "XNAS")


def tickers(count: int) -> list[str]:
    """The first ``count`` tickers, stable by index."""
    if not 0 < count <= _CODE_SPACE:
        raise ValueError(f"universe size must be 1..{_CODE_SPACE}, got {count}")
    codes = (np.arange(count, dtype=np.int64) * _CODE_MULTIPLIER + 1) % _CODE_SPACE
    digits = np.stack([(codes // 26**power) % 26 for power in (3, 2, 1, 0)], axis=1)
    return ["".join(row) for row in _LETTERS[digits]]


@dataclass(frozen=True)
class SymbolProfiles:
    """Per-symbol traits as arrays aligned with ``symbols``."""

    symbols: tuple[str, ...]
    sector: np.ndarray
    name: np.ndarray
    industry: np.ndarray
    exchange: np.ndarray
    base_price: np.ndarray
    annual_vol: np.ndarray
    annual_drift: np.ndarray
    beta: np.ndarray
    dividend_yield: np.ndarray
    dividend_phase: np.ndarray
    dividend_day: np.ndarray
    average_volume: np.ndarray
    reports_before_open: np.ndarray
    earnings_yield: np.ndarray
    shares_outstanding: np.ndarray
    revenue_per_share: np.ndarray
    net_margin: np.ndarray
    growth: np.ndarray


def profiles(seed: int, symbols: Sequence[str]) -> SymbolProfiles:
    """Traits of ``symbols``; a pure function of ``(seed, symbol)``."""
    keys = blake_keys(seed, "profile", symbols)
    column = np.zeros(1, dtype=np.uint64)

    def draw(index: int) -> np.ndarray:
        return uniform(keys, column, index)[:, 0]

    sector_index = np.minimum((draw(0) * len(SECTORS)).astype(np.int64), len(SECTORS) - 1)
    sector = np.asarray(SECTORS, dtype=object)[sector_index]
    name = (
        pick(_NAME_FIRST, draw(1))
        + " "
        + pick(_NAME_SECOND, draw(2))
        + " "
        + pick(_NAME_SUFFIX, draw(3))
    )
    industry = sector + " " + pick(_INDUSTRY_KIND, draw(4))
    pays_dividend = draw(9) < 0.55
    return SymbolProfiles(
        symbols=tuple(symbols),
        sector=sector,
        name=name,
        industry=industry,
        exchange=pick(_EXCHANGES, draw(5)),
        base_price=np.exp(np.log(15.0) + draw(6) * np.log(400.0 / 15.0)),
        annual_vol=_SECTOR_VOL[sector_index] * (0.7 + 0.8 * draw(7)),
        annual_drift=0.02 + 0.12 * (draw(8) - 0.5),
        beta=0.6 + 0.9 * draw(10),
        dividend_yield=np.where(pays_dividend, 0.005 + 0.04 * draw(11), 0.0),
        dividend_phase=np.minimum((draw(12) * 3).astype(np.int64), 2),
        dividend_day=5 + np.minimum((draw(13) * 20).astype(np.int64), 19),
        average_volume=np.exp(np.log(2e5) + draw(14) * np.log(250.0)),
        reports_before_open=draw(15) < 0.5,
        earnings_yield=0.02 + 0.06 * draw(16),
        shares_outstanding=np.round(np.exp(np.log(5e7) + draw(17) * np.log(100.0)), -3),
        revenue_per_share=5.0 + 60.0 * draw(18),
        net_margin=0.04 + 0.2 * draw(19),
        growth=0.12 * (draw(20) - 0.3),
    )
