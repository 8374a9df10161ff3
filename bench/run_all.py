"""Run every benchmark, one after another, and say which targets were met.

Each benchmark is a standalone script that prints a short table and exits
non-zero when it misses its target; this runs them as subprocesses (so one
crashing does not stop the others), prints each one's output, then one
summary line per benchmark. Exit status: 0 when every target was met, 1
otherwise. ``make bench`` runs this; ``--only daily_dag,make_run`` picks some.

The machine is assumed shared and noisy: the benchmarks compare figures
measured side by side in the same run, never against fixed absolute times.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BENCHMARKS = {
    "ingest": "bench_ingest.py",
    "health": "bench_health.py",
    "daily_dag": "bench_daily_dag.py",
    "intraday_tick": "bench_intraday_tick.py",
    "make_run": "bench_make_run.py",
    "web": "bench_web.py",
    "providers": "bench_providers.py",
    "providers_daily": "bench_providers_daily.py",
    "daily_vs_luigi": "bench_daily_vs_luigi.py",
    "intraday_latency": "bench_intraday_latency.py",
    "stores": "bench_stores.py",
    "slurm": "bench_slurm.py",  # says it skipped when no local Slurm answers
}


def summary_detail(output: str) -> str:
    """What a benchmark's verdict was about: its TARGET lines, else its last ratio line."""
    targets = [line for line in output.splitlines() if line.startswith("TARGET ")]
    if targets:
        return "; ".join(line.removeprefix("TARGET ") for line in targets)
    ratios = [
        line
        for line in output.splitlines()
        if "ratio" in line.lower() or line.startswith("skipped")
    ]
    return ratios[-1].strip() if ratios else "no figures printed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    results = []
    for name in chosen:
        print(f"=== {name} ({BENCHMARKS[name]}) ===", flush=True)
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, str(BENCH / BENCHMARKS[name])],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        print(run.stdout.rstrip())
        if run.returncode not in (0, 1) or not run.stdout.strip():
            print(run.stderr.rstrip()[-3000:])
        print(f"--- {name}: exit {run.returncode} after {seconds:.0f} s\n", flush=True)
        results.append((name, run.returncode, summary_detail(run.stdout)))

    print("=== summary ===")
    for name, code, detail in results:
        state = "met" if code == 0 else ("MISSED" if code == 1 else f"ERROR (exit {code})")
        print(f"{name:<14} {state:<8} {detail}")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
