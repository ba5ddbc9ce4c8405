"""Request bodies: only from a valid token, and at most `MAX_BODY_BYTES`, counted as they stream.

A request that carries a body (`Content-Length` above 0 or any `Transfer-Encoding`)
without a valid `Authorization: Token ...` is answered 401 before a byte of the body
is read. A body announced larger than the limit is answered 413 at once; a chunked
body is counted as it arrives and answered 413 as soon as it passes the limit, so
no more than `MAX_BODY_BYTES` is ever held. Both answers close the connection
(`Connection: close`), so the rest of the upload is never drained.

Example (with the server running, an unauthenticated chunked upload):
    $ yes | head -c 20000000 | curl -sS -T - -H 'Transfer-Encoding: chunked' http://127.0.0.1:8080/api/batch/
    {"detail":"missing Authorization header; send 'Authorization: Token <token>'","code":"unauthorized"}
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prefect_synthdata.server.auth import TokenRegistry, authenticate
from prefect_synthdata.server.errors import http_error_response

MAX_BODY_BYTES = 16 << 20
CLOSE = {"Connection": "close"}


def too_large() -> HTTPException:
    return HTTPException(413, f"request body must be at most {MAX_BODY_BYTES} bytes", CLOSE)


class BodyLimit:
    """ASGI middleware enforcing auth-before-body and the body size limit while streaming."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length = headers.get(b"content-length", b"0")
        if b"transfer-encoding" not in headers and length.strip() in (b"", b"0"):
            await self.app(scope, receive, send)  # no body: routes authenticate themselves
            return
        try:
            registry: TokenRegistry = scope["app"].state.tokens
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            authenticate(registry, authorization)
            if not length.isdigit():
                raise HTTPException(400, "Content-Length must be a decimal number", CLOSE)
            if int(length) > MAX_BODY_BYTES:
                raise too_large()
        except HTTPException as refused:
            if refused.status_code == 401:
                refused.headers = {**(refused.headers or {}), **CLOSE}
            await http_error_response(refused)(scope, receive, send)
            return
        await self.app(scope, counted(receive), send)


def counted(receive: Receive) -> Receive:
    """`receive` that raises HTTP 413 once the body received so far passes `MAX_BODY_BYTES`.

    Raised inside the route's body parsing, FastAPI passes an `HTTPException` on as it is.
    """
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise too_large()
        return message

    return limited
