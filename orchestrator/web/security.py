"""Who may read the dashboard, and that no secret leaves it.

- Loopback by default. Listening on any other address needs a token,
  ``ORCHESTRATOR_DASHBOARD_TOKEN`` (from the environment or the project's
  ``.env``); ``check_bind`` refuses otherwise, with the fix in the message.
- With a token set, every request needs ``Authorization: Bearer <token>`` or
  the session cookie that ``/login?token=<token>`` sets (then redirects to a
  URL without the token, so it stays out of the address bar and history).
  The cookie holds an HMAC of the token, never the token itself.
- Without a token, only requests naming a loopback host (``Host:``) are
  answered, so a web page cannot reach the dashboard by DNS rebinding.
- Every response carries a strict Content-Security-Policy: scripts, styles and
  connections only from the dashboard itself.
- Text read from the stores (error messages, log lines, quarantined payloads)
  may hold a secret that the process writing it did not know about; every
  page and API document is redacted with the secrets of this process's
  environment and ``.env`` (``Redactor``) on its way out.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Collection, Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import UsageError
from orchestrator.secrets import read_dotenv, secret_values

TOKEN_VARIABLE = "ORCHESTRATOR_DASHBOARD_TOKEN"
MIN_TOKEN_LENGTH = 16
COOKIE_NAME = "orchestrator_dashboard"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
PUBLIC_PATHS = frozenset({"/login"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) means this machine only."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dashboard_token(base_dir: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The token from the environment, else from ``base_dir/.env``; None when unset or empty."""
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_VARIABLE) or read_dotenv(base_dir / ".env").get(TOKEN_VARIABLE)
    return token or None


def check_bind(host: str, token: str | None) -> None:
    """``UsageError`` unless serving on ``host`` is allowed: loopback, or a good token set."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise UsageError(
            f"{TOKEN_VARIABLE} is too short ({len(token)} characters): use at least "
            f"{MIN_TOKEN_LENGTH}, e.g. the output of `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`"
        )
    if not is_loopback(host) and token is None:
        raise UsageError(
            f"refusing to serve the dashboard on {host}: beyond this machine it needs a token. "
            f"Set {TOKEN_VARIABLE} (in the environment or .env), or serve on 127.0.0.1 "
            "and reach it through an SSH tunnel"
        )


def session_cookie_value(token: str) -> str:
    """What the login cookie holds: an HMAC of the token (the token itself is never sent back)."""
    return hmac.new(token.encode(), b"orchestrator-dashboard-session", hashlib.sha256).hexdigest()


def token_matches(candidate: str | None, token: str) -> bool:
    return candidate is not None and hmac.compare_digest(candidate.encode(), token.encode())


def _host_name(host_header: str) -> str:
    """The name in a ``Host:`` header, without the port (``[::1]:8787`` is ``::1``)."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class DashboardGuard:
    """ASGI middleware: the allowed hosts, the token, and the security headers.

    ``token`` None: no authentication, and only ``allowed_hosts`` are answered
    (loopback names by default). With a token: any host, but every path except
    ``/login`` needs the bearer header or the session cookie.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = frozenset(h.lower() for h in (allowed_hosts or LOOPBACK_NAMES))
        self.cookie_value = session_cookie_value(token) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        refusal = self._refusal(scope["path"], headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        if refusal is not None:
            status, text, extra = refusal
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), *extra],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": text.encode()})
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(
        self, path: str, headers: dict[str, str]
    ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        if self.token is None:
            host = _host_name(headers.get("host", "")).lower()
            if host not in self.allowed_hosts:
                return 400, f"400: the dashboard answers only to {sorted(self.allowed_hosts)}\n", []
            return None
        if path in PUBLIC_PATHS:
            return None
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer " and token_matches(
            authorization[7:].strip(), self.token
        ):
            return None
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no session
            cookie = SimpleCookie()
        morsel = cookie.get(COOKIE_NAME)
        if (
            morsel is not None
            and self.cookie_value is not None
            and hmac.compare_digest(morsel.value.encode(), self.cookie_value.encode())
        ):
            return None
        return (
            401,
            "401: this dashboard needs its token: send 'Authorization: Bearer <token>', "
            f"or open /login?token=<token> once in the browser (the token is {TOKEN_VARIABLE})\n",
            [(b"www-authenticate", b'Bearer realm="orchestrator dashboard"')],
        )


# -- redaction --------------------------------------------------------------------


class Redactor:
    """Replaces the secrets of this process's environment and ``.env`` with ``***``.

    ``refresh`` re-reads them (once per request: cheap, and a key exported
    after the server started is covered too).
    """

    def __init__(self, dotenv_path: Path) -> None:
        self.dotenv_path = dotenv_path
        self.secrets: tuple[str, ...] = ()
        self.refresh()

    def refresh(self) -> None:
        environ = {**read_dotenv(self.dotenv_path), **os.environ}
        self.secrets = tuple(secret_values(environ))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, "***")
        return value

    def document(self, value: Any) -> Any:
        """A JSON-able value with every string in it redacted (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.document(key): self.document(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.document(item) for item in value]
        return value
