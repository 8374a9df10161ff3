"""Running the dashboard: ``serve`` for ``orchestrator serve``, ``BackgroundServer`` for tests.

``serve`` refuses a host beyond loopback unless ``ORCHESTRATOR_DASHBOARD_TOKEN``
is set (``security.check_bind``), then runs uvicorn until Ctrl+C. Without a
token the app answers only to loopback host names and to the host it was told
to bind (so ``--host localhost`` and ``--host 127.0.0.2`` work too).

``BackgroundServer`` runs the app on a socket it binds itself (port 0: a free
one), so the port is known and accepting before the server thread starts: no
waiting for the server to come up.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from orchestrator.web.app import create_app
from orchestrator.web.security import LOOPBACK_NAMES, TOKEN_VARIABLE, check_bind, dashboard_token

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
# An open event stream would hold a graceful shutdown forever.
GRACEFUL_SHUTDOWN_SECONDS = 2


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    config_path: Path | str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    base_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the dashboard on ``host:port`` until interrupted.

    ``UsageError`` for a non-loopback ``host`` without a token, or a token
    shorter than ``security.MIN_TOKEN_LENGTH``. ``echo`` prints where to open
    it (never the token).
    """
    base = Path(base_dir or Path.cwd()).resolve()
    token = dashboard_token(base)
    check_bind(host, token)
    app = create_app(config_path, base_dir=base, allowed_hosts=[*LOOPBACK_NAMES, host])
    url = _url(host, port)
    echo(f"dashboard: {url}/  (API {url}/api/, metrics {url}/metrics; Ctrl+C stops)")
    if token:
        echo(
            f"every request needs the token: open {url}/login?token=<{TOKEN_VARIABLE}> once, "
            f"or send 'Authorization: Bearer <{TOKEN_VARIABLE}>'"
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


class BackgroundServer:
    """``app`` served by uvicorn in a thread on 127.0.0.1 and a free port; a context manager.

    The listening socket exists before the thread starts, so ``url`` can be
    used at once. Leaving the block stops the server and joins the thread.
    """

    def __init__(self, app: Starlette, host: str = DEFAULT_HOST) -> None:
        self.app = app
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it. uvicorn sets it on the sockets it binds itself,
        # not on one handed to it: without it each keep-alive response waits ~40 ms (Nagle).
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket.bind((host, 0))
        self._socket.listen(64)
        self.port = int(self._socket.getsockname()[1])
        self.url = _url(host, self.port)
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=GRACEFUL_SHUTDOWN_SECONDS + 10)
        self._socket.close()
