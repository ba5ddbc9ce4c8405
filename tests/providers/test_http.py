"""The shared HTTP layer against a real (scripted) server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from prefect_synthdata.exceptions import (
    AuthenticationError,
    IntegrityError,
    NotFoundError,
    ParameterValidationError,
    QuotaExceededError,
    SynthDataError,
    TransientError,
)
from prefect_synthdata.providers.http import AmbiguousRequestError, HttpClient, RetryPolicy
from tests.providers.scripted_server import Reply, ScriptedServer, scripted_server

TOKEN = "tok-very-secret-123"
FAST = RetryPolicy(attempts=4, initial_seconds=0.01, cap_seconds=0.05)


@pytest.fixture
def server() -> Iterator[tuple[ScriptedServer, str]]:
    with scripted_server() as pair:
        yield pair


def client(url: str, retry: RetryPolicy = FAST) -> HttpClient:
    return HttpClient(url, SecretStr(TOKEN), retry=retry)


def test_reads_retry_5xx_and_429_honouring_retry_after(server: tuple[ScriptedServer, str]) -> None:
    state, url = server
    state.script(
        "/api/x/",
        Reply(503, b'{"detail": "busy"}'),
        Reply(429, b'{"detail": "slow down"}', {"Retry-After": "1"}),
        Reply(200, b'{"ok": true}'),
    )
    started = time.monotonic()
    assert client(url).get_json(url + "api/x/") == {"ok": True}
    assert time.monotonic() - started >= 0.95  # waited for Retry-After, not just the 0.05 s backoff
    calls = state.calls("/api/x/")
    assert len(calls) == 3
    assert all(c.headers["Authorization"] == f"Token {TOKEN}" for c in calls)


def test_reads_give_up_with_transient_error(server: tuple[ScriptedServer, str]) -> None:
    state, url = server
    state.script("/api/x/", Reply(502, b"bad gateway"))
    with pytest.raises(TransientError, match="HTTP 502"):
        client(url).get_json(url + "api/x/")
    assert len(state.calls("/api/x/")) == FAST.attempts


def test_unreachable_server_is_named_with_the_reason() -> None:
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(TransientError) as raised:
        client(url).get_json(f"{url}/api/jobs/?page=2")
    assert str(raised.value) == (
        f"GET {url}/api/jobs/: connection refused, giving up after {FAST.attempts} attempts"
    )
    # a refused connection never sent the POST, so it is safe to try again too
    with pytest.raises(TransientError, match=rf"^POST {url}/api/batch/: connection refused"):
        client(url).request("POST", f"{url}/api/batch/", idempotent=False, json_body={})


def test_truncated_json_body_is_retried(server: tuple[ScriptedServer, str]) -> None:
    state, url = server
    state.script(
        "/api/x/",
        Reply(200, b'{"ok": true, "pad": "' + b"x" * 100 + b'"}', cut_after=10),
        Reply(200, b"[1]"),
    )
    assert client(url).get_json(url + "api/x/") == [1]


def test_post_is_not_retried_after_an_ambiguous_failure(server: tuple[ScriptedServer, str]) -> None:
    state, url = server
    state.script("/api/batch/", Reply(503, b'{"detail": "oops"}'), Reply(200, b'{"id": "b1"}'))
    with pytest.raises(AmbiguousRequestError):
        client(url).post_json(url + "api/batch/", json_body={"name": "n"})
    assert len(state.calls("/api/batch/")) == 1
    state.script("/api/batch/", Reply(200, b'{"id": "b1"', cut_after=5))
    with pytest.raises(AmbiguousRequestError):
        client(url).post_json(url + "api/batch/", json_body={"name": "n"})


def test_post_rejected_with_429_is_sent_again(server: tuple[ScriptedServer, str]) -> None:
    state, url = server
    state.script(
        "/api/batch/", Reply(429, b"{}", {"Retry-After": "0"}), Reply(200, b'{"id": "b1"}')
    )
    assert client(url).post_json(url + "api/batch/", json_body={"name": "n"}) == {"id": "b1"}
    assert len(state.calls("/api/batch/")) == 2


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, b'{"detail": "invalid token"}', AuthenticationError, "invalid token"),
        (403, b'{"detail": "forbidden"}', AuthenticationError, "forbidden"),
        (404, b'{"detail": "batch b9 not found"}', NotFoundError, "batch b9 not found"),
        (
            400,
            b'{"detail": "job 0: \'size\' must be <= 64"}',
            ParameterValidationError,
            "must be <= 64",
        ),
        (402, b'{"detail": "frame quota exceeded"}', QuotaExceededError, "quota"),
    ],
)
def test_error_statuses_map_to_domain_exceptions(
    server: tuple[ScriptedServer, str], status: int, body: bytes, error: type[Exception], text: str
) -> None:
    state, url = server
    state.script("/api/x/", Reply(status, body))
    with pytest.raises(error, match=text):
        client(url).get_json(url + "api/x/")
    assert len(state.calls("/api/x/")) == 1  # client errors are not retried


def test_token_never_in_errors_logs_or_repr(
    server: tuple[ScriptedServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = server
    state.script("/api/x/", Reply(401, f'{{"detail": "bad token {TOKEN}"}}'.encode()))
    http = client(url)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as info:
        http.get_json(url + "api/x/")
    state.script("/api/y/", Reply(503, b"{}"))
    with pytest.raises(TransientError) as transient:
        http.get_json(url + "api/y/")
    texts = [str(info.value), repr(info.value), str(transient.value), repr(http), caplog.text]
    assert all(TOKEN not in t for t in texts)
    assert "***" in str(info.value)
    assert "retrying" in caplog.text  # the retries were logged, without the token


def test_download_resumes_with_range_and_checks_sha256(
    server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = server
    payload = bytes(range(256)) * 4000
    digest = hashlib.sha256(payload).hexdigest()
    headers = {"X-Checksum-Sha256": digest, "Accept-Ranges": "bytes"}
    state.script(
        "/results/a.zip",
        Reply(200, payload, headers, cut_after=300_000),
        Reply(200, payload, headers, ranges=True),
    )
    dest = client(url).download(
        url + "results/a.zip", tmp_path / "a.zip", expected_size=len(payload)
    )
    assert dest.read_bytes() == payload
    second = state.calls("/results/a.zip")[1]
    resumed_at = int(second.headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 200_000 < resumed_at <= 300_000  # resumed, not restarted
    assert not (tmp_path / "a.zip.part").exists()


def test_download_with_a_wrong_announced_sha256_fails_and_discards(
    server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = server
    state.script("/results/a.zip", Reply(200, b"data", {"X-Checksum-Sha256": "0" * 64}))
    with pytest.raises(IntegrityError, match="sha256"):
        client(url).download(url + "results/a.zip", tmp_path / "a.zip")
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "a.zip.part").exists()


def test_auth_header_is_not_sent_to_another_origin(tmp_path: Path) -> None:
    with scripted_server() as (api, api_url), scripted_server() as (files, files_url):
        files.script("/x.zip", Reply(200, b"zipbytes"))
        api.script("/x.zip", Reply(200, b"zipbytes"))
        http = client(api_url)
        http.download(files_url + "x.zip", tmp_path / "other.zip")
        http.download(api_url + "x.zip", tmp_path / "same.zip")
    assert "Authorization" not in files.calls("/x.zip")[0].headers
    assert api.calls("/x.zip")[0].headers["Authorization"] == f"Token {TOKEN}"


def test_credentials_are_never_sent_to_another_origin_by_api_calls() -> None:
    http = client("http://127.0.0.1:9/")
    with pytest.raises(SynthDataError, match="refusing to send credentials"):
        http.get_json("http://127.0.0.2:9/api/v1/datasets/?page=2")  # e.g. a hostile `next` link
