"""Running Snakemake for one family of targets, one run at a time.

Snakemake's own directory lock does not serialise overlapping runs (since
9.17 every finishing run deletes the whole ``.snakemake/locks`` folder), so
each family (``daily``, ``intraday``) has a lock file under ``state/locks/``
(``flock``: the kernel drops it with the process, however it ends); the
families' files are disjoint, so a daily run and intraday ticks may overlap
freely.

Holding the family lock also makes recovery safe: a run killed earlier may
have left a stale Snakemake lock, which makes the next run fail with
"Directory cannot be locked". When that happens the lock is cleared with
``--unlock`` and the run tried once more; incomplete outputs are re-run by
``--rerun-incomplete`` (set in the workflow profile and here).

Snakemake is started in its own session so that a stop can signal the whole
process group: Snakemake, the runners and the collectors.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from orchestrator.config import Config

logger = logging.getLogger(__name__)

LOCKED_MESSAGE = "Directory cannot be locked"
STOP_GRACE_SECONDS = 10.0


class AlreadyRunning(OrchestratorError):
    """Another process holds the lock; the message names it."""


def _holder_file(lock_path: Path) -> Path:
    return lock_path.with_suffix(".holder")


def describe_holder(lock_path: Path) -> str:
    """Who holds ``lock_path``, as recorded when it was taken."""
    try:
        holder = json.loads(_holder_file(lock_path).read_text())
    except (OSError, ValueError):
        return "another process"
    return f"pid {holder.get('pid')} ({holder.get('command')}, since {holder.get('since')})"


@contextmanager
def exclusive(lock_path: Path, purpose: str) -> Iterator[None]:
    """Hold ``lock_path`` for the block, or raise ``AlreadyRunning`` at once.

    ``fcntl.flock`` on the file, as filelock's Unix lock does; filelock itself
    costs its imports (secrets, hmac, platform) on every no-op daily run. The
    descriptor is not inherited (PEP 446): jobs never hold the lock.
    """
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise AlreadyRunning(
            f"{purpose} is already running: {describe_holder(lock_path)} holds {lock_path}"
        ) from None
    try:
        _holder_file(lock_path).write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]),
                    "since": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        )
        yield
    finally:
        _holder_file(lock_path).unlink(missing_ok=True)
        os.close(descriptor)  # releases the lock


def family_lock_path(state_dir: Path, family: str) -> Path:
    return Path(state_dir) / "locks" / f"{family}.lock"


@dataclass(frozen=True)
class SnakemakeCall:
    """One Snakemake invocation: targets first (``--forcerun`` swallows what follows)."""

    targets: tuple[str, ...]
    cores: int = 4
    dry_run: bool = False
    forcerun: tuple[str, ...] = ()
    config_overrides: tuple[str, ...] = ()
    # A config file other than the Snakefile's config.yaml, used instead of it.
    configfile: str | None = None
    # Snakemake's --quiet categories: "rules" hides per-job blocks, "progress" the counts.
    quiet: tuple[str, ...] = ()
    # A profile folder (``profiles/slurm``), e.g. to run the jobs on a cluster's executor.
    profile: Path | None = None

    def command(self, snakefile: Path) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "snakemake",
            *self.targets,
            "--snakefile",
            str(snakefile),
            "--cores",
            str(self.cores),
            "--keep-going",
            "--rerun-incomplete",
        ]
        if self.dry_run:
            command.append("--dry-run")
        if self.profile is not None:
            command += ["--profile", str(self.profile)]
        if self.quiet:
            command += ["--quiet", *self.quiet]
        if self.configfile is not None:
            command += ["--configfile", self.configfile, "--replace-workflow-config"]
        if self.config_overrides:
            command += ["--config", *self.config_overrides]
        if self.forcerun:
            command += ["--forcerun", *self.forcerun]
        return command


class SnakemakeProcess:
    """A running Snakemake in its own process group, its output relayed line by line."""

    def __init__(
        self,
        command: list[str],
        cwd: Path,
        output: TextIO | None = None,
        cancels_remote_jobs: bool = False,
    ) -> None:
        self.output = output or sys.stdout
        # A profile's executor (Slurm) runs the jobs outside this process group.
        self.cancels_remote_jobs = cancels_remote_jobs
        self.tail: list[str] = []
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._relay = threading.Thread(target=self._relay_output, daemon=True)
        self._relay.start()

    def _relay_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.write(line)
            self.tail = [*self.tail[-49:], line]
        self.output.flush()

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout=timeout)
        self._relay.join(timeout=5)
        return code

    def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> int:
        """SIGTERM the whole group; SIGKILL what is left after ``grace_seconds``.

        Runners catch SIGTERM, kill their collectors and record the
        interruption; no sentinel is written for an interrupted task. Jobs of
        a cluster executor are not in the group: Snakemake cancels them
        (``scancel``) on SIGINT, so that comes first, with the same grace.
        """
        if self.cancels_remote_jobs:
            try:
                os.kill(self.process.pid, signal.SIGINT)
                return self.wait(timeout=grace_seconds)
            except ProcessLookupError:
                return self.wait()
            except subprocess.TimeoutExpired:
                pass  # its jobs are cancelled; it waits for their states: stop it as below
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                return self.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                continue
        return self.wait()

    @property
    def hit_stale_lock(self) -> bool:
        return any(LOCKED_MESSAGE in line for line in self.tail)


def run_snakemake(
    call: SnakemakeCall,
    project_dir: Path,
    output: TextIO | None = None,
    stop_requested: threading.Event | None = None,
) -> int:
    """Run ``call`` in ``project_dir``; recover once from a stale Snakemake lock.

    The caller holds the family lock. ``stop_requested`` set while running
    stops Snakemake (group SIGTERM, then SIGKILL) and returns its status.
    """
    snakefile = Path(project_dir) / "Snakefile"
    for attempt in (1, 2):
        process = SnakemakeProcess(
            call.command(snakefile),
            project_dir,
            output,
            cancels_remote_jobs=call.profile is not None,
        )
        code = _wait_or_stop(process, stop_requested)
        if code == 0 or not process.hit_stale_lock or attempt == 2 or call.dry_run:
            return code
        logger.warning("a killed run left a stale Snakemake lock; clearing it and retrying")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                *call.targets,
                "--snakefile",
                str(snakefile),
                "--unlock",
                "--cores",
                "1",
            ],
            cwd=project_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    return code


def _wait_or_stop(process: SnakemakeProcess, stop_requested: threading.Event | None) -> int:
    while True:
        try:
            return process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            if stop_requested is not None and stop_requested.is_set():
                logger.warning("stop requested: stopping snakemake and its running tasks")
                return process.stop()


def resolve_profile(project_dir: Path, name: str) -> Path:
    """The folder of profile ``name``: ``profiles/NAME`` of the project, with its config.yaml.

    Raises ``UsageError`` naming the profile and the ones there are.
    """
    from orchestrator.errors import UsageError

    profiles = Path(project_dir) / "profiles"
    folder = profiles / name
    if "/" in name or name in ("", ".", "..") or not (folder / "config.yaml").is_file():
        known = sorted(p.parent.name for p in profiles.glob("*/config.yaml"))
        raise UsageError(
            f"--profile {name!r}: no {folder / 'config.yaml'}"
            f" (profiles here: {', '.join(known) or 'none'})"
        )
    _check_executor_installed(name, folder / "config.yaml")
    return folder


# Executors that come with Snakemake itself; any other is a plugin package.
BUILT_IN_EXECUTORS = ("local", "dryrun", "touch")


def _check_executor_installed(name: str, profile_config: Path) -> None:
    """Refuse a profile whose executor plugin is not installed, naming what to install.

    Without this Snakemake answers with its own traceback-like error after parsing.
    """
    import importlib.util

    import yaml

    from orchestrator.errors import UsageError

    settings = yaml.safe_load(profile_config.read_text(encoding="utf-8")) or {}
    executor = str(settings.get("executor", "local")) if isinstance(settings, dict) else "local"
    if executor in BUILT_IN_EXECUTORS:
        return
    plugin = "snakemake_executor_plugin_" + executor.replace("-", "_")
    if importlib.util.find_spec(plugin) is None:
        package = plugin.replace("_", "-")
        install = "pip install -e '.[slurm]'" if executor == "slurm" else f"pip install {package}"
        raise UsageError(
            f"--profile {name!r}: its executor {executor!r} ({package}) is not installed"
            f" in this virtualenv: {install}"
        )


def configfile_of(config: Config) -> str | None:
    """The config file to hand Snakemake, or ``None`` for the project's own ``config.yaml``."""
    source = Path(config.source).resolve()
    return None if source == config.base_dir / "config.yaml" else str(source)


def format_command(command: Sequence[str]) -> str:
    """A command line for messages, with the interpreter shortened to ``python``."""
    shown = ["python" if part == sys.executable else part for part in command]
    return " ".join(shown)
