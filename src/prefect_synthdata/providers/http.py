"""The HTTP layer shared by the `infinity` and `zpy` providers.

One `requests.Session` per client. Every call gets ONE budget, a urllib3 `Retry`
built by `RetryPolicy.budget()`: attempts, exponential backoff with jitter, `Retry-After`
(capped), and which calls may be sent again. Requests' `HTTPAdapter` mounts a `Retry`
that covers only status lines and connections; here the same object also covers the
body (a reply cut short is retried from the same budget) and a total deadline, so one
loop spends it. A POST that creates something is sent once: when its outcome is
unknown (timeout, reset, 5xx) it raises `AmbiguousRequestError` and the provider looks
the object up by its deterministic name; a POST refused with 429 or a connection that
was never made is certainly not processed and is sent again. When the budget or the
deadline is spent, `RetriesExhaustedError` says so and nothing above retries it again.

Bounds: each call ends at `RetryPolicy.deadline_seconds`, however slowly a server drips
its status line, headers or body (a `CallWatchdog` shuts the call's sockets down at the
deadline; socket timeouts alone bound each read, not the call); JSON replies are read up to
`max_json_bytes`; downloads stop at the announced size (else at `max_download_bytes`).
Errors carry the HTTP status as `.status` and say whether retrying is safe
(`.retryable`); nobody matches messages.

The token is a `SecretStr`. It is added to each request's headers, is never stored on
the session, never sent to another host (result URLs), and is scrubbed from every
error message this module builds.

Example:
    >>> from pydantic import SecretStr
    >>> client = HttpClient("http://127.0.0.1:9/", SecretStr("s3cret"))
    >>> client
    HttpClient('http://127.0.0.1:9/')
    >>> client.scrub("rejected token s3cret")
    'rejected token ***'
"""

from __future__ import annotations

import contextvars
import email.utils
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from pydantic import SecretStr
from urllib3.util.retry import Retry

from prefect_synthdata.dataset.manifest import sha256_file
from prefect_synthdata.exceptions import (
    AuthenticationError,
    CancelNotSupportedError,
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    ParameterValidationError,
    QuotaExceededError,
    RetriesExhaustedError,
    ServerResponseError,
    SynthDataError,
    TransientError,
)
from prefect_synthdata.providers.trust import token_problem
from prefect_synthdata.providers.watchdog import CallWatchdog, mount_watched_adapters

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: What a `Retry` for a non-idempotent call may resend on 5xx: only methods it never sends.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONNECTION_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
)
MAX_DETAIL = 500
#: How much of an error reply is read for its message.
MAX_ERROR_BYTES = 64 << 10
CHUNK = 1 << 16  # a dropped connection loses at most one partly read chunk
CHECKSUM_HEADER = "X-Checksum-Sha256"
DEFAULT_PORTS = {"http": 80, "https": 443}

#: The latest monotonic time by which calls made in this context must finish (see `deadline`).
_AMBIENT_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar(
    "synthdata_http_deadline", default=math.inf
)


class AmbiguousRequestError(TransientError):
    """A non-idempotent request may or may not have taken effect (timeout, reset, 5xx)."""


class HttpStatusError(SynthDataError):
    """An HTTP error status that has no more specific meaning (e.g. 409, 405)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class CallRetry(Retry):
    """urllib3's `Retry`, plus: a 429 is retried for any method (the server refused the
    request, so it was certainly not processed)."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code == 429:
            return bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)


@dataclass(frozen=True)
class RetryPolicy:
    """The budget of one HTTP call: `attempts` in all, within `deadline_seconds`.

    Backoff doubles from `initial_seconds` up to `cap_seconds`, with up to
    `initial_seconds` of jitter; a `Retry-After` header lengthens a wait up to
    `retry_after_cap_seconds`. With the defaults a server that refuses connections fails
    after 6 attempts in about 6 s; one that accepts and stays silent (or drips) fails
    at `deadline_seconds`.

    Example:
        >>> RetryPolicy().budget(idempotent=False).is_retry("POST", 503)
        False
        >>> RetryPolicy().budget(idempotent=True).is_retry("POST", 503)
        True
    """

    attempts: int = 6
    initial_seconds: float = 0.2
    cap_seconds: float = 4.0
    retry_after_cap_seconds: float = 10.0
    deadline_seconds: float = 30.0
    download_deadline_seconds: float = 3600.0
    max_json_bytes: int = 32 << 20
    max_download_bytes: int = 16 << 30

    def budget(self, idempotent: bool) -> CallRetry:
        """A fresh urllib3 `Retry` for one call; only idempotent calls retry 5xx or reads."""
        return CallRetry(
            total=self.attempts - 1,
            allowed_methods=None if idempotent else SAFE_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.initial_seconds,
            backoff_max=self.cap_seconds,
            backoff_jitter=self.initial_seconds,
            raise_on_status=False,
        )


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every HTTP call made inside must finish within `seconds` from now (nested: the
    earliest wins). Used by `batches.poll_until_done` to bound each poll.

    Example:
        >>> with deadline(5):
        ...     0 < remaining(math.inf) <= 5
        True
    """
    at = min(_AMBIENT_DEADLINE.get(), time.monotonic() + seconds)
    token = _AMBIENT_DEADLINE.set(at)
    try:
        yield
    finally:
        _AMBIENT_DEADLINE.reset(token)


def remaining(seconds: float) -> float:
    """Seconds left of a call allowed `seconds`, within any enclosing `deadline`."""
    return min(seconds, _AMBIENT_DEADLINE.get() - time.monotonic())


def read_chunks(response: requests.Response, until: float, read_timeout: float) -> Iterator[bytes]:
    """The body of a streamed response, chunk by chunk, as the bytes arrive.

    Each socket read waits at most until `until` (a monotonic time), so a server that
    drips one byte at a time cannot hold the call past it: `requests.Timeout` then.
    """
    raw = response.raw
    while True:
        left = until - time.monotonic()
        if left <= 0:
            raise requests.Timeout("no complete reply before the deadline")
        connection = getattr(raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.settimeout(min(read_timeout, left))
        chunk = raw.read1(CHUNK, decode_content=True)
        if not chunk:
            return
        yield chunk


def read_body(
    response: requests.Response,
    limit: int,
    until: float,
    read_timeout: float,
    what: str,
    *,
    truncate: bool = False,
) -> bytes:
    """The whole body, or ServerResponseError once it is (or is announced) over `limit`
    bytes; with `truncate`, its first `limit` bytes instead (for error messages)."""
    length = response.headers.get("Content-Length", "")
    if not truncate and length.isdigit() and int(length) > limit:
        raise ServerResponseError(
            f"{what}: the reply announces {int(length)} bytes, over the limit of {limit}"
        )
    body = bytearray()
    for chunk in read_chunks(response, until, read_timeout):
        body += chunk
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise ServerResponseError(f"{what}: the reply is over the limit of {limit} bytes")
    return bytes(body)


def retry_after_seconds(response: requests.Response) -> float | None:
    """The `Retry-After` header as seconds (delta or HTTP date), or None.

    Example:
        >>> r = requests.Response(); r.headers["Retry-After"] = "3"
        >>> retry_after_seconds(r)
        3.0
    """
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def response_detail(response: requests.Response) -> str:
    """The server's readable error message: JSON `detail`/`message`/field errors, else text.

    Example:
        >>> r = requests.Response(); r._content = b'{"detail": "bad size"}'
        >>> response_detail(r)
        'bad size'
    """
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_DETAIL].strip()
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if key in body:
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value)[:MAX_DETAIL]
    return json.dumps(body)[:MAX_DETAIL]


def request_label(method: str, url: str) -> str:
    """How messages name a request: method, scheme, host, port and path; never the query
    (a pre-signed URL's signature) or credentials in the URL.

    Example:
        >>> request_label("GET", "http://user:pw@127.0.0.1:8080/results/a.zip?sig=x")
        'GET http://127.0.0.1:8080/results/a.zip'
    """
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    port = f":{parts.port}" if parts.port else ""
    return f"{method} {parts.scheme}://{host}{port}{parts.path}"


def connection_failure(exc: Exception) -> str:
    """A short reason for a failed connection, for messages.

    Example:
        >>> connection_failure(requests.ReadTimeout())
        'read timed out'
    """
    if isinstance(exc, requests.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
        return "read timed out"
    if isinstance(exc, requests.Timeout):
        return "no complete reply before the deadline"
    if "Connection refused" in repr(exc):
        return "connection refused"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError):
        return "connection dropped mid-body"
    return f"connection failed ({type(exc).__name__})"


def deadline_or(watchdog: CallWatchdog, exc: Exception) -> str:
    """Why a connection failed: its call's deadline (the watchdog shut it down), else
    `connection_failure`."""
    return "no complete reply before the deadline" if watchdog.fired else connection_failure(exc)


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port (auth may be sent to both).

    Example:
        >>> same_origin("http://127.0.0.1:8000/api/", "http://127.0.0.1:8000/files/x.zip")
        True
        >>> same_origin("http://127.0.0.1:8000/", "http://127.0.0.2:8000/x.zip")
        False
        >>> same_origin("http://127.0.0.1/", "http://127.0.0.1:80/x.zip")
        True
    """

    def origin(url: str) -> tuple[str, str | None, int | None]:
        parts = urlsplit(url)
        return parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)

    return origin(a) == origin(b)


class HttpClient:
    """A requests session bound to one server and token, with retries and error mapping."""

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        auth_scheme: str = "Token",
        timeout: tuple[float, float] = (5.0, 60.0),
        retry: RetryPolicy | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"server URL must start with http:// or https://, got {base_url!r}"
            )
        problem = token_problem(token.get_secret_value())
        if problem:
            raise ConfigurationError(problem)
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._token = token
        self.auth_scheme = auth_scheme
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc credentials behind our back
        mount_watched_adapters(self.session)

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header; build it per request, never keep it on the session."""
        return {"Authorization": f"{self.auth_scheme} {self._token.get_secret_value()}"}

    def scrub(self, text: str) -> str:
        """`text` with the token replaced by `***`."""
        secret = self._token.get_secret_value()
        return text.replace(secret, "***") if secret else text

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send a request to `url` (absolute, on this server) and return the 2xx response,
        its body read (at most `max_json_bytes`).

        One budget (`RetryPolicy.budget`) and one deadline cover the call: idempotent
        requests are retried on transient failures; others only on 429 and on connections
        that were never made. Raises the mapped domain exception otherwise.
        """
        if not same_origin(self.base_url, url):
            raise ServerResponseError(
                f"{self.base_url} sent a URL on another server ({urlsplit(url).netloc}): "
                "refusing to send credentials there"
            )
        all_headers = {**self.auth_headers(), **(headers or {})}
        what = request_label(method, url)
        retry: Retry = self.retry.budget(idempotent)
        until = time.monotonic() + remaining(self.retry.deadline_seconds)
        with CallWatchdog(until) as watchdog:
            while True:
                try:
                    response = self._send(
                        method,
                        url,
                        until,
                        params=params,
                        json=json_body,
                        data=form,
                        headers=all_headers,
                        allow_redirects=idempotent,
                    )
                    with response:
                        ok = response.status_code < 400
                        body = read_body(
                            response,
                            self.retry.max_json_bytes if ok else MAX_ERROR_BYTES,
                            until,
                            self.timeout[1],
                            what,
                            truncate=not ok,
                        )
                except CONNECTION_ERRORS as exc:
                    reason = deadline_or(watchdog, exc)
                    if not (idempotent or _never_sent(exc)):
                        raise AmbiguousRequestError(f"{what}: outcome unknown ({reason})") from None
                    retry = self._spend(retry, what, reason, until, None)
                    continue
                response._content = body
                if ok:
                    return response
                status = response.status_code
                if not retry.is_retry(method, status, "Retry-After" in response.headers):
                    if status in RETRY_STATUSES and not idempotent:
                        raise AmbiguousRequestError(
                            f"{what}: outcome unknown (HTTP {status})", status=status
                        )
                    raise self.error_for(what, response)
                retry = self._spend(retry, what, f"HTTP {status}", until, response)

    def _send(self, method: str, url: str, until: float, **kw: Any) -> requests.Response:
        """One attempt, streamed (the body is read by `read_body`), within `until`."""
        left = until - time.monotonic()
        if left <= 0:
            raise requests.Timeout("deadline passed")
        connect, read = self.timeout
        return self.session.request(
            method, url, stream=True, timeout=(min(connect, left), min(read, left)), **kw
        )

    def _spend(
        self,
        retry: Retry,
        what: str,
        reason: str,
        until: float,
        response: requests.Response | None,
    ) -> Retry:
        """Take one retry from the budget and wait its backoff (or `Retry-After`).

        RetriesExhaustedError when the budget is spent or the wait would pass the deadline.
        """
        status = response.status_code if response is not None else None
        attempts = len(retry.history) + 1
        try:
            retry = retry.increment()
        except urllib3.exceptions.MaxRetryError:
            raise RetriesExhaustedError(
                f"{what}: {reason}, giving up after {attempts} attempts",
                status=status,
            ) from None
        wait = retry.get_backoff_time()
        after = retry_after_seconds(response) if response is not None else None
        if after is not None:
            wait = max(wait, min(after, self.retry.retry_after_cap_seconds))
        if time.monotonic() + wait >= until:
            raise RetriesExhaustedError(
                f"{what}: {reason}, giving up after {attempts} attempts: no time left "
                f"within the {self.retry.deadline_seconds:g} s deadline",
                status=status,
            )
        logger.debug("%s: %s, retrying in %.2fs", what, reason, wait)
        time.sleep(wait)
        return retry

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        """GET (retried, also when the body arrives cut short) and decode JSON;
        ServerResponseError when the complete reply is not JSON."""
        response = self.request("GET", url, idempotent=True, params=params, **kw)
        try:
            return response.json()
        except ValueError:
            raise ServerResponseError(
                f"{request_label('GET', url)}: the reply is not JSON"
            ) from None

    def post_json(self, url: str, *, idempotent: bool = False, **kw: Any) -> Any:
        """POST once (see `request`) and decode JSON; an undecodable reply is ambiguous."""
        response = self.request("POST", url, idempotent=idempotent, **kw)
        try:
            return response.json()
        except ValueError:
            raise AmbiguousRequestError(
                f"{request_label('POST', url)}: reply is not JSON"
            ) from None

    def download(
        self,
        url: str,
        dest: Path,
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> Path:
        """Stream `url` to `dest`, resuming a partial `dest.part` with an HTTP Range request.

        The Authorization header goes only to URLs on this client's server (a result URL
        on another host is pre-signed). A `Content-Length` above the expected size, else
        above `max_download_bytes`, is refused before anything is written, and writing
        stops at that bound (ServerResponseError, the partial file removed); the whole download must finish within
        `download_deadline_seconds`. Size and sha256 are checked when known;
        IntegrityError (and the partial file removed) when they do not match; a sha256 the
        server announces in `X-Checksum-Sha256` is checked too. An existing `dest` that
        passes the checks is kept without any request. Attempts that make no progress
        spend the retry budget; progress renews it.
        """
        if dest.exists():
            try:
                verify_file(dest, expected_size, expected_sha256)
                return dest
            except IntegrityError:
                dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        headers = self.auth_headers() if same_origin(self.base_url, url) else {}
        what = request_label("GET", url)
        until = time.monotonic() + remaining(self.retry.download_deadline_seconds)
        retry: Retry = self.retry.budget(idempotent=True)
        announced: list[str] = []
        with CallWatchdog(until) as watchdog:
            while True:
                have = part.stat().st_size if part.exists() else 0
                response: requests.Response | None = None
                try:
                    response = self._send("GET", url, until, headers=self._range(headers, have))
                    with response:
                        finished = self._download_step(
                            response, part, have, expected_size, what, announced, until
                        )
                except CONNECTION_ERRORS as exc:
                    finished, reason = False, deadline_or(watchdog, exc)
                except ServerResponseError:
                    part.unlink(missing_ok=True)
                    raise
                else:
                    reason = (
                        f"HTTP {response.status_code}"
                        if response.status_code >= 400
                        else ("incomplete body")
                    )
                if finished:
                    break
                if part.exists() and part.stat().st_size > have:
                    retry = self.retry.budget(idempotent=True)  # progress renews the budget
                retry = self._spend(retry, what, reason, until, response)
        try:
            verify_file(
                part, expected_size, expected_sha256 or (announced[-1] if announced else None)
            )
        except IntegrityError:
            part.unlink()
            raise
        part.replace(dest)
        return dest

    @staticmethod
    def _range(headers: dict[str, str], have: int) -> dict[str, str]:
        return {**headers, "Range": f"bytes={have}-"} if have else dict(headers)

    def _download_step(
        self,
        response: requests.Response,
        part: Path,
        have: int,
        expected_size: int | None,
        what: str,
        announced: list[str],
        until: float,
    ) -> bool:
        """Write one response of a download into `part`; True when the file is complete.

        A sha256 announced by the server is appended to `announced`."""
        status = response.status_code
        if status == 416 and have:
            total = _content_range(response.headers.get("Content-Range", ""))[2]
            if total == have:
                return True
            part.unlink()
            return False
        if status in RETRY_STATUSES:
            return False
        if status >= 400:
            response._content = read_body(
                response, MAX_ERROR_BYTES, until, self.timeout[1], what, truncate=True
            )
            raise self.error_for(what, response)
        if response.headers.get(CHECKSUM_HEADER):
            announced.append(response.headers[CHECKSUM_HEADER].strip())
        if status == 206:
            start, _, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                return False
            mode = "ab"
        else:
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            have, mode = 0, "wb"
        cap = expected_size if expected_size is not None else self.retry.max_download_bytes
        if total is not None and total > cap:
            raise ServerResponseError(
                f"{what}: announces {total} bytes where {cap} bytes were "
                + ("expected" if expected_size is not None else "the most allowed")
            )
        limit = total if total is not None else cap
        written = have
        with part.open(mode) as out:
            for chunk in read_chunks(response, until, self.timeout[1]):
                written += len(chunk)
                if written > limit:
                    raise ServerResponseError(
                        f"{what}: sent more than the {limit} bytes "
                        + ("announced" if limit != self.retry.max_download_bytes else "allowed")
                    )
                out.write(chunk)
        return total is None or written >= total

    def error_for(self, what: str, response: requests.Response) -> SynthDataError:
        """The domain exception of an error response (token scrubbed from the message),
        with the HTTP status as `.status`."""
        status = response.status_code
        detail = self.scrub(response_detail(response))
        message = f"{what}: HTTP {status}: {detail}"
        error: SynthDataError
        if "quota" in detail.lower() or status == 402:
            error = QuotaExceededError(message)
        elif status in (401, 403):
            error = AuthenticationError(f"{what}: authentication failed (HTTP {status}): {detail}")
        elif status == 404:
            error = NotFoundError(message)
        elif status in (400, 422):
            error = ParameterValidationError([detail or message])
        elif status in RETRY_STATUSES:
            error = TransientError(message)
        else:
            return HttpStatusError(message, status)
        error.status = status
        return error


def verify_file(path: Path, size: int | None, sha256: str | None) -> None:
    """IntegrityError unless `path` has the expected size and sha256 (when given)."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise IntegrityError(f"{path.name}: expected {size} bytes, got {actual}")
    if sha256 is not None:
        digest = sha256_file(path)
        if digest != sha256.lower():
            raise IntegrityError(f"{path.name}: sha256 {digest} does not match expected {sha256}")


def _content_range(value: str) -> tuple[int | None, int | None, int | None]:
    """`bytes start-end/total` (or `bytes */total`) as integers; None where absent."""
    match = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", value.strip())
    if not match:
        return None, None, None
    start, end, total = match.groups()
    return (
        int(start) if start else None,
        int(end) if end else None,
        int(total) if total and total != "*" else None,
    )


def _never_sent(exc: Exception) -> bool:
    """Whether a connection error happened before any byte of the request left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


#: Statuses that mean "this server has no such endpoint" once the resource is known to exist.
NO_ENDPOINT_STATUSES = (404, 405, 501)


def call_extension(
    call: Callable[[], dict[str, Any]], exists: Callable[[], Any]
) -> dict[str, Any] | None:
    """`call()` an endpoint only some servers offer (the reference server's extensions);
    None when this server has none.

    A 404, 405 or 501 is told apart from a missing resource by `exists()` (which raises
    NotFoundError itself when the resource is unknown).
    """
    try:
        return call()
    except (NotFoundError, HttpStatusError) as exc:
        if isinstance(exc, HttpStatusError) and exc.status not in NO_ENDPOINT_STATUSES:
            raise
        exists()
        return None


def call_cancel_endpoint(
    call: Callable[[], dict[str, Any]], exists: Callable[[], Any], unsupported: str
) -> dict[str, Any]:
    """`call_extension` for a cancel endpoint: CancelNotSupportedError(unsupported) when the
    server has none."""
    body = call_extension(call, exists)
    if body is None:
        raise CancelNotSupportedError(unsupported)
    return body
