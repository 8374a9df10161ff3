"""The collector fork server: built-in collectors start from a process that has imported them.

An attempt of a built-in collector is a new interpreter that imports
pandas, numpy and the collector (most of a second here) before it does any
work; an intraday tick pays that once per task, one after another. The fork
server imports them once and forks a child per attempt, which starts at
once. The child is what ``python -m orchestrator.collector_process`` would
be: its own process group (the runner's timeout still kills
the whole group), the attempt's environment, working folder and output
files, and its exit status reported to the runner that asked for it.

The intraday loop's Snakemake worker starts one (``ForkServer``) and hands
its socket to the runners through ``ORCHESTRATOR_FORKSERVER``; a runner
without one, or whose fork server is gone, starts the interpreter as
before. The server is single-threaded (forking a threaded process is not
safe): one ``selectors`` loop over the listening socket, the connections
awaiting their child's exit, and SIGCHLD.

Protocol, one JSON line each way on a Unix socket: the request
``{"argv", "env", "cwd", "stdout", "stderr"}``, then ``{"pid": N}`` once
forked and ``{"exit": CODE}`` when the child ends (``-SIGNAL`` if killed,
as ``subprocess`` reports it).
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
import time
from pathlib import Path
from typing import Any

SOCKET_VARIABLE = "ORCHESTRATOR_FORKSERVER"
START_TIMEOUT_SECONDS = 60.0
# Modules a child would import first thing; the collectors are found in their package.
PRELOAD = ("numpy", "pandas", "orchestrator.collector_process", "collectors.support")
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
            line, self._buffer = _read_line(self._connection, self._buffer, timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(f"collector pid {self.pid}", timeout or 0) from None
        # No line: the server died, and its child with it.
        self.returncode = int(json.loads(line)["exit"]) if line else -signal.SIGKILL
        self._connection.close()
        return self.returncode


def _read_line(
    connection: socket.socket, buffered: bytes, timeout: float | None
) -> tuple[bytes, bytes]:
    """One line (without its newline; empty at end of stream) and what was read past it.

    Raises ``TimeoutError``, keeping what was read in ``buffered`` for the next call.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while b"\n" not in buffered:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if remaining == 0.0:
            raise TimeoutError
        connection.settimeout(remaining)
        chunk = connection.recv(4096)
        if not chunk:
            return b"", b""
        buffered += chunk
    line, _, rest = buffered.partition(b"\n")
    return line, rest


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
        reply, rest = _read_line(connection, b"", START_TIMEOUT_SECONDS)
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


def _run_child(request: dict[str, Any]) -> int:
    """In the forked child: become the attempt's process, then run the collector."""
    with contextlib.suppress(OSError):  # the server may have done it first
        os.setpgid(0, 0)
    for signum in (signal.SIGCHLD, *STOP_SIGNALS):
        signal.signal(signum, signal.SIG_DFL)
    os.close(0)  # the owner's pipe: replaced by /dev/null below
    signal.set_wakeup_fd(-1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a kill already sent lands now
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    try:
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    except OSError:
        return 1  # the runner gave up on the attempt and removed its folder
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115  # the new files, not the server's
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    from orchestrator import collector_process

    code = 1
    try:
        code = collector_process.main(list(request["argv"]))
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


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
                line = connection.makefile("r").readline()
                if not line:
                    connection.close()
                    continue
                request = json.loads(line)
                sys.stdout.flush()
                sys.stderr.flush()
                # Held until the child has its default handlers back: a kill that
                # comes first must not reach the server's SIGTERM handler in the child.
                signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                pid = os.fork()
                if pid == 0:
                    for inherited in (listener, connection, wake_read, *waiting.values()):
                        inherited.close()  # a runner sees its end only when the server closes
                    os._exit(_run_child(request))
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                # Its own group before the runner learns its pid, so a kill of the
                # group cannot miss it (the child does the same: whichever is first).
                with contextlib.suppress(OSError):
                    os.setpgid(pid, pid)
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
    while waiting:
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
