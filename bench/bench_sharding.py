"""Benchmark: prices_daily for 5,000 symbols, sharded against unsharded, on this one machine.

Three temp projects hold the same two tasks (``assets``, ``prices_daily``) on
the synthetic provider with ``--symbols`` symbols; they differ only in
``prices_daily``'s ``shards:`` (1, 2 and 4 by default). Each builds its
assets once (untimed); then, round after round, every variant in turn has
its ``prices_daily`` rows deleted and runs ``snakemake daily --forcerun
prices_daily --cores 2``, timed: a first-run fetch of the whole look-back
window, the shards, and for the sharded variants the join. Variants are
interleaved so the noise of a shared machine falls on all of them alike.

Reported: the median wall time of each variant, and its ratio to the
unsharded one measured in the same run. Every variant must store the same
rows (count and checksum of the table), or the benchmark fails.

Single node: the shards share this machine's cores (2 here) and its one
SQLite file, whose writers take turns, so the gain is bounded well below the
shard count; on a cluster each shard is a job on its own node, and a
rate-limited real provider is shared by all shards (its limiter spans every
process), so there the provider's limit, not the cores, bounds it.
Target: the 2-shard run is no slower than 1.1 x the unsharded one (sharding
must not cost more than its join on one node). Exit 1 when missed.
Run: ``.venv/bin/python bench/bench_sharding.py [--symbols 5000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import check, median, run_timed, snakemake_command, table, verdict
from workflow_project import make_project, project_config

NOW = "2026-11-27T10:00:00-05:00"  # the open of a session (a half day)
SESSION = "2026-11-27"


def make_variant(root: Path, symbols: int, shards: int) -> Path:
    raw = project_config()
    raw["provider"]["universe_size"] = symbols
    raw["tasks"] = {name: raw["tasks"][name] for name in ("assets", "prices_daily")}
    if shards > 1:
        raw["tasks"]["prices_daily"]["shards"] = shards
    return make_project(root / f"shards-{shards}", raw)


def table_digest(project: Path) -> tuple[int, str]:
    """Rows of prices_daily and a SHA-256 of them in key order."""
    connection = sqlite3.connect(project / "state" / "market.db")
    try:
        rows = connection.execute("SELECT * FROM prices_daily ORDER BY symbol, session").fetchall()
    finally:
        connection.close()
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def clear_prices(project: Path) -> None:
    connection = sqlite3.connect(project / "state" / "market.db")
    try:
        with connection:
            connection.execute("DELETE FROM prices_daily")
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    counts = sorted(set([1, *args.shards]))

    with tempfile.TemporaryDirectory(prefix="bench-sharding-") as scratch:
        projects = {n: make_variant(Path(scratch), args.symbols, n) for n in counts}
        for shards, project in projects.items():
            assets = f"state/targets/daily/{SESSION}/assets.json"
            command = snakemake_command(project, assets, "--cores", "2", now=NOW)
            _, done = run_timed(command, project)
            check(done, f"assets of the {shards}-shard variant")
        times: dict[int, list[float]] = {n: [] for n in counts}
        digests: dict[int, tuple[int, str]] = {}
        for round_number in range(1, args.rounds + 1):
            for shards, project in projects.items():
                clear_prices(project)
                command = snakemake_command(
                    project, "daily", "--cores", "2", "--forcerun", "prices_daily", now=NOW
                )
                seconds, done = run_timed(command, project)
                check(done, f"prices_daily with {shards} shard(s), round {round_number}")
                times[shards].append(seconds)
                digests[shards] = table_digest(project)
                print(f"round {round_number}: {shards} shard(s) {seconds:.1f} s", flush=True)

    baseline = median(times[1])
    rows = [
        (
            f"{shards} shard(s)" if shards > 1 else "unsharded",
            f"{median(times[shards]):.1f}",
            f"{median(times[shards]) / baseline:.2f}",
            digests[shards][0],
        )
        for shards in counts
    ]
    print()
    print(f"prices_daily, {args.symbols} symbols, first run (whole look-back), --cores 2")
    print(table(["variant", "median s", "vs unsharded", "rows stored"], rows))
    same = len({digests[n] for n in counts}) == 1
    print(f"same rows in every variant: {same}")
    ratio = median(times[min(n for n in counts if n > 1)]) / baseline if len(counts) > 1 else 1.0
    print(verdict("sharding on one node", same and ratio <= 1.1, f"2 shards {ratio:.2f}x"))
    return 0 if same and ratio <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main())
