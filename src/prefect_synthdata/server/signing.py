"""Signed, expiring result URLs that work without the auth header.

A signature is an HMAC-SHA256 over (resource, owner, expiry) with a key kept in
the data dir (so URLs survive a restart until they expire). The owner is looked up
from the database when the URL is used, so a signature made for one account's
resource cannot be replayed against another's, and ids cannot be guessed into URLs.

Example:
    >>> import tempfile, pathlib
    >>> signer = UrlSigner.load(pathlib.Path(tempfile.mkdtemp()), ttl_seconds=60)
    >>> query = signer.sign("job:1", "acct-a")
    >>> signer.verify("job:1", "acct-a", query["expires"], query["sig"])
    >>> signer.verify("job:1", "acct-b", query["expires"], query["sig"])
    Traceback (most recent call last):
    ...
    prefect_synthdata.server.signing.SignatureError: invalid signature
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from prefect_synthdata.exceptions import StateFileError

KEY_BYTES = 32


class SignatureError(Exception):
    """The URL's signature is wrong or expired."""


class UrlSigner:
    """Makes and checks `expires` + `sig` query parameters."""

    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)  # copied per signature: no re-keying
        self.ttl_seconds = ttl_seconds

    @classmethod
    def load(cls, data_dir: Path, ttl_seconds: int) -> UrlSigner:
        """The signer of `data_dir`, creating its key file (mode 0600) on first use.

        StateFileError if the file is not the hex key this creates (URLs signed with an
        earlier key stop working when it is replaced).
        """
        path = data_dir / "signing.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(KEY_BYTES))
        try:
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            raise StateFileError(path, f"signing key {path} is unreadable ({exc})") from None
        if len(key) < KEY_BYTES:
            raise StateFileError(
                path, f"signing key {path} holds {len(key)} bytes, not {KEY_BYTES} (hex)"
            )
        return cls(key, ttl_seconds)

    def _mac(self, resource: str, owner: str, expires: int) -> str:
        mac = self._keyed.copy()
        mac.update(f"{resource}\n{owner}\n{expires}".encode())
        return mac.hexdigest()

    def sign(self, resource: str, owner: str) -> dict[str, str]:
        """Query parameters granting access to `resource` of `owner` for `ttl_seconds`."""
        expires = int(time.time()) + self.ttl_seconds
        return {"expires": str(expires), "sig": self._mac(resource, owner, expires)}

    def query(self, resource: str, owner: str) -> str:
        """`sign(resource, owner)` as a URL query string (digits and hex digits need no quoting).

        Example:
            >>> UrlSigner(b"k" * 32, ttl_seconds=60).query("job:1", "acct-a").startswith("expires=")
            True
        """
        return "&".join(f"{name}={value}" for name, value in self.sign(resource, owner).items())

    def verify(self, resource: str, owner: str, expires: str, sig: str) -> None:
        """SignatureError unless `sig` was made by `sign(resource, owner)` and has not expired."""
        if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
            raise SignatureError("invalid signature")
        if not hmac.compare_digest(self._mac(resource, owner, int(expires)).encode(), sig.encode()):
            raise SignatureError("invalid signature")
        if int(expires) < time.time():
            raise SignatureError("signed URL has expired; ask the API for a fresh one")
