"""Request bodies over real HTTP: no body is read before auth, none past the limit (chunked too)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from prefect_synthdata.server.body_limit import MAX_BODY_BYTES
from tests.reference_server import ServerProcess
from tests.server.conftest import TOKENS

RUN = {"name": "shapes", "is_preview": True, "param_values": {"width": 32, "height": 32}}
HUGE = 4 * MAX_BODY_BYTES


@dataclass
class Upload:
    """The answer to a chunked POST, and how much of the body the server let us send."""

    status: int
    headers: dict[str, str]
    body: dict[str, str]
    sent: int
    finished: bool = field(default=False)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def chunked_post(
    server: ServerProcess, path: str, body: bytes, token: str | None, chunk: int = 1 << 16
) -> Upload:
    """POST `body` with `Transfer-Encoding: chunked` (no Content-Length) on a raw socket.

    The body is sent from a thread while the answer is read, as a streaming client would.
    """
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked",
            "Content-Type: application/json"]  # fmt: skip
    if token is not None:
        head.append(f"Authorization: Token {token}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    progress = {"sent": 0, "finished": False}

    def send_body() -> None:
        try:
            for start in range(0, len(body), chunk):
                piece = body[start : start + chunk]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                progress["sent"] += len(piece)
            sock.sendall(b"0\r\n\r\n")
            progress["finished"] = True
        except OSError:  # the server closed the connection: the rest is refused
            pass

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    payload = json.loads(answer.read())
    sender.join(timeout=30)
    sock.close()
    assert not sender.is_alive(), "the server neither read nor refused the body"
    return Upload(
        answer.status, dict(answer.getheaders()), payload, progress["sent"], progress["finished"]
    )


def test_unauthenticated_chunked_upload_is_refused_unread(server: ServerProcess) -> None:
    assert server.process is not None
    chunked_post(server, "/api/batch/", b"{}", token=None)  # warm up
    before = rss_bytes(server.process.pid)
    for token in (None, "not-a-token"):
        upload = chunked_post(server, "/api/batch/", b"x" * HUGE, token=token)
        assert upload.status == 401 and "token" in upload.body["detail"], upload
        assert upload.headers["connection"] == "close"
        assert not upload.finished and upload.sent < MAX_BODY_BYTES  # never drained
    assert rss_bytes(server.process.pid) - before < MAX_BODY_BYTES // 2


def test_authenticated_chunked_upload_over_the_limit_gets_413(server: ServerProcess) -> None:
    upload = chunked_post(server, "/api/batch/", b" " * HUGE, token=TOKENS[0])
    assert upload.status == 413 and str(MAX_BODY_BYTES) in upload.body["detail"], upload
    assert upload.body["code"] == "too_large" and upload.headers["connection"] == "close"
    assert not upload.finished and upload.sent < 2 * MAX_BODY_BYTES


def test_authenticated_chunked_upload_under_the_limit_works(server: ServerProcess) -> None:
    batch = {"name": "chunked upload", "job_runs": [RUN]}
    padded = json.dumps(batch).encode() + b" " * (MAX_BODY_BYTES - 1000)  # JSON allows padding
    upload = chunked_post(server, "/api/batch/", padded, token=TOKENS[0])
    assert upload.status == 200, upload
    assert upload.finished and upload.body["name"] == "chunked upload"
    assert len(upload.body["job_runs"]) == 1


def test_announced_oversized_body_without_token_is_refused_before_reading(
    server: ServerProcess,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/api/v1/datasets/")
    connection.putheader("Content-Length", str(1 << 30))
    connection.endheaders(b"name=x")
    answer = connection.getresponse()
    assert answer.status == 401 and "Authorization" in json.loads(answer.read())["detail"]
    connection.close()
