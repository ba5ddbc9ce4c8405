"""A deadline for a whole HTTP call: its sockets are shut down when the deadline passes.

Socket timeouts bound each read, not a call: a server that sends its status line and
headers one byte a second never lets a read time out. `CallWatchdog` is armed around a
call; every socket the call opens or reuses (through a session with `WatchedAdapter`
mounted) is registered with it, and at the deadline a timer thread shuts them down, so
the blocked read returns at once and the call fails as a dropped connection. The timer
is cancelled and joined when the call ends: nothing outlives the call.

Example:
    >>> import requests, time
    >>> session = requests.Session()
    >>> mount_watched_adapters(session)
    >>> with CallWatchdog(time.monotonic() + 5) as watchdog:
    ...     watchdog.fired
    False
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

#: The watchdog of the call running in this context (None outside a watched call).
_CURRENT: contextvars.ContextVar[CallWatchdog | None] = contextvars.ContextVar(
    "synthdata_call_watchdog", default=None
)


class CallWatchdog:
    """Shuts down the sockets of the call made inside it at `until` (a monotonic time)."""

    def __init__(self, until: float) -> None:
        self.until = until
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, until - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._token: contextvars.Token[CallWatchdog | None] | None = None

    def __enter__(self) -> CallWatchdog:
        self._token = _CURRENT.set(self)
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        self._timer.join()
        if self._token is not None:
            _CURRENT.reset(self._token)
        with self._lock:
            self._sockets.clear()

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down at the deadline (at once if it has passed)."""
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    watchdog = _CURRENT.get()
    if watchdog is not None and sock is not None:
        watchdog.watch(sock)


class WatchedSocket:
    """Mixed into urllib3's connections: each registers its socket with the running call's
    watchdog, a new one when it connects and a kept-alive one when it is reused."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(WatchedSocket, HTTPConnection):
    pass


class WatchedHTTPSConnection(WatchedSocket, HTTPSConnection):
    pass


class WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections report their sockets to `CallWatchdog`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": WatchedHTTPPool,
            "https": WatchedHTTPSPool,
        }


def mount_watched_adapters(session: requests.Session) -> None:
    """Send `session`'s http and https requests through `WatchedAdapter`."""
    for prefix in ("http://", "https://"):
        session.mount(prefix, WatchedAdapter())
