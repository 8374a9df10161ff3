"""Synthetic company events, news, macro series and option chains.

Each generator is a pure function of (seed, symbol, date) through
``randomness`` and returns only rows whose ``available_ts`` is at or before
the ``as_of`` asked for, so the same call at a later ``as_of`` returns a
superset with identical old rows. Times of day (UTC) are fixed by kind:
analyst notes 12:00-13:30 (pre-market), filings and after-close reports 21:00+,
macro releases 12:30, news around the clock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from collectors.providers.black_scholes import price_and_delta
from collectors.providers.randomness import blake_keys, normal, pick, uniform
from collectors.providers.synthetic_prices import (
    ANCHOR,
    REFERENCE,
    PriceModel,
    epoch_of_ordinal,
)
from collectors.providers.synthetic_universe import SymbolProfiles

HOUR = 3600
_FIRMS = (
    "Goldberg Sachs", "Morgan Stanton", "JP Morgenstern", "Barclay Bros", "Citadel Research",
    "UBX", "Deutsch Capital", "Jefferson", "Piper Sandberg", "Raymond Jameson",
)  # fmt: skip
_INSIDERS = ("CEO", "CFO", "COO", "Director", "General Counsel", "10% Owner")
_NEWS_SOURCES = ("Wire Service", "Market Daily", "Finance Journal", "Street Report")
_POSITIVE = (
    "{name} beats {quarter} estimates as revenue tops forecasts",
    "{name} shares surge after {firm} upgrade",
    "{firm} upgrades {symbol} to buy on strong demand",
    "{name} raises full-year outlook",
    "{name} soars on record quarterly sales",
)
_NEGATIVE = (
    "{name} misses {quarter} estimates, shares plunge",
    "{firm} downgrades {symbol} amid weak guidance",
    "{name} tumbles after regulators open probe",
    "{name} cuts outlook as demand slumps",
    "{name} faces lawsuit over product recall",
)
_NEUTRAL = (
    "{name} to present at industry conference",
    "{name} shares trade flat ahead of earnings",
    "{name} announces board appointment",
    "{name} schedules {quarter} earnings call",
    "{name} completes previously announced acquisition",
)
# series id, frequency, long-run mean, AR(1) coefficient, shock size, release lag (days)
ECONOMIC_SERIES = (
    ("CPI_YOY", "monthly", 2.6, 0.93, 0.25, 12),
    ("UNEMPLOYMENT_RATE", "monthly", 4.8, 0.97, 0.15, 4),
    ("FED_FUNDS_RATE", "monthly", 2.5, 0.985, 0.2, 1),
    ("ISM_PMI", "monthly", 52.0, 0.8, 1.8, 1),
    ("INITIAL_CLAIMS", "weekly", 260.0, 0.9, 12.0, 5),
)
OPTION_MONEYNESS = np.array([0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15])
OPTION_EXPIRIES = 3
RISK_FREE_RATE = 0.04


def _epoch(day: date, seconds: int = 0) -> int:
    return int(epoch_of_ordinal(np.array([day.toordinal()]), seconds)[0])


def quarter_ends(start: date, end: date) -> list[date]:
    """Calendar quarter ends from ``start`` to ``end``, both included."""
    ends = []
    for year in range(start.year, end.year + 1):
        for month, day in ((3, 31), (6, 30), (9, 30), (12, 31)):
            if start <= date(year, month, day) <= end:
                ends.append(date(year, month, day))
    return ends


def _long(profiles: SymbolProfiles, columns: int, **values: np.ndarray) -> pd.DataFrame:
    """A long frame from (symbols x columns) arrays plus a symbol column."""
    frame = {"symbol": np.repeat(np.asarray(profiles.symbols, dtype=object), columns)}
    frame.update({name: np.asarray(array).ravel() for name, array in values.items()})
    return pd.DataFrame(frame)


class EventModel:
    """Generators for every non-price kind of data."""

    def __init__(self, seed: int, prices: PriceModel) -> None:
        self.seed = seed
        self.prices = prices
        self.calendar = prices.calendar

    # -- fundamentals and earnings -------------------------------------------

    def _quarterly(self, profiles: SymbolProfiles, since: date, as_of: datetime) -> pd.DataFrame:
        """Every quarter whose report could fall in [since, as_of], with all its dates."""
        periods = quarter_ends(since - timedelta(days=120), as_of.date())
        if not periods or not profiles.symbols:
            return pd.DataFrame()
        ordinals = np.array([period.toordinal() for period in periods])
        keys = blake_keys(self.seed, "quarter", profiles.symbols)
        columns = blake_keys(self.seed, "quarter", ordinals.tolist())
        years = (ordinals - REFERENCE.toordinal()) / 365.25
        revenue = (
            profiles.revenue_per_share[:, None]
            * profiles.shares_outstanding[:, None]
            / 4.0
            * np.exp(profiles.growth[:, None] * years + 0.04 * normal(keys, columns, 0))
        )
        margin = profiles.net_margin[:, None] + 0.03 * normal(keys, columns, 1)
        net_income = revenue * margin
        eps = np.round(net_income / profiles.shares_outstanding[:, None], 2)
        estimate = np.round(eps - 0.06 * np.abs(eps) * normal(keys, columns, 2) - 0.01, 2)
        # Report date: 18-31 days after the quarter, moved to the next session.
        report_day = ordinals + 18 + (uniform(keys, columns, 3) * 14).astype(np.int64)
        sessions = self.calendar.sessions_in_range(
            date.fromordinal(int(report_day.min())),
            date.fromordinal(int(report_day.max()) + 7),
        )
        session_ordinals = np.array([day.toordinal() for day in sessions])
        report_day = session_ordinals[np.searchsorted(session_ordinals, report_day)]
        report_hour = np.where(profiles.reports_before_open, 12 * HOUR, 21 * HOUR)[:, None]
        filed_day = report_day + 7 + (uniform(keys, columns, 4) * 10).astype(np.int64)
        count = len(periods)
        return _long(
            profiles,
            count,
            period_end=np.tile(
                np.array([period.isoformat() for period in periods], dtype=object), len(keys)
            ),
            fiscal_period=np.tile(
                np.array([f"{p.year}Q{(p.month - 1) // 3 + 1}" for p in periods], dtype=object),
                len(keys),
            ),
            revenue=np.round(revenue, -3),
            net_income=np.round(net_income, -3),
            eps=eps,
            eps_estimate=estimate,
            shares_outstanding=np.broadcast_to(profiles.shares_outstanding[:, None], eps.shape),
            total_assets=np.round(revenue * (6.0 + 2.0 * uniform(keys, columns, 5)), -3),
            total_debt=np.round(revenue * (2.0 * uniform(keys, columns, 6)), -3),
            report_ordinal=report_day,
            reported_ts=epoch_of_ordinal(report_day, report_hour),
            announced_ts=epoch_of_ordinal(report_day - 21, 12 * HOUR),
            filed_ts=epoch_of_ordinal(filed_day, 21 * HOUR + 30 * 60),
        )

    def fundamentals(self, profiles: SymbolProfiles, since: date, as_of: datetime) -> pd.DataFrame:
        quarterly = self._quarterly(profiles, since, as_of)
        columns = [
            "symbol", "period_end", "filing_id", "fiscal_period", "revenue", "net_income", "eps",
            "shares_outstanding", "total_assets", "total_debt", "available_ts",
        ]  # fmt: skip
        if quarterly.empty:
            return pd.DataFrame(columns=columns)
        quarterly["available_ts"] = quarterly["filed_ts"]
        # One filing per quarter: the synthetic market never restates.
        quarterly["filing_id"] = "synthetic-" + quarterly["symbol"] + "-" + quarterly["period_end"]
        keep = (quarterly["filed_ts"] <= as_of.timestamp()) & (
            quarterly["filed_ts"] >= _epoch(since)
        )
        return quarterly.loc[keep, columns].reset_index(drop=True)

    def earnings_calendar(
        self, profiles: SymbolProfiles, since: date, as_of: datetime
    ) -> pd.DataFrame:
        quarterly = self._quarterly(profiles, since, as_of + timedelta(days=40))
        columns = [
            "symbol",
            "fiscal_period",
            "report_date",
            "timing",
            "eps_estimate",
            "available_ts",
        ]
        if quarterly.empty:
            return pd.DataFrame(columns=columns)
        quarterly["report_date"] = [
            date.fromordinal(int(o)).isoformat() for o in quarterly["report_ordinal"]
        ]
        quarterly["timing"] = np.where(quarterly["reported_ts"] % 86400 < 13 * HOUR, "BMO", "AMC")
        quarterly["available_ts"] = quarterly["announced_ts"]
        keep = (quarterly["announced_ts"] <= as_of.timestamp()) & (
            quarterly["report_ordinal"] >= since.toordinal()
        )
        return quarterly.loc[keep, columns].reset_index(drop=True)

    def earnings_results(
        self, profiles: SymbolProfiles, since: date, as_of: datetime
    ) -> pd.DataFrame:
        quarterly = self._quarterly(profiles, since, as_of)
        columns = [
            "symbol", "fiscal_period", "report_date", "eps_actual", "eps_estimate",
            "surprise_pct", "available_ts",
        ]  # fmt: skip
        if quarterly.empty:
            return pd.DataFrame(columns=columns)
        quarterly["report_date"] = [
            date.fromordinal(int(o)).isoformat() for o in quarterly["report_ordinal"]
        ]
        quarterly["eps_actual"] = quarterly["eps"]
        base = quarterly["eps_estimate"].abs().clip(lower=0.01)
        quarterly["surprise_pct"] = (
            (quarterly["eps"] - quarterly["eps_estimate"]) / base * 100
        ).round(2)
        quarterly["available_ts"] = quarterly["reported_ts"]
        keep = (quarterly["reported_ts"] <= as_of.timestamp()) & (
            quarterly["report_ordinal"] >= since.toordinal()
        )
        return quarterly.loc[keep, columns].reset_index(drop=True)

    # -- per-session events ------------------------------------------------------

    def _session_grid(self, since: date, as_of: datetime) -> list[date]:
        start = max(since, ANCHOR + timedelta(days=70))
        return self.calendar.sessions_in_range(start, as_of.date()) if start <= as_of.date() else []

    def insider_trades(
        self, profiles: SymbolProfiles, since: date, as_of: datetime
    ) -> pd.DataFrame:
        columns = [
            "symbol", "filing_id", "insider_role", "transaction_date", "side", "shares",
            "price", "value", "available_ts",
        ]  # fmt: skip
        sessions = self._session_grid(since, as_of)
        if not sessions or not profiles.symbols:
            return pd.DataFrame(columns=columns)
        keys = blake_keys(self.seed, "insider", profiles.symbols)
        ordinals = np.array([day.toordinal() for day in sessions])
        cells = blake_keys(self.seed, "insider", ordinals.tolist())
        closes = self.prices.daily_arrays(profiles, sessions)["close"]
        buy = uniform(keys, cells, 1) < 0.35
        shares = np.round(np.exp(np.log(500.0) + uniform(keys, cells, 2) * np.log(400.0)), -1)
        price = np.round(closes * (1.0 + 0.01 * normal(keys, cells, 0)), 2)
        frame = _long(
            profiles,
            len(sessions),
            filed=uniform(keys, cells, 0) < 0.03,
            filing_id=np.char.add(
                np.char.add(np.asarray(profiles.symbols)[:, None], "-F4-"),
                np.asarray(ordinals.astype(str))[None, :],
            ),
            insider_role=pick(_INSIDERS, uniform(keys, cells, 3)),
            transaction_date=np.broadcast_to(
                np.array([day.isoformat() for day in sessions], dtype=object)[None, :], closes.shape
            ),
            side=np.where(buy, "buy", "sell"),
            shares=shares,
            price=price,
            value=np.round(shares * price, 2),
            available_ts=epoch_of_ordinal(ordinals, 21 * HOUR + 30 * 60)[None, :].repeat(
                len(keys), 0
            ),
        )
        frame = frame[frame["filed"] & (frame["available_ts"] <= as_of.timestamp())]
        frame["filing_id"] = frame["filing_id"].astype(object)
        return frame[columns].reset_index(drop=True)

    def analyst_ratings(
        self, profiles: SymbolProfiles, since: date, as_of: datetime
    ) -> pd.DataFrame:
        columns = [
            "symbol", "rating_id", "firm", "action", "from_rating", "to_rating",
            "price_target", "available_ts",
        ]  # fmt: skip
        sessions = self._session_grid(since, as_of)
        if not sessions or not profiles.symbols:
            return pd.DataFrame(columns=columns)
        keys = blake_keys(self.seed, "analyst", profiles.symbols)
        ordinals = np.array([day.toordinal() for day in sessions])
        cells = blake_keys(self.seed, "analyst", ordinals.tolist())
        arrays = self.prices.daily_arrays(profiles, sessions)
        reference = arrays[
            "open"
        ]  # the note comes out pre-market; the open is near the prior close
        action = pick(("upgrade", "downgrade", "initiate", "reiterate"), uniform(keys, cells, 1))
        to_rating = 1 + np.minimum((uniform(keys, cells, 2) * 5).astype(np.int64), 4)
        from_rating = np.where(
            action == "upgrade",
            np.maximum(to_rating - 1, 1),
            np.where(action == "downgrade", np.minimum(to_rating + 1, 5), to_rating),
        )
        to_rating = np.where((action == "upgrade") & (to_rating == 1), 2, to_rating)
        to_rating = np.where((action == "downgrade") & (to_rating == 5), 4, to_rating)
        target = reference * (1.0 + 0.08 * (to_rating - 3) + 0.05 * normal(keys, cells, 0))
        minute = (uniform(keys, cells, 3) * 90).astype(np.int64)
        frame = _long(
            profiles,
            len(sessions),
            published=uniform(keys, cells, 0) < 0.02,
            rating_id=np.char.add(
                np.char.add(np.asarray(profiles.symbols)[:, None], "-R-"),
                np.asarray(ordinals.astype(str))[None, :],
            ).astype(object),
            firm=pick(_FIRMS, uniform(keys, cells, 4)),
            action=action,
            from_rating=from_rating,
            to_rating=to_rating,
            price_target=np.round(target, 2),
            available_ts=epoch_of_ordinal(ordinals[None, :], 12 * HOUR + 60 * minute),
        )
        frame = frame[frame["published"] & (frame["available_ts"] <= as_of.timestamp())]
        return frame[columns].reset_index(drop=True)

    def news(self, profiles: SymbolProfiles, since: date, as_of: datetime) -> pd.DataFrame:
        """0-3 headlines per symbol per calendar day; tone leans with that day's move."""
        columns = ["article_id", "symbol", "headline", "source", "available_ts"]
        start = max(since, ANCHOR + timedelta(days=1))
        if start > as_of.date() or not profiles.symbols:
            return pd.DataFrame(columns=columns)
        ordinals = np.arange(start.toordinal(), as_of.date().toordinal() + 1)
        keys = blake_keys(self.seed, "news", profiles.symbols)
        levels = self.prices.log_economic(profiles, np.concatenate([ordinals, ordinals - 1]))
        move = levels[:, : len(ordinals)] - levels[:, len(ordinals) :]
        move = move / (profiles.annual_vol / np.sqrt(252.0))[:, None]
        frames = []
        for slot, threshold in enumerate((0.45, 0.15, 0.05)):
            cells = blake_keys(self.seed, f"news:{slot}", ordinals.tolist())
            tone = move + 0.8 * normal(keys, cells, 0)
            template_draw = uniform(keys, cells, 1)
            frame = _long(
                profiles,
                len(ordinals),
                present=uniform(keys, cells, 0) < threshold,
                name=np.repeat(profiles.name, len(ordinals)),
                ordinal=np.tile(ordinals, len(keys)),
                tone=tone,
                template=np.where(
                    tone > 0.7,
                    pick(_POSITIVE, template_draw),
                    np.where(
                        tone < -0.7, pick(_NEGATIVE, template_draw), pick(_NEUTRAL, template_draw)
                    ),
                ),
                firm=pick(_FIRMS, uniform(keys, cells, 2)),
                source=pick(_NEWS_SOURCES, uniform(keys, cells, 3)),
                available_ts=epoch_of_ordinal(
                    ordinals[None, :], (uniform(keys, cells, 4) * 86399).astype(np.int64)
                ),
            )
            frame = frame[frame["present"] & (frame["available_ts"] <= as_of.timestamp())].copy()
            frame["article_id"] = frame["symbol"] + "-" + frame["ordinal"].astype(str) + f"-{slot}"
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True)
        quarters = [
            f"Q{(date.fromordinal(int(o)).month - 1) // 3 + 1}" for o in frame["ordinal"].to_numpy()
        ]
        frame["headline"] = [
            template.format(name=name, symbol=symbol, firm=firm, quarter=quarter)
            for template, name, symbol, firm, quarter in zip(
                frame["template"],
                frame["name"],
                frame["symbol"],
                frame["firm"],
                quarters,
                strict=True,
            )
        ]
        return frame[columns].sort_values("article_id").reset_index(drop=True)

    # -- macro ----------------------------------------------------------------------

    def economic_series(self, since: date, as_of: datetime) -> pd.DataFrame:
        """AR(1) macro series, each observation released ``lag`` days after its period."""
        rows = []
        for series, frequency, mean, phi, shock, lag in ECONOMIC_SERIES:
            if frequency == "monthly":
                months = (as_of.year - ANCHOR.year) * 12 + as_of.month - ANCHOR.month + 1
                period_ends = [
                    date(
                        ANCHOR.year + (ANCHOR.month - 1 + k) // 12,
                        (ANCHOR.month - 1 + k) % 12 + 1,
                        1,
                    )
                    for k in range(1, months + 1)
                ]  # the first of the next month closes the period
                labels = [(day - timedelta(days=1)).strftime("%Y-%m") for day in period_ends]
            else:
                first_saturday = ANCHOR + timedelta(days=(5 - ANCHOR.weekday()) % 7)
                weeks = (as_of.date() - first_saturday).days // 7 + 1
                saturdays = [first_saturday + timedelta(weeks=k) for k in range(max(weeks, 0))]
                period_ends = [day + timedelta(days=1) for day in saturdays]
                labels = [day.isoformat() for day in saturdays]
            if not labels:
                continue
            shocks = normal(
                blake_keys(self.seed, "macro", [series]), blake_keys(self.seed, series, labels), 0
            )[0]
            values = np.empty(len(labels))
            level = mean
            for index, innovation in enumerate(shocks):  # short recursion: a few hundred steps
                level = mean + phi * (level - mean) + shock * innovation
                values[index] = level
            released = [
                _epoch(day + timedelta(days=lag), 12 * HOUR + 30 * 60) for day in period_ends
            ]
            rows.append(
                pd.DataFrame(
                    {
                        "series": series,
                        "period": labels,
                        "value": np.round(values, 3),
                        "available_ts": released,
                    }
                )
            )
        frame = pd.concat(rows, ignore_index=True)
        keep = (frame["available_ts"] <= as_of.timestamp()) & (
            frame["available_ts"] >= _epoch(since)
        )
        return frame[keep].reset_index(drop=True)

    # -- options ----------------------------------------------------------------------

    def options_chain(
        self, profiles: SymbolProfiles, session: date, as_of: datetime
    ) -> pd.DataFrame:
        """Calls and puts at 7 strikes x the next 3 monthly expiries, around the last close."""
        columns = [
            "symbol", "session", "expiry", "strike", "option_type", "spot", "bid", "ask", "mid",
            "implied_vol", "delta", "open_interest", "available_ts",
        ]  # fmt: skip
        if not profiles.symbols:
            return pd.DataFrame(columns=columns)
        last_close_session = self.calendar.previous_session(session)
        spot = self.prices.daily_arrays(profiles, [last_close_session])["close"][:, 0]
        expiries = _monthly_expiries(session, OPTION_EXPIRIES)
        grid = np.select([spot < 5, spot < 25, spot < 100, spot < 250], [0.05, 0.5, 1.0, 2.5], 5.0)
        strikes = np.round(spot[:, None] * OPTION_MONEYNESS / grid[:, None]) * grid[:, None]
        strikes = np.maximum(strikes, grid[:, None])
        n_sym, n_exp, n_strike = len(spot), len(expiries), len(OPTION_MONEYNESS)
        shape = (n_sym, n_exp, n_strike, 2)
        years = np.array([(expiry - session).days / 365.0 for expiry in expiries])
        keys = blake_keys(self.seed, "options", profiles.symbols)
        cells = blake_keys(self.seed, "options", [session.isoformat()])
        level = profiles.annual_vol * (1.0 + 0.08 * normal(keys, cells, 0)[:, 0])
        spot_b = np.broadcast_to(spot[:, None, None, None], shape)
        strike_b = np.broadcast_to(strikes[:, None, :, None], shape)
        years_b = np.broadcast_to(years[None, :, None, None], shape)
        moneyness = np.log(strike_b / spot_b)
        vol = (
            level[:, None, None, None]
            * (1.0 + 1.5 * moneyness**2 - 0.3 * moneyness)
            * (1.0 + 0.05 * np.sqrt(years_b))
        )
        is_call = np.broadcast_to(np.array([True, False]), shape)
        price, delta = price_and_delta(spot_b, strike_b, years_b, RISK_FREE_RATE, vol, is_call)
        mid = np.maximum(np.round(price, 2), 0.01)
        half_spread = np.maximum(0.01, np.round(mid * 0.02 + 0.02, 2))
        open_interest = np.round(
            profiles.average_volume[:, None, None, None] * 0.002 * np.exp(-8.0 * moneyness**2), 0
        )
        frame = pd.DataFrame(
            {
                "symbol": np.repeat(
                    np.asarray(profiles.symbols, dtype=object), n_exp * n_strike * 2
                ),
                "session": session.isoformat(),
                "expiry": np.broadcast_to(
                    np.array([e.isoformat() for e in expiries], dtype=object)[None, :, None, None],
                    shape,
                ).ravel(),
                "strike": strike_b.ravel(),
                "option_type": np.where(is_call, "call", "put").ravel(),
                "spot": spot_b.ravel(),
                "bid": np.maximum(mid - half_spread, 0.0).ravel(),
                "ask": (mid + half_spread).ravel(),
                "mid": mid.ravel(),
                "implied_vol": np.round(vol, 4).ravel(),
                "delta": np.round(delta, 4).ravel(),
                "open_interest": np.broadcast_to(open_interest, shape).ravel(),
                "available_ts": int(as_of.timestamp()),
            }
        )
        return frame[columns].drop_duplicates(["symbol", "expiry", "strike", "option_type"])


def _monthly_expiries(session: date, count: int) -> list[date]:
    """The next ``count`` third Fridays strictly after ``session``."""
    expiries: list[date] = []
    year, month = session.year, session.month
    while len(expiries) < count:
        first = date(year, month, 1)
        third_friday = first + timedelta(days=(4 - first.weekday()) % 7 + 14)
        if third_friday > session:
            expiries.append(third_friday)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return expiries
