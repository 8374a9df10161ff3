"""The fork server: collectors and task runners start from a process that has imported them.

An attempt of a built-in collector is a new interpreter that imports
pandas, numpy and the collector (most of a second here) before it does any
work; an intraday tick pays that once per task, one after another. The fork
server imports them once and forks a child per attempt, which starts at
once. The child is what ``python -m orchestrator.collector_process`` would
be: its own process group (the runner's timeout still kills
the whole group), the attempt's environment, working folder and output
files, and its exit status reported to the runner that asked for it.

Each job's task runner is forked the same way, for the job's launcher
(``orchestrator/task_launcher.py``): the runner's imports cost every job
about 0.2 s of CPU. The runner child takes the launcher's standard streams
(passed over the socket), environment and working folder, and reports its
own exit to the launcher; it kills itself if the launcher's end closes
first (the launcher was killed), as a killed runner leaves no sentinel.

The Snakemake worker starts one (``ForkServer``) and hands its socket to
the jobs through ``ORCHESTRATOR_FORKSERVER``; a job without one, or whose
fork server is gone, starts its interpreters as before. The server is
single-threaded (forking a threaded process is not safe): one ``selectors``
loop over the listening socket, the connections awaiting their child's
exit, and SIGCHLD.

Protocol, one JSON line each way on a Unix socket. A collector: the request
``{"argv", "env", "cwd", "stdout", "stderr"}``, then ``{"pid": N}`` once
forked and ``{"exit": CODE}`` when the child ends (``-SIGNAL`` if killed,
as ``subprocess`` reports it). A runner: ``{"kind": "runner", "argv",
"env", "cwd"}`` sent with the launcher's descriptors 0, 1 and 2, then
``{"pid": N}`` and ``{"exit": CODE}`` from the runner itself (no exit line:
it was killed).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.task_launcher import read_line

START_TIMEOUT_SECONDS = 60.0
# Modules a child would import first thing; the collectors are found in their package.
PRELOAD = (
    "numpy",
    "pandas",
    "orchestrator.task_runner",
    "orchestrator.market_calendar",
    "orchestrator.collector_process",
    "collectors.support",
)
NOT_PRELOADED = frozenset({"collectors.market_schema_doc"})
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


# -- the runner's side ----------------------------------------------------------------


class ForkedChild:
    """A child of the fork server, waited on like a ``subprocess.Popen``."""

    def __init__(self, connection: socket.socket, pid: int, buffered: bytes = b"") -> None:
        self._connection = connection
        self._buffer = buffered
        self.pid = pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """The child's exit code; ``subprocess.TimeoutExpired`` if it runs past ``timeout``."""
        if self.returncode is not None:
            return self.returncode
        try:
            line, self._buffer = read_line(self._connection, self._buffer, timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(f"collector pid {self.pid}", timeout or 0) from None
        # No line: the server died, and its child with it.
        self.returncode = int(json.loads(line)["exit"]) if line else -signal.SIGKILL
        self._connection.close()
        return self.returncode


def spawn(
    socket_path: str,
    argv: list[str],
    env: dict[str, str],
    cwd: Path | None,
    stdout: Path,
    stderr: Path,
) -> ForkedChild | None:
    """Ask the fork server for a collector child; None when there is no server to ask."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(START_TIMEOUT_SECONDS)
        connection.connect(socket_path)
        request = {
            "argv": argv,
            "env": env,
            "cwd": str(cwd or Path.cwd()),
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
        connection.sendall((json.dumps(request) + "\n").encode())
        reply, rest = read_line(connection, b"", START_TIMEOUT_SECONDS)
        pid = int(json.loads(reply)["pid"])
    except (OSError, ValueError, KeyError):
        connection.close()
        return None
    return ForkedChild(connection, pid, rest)


class ForkServer:
    """A fork server process for one project, started and stopped by its owner."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = Path(project_dir)
        self._folder = tempfile.TemporaryDirectory(prefix="orchestrator-forkserver-")
        self.socket_path = str(Path(self._folder.name) / "socket")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.collector_forkserver", self.socket_path],
            cwd=self.project_dir,
            # Its end of this pipe closes when the owner dies, however: the server then ends.
            stdin=subprocess.PIPE,
            start_new_session=True,  # a stop of the loop's group does not end it mid-fork
        )

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> bool:
        """Whether the server listens (its imports done) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if Path(self.socket_path).exists():
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        """Stop the server; children still running are their runners' to end."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._folder.cleanup()


# -- the server -------------------------------------------------------------------------


def preload() -> None:
    """Import what the collectors need, and the collectors, once for every child."""
    for name in PRELOAD:
        importlib.import_module(name)
    import collectors

    for module in pkgutil.iter_modules(collectors.__path__, "collectors."):
        if not module.ispkg and module.name not in NOT_PRELOADED:
            importlib.import_module(module.name)


def _become_own_process() -> None:
    """In a forked child: its own group, default signal handling, a kill already sent lands."""
    with contextlib.suppress(OSError):  # the server may have done it first
        os.setpgid(0, 0)
    for signum in (signal.SIGCHLD, *STOP_SIGNALS):
        signal.signal(signum, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _enter(request: dict[str, Any]) -> None:
    """Take the request's working folder, environment and (already on 0-2) streams."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdin = open(0, closefd=False)  # noqa: SIM115  # the new descriptors, not the server's
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def _exit_code_of(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run a module's ``main`` as ``python -m`` would: its exit code, a traceback if it raised."""
    code = 1
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def _run_child(request: dict[str, Any]) -> int:
    """In the forked child: become the attempt's process, then run the collector."""
    _become_own_process()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the owner's pipe no more
    try:
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    except OSError:
        return 1  # the runner gave up on the attempt and removed its folder
    _enter(request)
    from orchestrator import collector_process

    return _exit_code_of(collector_process.main, list(request["argv"]))


def _run_runner(request: dict[str, Any], launcher: socket.socket, streams: list[int]) -> int:
    """In the forked child: become the launcher's task runner and tell it how that ended."""
    _become_own_process()
    for fd, stream in zip((0, 1, 2), streams, strict=True):
        os.dup2(stream, fd)
        os.close(stream)
    _enter(request)
    launcher.sendall((json.dumps({"pid": os.getpid()}) + "\n").encode())
    threading.Thread(target=_die_with_launcher, args=(launcher,), daemon=True).start()
    from orchestrator import task_runner

    code = _exit_code_of(task_runner.main, list(request["argv"]))
    with contextlib.suppress(OSError):  # the launcher is gone: the thread kills us anyway
        launcher.sendall((json.dumps({"exit": code}) + "\n").encode())
    return code


def _child_exit_code(request: dict[str, Any], connection: socket.socket, streams: list[int]) -> int:
    """In a forked child, whatever happens: its exit code (never back into the server's loop)."""
    try:
        if request.get("kind") == "runner":
            return _run_runner(request, connection, streams)
        connection.close()
        return _run_child(request)
    except BaseException:  # e.g. its working folder is gone: say so where its runner looks
        import traceback

        traceback.print_exc()
        return 1


def _die_with_launcher(launcher: socket.socket) -> None:
    """Once the launcher's end closes (it never sends after its request), end as if killed."""
    with contextlib.suppress(OSError):
        while launcher.recv(4096):
            pass
    os.kill(os.getpid(), signal.SIGKILL)


def _receive_request(connection: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The request line and the descriptors sent with it (a runner's streams)."""
    data, fds, _, _ = socket.recv_fds(connection, 65536, 3)
    line = read_line(connection, data)[0] if data else b""
    if not line:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(line), fds


def serve(socket_path: str) -> None:
    """Fork a child per request until terminated."""
    preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = f"{socket_path}.binding"
    listener.bind(staging)
    listener.listen(64)
    os.replace(staging, socket_path)  # the path appears only once it accepts connections
    wake_read, wake_write = socket.socketpair()
    wake_write.setblocking(False)
    signal.set_wakeup_fd(wake_write.fileno())
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_read, selectors.EVENT_READ, "signal")
    selector.register(sys.stdin, selectors.EVENT_READ, "owner")  # readable at EOF: owner gone
    waiting: dict[int, socket.socket] = {}
    while not stop:
        for key, _ in selector.select():
            if key.data == "owner":
                stop.append(True)
            elif key.data == "accept":
                connection, _ = listener.accept()
                request, streams = _receive_request(connection)
                if request is None:
                    connection.close()
                    continue
                runner = request.get("kind") == "runner"
                sys.stdout.flush()
                sys.stderr.flush()
                # Held until the child has its default handlers back: a kill that
                # comes first must not reach the server's SIGTERM handler in the child.
                signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                pid = os.fork()
                if pid == 0:
                    for inherited in (listener, wake_read, *waiting.values()):
                        inherited.close()  # a runner sees its end only when the server closes
                    os._exit(_child_exit_code(request, connection, streams))
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                # Its own group before the runner learns its pid, so a kill of the
                # group cannot miss it (the child does the same: whichever is first).
                with contextlib.suppress(OSError):
                    os.setpgid(pid, pid)
                for stream in streams:
                    os.close(stream)
                if runner:  # it talks to its launcher itself, and outlives this server
                    connection.close()
                    continue
                waiting[pid] = connection
                connection.sendall((json.dumps({"pid": pid}) + "\n").encode())
            else:
                with contextlib.suppress(BlockingIOError):
                    wake_read.recv(4096)
                _report_exits(waiting)
    listener.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)


def _report_exits(waiting: dict[int, socket.socket]) -> None:
    """Reap every child that has ended; tell a collector's runner its exit."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = waiting.pop(pid, None)
        if connection is None:
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        with contextlib.suppress(OSError):  # its runner is gone: nobody to tell
            connection.sendall((json.dumps({"exit": code}) + "\n").encode())
        connection.close()


if __name__ == "__main__":
    serve(sys.argv[1])
    # Its children are their runners' own: skip the teardown of pandas and the
    # collectors (0.2 s here), which only delays the owner's exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
