"""A tiny scripted HTTP server on 127.0.0.1 for HTTP-layer edge cases the reference server
does not produce on demand (a given status sequence, a truncated body, another origin).

Each path has a queue of `Reply`s; the last one repeats. Every request is recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # announce the full length, send this many bytes, then close
    ranges: bool = False  # honour a Range header (206 / Content-Range)
    drip_seconds: float = 0.0  # send the body one byte at a time, this long apart
    head_drip_seconds: float = 0.0  # the same for the status line and headers
    chunked: bool = False  # send the body chunked, without Content-Length


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    def script(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def next_reply(self, path: str) -> Reply:
        with self._lock:
            queue = self.routes.get(path.split("?")[0])
            if not queue:
                return Reply(404, b'{"detail": "no such route"}')
            return queue.pop(0) if len(queue) > 1 else queue[0]


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server._lock:
                server.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
            reply = server.next_reply(self.path)
            payload, status, headers = reply.body, reply.status, dict(reply.headers)
            wanted = self.headers.get("Range")
            if reply.ranges and wanted and wanted.startswith("bytes="):
                start = int(wanted[6:].split("-")[0])
                headers["Content-Range"] = f"bytes {start}-{len(payload) - 1}/{len(payload)}"
                payload, status = payload[start:], 206
            if reply.head_drip_seconds:
                self._drip_head(status, payload, reply.head_drip_seconds)
                return
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._send_chunked(payload)
                return
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if reply.drip_seconds:
                self._drip(payload, reply.drip_seconds)
                return
            if reply.cut_after is not None:
                self.wfile.write(payload[: reply.cut_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(payload)

        def _send_chunked(self, payload: bytes) -> None:
            try:
                for start in range(0, len(payload), 1 << 16):
                    piece = payload[start : start + (1 << 16)]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:  # the client stopped reading, as it should
                self.close_connection = True

        def _drip_head(self, status: int, payload: bytes, seconds: float) -> None:
            head = f"HTTP/1.1 {status} OK\r\nContent-Length: {len(payload)}\r\n\r\n"
            self._drip(head.encode() + payload, seconds)

        def _drip(self, payload: bytes, seconds: float) -> None:
            try:
                for byte in payload:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(seconds)
            except OSError:
                self.close_connection = True

        do_GET = do_POST = _serve

    return Handler


@contextmanager
def scripted_server() -> Iterator[tuple[ScriptedServer, str]]:
    """A running server and its base URL (`http://127.0.0.1:<port>/`)."""
    state = ScriptedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
