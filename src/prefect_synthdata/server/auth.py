"""Token authentication: `Authorization: Token <token>` (scheme matched case-insensitively).

Each token is its own account. Records are stored under an owner id derived from
the token (a truncated sha256), so the token itself never reaches the database,
logs or URLs.

Example:
    >>> from pydantic import SecretStr
    >>> tokens = TokenRegistry([SecretStr("s3cret")])
    >>> tokens.owner_of("Token s3cret") == tokens.owner_of("token s3cret") == owner_id("s3cret")
    True
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

AUTH_HEADER = APIKeyHeader(
    name="Authorization", auto_error=False, description="`Token <your token>`"
)


def owner_id(token: str) -> str:
    """The non-secret account id of a token."""
    return "acct-" + hashlib.sha256(token.encode()).hexdigest()[:24]


class TokenRegistry:
    """The server's tokens; answers which account a header belongs to."""

    def __init__(self, tokens: list[SecretStr]) -> None:
        self._tokens = [t.get_secret_value() for t in tokens]

    @property
    def owners(self) -> list[str]:
        return [owner_id(t) for t in self._tokens]

    def owner_of(self, header: str | None) -> str | None:
        """The account of an `Authorization` header value, or None if it names no known token."""
        if not header:
            return None
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "token" or not credential:
            return None
        for token in self._tokens:
            if hmac.compare_digest(token.encode(), credential.encode()):
                return owner_id(token)
        return None


def authenticate(registry: TokenRegistry, header: str | None) -> str:
    """The account of an `Authorization` header value, or HTTP 401 naming what is wrong."""
    if not header:
        raise HTTPException(
            401, "missing Authorization header; send 'Authorization: Token <token>'"
        )
    owner = registry.owner_of(header)
    if owner is None:
        raise HTTPException(
            401, "invalid token; send 'Authorization: Token <token>' with a valid token"
        )
    return owner


async def current_owner(
    request: Request, header: Annotated[str | None, Depends(AUTH_HEADER)]
) -> str:
    """FastAPI dependency: the caller's account id, or 401 naming what is wrong."""
    return authenticate(request.app.state.tokens, header)


Owner = Annotated[str, Depends(current_owner)]
