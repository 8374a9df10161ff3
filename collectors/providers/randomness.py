"""Deterministic, counter-based random numbers for the synthetic market.

Every random number is a pure function of ``(seed, kind, row, column, draw)``:
the row key is ``blake2b(seed, kind, symbol)``, the column key is
``blake2b(seed, kind, date-or-index)``, and a cell's ``draw``-th number mixes
the two keys with the splitmix64 finaliser. So:

- the same inputs give the same value in any process, on any machine
  (``hashlib.blake2b`` is stable; Python's ``hash()`` is salted and is never used);
- a value does not depend on which other cells were asked for, so one day or a
  year of data agree wherever they overlap;
- a whole (symbols x dates) matrix is generated with a handful of vectorised
  numpy operations; only the row and column keys go through ``hashlib``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_DRAW_STRIDE = np.uint64(0xD6E8FEB86659FD93)
_TWO_PI = 2.0 * np.pi


def blake_key(*parts: object) -> int:
    """A 64-bit key from ``blake2b`` of the parts (joined with a unit separator)."""
    text = "\x1f".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def blake_keys(seed: int, kind: str, labels: Iterable[object]) -> np.ndarray:
    """One ``blake_key(seed, kind, label)`` per label, as a ``uint64`` array."""
    return np.fromiter((blake_key(seed, kind, label) for label in labels), dtype=np.uint64)


def _splitmix(values: np.ndarray) -> np.ndarray:
    # Array operations on uint64 wrap silently, which is what the mixer needs.
    mixed = values + _GOLDEN
    mixed = (mixed ^ (mixed >> np.uint64(30))) * _MIX_1
    mixed = (mixed ^ (mixed >> np.uint64(27))) * _MIX_2
    return mixed ^ (mixed >> np.uint64(31))


def uniform(row_keys: np.ndarray, column_keys: np.ndarray, draw: int) -> np.ndarray:
    """Uniform(0, 1) matrix of shape ``(rows, columns)``, open at both ends."""
    rows = np.asarray(row_keys, dtype=np.uint64).reshape(-1, 1)
    columns = np.asarray(column_keys, dtype=np.uint64).reshape(1, -1)
    offset = np.full(1, draw + 1, dtype=np.uint64) * _DRAW_STRIDE
    bits = _splitmix(rows ^ _splitmix(columns + offset))
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def normal(row_keys: np.ndarray, column_keys: np.ndarray, draw: int) -> np.ndarray:
    """Standard normal matrix (Box-Muller on draws ``2*draw`` and ``2*draw+1``)."""
    first = uniform(row_keys, column_keys, 2 * draw + 1000)
    second = uniform(row_keys, column_keys, 2 * draw + 1001)
    return np.sqrt(-2.0 * np.log(first)) * np.cos(_TWO_PI * second)


def pick(options: Sequence[object], uniforms: np.ndarray) -> np.ndarray:
    """Map uniforms to ``options`` with equal probability (an object array)."""
    index = np.minimum((uniforms * len(options)).astype(np.int64), len(options) - 1)
    return np.asarray(options, dtype=object)[index]
