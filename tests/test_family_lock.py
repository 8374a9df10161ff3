"""The family lock: one daily run (or intraday tick) at a time, released however its holder ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.snakemake_runs import AlreadyRunning, exclusive, family_lock_path

HOLDER = """
import sys
from pathlib import Path
from orchestrator.snakemake_runs import exclusive
with exclusive(Path(sys.argv[1]), "a daily run"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_lock_held_elsewhere_is_refused_naming_its_holder_and_freed_when_it_is_killed(
    tmp_path: Path,
) -> None:
    lock = family_lock_path(tmp_path / "state", "daily")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with (
            pytest.raises(
                AlreadyRunning, match=rf"a daily run is already running: pid {holder.pid}"
            ),
            exclusive(lock, "a daily run"),
        ):
            pass
    finally:
        holder.kill()  # SIGKILL: no finally of its own runs
        holder.wait()
    with exclusive(lock, "a daily run"):  # the kernel let go of the dead holder's lock
        assert lock.exists()
    with exclusive(lock, "a daily run"):  # and so did the block above, on leaving it
        pass
