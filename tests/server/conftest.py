"""Fixtures of the reference-server tests: real server processes shared by the session."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.reference_server import ServerProcess, run_reference_server

TOKENS = ("token-alice", "token-bob")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A reference server with two tokens (alice, bob) and no quota."""
    data = tmp_path_factory.mktemp("server") / "data"
    with run_reference_server(data, tokens=TOKENS, workers=2) as srv:
        yield srv
    assert "Traceback" not in srv.log(), srv.log()[-5000:]  # no request of any test made it fail


@pytest.fixture(scope="session")
def quota_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A reference server with a 5-frame quota per token (tokens small, other, fuzz)."""
    data = tmp_path_factory.mktemp("quota") / "data"
    with run_reference_server(data, tokens=("small", "other", "fuzz"), quota=5) as srv:
        yield srv
    assert "Traceback" not in srv.log(), srv.log()[-5000:]


def wait_for(check: Callable[[], Any], timeout: float = 120.0, interval: float = 0.2) -> Any:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class Api:
    """Tiny JSON client used by the tests (the wire format is what is under test)."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.server, self.session = server, requests.Session()
        self.session.headers.update(
            {"Authorization": f"Token {token}", "Accept": "application/json"}
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(f"{self.server.url}/{path.lstrip('/')}", timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(f"{self.server.url}/{path.lstrip('/')}", timeout=60, **kwargs)


@pytest.fixture(scope="session")
def alice(server: ServerProcess) -> Api:
    return Api(server, TOKENS[0])


@pytest.fixture(scope="session")
def bob(server: ServerProcess) -> Api:
    return Api(server, TOKENS[1])


def used_frames(api: Api, quota: int) -> int:
    """Frames charged to `api`'s token, as the server states them refusing a batch above `quota`."""
    over = {"name": "shapes", "param_values": {"frames": 600}}
    reply = api.post("api/batch/", json={"job_runs": [over] * (quota // 600 + 1)})
    assert reply.status_code == 402, reply.text
    return int(reply.json()["detail"].split(" of ")[0].rsplit(" ", 1)[-1])
