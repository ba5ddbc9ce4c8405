"""The HTTP layer shared by the `infinity` and `zpy` providers.

One `requests.Session` per client with connect/read timeouts; reads are retried on
429, 5xx and connection errors with exponential backoff, jitter and `Retry-After`;
responses map onto `prefect_synthdata.exceptions`. A POST that creates something is
sent once: when its outcome is unknown (timeout, reset, 5xx) it raises
`AmbiguousRequestError` and the provider looks the object up by its deterministic name.

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

import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from prefect_synthdata.dataset.manifest import sha256_file
from prefect_synthdata.exceptions import (
    AuthenticationError,
    CancelNotSupportedError,
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    ParameterValidationError,
    QuotaExceededError,
    SynthDataError,
    TransientError,
)

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CONNECTION_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
MAX_DETAIL = 500
CHUNK = 1 << 16  # a dropped connection loses at most one partly read chunk
CHECKSUM_HEADER = "X-Checksum-Sha256"
DEFAULT_PORTS = {"http": 80, "https": 443}


class AmbiguousRequestError(TransientError):
    """A non-idempotent request may or may not have taken effect (timeout, reset, 5xx)."""


class HttpStatusError(SynthDataError):
    """An HTTP error status that has no more specific meaning (e.g. 409, 405)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: `attempts` in all, backoff doubling from `initial` to `cap` seconds.

    Each wait is drawn uniformly from [backoff/2, backoff] (jitter); a `Retry-After`
    header lengthens it (up to `retry_after_cap`). `attempts` also bounds how often a
    POST rejected with 429 (so certainly not processed) is sent again.
    """

    attempts: int = 8
    initial_seconds: float = 0.1
    cap_seconds: float = 10.0
    retry_after_cap_seconds: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Jittered wait before retry number `attempt` (0-based)."""
        ceiling = min(self.cap_seconds, self.initial_seconds * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)


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
    if isinstance(exc, requests.ReadTimeout):
        return "read timed out"
    if "Connection refused" in repr(exc):
        return "connection refused"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection dropped mid-body"
    return f"connection failed ({type(exc).__name__})"


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
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._token = token
        self.auth_scheme = auth_scheme
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc credentials behind our back

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
        """Send a request to `url` (absolute, on this server) and return the 2xx response.

        Idempotent requests are retried on transient failures; others are retried only
        on 429 and on connection failures that provably happened before sending.
        Raises the mapped domain exception otherwise.
        """
        if not same_origin(self.base_url, url):
            raise SynthDataError(f"refusing to send credentials to {urlsplit(url).netloc}")
        all_headers = {**self.auth_headers(), **(headers or {})}
        what = request_label(method, url)
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=form,
                    headers=all_headers,
                    timeout=self.timeout,
                    allow_redirects=idempotent,
                )
            except CONNECTION_ERRORS as exc:
                safe = idempotent or _never_sent(exc)
                if not safe:
                    raise AmbiguousRequestError(
                        f"{what}: outcome unknown ({connection_failure(exc)})"
                    ) from None
                if last:
                    raise TransientError(
                        f"{what}: {connection_failure(exc)}, giving up after {attempt + 1} attempts"
                    ) from None
                self._sleep(what, attempt, None, connection_failure(exc))
                continue
            if response.status_code < 400:
                return response
            retryable = response.status_code in RETRY_STATUSES
            if retryable and not idempotent and response.status_code != 429:
                raise AmbiguousRequestError(
                    f"{what}: outcome unknown (HTTP {response.status_code})"
                )
            if not retryable or last:
                raise self.error_for(what, response)
            self._sleep(
                what, attempt, retry_after_seconds(response), f"HTTP {response.status_code}"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        """GET (retried, also when the body arrives truncated) and decode JSON."""
        for attempt in range(self.retry.attempts):
            response = self.request("GET", url, idempotent=True, params=params, **kw)
            try:
                return response.json()
            except ValueError:
                if attempt == self.retry.attempts - 1:
                    raise TransientError(
                        f"{request_label('GET', url)}: response is not JSON"
                    ) from None
                self._sleep(request_label("GET", url), attempt, None, "undecodable body")
        raise AssertionError("unreachable")  # pragma: no cover

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
        on another host is pre-signed). Size and sha256 are checked when known;
        IntegrityError (and the partial file removed) when they do not match; a sha256 the
        server announces in `X-Checksum-Sha256` is checked too. An existing
        `dest` that passes the checks is kept without any request.
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
        failures = 0
        announced: list[str] = []
        while True:
            have = part.stat().st_size if part.exists() else 0
            try:
                finished = self._download_step(url, part, have, headers, what, announced)
            except CONNECTION_ERRORS as exc:
                finished, reason = False, connection_failure(exc)
            else:
                reason = "incomplete body"
            if finished:
                break
            grew = part.exists() and part.stat().st_size > have
            failures = 0 if grew else failures + 1
            if failures >= self.retry.attempts:
                raise TransientError(f"{what}: {reason}, giving up after {failures} attempts")
            self._sleep(what, failures, None, reason)
        try:
            verify_file(
                part, expected_size, expected_sha256 or (announced[-1] if announced else None)
            )
        except IntegrityError:
            part.unlink()
            raise
        part.replace(dest)
        return dest

    def _download_step(
        self, url: str, part: Path, have: int, auth: dict[str, str], what: str, announced: list[str]
    ) -> bool:
        """One GET of the rest of `url` into `part`; True when the file is complete.

        A sha256 announced by the server is appended to `announced`."""
        headers = dict(auth)
        if have:
            headers["Range"] = f"bytes={have}-"
        with self.session.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            status = response.status_code
            if status == 416 and have:
                total = _content_range(response.headers.get("Content-Range", ""))[2]
                if total == have:
                    return True
                part.unlink()
                return False
            if status in RETRY_STATUSES:
                wait = retry_after_seconds(response)
                if wait:
                    time.sleep(min(wait, self.retry.retry_after_cap_seconds))
                return False
            if status >= 400:
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
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                mode = "wb"
            with part.open(mode) as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
        return total is None or part.stat().st_size >= total

    def _sleep(self, what: str, attempt: int, retry_after: float | None, reason: str) -> None:
        wait = self.retry.backoff(attempt)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.retry.retry_after_cap_seconds))
        logger.debug("%s: %s, retrying in %.2fs", what, reason, wait)
        time.sleep(wait)

    def error_for(self, what: str, response: requests.Response) -> SynthDataError:
        """The domain exception of an error response (token scrubbed from the message)."""
        status = response.status_code
        detail = self.scrub(response_detail(response))
        message = f"{what}: HTTP {status}: {detail}"
        if "quota" in detail.lower() or status == 402:
            return QuotaExceededError(message)
        if status in (401, 403):
            return AuthenticationError(f"{what}: authentication failed (HTTP {status}): {detail}")
        if status == 404:
            return NotFoundError(message)
        if status in (400, 422):
            return ParameterValidationError([detail or message])
        if status in RETRY_STATUSES:
            return TransientError(message)
        return HttpStatusError(message, status)


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


def call_cancel_endpoint(
    call: Callable[[], dict[str, Any]], exists: Callable[[], Any], unsupported: str
) -> dict[str, Any]:
    """`call()` a cancel endpoint, which only some servers offer (the reference server does).

    A 404, 405 or 501 is told apart from a missing resource by `exists()` (which raises
    NotFoundError itself when the resource is unknown); then CancelNotSupportedError(unsupported).
    """
    try:
        return call()
    except (NotFoundError, HttpStatusError) as exc:
        if isinstance(exc, HttpStatusError) and exc.status not in NO_ENDPOINT_STATUSES:
            raise
        exists()
        raise CancelNotSupportedError(unsupported) from None
