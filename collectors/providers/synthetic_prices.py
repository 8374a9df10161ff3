"""Synthetic prices: a jump-diffusion path per symbol, daily bars and 1-minute bars.

The log price of a symbol at the end of calendar day ``t`` is
``log(base) + beta * M(t) + I(t)``: a market walk ``M`` and an idiosyncratic
walk ``I`` with occasional jumps. Both walks are built in 64-day blocks: block
totals are drawn independently and cumulated from ``ANCHOR``; inside a block
the daily steps are bridged onto the block's total. So the value on any day
costs O(days since anchor / 64 + 64) draws, and - the invariant that matters -
it is the same whether one day or a year is asked for.

Weekends and holidays are part of the walk (their moves show up as the next
session's gap); the calendar only decides which days get a bar. Raw prices are
the economic path divided by the cumulative split factor; each bar carries its
``split_ratio`` (r-for-1 effective at that session's open, 1 otherwise) and the
cash ``dividend`` going ex that session, so adjusted series can be built
point-in-time from raw bars.

Intraday bars bridge the session's daily open to its close minute by minute
(U-shaped volatility and volume), so the first minute opens at the daily open
and the last closes at the daily close.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from collectors.providers.randomness import blake_keys, normal, uniform
from collectors.providers.synthetic_universe import SymbolProfiles
from orchestrator.errors import PermanentError
from orchestrator.market_calendar import MarketCalendar

ANCHOR = date(2000, 1, 3)
ANCHOR_ORDINAL = ANCHOR.toordinal()
# Prices are pinned to each symbol's base price (and split count) on this day, so the
# cross-section stays plausible for years around it instead of drifting since 2000.
REFERENCE = date(2024, 1, 2)
BLOCK_DAYS = 64
MARKET_VOL = 0.17
MARKET_DRIFT = 0.06
JUMP_RATE = 0.004  # per calendar day
JUMP_SCALE = 0.07
SPLIT_RATE = 0.02  # per 64-day block
SPLIT_RATIOS = (2.0, 2.0, 3.0, 4.0)
FULL_SESSION_MINUTES = 390


def epoch_of_ordinal(ordinal: np.ndarray | int, seconds_into_day: np.ndarray | float) -> np.ndarray:
    """Epoch seconds UTC of ``seconds_into_day`` after midnight UTC of a date ordinal."""
    return (np.asarray(ordinal, dtype=np.int64) - 719163) * 86400 + np.asarray(
        seconds_into_day, dtype=np.int64
    )


class PriceModel:
    """Daily and intraday prices for a seed; holds no data between calls."""

    def __init__(self, seed: int, calendar: MarketCalendar) -> None:
        self.seed = seed
        self.calendar = calendar

    # -- the walk ---------------------------------------------------------

    def _walk(
        self,
        kind: str,
        row_keys: np.ndarray,
        sigma: np.ndarray,
        mu: np.ndarray,
        ordinals: np.ndarray,
    ) -> np.ndarray:
        """Log level (rows x ordinals) of a bridged walk with jumps (``kind`` != market)."""
        offsets = np.asarray(ordinals, dtype=np.int64) - ANCHOR_ORDINAL
        if offsets.size and offsets.min() < 0:
            raise PermanentError(f"synthetic prices start on {ANCHOR}; asked for an earlier date")
        blocks, positions = np.divmod(offsets, BLOCK_DAYS)
        sigma, mu = sigma.reshape(-1, 1), mu.reshape(-1, 1)
        block_columns = blake_keys(self.seed, f"{kind}:block", range(int(blocks.max()) + 1))
        totals = sigma * np.sqrt(BLOCK_DAYS) * normal(row_keys, block_columns, 0) + mu * BLOCK_DAYS
        starts = np.concatenate([np.zeros((len(row_keys), 1)), np.cumsum(totals, axis=1)], axis=1)
        needed = np.unique(blocks)
        day_ordinals = (
            ANCHOR_ORDINAL + needed[:, None] * BLOCK_DAYS + np.arange(BLOCK_DAYS)
        ).ravel()
        day_columns = blake_keys(self.seed, f"{kind}:day", day_ordinals.tolist())
        steps = sigma * normal(row_keys, day_columns, 0) + mu
        if kind != "market":
            jumps = uniform(row_keys, day_columns, 2) < JUMP_RATE
            steps = steps + jumps * normal(row_keys, day_columns, 3) * JUMP_SCALE
        partial = np.cumsum(steps.reshape(len(row_keys), len(needed), BLOCK_DAYS), axis=2)
        fraction = (np.arange(BLOCK_DAYS) + 1.0) / BLOCK_DAYS
        bridged = (
            starts[:, needed, None]
            + partial
            - fraction * (partial[:, :, -1:] - totals[:, needed, None])
        )
        return bridged[:, np.searchsorted(needed, blocks), positions]

    def log_economic(self, profiles: SymbolProfiles, ordinals: np.ndarray) -> np.ndarray:
        """Log split-free price path (up to a per-symbol constant) at the end of each day."""
        market_keys = blake_keys(self.seed, "market", ["^MARKET"])
        daily = np.sqrt(365.0)
        market = self._walk(
            "market",
            market_keys,
            np.array([MARKET_VOL / daily]),
            np.array([MARKET_DRIFT / 365.0]),
            ordinals,
        )
        idio_vol = np.sqrt(
            np.maximum(profiles.annual_vol**2 - (profiles.beta * MARKET_VOL) ** 2, 0.01)
        )
        idio = self._walk(
            "idio",
            blake_keys(self.seed, "idio", profiles.symbols),
            idio_vol / daily,
            (profiles.annual_drift - profiles.beta * MARKET_DRIFT) / 365.0,
            ordinals,
        )
        return profiles.beta[:, None] * market + idio

    def log_split_factor(self, profiles: SymbolProfiles, ordinals: np.ndarray) -> np.ndarray:
        """Log of the cumulative split factor in force at the end of each day."""
        offsets = np.asarray(ordinals, dtype=np.int64) - ANCHOR_ORDINAL
        blocks, positions = np.divmod(offsets, BLOCK_DAYS)
        keys = blake_keys(self.seed, "split", profiles.symbols)
        columns = blake_keys(self.seed, "split:block", range(int(blocks.max()) + 1))
        happens = uniform(keys, columns, 0) < SPLIT_RATE
        split_day = np.minimum((uniform(keys, columns, 1) * BLOCK_DAYS).astype(np.int64), 63)
        ratio_index = np.minimum(
            (uniform(keys, columns, 2) * len(SPLIT_RATIOS)).astype(np.int64), 3
        )
        log_ratio = np.where(happens, np.log(np.asarray(SPLIT_RATIOS))[ratio_index], 0.0)
        before = np.concatenate([np.zeros((len(keys), 1)), np.cumsum(log_ratio, axis=1)], axis=1)
        in_block = np.where(positions >= split_day[:, blocks], log_ratio[:, blocks], 0.0)
        return before[:, blocks] + in_block

    # -- daily bars ---------------------------------------------------------

    def daily_arrays(
        self, profiles: SymbolProfiles, sessions: Sequence[date]
    ) -> dict[str, np.ndarray]:
        """Raw OHLCV, split ratio and dividend per (symbol, session), as 2-D arrays."""
        ordinals = np.array([day.toordinal() for day in sessions], dtype=np.int64)
        previous = np.array(
            [self.calendar.previous_session(day).toordinal() for day in sessions], dtype=np.int64
        )
        both = np.concatenate([ordinals, ordinals - 1, previous, [REFERENCE.toordinal()]])
        levels = self.log_economic(profiles, both)
        splits = self.log_split_factor(profiles, both)
        levels, splits = levels[:, :-1] - levels[:, -1:], splits[:, :-1] - splits[:, -1:]
        levels = levels + np.log(profiles.base_price)[:, None]
        count = len(sessions)
        log_close, log_eve = levels[:, :count], levels[:, count : 2 * count]
        split_now, split_previous = splits[:, :count], splits[:, 2 * count :]
        keys = blake_keys(self.seed, "bar", profiles.symbols)
        columns = blake_keys(self.seed, "bar", ordinals.tolist())
        session_vol = (profiles.annual_vol / np.sqrt(252.0))[:, None]
        log_open = log_eve + 0.25 * session_vol * normal(keys, columns, 0)
        top = np.maximum(log_open, log_close) + 0.5 * session_vol * np.abs(normal(keys, columns, 1))
        bottom = np.minimum(log_open, log_close) - 0.5 * session_vol * np.abs(
            normal(keys, columns, 2)
        )
        minutes = np.array([self._minutes(day) for day in sessions], dtype=np.float64)
        move = np.abs(log_close - log_open) / session_vol
        volume = (
            profiles.average_volume[:, None]
            * np.exp(0.35 * normal(keys, columns, 3))
            * (1.0 + 0.5 * move)
            * np.exp(split_now)
            * (minutes / FULL_SESSION_MINUTES)
        )
        raw = np.exp(-split_now)
        close = np.round(np.exp(log_close) * raw, 4)
        previous_close = np.exp(levels[:, 2 * count :] - split_previous)
        return {
            "open": np.round(np.exp(log_open) * raw, 4),
            "high": np.round(np.exp(top) * raw, 4),
            "low": np.round(np.exp(bottom) * raw, 4),
            "close": close,
            "volume": np.round(volume),
            "split_ratio": np.round(np.exp(split_now - split_previous), 6),
            "dividend": self._dividends(profiles, sessions, previous, previous_close),
        }

    def _minutes(self, session: date) -> int:
        hours = self.calendar.hours(session)
        return int((hours.close - hours.open).total_seconds() // 60)

    def _dividends(
        self,
        profiles: SymbolProfiles,
        sessions: Sequence[date],
        previous: np.ndarray,
        previous_close: np.ndarray,
    ) -> np.ndarray:
        """Cash dividend going ex at each session: quarterly, on the symbol's day of month."""
        months = np.array([day.month for day in sessions])
        month_start = np.array([day.replace(day=1).toordinal() for day in sessions])
        ordinals = np.array([day.toordinal() for day in sessions])
        target = month_start[None, :] + profiles.dividend_day[:, None] - 1
        ex_month = ((months[None, :] - 1 - profiles.dividend_phase[:, None]) % 3) == 0
        goes_ex = ex_month & (target > previous[None, :]) & (target <= ordinals[None, :])
        amount = profiles.dividend_yield[:, None] / 4.0 * previous_close
        return np.where(goes_ex, np.round(amount, 4), 0.0)

    def daily_bars(self, profiles: SymbolProfiles, sessions: Sequence[date]) -> pd.DataFrame:
        """Long frame of daily bars, one row per (symbol, session), ordered by symbol."""
        columns = [
            "symbol", "session", "open", "high", "low", "close", "volume",
            "split_ratio", "dividend", "available_ts",
        ]  # fmt: skip
        sessions = list(sessions)
        if not sessions or not profiles.symbols:
            return pd.DataFrame(columns=columns)
        arrays = self.daily_arrays(profiles, sessions)
        closes = np.array(
            [self.calendar.hours(day).close.timestamp() for day in sessions], np.int64
        )
        count = len(profiles.symbols)
        frame = pd.DataFrame(
            {
                "symbol": np.repeat(np.asarray(profiles.symbols, dtype=object), len(sessions)),
                "session": np.tile(
                    np.array([day.isoformat() for day in sessions], dtype=object), count
                ),
                **{name: values.ravel() for name, values in arrays.items()},
                "available_ts": np.tile(closes, count),
            }
        )
        return frame[columns]

    # -- intraday bars --------------------------------------------------------

    def intraday_bars(
        self, profiles: SymbolProfiles, session: date, since: datetime, as_of: datetime
    ) -> pd.DataFrame:
        """1-minute bars of ``session`` with ``since <= bar_ts`` and ``bar_ts + 60 <= as_of``."""
        columns = [
            "symbol",
            "session",
            "bar_ts",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "available_ts",
        ]
        hours = self.calendar.hours(session)
        open_ts = int(hours.open.timestamp())
        minutes = self._minutes(session)
        first = max(0, -(-(int(since.timestamp()) - open_ts) // 60))
        last = min(minutes, (int(as_of.timestamp()) - open_ts) // 60)  # bars [first, last)
        if last <= first or not profiles.symbols:
            return pd.DataFrame(columns=columns)
        daily = self.daily_arrays(profiles, [session])
        log_open, log_close = np.log(daily["open"]), np.log(daily["close"])
        keys = blake_keys(self.seed, "minute", profiles.symbols)
        minute_columns = blake_keys(self.seed, f"minute:{session.isoformat()}", range(minutes))
        shape = (np.linspace(-1.0, 1.0, minutes) ** 2) * 1.5 + 1.0
        shape = shape / np.sqrt(np.mean(shape**2))
        minute_vol = (profiles.annual_vol / np.sqrt(252.0) / np.sqrt(minutes))[:, None] * shape
        steps = minute_vol * normal(keys, minute_columns, 0)
        path = np.cumsum(steps, axis=1)
        fraction = (np.arange(minutes) + 1.0) / minutes
        path = log_open + path - fraction * (path[:, -1:] - (log_close - log_open))
        opens = np.concatenate([log_open, path[:, :-1]], axis=1)[:, first:last]
        path = path[:, first:last]
        # Only the requested minutes need wicks and volumes: a tick asks for one or two.
        window_columns = minute_columns[first:last]
        wick = 0.3 * minute_vol[:, first:last]
        highs = np.maximum(opens, path) + wick * np.abs(normal(keys, window_columns, 1))
        lows = np.minimum(opens, path) - wick * np.abs(normal(keys, window_columns, 2))
        # exp(0.3 N) has mean exp(0.045): dividing by it keeps the day's total near daily volume.
        share = (
            shape[first:last] / shape.sum() * np.exp(0.3 * normal(keys, window_columns, 3) - 0.045)
        )
        volumes = np.round(daily["volume"] * share)
        bar_ts = open_ts + 60 * np.arange(first, last, dtype=np.int64)
        width = last - first
        count = len(profiles.symbols)
        frame = pd.DataFrame(
            {
                "symbol": np.repeat(np.asarray(profiles.symbols, dtype=object), width),
                "session": session.isoformat(),
                "bar_ts": np.tile(bar_ts, count),
                "open": np.round(np.exp(opens), 4).ravel(),
                "high": np.round(np.exp(highs), 4).ravel(),
                "low": np.round(np.exp(lows), 4).ravel(),
                "close": np.round(np.exp(path), 4).ravel(),
                "volume": volumes.ravel(),
                "available_ts": np.tile(bar_ts + 60, count),
            }
        )
        return frame[columns]


def utc(epoch: int) -> datetime:
    """An epoch second as a UTC-aware datetime."""
    return datetime.fromtimestamp(epoch, UTC)
