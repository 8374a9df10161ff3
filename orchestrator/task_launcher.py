"""The command every task rule runs: the task runner, forked ready-imported where it can be.

``python -I -S .../orchestrator/task_launcher.py ARGS`` takes the task
runner's arguments (``orchestrator/task_runner.py``). Under a Snakemake
that the orchestrator's worker runs, ``$ORCHESTRATOR_FORKSERVER`` names a
fork server that has imported the runner (``orchestrator/collector_forkserver.py``):
the launcher asks it for a runner child, hands that child its standard
streams (so ``2> {log}`` still holds), forwards the stop signals to it, and
exits with its exit code. A job then pays an interpreter without ``site``
and four standard modules, instead of the runner's imports: about 0.2 s of
CPU each, four jobs at a time on a 2-core machine. Anywhere else (a bare
``snakemake``, a cluster node, a server still importing) the launcher
runs the runner itself, as if the rule had run it.

The process Snakemake sees stands for its runner: a stop signal sent to it
reaches the runner (which kills its task and records the interruption), and
when it is killed outright the runner notices its end of the socket close
and kills itself, leaving no sentinel, as a killed runner always has.

Only the standard library, and only what the handover needs: this runs once
per job.
"""

import json
import os
import signal
import socket
import sys
import time

SOCKET_VARIABLE = "ORCHESTRATOR_FORKSERVER"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CONNECT_TIMEOUT_SECONDS = 10.0


def run_in_this_process(argv: list[str]) -> int:
    """Run the task runner here, as ``python -m orchestrator.task_runner`` would."""
    import site

    site.main()  # the virtualenv's packages, which `-S` left out for the handover
    from orchestrator import task_runner

    return task_runner.main(argv)


def read_line(
    connection: socket.socket, buffered: bytes, timeout: float | None = None
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


def hand_over(socket_path: str, argv: list[str]) -> int | None:
    """Run the task runner as a fork server's child; its exit code, or None if no server took it."""
    pending: list[int] = []
    runner: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if runner:
            os.kill(runner[0], signum)
        else:
            pending.append(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(CONNECT_TIMEOUT_SECONDS)
        connection.connect(socket_path)
        request = {"kind": "runner", "argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
        socket.send_fds(connection, [(json.dumps(request) + "\n").encode()], [0, 1, 2])
        reply, rest = read_line(connection, b"", CONNECT_TIMEOUT_SECONDS)
        pid = int(json.loads(reply)["pid"])
    except (OSError, ValueError, KeyError):
        connection.close()
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        if pending:  # asked to stop before any runner started: stop as the runner would
            return 1
        return None
    runner.append(pid)
    for asked in pending:
        os.kill(pid, asked)
    line, _ = read_line(connection, rest)  # no timeout: the task's own is the runner's to enforce
    if not line:
        print(
            f"task_launcher: the task runner (pid {pid}) ended without an exit status"
            " (killed, or it failed to start: see above)",
            file=sys.stderr,
        )
        return 1
    return int(json.loads(line)["exit"])


def main(argv: list[str]) -> int:
    socket_path = os.environ.get(SOCKET_VARIABLE)
    code = hand_over(socket_path, argv) if socket_path else None
    return run_in_this_process(argv) if code is None else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
