"""The HTTP layer every real provider stands on: session, rate limit, retries, errors.

``ProviderHttp(...).get_json(path, params)`` is the one way a provider calls
its API. It gives every provider the same behaviour:

- one ``requests`` session with connect/read timeouts and a User-Agent naming
  the project; credentials go in headers (or, where an API insists, in query
  parameters that are redacted from every message), never in a logged URL;
- one rate limiter per provider shared by every process of the machine
  (``pyrate_limiter``'s SQLite bucket under ``state/cache/``), so four tasks
  running in parallel together keep the provider's documented rate;
- retries inside the task (``tenacity``) of 429, 5xx, timeouts and dropped
  connections, with exponential backoff and jitter, or the server's
  ``Retry-After`` (seconds or an HTTP date) when longer; a 429 also pauses
  the provider's limiter for every process, not only this request;
- one error mapping: 401/403 are permanent (a provider that answers a
  throttle with a 403 HTML page, as SEC does, sets ``throttle_403_seconds``:
  that 403 pauses the provider and is transient) and name the environment variable
  to set and where the key comes from; 400/422 are permanent and name the
  parameters sent; 404 is ``NotFound`` (a provider turns it into "unknown
  symbol" or a permanent error); 429/5xx/timeouts still failing after the
  in-task retries are ``TransientError`` (the runner's retry policy takes over);
- pagination in the two styles the providers use (``paginate_token``,
  ``paginate_next_url``).

Only loopback hosts may be called while ``ORCHESTRATOR_LOOPBACK_ONLY`` is
set (tests and benchmarks set it): a test that tries the network fails.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket

from collectors.providers.registry import Credential
from orchestrator.errors import PermanentError, TransientError
from orchestrator.secrets import redact

logger = logging.getLogger(__name__)

USER_AGENT = "market-pipeline-orchestrator/0.1 (+https://github.com/market-pipeline)"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
IN_TASK_TRIES = 4
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
LOOPBACK_ONLY_VARIABLE = "ORCHESTRATOR_LOOPBACK_ONLY"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
Sleeper = Callable[[float], None]


class NotFound(PermanentError):
    """The provider has no such resource (HTTP 404): a symbol it does not know."""


class Forbidden(PermanentError):
    """HTTP 403 from a provider that needs no key: access to that resource is refused."""


class _Retryable(Exception):
    """A failure worth another try inside the task, with the server's wait hint."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: ``"120"`` or an HTTP date; None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _require_allowed_host(url: str) -> None:
    if not os.environ.get(LOOPBACK_ONLY_VARIABLE):
        return
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermanentError(
            f"refusing to call {host}: {LOOPBACK_ONLY_VARIABLE} allows loopback hosts only"
        )


class SharedLimiter:
    """One provider's request rate across every process of this machine.

    The bucket is ``pyrate_limiter``'s SQLite bucket with a file lock; a
    ``paused_until`` row beside it makes every process wait out a 429.
    """

    def __init__(self, provider: str, rates: Sequence[Rate], db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.provider = provider
        self.db_path = db_path
        bucket = SQLiteBucket.init_from_file(
            list(rates), table=f"bucket_{provider}", db_path=str(db_path), use_file_lock=True
        )
        self.limiter = Limiter(bucket)
        with self._pauses() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS pauses (provider TEXT PRIMARY KEY, until REAL)"
            )

    def _pauses(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=30)

    def acquire(self, sleeper: Sleeper) -> None:
        """Wait for the provider's pause (if any) and then for a permit."""
        with self._pauses() as connection:
            row = connection.execute(
                "SELECT until FROM pauses WHERE provider = ?", (self.provider,)
            ).fetchone()
        if row and row[0] > time.time():
            sleeper(row[0] - time.time())
        self.limiter.try_acquire(self.provider)

    def pause(self, seconds: float) -> None:
        """Hold every process's requests to this provider for ``seconds``."""
        until = time.time() + seconds
        with self._pauses() as connection:
            connection.execute(
                "INSERT INTO pauses (provider, until) VALUES (?, ?) ON CONFLICT (provider) "
                "DO UPDATE SET until = MAX(until, excluded.until)",
                (self.provider, until),
            )


def per_minute(calls: int) -> list[Rate]:
    """``calls`` a minute, with a second of margin: permits are timed when taken, the
    provider counts arrivals, and a few milliseconds of jitter would cost a 429."""
    return [Rate(calls, Duration.MINUTE + Duration.SECOND)]


class ProviderHttp:
    """The HTTP client of one provider; see the module docstring for what it guarantees."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        rates: Sequence[Rate],
        limits_db: Path,
        headers: Mapping[str, str] | None = None,
        auth_params: Mapping[str, str] | None = None,
        credentials: Sequence[Credential] = (),
        sleeper: Sleeper = time.sleep,
        tries: int = IN_TASK_TRIES,
        throttle_403_seconds: float | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/") + "/"
        self.credentials = tuple(credentials)
        self.auth_params = dict(auth_params or {})
        self.sleeper = sleeper
        self.tries = tries
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, **(headers or {})})
        self.limiter = SharedLimiter(provider, rates, limits_db)
        self.requests_made = 0
        # SEC answers too many requests with a 403 and an HTML page, not a 429.
        self.throttle_403_seconds = throttle_403_seconds

    def url(self, path: str) -> str:
        return path if "://" in path else urljoin(self.base_url, path.lstrip("/"))

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded JSON body of ``GET path?params``, after the shared rules above."""
        return self._get(path, params, decode=True)

    def get_bytes(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """The raw body of ``GET path?params`` (a document, not JSON), same rules."""
        body: bytes = self._get(path, params, decode=False)
        return body

    def _get(self, path: str, params: Mapping[str, Any] | None, decode: bool) -> Any:
        url = self.url(path)
        _require_allowed_host(url)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.tries),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self.sleeper,
            reraise=True,
        )
        try:
            return retrying(self._get_once, url, dict(params or {}), decode)
        except _Retryable as error:
            raise TransientError(
                f"{self.provider}: {error} (after {self.tries} tries)", error.retry_after
            ) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        backoff = tenacity.wait_exponential_jitter(
            initial=BACKOFF_INITIAL_SECONDS, max=BACKOFF_MAX_SECONDS
        )(state)
        error = state.outcome.exception() if state.outcome else None
        hint = error.retry_after if isinstance(error, _Retryable) else None
        return max(backoff, hint or 0.0)

    def _get_once(self, url: str, params: dict[str, Any], decode: bool = True) -> Any:
        self.limiter.acquire(self.sleeper)
        self.requests_made += 1
        where = f"GET {urlsplit(url).path}"
        try:
            response = self.session.get(
                url,
                params={**params, **self.auth_params},
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
            )
        except requests.Timeout:
            raise _Retryable(f"{where} timed out", None) from None
        except requests.ConnectionError as error:
            raise _Retryable(f"{where}: connection failed ({type(error).__name__})", None) from None
        status = response.status_code
        if status == 200 and not decode:
            return response.content
        if status == 200:
            try:
                return response.json()
            except ValueError:
                raise PermanentError(
                    f"{self.provider}: {where} returned a body that is not JSON "
                    f"({response.headers.get('Content-Type', 'no content type')})"
                ) from None
        detail = self._detail(response)
        html = "html" in response.headers.get("Content-Type", "").lower()
        if status == 403 and html and self.throttle_403_seconds is not None:
            pause = max(
                retry_after_seconds(response.headers.get("Retry-After")) or 0.0,
                self.throttle_403_seconds,
            )
            self.limiter.pause(pause)
            # Too long to wait inside the task: the runner retries it later.
            raise TransientError(
                f"{self.provider}: {where}: HTTP 403, throttled (an HTML page, not the data); "
                f"requests paused {pause:.0f} s",
                pause,
            )
        if status in RETRYABLE_STATUS:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if status == 429:
                self.limiter.pause(wait if wait is not None else BACKOFF_MAX_SECONDS)
            raise _Retryable(f"{where}: HTTP {status}{detail}", wait)
        if status == 403 and any(
            word in detail.lower() for word in ("not_authorized", "entitle", "plan", "subscription")
        ):
            raise PermanentError(
                f"{self.provider}: {where}: HTTP 403{detail}: the key works but its plan does "
                "not include this data (history depth, real-time bars); choose other data or "
                "another plan"
            )
        if status in (401, 403) and not self.credentials:
            raise Forbidden(f"{self.provider}: {where}: HTTP {status}{detail}: access refused")
        if status in (401, 403):
            names = " and ".join(c.variable for c in self.credentials) or "its key"
            where_from = "; ".join(c.where for c in self.credentials)
            raise PermanentError(
                f"{self.provider}: HTTP {status}{detail}: the key was refused; set {names} "
                f"in the environment or .env" + (f" (from {where_from})" if where_from else "")
            )
        if status == 404:
            raise NotFound(f"{self.provider}: {where}: HTTP 404{detail}")
        sent = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
        raise PermanentError(
            redact(f"{self.provider}: {where}: HTTP {status}{detail} (parameters: {sent})")
        )

    def _detail(self, response: requests.Response) -> str:
        """The provider's own error text, short and with secrets removed."""
        try:
            body = response.json()
        except ValueError:
            body = response.text.strip()
        if isinstance(body, dict):
            fields = ("message", "error_message", "error", "status")
            text = str(next((body[f] for f in fields if body.get(f)), body))
        else:
            text = str(body)
        # Secrets out first, then shorten: a cut must never leave half a key behind.
        text = redact(" ".join(text.split()))
        for value in self.auth_params.values():
            text = text.replace(value, "***")
        text = text[:200]
        return f" ({text})" if text else ""

    # -- pagination ---------------------------------------------------------------

    def paginate_token(
        self,
        path: str,
        params: Mapping[str, Any],
        token_field: str = "next_page_token",
        token_param: str = "page_token",
    ) -> Iterator[Any]:
        """Pages of an API that returns ``next_page_token`` (Alpaca)."""
        query = dict(params)
        while True:
            page = self.get_json(path, query)
            yield page
            token = page.get(token_field) if isinstance(page, dict) else None
            if not token:
                return
            query[token_param] = token

    def paginate_next_url(self, path: str, params: Mapping[str, Any]) -> Iterator[Any]:
        """Pages of an API that returns the next page's full ``next_url`` (Massive)."""
        page = self.get_json(path, params)
        while True:
            yield page
            next_url = page.get("next_url") if isinstance(page, dict) else None
            if not next_url:
                return
            # next_url carries the cursor and the query; the key is re-added by get_json.
            page = self.get_json(self._same_host(next_url), {})

    def _same_host(self, next_url: str) -> str:
        """``next_url`` on the configured host: a mirror or a test server keeps serving."""
        parts = urlsplit(next_url)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        return urljoin(self.base_url, tail.lstrip("/"))
