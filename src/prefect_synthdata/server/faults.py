"""Fault injection for tests and benchmarks: 5xx, 429, latency, dropped connections, truncation.

Off unless a `FaultConfig` rate or latency is set. One seeded die is rolled per
request, in arrival order, so the same request sequence meets the same faults.
`/healthz`, `/openapi.json` and `/docs` are never faulted.

- error: `503` with a JSON `detail`;
- throttle: `429` with `Retry-After`;
- drop: response headers promise a body, then the connection is closed;
- truncate (result downloads under `/results/` only): the full `Content-Length` is
  announced, about half of the body is sent, then the connection is closed.

Example:
    >>> from prefect_synthdata.server.config import FaultConfig
    >>> dice = FaultDice(FaultConfig(error_rate=1.0))
    >>> dice.roll("/api/jobs/")
    'error'
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prefect_synthdata.server.config import FaultConfig

EXEMPT = ("/healthz", "/openapi.json", "/docs", "/redoc")


class InjectedFault(Exception):
    """Raised inside the server to cut a connection on purpose."""


class FaultDice:
    """Decides, per request, which fault (if any) to inject."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()

    def roll(self, path: str) -> str | None:
        """`"error"`, `"throttle"`, `"drop"`, `"truncate"` or None for a request to `path`."""
        with self._lock:
            value = self._rng.random()
        c = self.config
        choices = [("error", c.error_rate), ("throttle", c.throttle_rate), ("drop", c.drop_rate)]
        if path.startswith("/results/"):
            choices.append(("truncate", c.truncate_rate))
        for fault, rate in choices:
            if value < rate:
                return fault
            value -= rate
        return None


class FaultMiddleware:
    """ASGI middleware applying `FaultDice` decisions."""

    def __init__(self, app: ASGIApp, config: FaultConfig) -> None:
        self.app = app
        self.config = config
        self.dice = FaultDice(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        fault = self.dice.roll(path)
        if fault == "error":
            await _json(send, 503, {"detail": "injected fault: service unavailable"}, [])
        elif fault == "throttle":
            retry = [(b"retry-after", str(self.config.retry_after).encode())]
            await _json(send, 429, {"detail": "injected fault: too many requests"}, retry)
        elif fault == "drop":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")]})  # fmt: skip
            raise InjectedFault("injected fault: connection dropped")
        elif fault == "truncate":
            await self.app(scope, receive, _truncating(send))
        else:
            await self.app(scope, receive, send)


def _truncating(send: Send) -> Send:
    """Pass the response start through, send half of the announced body, then cut."""
    state: dict[str, Any] = {"budget": None}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            length = int(headers.get(b"content-length", b"0") or 0)
            state["budget"] = length // 2
            await send(message)
            return
        if message["type"] == "http.response.body" and state["budget"] is not None:
            body: bytes = message.get("body", b"")
            if len(body) >= state["budget"]:
                await send(
                    {
                        "type": "http.response.body",
                        "body": body[: state["budget"]],
                        "more_body": True,
                    }
                )
                raise InjectedFault("injected fault: truncated body")
            state["budget"] -= len(body)
        await send(message)

    return wrapped


async def _json(
    send: Send, status: int, body: dict[str, str], extra: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": payload})
