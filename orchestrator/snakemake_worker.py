"""The Snakemake worker: one living process that builds each intraday tick's targets.

A ``snakemake`` process per tick pays a new interpreter and Snakemake's
imports (about a second here) and, as it exits, a wait on its job rate
limiter's timer. The worker pays the imports once: it holds Snakemake's
Python API and, told a tick's targets and its pinned config, parses the
workflow anew (which slots are current depends on ``now``) and runs it.

Its jobs' built-in collectors are forked from a process that has imported
them (``orchestrator/collector_forkserver.py``), which the worker starts and
stops with itself.

``SnakemakeWorker`` is the loop's side and supervises it:

- a worker that dies, or does not answer within the tick's time limit, is
  killed with its whole process group (runners and collectors, which record
  the interruption) and the next tick starts a new one: the loop never dies
  with it;
- the API's state grows with every run (about 1.2 MiB a tick measured
  here), so the worker is recycled when its resident memory has grown by
  ``RECYCLE_GROWTH_MIB`` over its size after the first tick, after
  ``MAX_TICKS`` ticks, and when the loop calls ``recycle`` (at each new
  session);
- a stop request (``cut``) stops the running tick as ``run_snakemake`` does.

Protocol: one JSON request per line on the worker's stdin
(``{"targets": [...], "config": {...}, "cores": N}``), one JSON reply per
line on a pipe of its own (``{"exit_code": N, "rss_mib": X}``); stdout and
stderr carry Snakemake's output and the runners' milestones, relayed to the
loop's console.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from orchestrator.collector_forkserver import ForkServer
from orchestrator.snakemake_runs import LOCKED_MESSAGE, STOP_GRACE_SECONDS, SnakemakeCall
from orchestrator.task_launcher import SOCKET_VARIABLE as FORKSERVER_SOCKET

logger = logging.getLogger(__name__)

MAX_TICKS = 400  # a session of 1-minute slots is 390
# MiB over its size after the first tick: ~25 ticks of the API's growth, a few percent
# of the loop's tree (a relative bound recycled it every ~10 ticks, each restart a
# slower tick).
RECYCLE_GROWTH_MIB = 32.0
POLL_SECONDS = 0.2


class WorkerFailed(Exception):
    """The worker died or hung; it has been killed, the next run starts a new one."""


class SnakemakeWorker:
    """The loop's handle on a worker process, started on first use."""

    def __init__(
        self, project_dir: Path, configfile: str | None = None, output: TextIO | None = None
    ) -> None:
        self.project_dir = Path(project_dir)
        self.configfile = configfile
        self.output = output or sys.stdout
        self._process: subprocess.Popen[str] | None = None
        self._replies: TextIO | None = None
        self._relay: threading.Thread | None = None
        self._forkserver: ForkServer | None = None
        self._ticks = 0
        self._first_rss_mib: float | None = None
        self.started = 0  # workers started so far (restarts included)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def exited(self) -> bool:
        """Whether the worker started last has ended (the next run starts another)."""
        return self._process is not None and self._process.poll() is not None

    def _start(self) -> None:
        # Not waited for: until it listens (its imports take a second or so), runners
        # start their collectors' interpreters as they would without it.
        self._forkserver = ForkServer(self.project_dir)
        read_end, write_end = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.snakemake_worker", str(write_end)],
            cwd=self.project_dir,
            env={**os.environ, FORKSERVER_SOCKET: self._forkserver.socket_path},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            pass_fds=(write_end,),
            start_new_session=True,  # a kill reaches its runners and collectors too
        )
        os.close(write_end)
        self._replies = os.fdopen(read_end, "r")
        self._relay = threading.Thread(target=self._relay_output, daemon=True)
        self._relay.start()
        self._ticks = 0
        self._first_rss_mib = None
        self.started += 1

    def _relay_output(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            self.output.write(line)
        self.output.flush()

    def run(
        self,
        targets: tuple[str, ...],
        config: dict[str, str],
        cores: int,
        timeout: float,
        stop_requested: threading.Event | None = None,
        forcerun: tuple[str, ...] = (),
        quiet: tuple[str, ...] = ("progress", "rules", "host"),
    ) -> int:
        """Build ``targets`` with ``config`` overrides; Snakemake's exit code (0 or 1).

        Raises ``WorkerFailed`` when the worker died or hung (it is killed).
        """
        if self._process is not None and self.exited:
            logger.warning(
                "the Snakemake worker had exited (%s); starting a new one", self._process.returncode
            )
            self.close(kill=True)
        if self._process is None:
            self._start()
        assert self._process is not None and self._process.stdin is not None
        request = {
            "targets": list(targets),
            "config": config,
            "configfile": self.configfile,
            "cores": cores,
            "forcerun": list(forcerun),
            "quiet": list(quiet),
        }
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        except OSError:
            self.close(kill=True)
            raise WorkerFailed(
                "the Snakemake worker had died; a new one starts next tick"
            ) from None
        reply = self._await_reply(timeout, stop_requested)
        if reply.get("stale_lock_cleared"):
            logger.warning("a killed run left a stale Snakemake lock; cleared it and ran")
        self._ticks += 1
        rss = float(reply.get("rss_mib") or 0.0)
        self._first_rss_mib = self._first_rss_mib or rss
        if self._ticks >= MAX_TICKS or rss > self._first_rss_mib + RECYCLE_GROWTH_MIB:
            logger.info(
                "recycling the Snakemake worker after %d ticks (%.0f MiB, first %.0f MiB)",
                self._ticks,
                rss,
                self._first_rss_mib,
            )
            self.close()
        return int(reply["exit_code"])

    def _await_reply(
        self, timeout: float, stop_requested: threading.Event | None
    ) -> dict[str, Any]:
        assert self._replies is not None
        waited = 0.0
        while waited < timeout:
            ready, _, _ = select.select([self._replies], [], [], POLL_SECONDS)
            if ready:
                line = self._replies.readline()
                if not line:  # the worker exited: its end of the pipe closed
                    self.close(kill=True)
                    raise WorkerFailed("the Snakemake worker died during the tick")
                return dict(json.loads(line))
            waited += POLL_SECONDS
            if stop_requested is not None and stop_requested.is_set():
                logger.warning("stop requested: stopping the Snakemake worker and its tasks")
                self.close(kill=True)
                return {"exit_code": 1}
        self.close(kill=True)
        raise WorkerFailed(f"the Snakemake worker did not answer within {timeout:.0f} s; killed")

    def recycle(self) -> None:
        """End the worker; the next run starts a fresh one."""
        self.close()

    def close(self, kill: bool = False) -> None:
        """Stop the worker: by closing its stdin, or (``kill``) by signalling its group."""
        process, self._process = self._process, None
        if process is None:
            return
        if not kill and process.stdin is not None:
            process.stdin.close()
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                kill = True
        if kill:
            # Without stdin it ends once Snakemake has stopped its jobs (SIGTERM makes
            # Snakemake wait for them), instead of waiting for the next request.
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=STOP_GRACE_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._relay is not None:
            self._relay.join(timeout=5)
        if self._replies is not None:
            self._replies.close()
            self._replies = None
        if self._forkserver is not None:
            self._forkserver.close()
            self._forkserver = None


def run_in_worker(
    call: SnakemakeCall,
    project_dir: Path,
    timeout: float,
    stop_requested: threading.Event | None = None,
) -> int:
    """``call`` (no dry run, no profile) in a worker of its own: ``run_snakemake`` without
    the wait on the job rate limiter's timer as the ``snakemake`` process exits.

    Snakemake's CLI limits job submissions to 100 a second, and each pass of its
    scheduler then starts a 1-second ``threading.Timer`` that the interpreter waits
    for at exit; the API sets no limit, so it starts none. (A shorter timespan is
    no way out on 9.27.1: ``100/100ms`` parses as 100 minutes, since its pattern
    tries ``m`` before ``ms``, and the run "hangs" on a 6,000-second timer.)
    """
    overrides = dict(item.split("=", 1) for item in call.config_overrides)
    worker = SnakemakeWorker(project_dir, call.configfile)
    try:
        return worker.run(
            call.targets,
            overrides,
            call.cores,
            timeout,
            stop_requested,
            forcerun=call.forcerun,
            quiet=call.quiet,
        )
    finally:
        worker.close()


# -- the worker process ---------------------------------------------------------------


def _rss_mib() -> float:
    """This process's resident memory now (Linux ``/proc``; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def build(request: dict[str, Any], project_dir: Path) -> int:
    """One Snakemake run through the API, as ``snakemake TARGETS --cores N`` would; 0 or 1.

    The settings are those of ``SnakemakeCall`` and the workflow profile:
    keep going past a failed job, re-run incomplete outputs, the greedy
    scheduler; a stale lock left by a killed run is cleared once (the loop
    holds the family lock).
    """
    from snakemake.api import SnakemakeApi
    from snakemake.scheduling.greedy import SchedulerSettings as GreedySettings
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ExecutionSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
        SchedulingSettings,
        StorageSettings,
        WorkflowSettings,
    )

    quiet = {Quietness[name.upper()] for name in request.get("quiet", ())}
    configfile = request.get("configfile")
    config_settings = ConfigSettings(
        config=dict(request["config"]),
        configfiles=[Path(configfile)] if configfile else [],
        replace_workflow_config=bool(configfile),
    )
    for attempt in (1, 2):
        with SnakemakeApi(OutputSettings(quiet=quiet, show_failed_logs=True)) as api:
            workflow = api.workflow(
                resource_settings=ResourceSettings(cores=int(request["cores"])),
                config_settings=config_settings,
                storage_settings=StorageSettings(),
                workflow_settings=WorkflowSettings(),
                snakefile=project_dir / "Snakefile",
                workdir=project_dir,
            )
            dag = workflow.dag(
                dag_settings=DAGSettings(
                    targets=set(request["targets"]),
                    forcerun=set(request.get("forcerun", ())),
                    force_incomplete=True,
                )
            )
            try:
                dag.execute_workflow(
                    executor="local",
                    execution_settings=ExecutionSettings(keep_going=True),
                    scheduling_settings=SchedulingSettings(scheduler="greedy"),
                    scheduler_settings=GreedySettings(),  # the plugin's own (the CLI's defaults)
                    greedy_scheduler_settings=GreedySettings(),
                )
                return 0
            except Exception as error:  # Snakemake reports failures as exceptions
                if LOCKED_MESSAGE in str(error) and attempt == 1:
                    dag.unlock()
                    request["stale_lock_cleared"] = True  # told to the owner in the reply
                    continue
                api.print_exception(error)
                return 1
    return 1


def build_or_exit_code(request: dict[str, Any], project_dir: Path) -> int:
    """``build``, with the workflow's own ``sys.exit`` (a user error, a run's end hook) as 1."""
    try:
        return build(request, project_dir)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr, flush=True)
        return 0 if stop.code in (0, None) else 1


def serve(reply_fd: int, project_dir: Path) -> int:
    """Answer requests from stdin until it closes."""
    replies = os.fdopen(reply_fd, "w")
    os.set_inheritable(reply_fd, False)  # never handed on to a job
    for line in sys.stdin:
        request = json.loads(line)
        code = build_or_exit_code(request, project_dir)
        reply = {
            "exit_code": code,
            "rss_mib": round(_rss_mib(), 1),
            "stale_lock_cleared": request.get("stale_lock_cleared", False),
        }
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Snakemake's logger has its own handler: through the root's it would print twice.
    logging.getLogger("snakemake").propagate = False
    code = serve(int(sys.argv[1]), Path.cwd())
    # Every run's work is stored and its reply sent: skip the interpreter's teardown
    # (0.6 s here, freeing Snakemake's modules), which only delays the owner's exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
