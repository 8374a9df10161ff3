"""Vectorised Black-Scholes prices and deltas for European options.

Used by the synthetic provider to quote option chains around spot. The normal
CDF uses the Abramowitz-Stegun 7.1.26 ``erf`` (absolute error < 1.5e-7), which
is ample for synthetic quotes and keeps the module numpy-only.
"""

from __future__ import annotations

import numpy as np


def _erf(values: np.ndarray) -> np.ndarray:
    sign = np.sign(values)
    x = np.abs(values)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-x * x))


def normal_cdf(values: np.ndarray) -> np.ndarray:
    """Standard normal CDF, elementwise."""
    return 0.5 * (1.0 + _erf(np.asarray(values, dtype=np.float64) / np.sqrt(2.0)))


def price_and_delta(
    spot: np.ndarray,
    strike: np.ndarray,
    years: np.ndarray,
    rate: float,
    volatility: np.ndarray,
    is_call: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Option value and delta; ``years`` and ``volatility`` must be positive."""
    sqrt_t = np.sqrt(years)
    d1 = (np.log(spot / strike) + (rate + 0.5 * volatility**2) * years) / (volatility * sqrt_t)
    d2 = d1 - volatility * sqrt_t
    discount = np.exp(-rate * years)
    call = spot * normal_cdf(d1) - strike * discount * normal_cdf(d2)
    put = call - spot + strike * discount  # put-call parity
    price = np.where(is_call, call, put)
    delta = np.where(is_call, normal_cdf(d1), normal_cdf(d1) - 1.0)
    return price, delta
