"""A provider wrapper that injects faults, deterministically, to prove the pipeline copes.

Enabled by a ``faults`` entry in the config's ``provider`` section::

    provider:
      name: synthetic
      faults: {rate: 0.05, seed: 7, kinds: [reset, http_429, http_503]}

Settings: ``rate`` (0..1, the share of task attempts that meet a fault),
``seed``, ``kinds`` (below), ``retry_after`` (seconds a 429 asks for,
default 20) and ``attempts`` (the attempt numbers that may meet a fault,
default all; ``[1, 2]`` makes a task fail twice, then succeed).

Whether an attempt meets a fault, and which, is a pure function of (seed,
task, session, slot, attempt number): ``fault_for``. The child process learns
its task, period and attempt from the runner's environment
(``ORCHESTRATOR_TASK``, ``ORCHESTRATOR_SESSION``, ``ORCHESTRATOR_SLOT``,
``ORCHESTRATOR_ATTEMPT``, ``ORCHESTRATOR_RUN_STARTED``), so a retry or a later
run draws anew and a replay with the same clock draws the same.
At most one fault per attempt, at the first provider call:

- transient, retried by the runner: ``reset`` (connection reset),
  ``timeout`` (read timeout), ``http_429`` (rate limited, with Retry-After),
  ``http_503`` (service unavailable);
- permanent, not retried, the message saying what to fix: ``http_401`` (key
  refused), ``http_404`` (no such endpoint or symbol), ``schema`` (the
  response changed shape);
- bad data: ``bad_rows`` corrupts a few rows of the first non-empty answer
  (one each of NaN price, zero price, high below low, negative volume,
  future timestamp, unknown symbol, non-numeric value, duplicate key), ``all_bad`` makes
  every row of it invalid.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from collectors.providers.base import Provider
from orchestrator.errors import PermanentError, TransientError

TRANSIENT_KINDS = ("reset", "timeout", "http_429", "http_503")
PERMANENT_KINDS = ("http_401", "http_404", "schema")
DATA_KINDS = ("bad_rows", "all_bad")
KINDS = TRANSIENT_KINDS + PERMANENT_KINDS + DATA_KINDS
DEFAULT_KINDS = ("reset", "http_429", "http_503")
DEFAULT_RETRY_AFTER = 20.0
UNKNOWN_SYMBOL = "ZZZZ-UNLISTED"
FUTURE_SECONDS = 86_400


@dataclass(frozen=True)
class FaultSettings:
    """The validated ``provider.faults`` section."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = DEFAULT_KINDS
    retry_after: float = DEFAULT_RETRY_AFTER
    attempts: frozenset[int] | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FaultSettings:
        """Build from config; a bad value raises ``PermanentError`` naming the key."""
        try:
            rate = float(raw.get("rate", 0.0))
            seed = int(raw.get("seed", 0))
            retry_after = float(raw.get("retry_after", DEFAULT_RETRY_AFTER))
            attempts = raw.get("attempts")
            allowed = None if attempts is None else frozenset(int(a) for a in attempts)
        except (TypeError, ValueError) as error:
            raise PermanentError(
                f"provider.faults: rate, seed, retry_after must be numbers and attempts a list "
                f"of integers ({error})"
            ) from None
        if not 0.0 <= rate <= 1.0:
            raise PermanentError(f"provider.faults.rate: must be between 0 and 1, got {rate}")
        kinds = tuple(str(kind) for kind in raw.get("kinds", DEFAULT_KINDS))
        unknown = [kind for kind in kinds if kind not in KINDS]
        if unknown or not kinds:
            raise PermanentError(
                f"provider.faults.kinds: unknown fault kind(s) {unknown} "
                f"(known: {', '.join(KINDS)})"
            )
        return cls(rate, seed, kinds, retry_after, allowed)


def _uniform(*parts: object) -> tuple[float, int]:
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return draw, int.from_bytes(digest[8:16], "big")


def fault_for(
    settings: FaultSettings,
    task: str,
    session: str,
    slot: str | None,
    attempt: int,
    run_started: str = "",
) -> str | None:
    """The fault this attempt meets, or ``None``; the same inputs always give the same answer.

    ``run_started`` (the runner's start time of the run) makes a later run of
    the same period, e.g. the next tick re-running a failed slot, draw anew.
    """
    if settings.attempts is not None and attempt not in settings.attempts:
        return None
    draw, pick = _uniform(settings.seed, task, session, slot or "", attempt, run_started)
    if draw >= settings.rate:
        return None
    return settings.kinds[pick % len(settings.kinds)]


class FaultyProvider:
    """Wraps a provider; the first call of an attempt meets the attempt's fault, if any."""

    def __init__(self, inner: Provider, fault: str | None, retry_after: float, task: str) -> None:
        self._inner = inner
        self.name = inner.name
        self.fault = fault
        self._retry_after = retry_after
        self._task = task
        self._pending = fault is not None

    def __getattr__(self, method: str) -> Any:
        target = getattr(self._inner, method)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._pending and self.fault not in DATA_KINDS:
                self._pending = False
                self._raise(method)
            answer = target(*args, **kwargs)
            if self._pending and isinstance(answer, pd.DataFrame) and not answer.empty:
                self._pending = False
                answer = corrupt(answer, every_row=self.fault == "all_bad")
            return answer

        return call

    def _raise(self, method: str) -> None:
        where = f"{self.name} provider, {method} for {self._task}"
        key_name = f"{self.name.upper()}_API_KEY"
        if self.fault == "reset":
            raise ConnectionResetError(f"{where}: connection reset by peer")
        if self.fault == "timeout":
            raise TimeoutError(f"{where}: read timed out")
        if self.fault == "http_429":
            raise TransientError(
                f"{where}: HTTP 429 Too Many Requests (Retry-After: {self._retry_after:g} s)",
                retry_after=self._retry_after,
            )
        if self.fault == "http_503":
            raise TransientError(f"{where}: HTTP 503 Service Unavailable")
        if self.fault == "http_401":
            raise PermanentError(
                f"{where}: HTTP 401 Unauthorized: the API key was refused; set a valid "
                f"{key_name} in the environment or in .env"
            )
        if self.fault == "http_404":
            raise PermanentError(
                f"{where}: HTTP 404 Not Found: the endpoint or symbol does not exist; check "
                "provider.name in config.yaml and the symbols in the assets table"
            )
        if self.fault == "schema":
            raise PermanentError(
                f"{where}: schema mismatch: the response lacks the columns the collectors expect; "
                f"the provider changed its format: update collectors/providers/{self.name}.py"
            )


def corrupt(frame: pd.DataFrame, every_row: bool = False) -> pd.DataFrame:
    """``frame`` with bad rows: one of each kind of defect, or every row invalid.

    Defects need the matching column (prices, ``high``/``low``, ``volume``,
    ``symbol``, ``available_ts``); rows are used in order, so a short frame
    gets the first few defects only. The duplicate is appended at the end.
    """
    frame = frame.reset_index(drop=True).copy()
    columns = set(frame.columns)
    prices = [name for name in ("close", "price", "open") if name in columns]
    if every_row:
        if prices:
            frame[prices[0]] = np.nan
        elif "available_ts" in columns:
            frame["available_ts"] = frame["available_ts"] + 10 * FUTURE_SECONDS
        else:
            frame = frame.iloc[:, :1]
        return frame
    defects: list[tuple[str, Callable[[int], object]]] = []
    if prices:
        defects.append((prices[0], lambda _row: np.nan))
        defects.append((prices[-1], lambda _row: 0.0))
    if {"high", "low"} <= columns:
        defects.append(("high", lambda row: float(frame["low"].iloc[row]) / 2))
    if "volume" in columns:
        defects.append(("volume", lambda _row: -1))
    if "available_ts" in columns:
        defects.append(
            ("available_ts", lambda row: int(frame["available_ts"].iloc[row]) + FUTURE_SECONDS)
        )
    if "symbol" in columns:
        defects.append(("symbol", lambda _row: UNKNOWN_SYMBOL))
    numeric = [name for name in ("volume", "high", "low") if name in columns]
    if numeric:
        defects.append((numeric[0], lambda _row: "n/a"))
    defects = defects[: len(frame)]
    for row, (column, value_of) in enumerate(defects):
        frame[column] = _set(frame[column], row, value_of(row))
    if len(frame) > len(defects):
        frame = pd.concat([frame, frame.iloc[[len(defects)]]], ignore_index=True)
    return frame


def _set(column: pd.Series, row: int, value: object) -> pd.Series:
    if isinstance(value, str):
        column = column.astype(object)
    elif isinstance(value, float) and column.dtype.kind in "iub":
        column = column.astype("float64")
    else:
        column = column.copy()
    column.iloc[row] = value
    return column


def wrap(
    inner: Provider, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Provider:
    """``inner`` wrapped with the fault of the current attempt (from the runner's environment)."""
    env = os.environ if environ is None else environ
    settings = FaultSettings.from_mapping(raw)
    task = env.get("ORCHESTRATOR_TASK", "")
    try:
        attempt = int(env.get("ORCHESTRATOR_ATTEMPT", "1"))
    except ValueError:
        attempt = 1
    fault = fault_for(
        settings,
        task,
        env.get("ORCHESTRATOR_SESSION", ""),
        env.get("ORCHESTRATOR_SLOT"),
        attempt,
        env.get("ORCHESTRATOR_RUN_STARTED", ""),
    )
    return cast(Provider, FaultyProvider(inner, fault, settings.retry_after, task or "this task"))


def expected_faults(
    settings: FaultSettings, runs: Sequence[tuple[str, str, str | None, int, str]]
) -> dict[str, int]:
    """How many of ``runs`` (task, session, slot, attempt, run start) meet each kind of fault."""
    counts: dict[str, int] = {}
    for task, session, slot, attempt, run_started in runs:
        kind = fault_for(settings, task, session, slot, attempt, run_started)
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
    return counts
