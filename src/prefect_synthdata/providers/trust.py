"""The trust boundary: every value a server sends is checked here, where it enters.

Identifiers (batch, job, dataset, simrun, project ids) may become folder and file
names, so they are restricted to a small alphabet with no separators and no `..`;
file names inside a server's annotation files are plain names; URLs are absolute with
an expected scheme; sizes are non-negative integers; objects and lists have the shape
the dialect documents. Anything else is one `ServerResponseError` naming the field and
the server, and is never retried.

Example:
    >>> server_id("3f2a-b1", "job_runs[0].id", "http://127.0.0.1:8000/")
    '3f2a-b1'
    >>> server_id("../../etc", "job_runs[0].id", "http://127.0.0.1:8000/")
    Traceback (most recent call last):
    ...
    prefect_synthdata.exceptions.ServerResponseError: http://127.0.0.1:8000/ sent an unsafe job_runs[0].id '../../etc': ids are 1-128 letters, digits, '.', '_' or '-', not starting with '.'
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from prefect_synthdata.exceptions import ServerResponseError

#: What a server-supplied identifier may look like (UUIDs, integers, short slugs).
ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
#: Longest file name component, in bytes (the limit of common file systems).
MAX_NAME_BYTES = 255
#: Largest size a server may announce (1 PiB): bigger is nonsense, not data.
MAX_SIZE = 1 << 50
_SHOWN = 80


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def refuse(server: str, field: str, value: Any, why: str) -> ServerResponseError:
    """The error for a refused value: names the server, the field, the value (cut short)."""
    return ServerResponseError(f"{server} sent an unsafe {field} {_show(value)}: {why}")


def server_id(value: Any, field: str, server: str) -> str:
    """`value` as an identifier safe to use as one path component."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not ID_PATTERN.fullmatch(text):
        raise refuse(
            server,
            field,
            value,
            "ids are 1-128 letters, digits, '.', '_' or '-', not starting with '.'",
        )
    return text


def file_name(value: Any, field: str, server: str) -> str:
    """`value` as a plain file name: no separators, not `.` or `..`, at most 255 bytes."""
    if (
        not isinstance(value, str)
        or value in ("", ".", "..")
        or "/" in value
        or "\\" in value
        or "\0" in value
        or len(value.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES
    ):
        raise refuse(
            server, field, value, "file names are plain names (no '/', no '..', <= 255 bytes)"
        )
    return value


def server_url(
    value: Any, field: str, server: str, schemes: tuple[str, ...] = ("http", "https")
) -> str:
    """`value` as an absolute URL of one of `schemes`, with a host."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in schemes
        or not parts.hostname
        or any(c in value for c in "\r\n\0 ")
    ):
        raise refuse(server, field, value, f"expected an absolute {'/'.join(schemes)} URL")
    return value


def server_size(value: Any, field: str, server: str) -> int:
    """`value` as a byte count: a non-negative integer below 1 PiB."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SIZE:
        raise refuse(server, field, value, "expected a non-negative integer byte count")
    return value


def server_count(value: Any, field: str, server: str, most: int) -> int:
    """`value` as a count of at most `most` things (e.g. jobs of a batch we know)."""
    count = server_size(value, field, server)
    if count > most:
        raise refuse(server, field, value, f"more than the {most} expected")
    return count


def server_object(value: Any, field: str, server: str) -> dict[str, Any]:
    """`value` as a JSON object."""
    if not isinstance(value, dict):
        raise refuse(server, field, value, "expected a JSON object")
    return value


def server_objects(value: Any, field: str, server: str) -> list[dict[str, Any]]:
    """`value` as a JSON list of objects."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise refuse(server, field, value, "expected a list of JSON objects")
    return value


#: The end of the text in a pattern both Python and JavaScript (the UI's forms) read alike:
#: their `$` differ (Python's also matches before a final newline).
END = r"(?![\s\S])"
#: The tokens `token_problem` lets through, as a JSON-schema `pattern` for forms: printable
#: ASCII and latin-1, no whitespace or control characters.
TOKEN_PATTERN = "^[!-~\u0080-\u0084\u0086-\u009f\u00a1-\u00ff]+" + END
#: A service's base URL: absolute http or https with a host, no whitespace.
SERVICE_URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?" + END


def service_url_problem(url: str) -> str | None:
    """Why `url` cannot be a generation service's base URL, or None.

    Example:
        >>> service_url_problem("http://127.0.0.1:8000"), service_url_problem("127.0.0.1:8000")
        (None, 'the server URL must be an absolute http:// or https:// URL with a host and no whitespace')
    """
    if re.match(SERVICE_URL_PATTERN, url) is None:
        return "the server URL must be an absolute http:// or https:// URL with a host and no whitespace"
    return None


def token_problem(token: str) -> str | None:
    """Why `token` cannot be sent in an Authorization header, or None; never quotes it.

    Example:
        >>> token_problem("abc123"), token_problem("abc123\\n")
        (None, 'the API token contains a line break or another control character (a trailing newline from a file or a paste?)')
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in token):
        return (
            "the API token contains a line break or another control character "
            "(a trailing newline from a file or a paste?)"
        )
    if any(c.isspace() for c in token):
        return "the API token contains whitespace"
    if any(ord(c) > 0xFF for c in token):
        return "the API token contains a character outside latin-1, which HTTP headers cannot carry"
    return None
