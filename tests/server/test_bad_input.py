"""Hostile input: every bad request gets a JSON 4xx with a readable `detail`, never a 500.

Hand-written cases first, then a schemathesis run over the OpenAPI document.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import subprocess_env
from tests.reference_server import ServerProcess
from tests.server.conftest import Api

RUN = {"name": "shapes", "is_preview": False, "param_values": {"width": 64, "height": 64}}


def _assert_json_4xx(
    response: requests.Response, status: int | None = None, word: str = ""
) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    assert word.lower() in body["detail"].lower(), body


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"name": "x", "job_runs": []}, "job_runs"),
        ({"name": "x"}, "job_runs"),
        ({"name": "x", "job_runs": "shapes"}, "job_runs"),
        ({"name": "x", "job_runs": [{**RUN, "colour": 1}]}, "unknown field"),
        ({"name": "x", "job_runs": [RUN], "priority": 1}, "unknown field"),
        ({"name": 5, "job_runs": [RUN]}, "name"),
        ({"name": "x", "job_runs": [{**RUN, "is_preview": "yes"}]}, "is_preview"),
        ({"name": "x", "job_runs": [{**RUN, "param_values": [1, 2]}]}, "param_values"),
        ({"name": "x", "job_runs": [{**RUN, "param_values": {"width": 10**30}}]}, "2**63"),
        ({"name": "x", "job_runs": [{**RUN, "param_values": {"width": -64}}]}, "width"),
        ({"name": "x", "job_runs": [{**RUN, "param_values": {"frames": 10**6}}]}, "frames"),
        ({"name": "x", "job_runs": [{**RUN, "param_values": {"seed": "NaN"}}]}, "seed"),
        ({"name": "x", "job_runs": [{**RUN, "name": "../../etc/passwd"}]}, "unknown generator"),
        ({"name": "x", "job_runs": [RUN, {**RUN, "is_preview": True}]}, "is_preview"),
        ({"name": "x", "job_runs": [RUN] * 10_001}, "job_runs"),
        ([RUN], "body"),
    ],
)
def test_bad_batch_bodies(alice: Api, body: Any, word: str) -> None:
    for path in ("api/batch/", "api/batch/estimate/"):
        _assert_json_4xx(alice.post(path, json=body), 400, word)


def test_malformed_and_mistyped_bodies(alice: Api, server: ServerProcess) -> None:
    headers = {**alice.session.headers, "Content-Type": "application/json"}
    _assert_json_4xx(
        requests.post(f"{server.url}/api/batch/", data=b'{"name": ', headers=headers), 400, "JSON"
    )
    _assert_json_4xx(
        requests.post(f"{server.url}/api/batch/", data=b"\xff\xfe", headers=headers), 400
    )
    _assert_json_4xx(alice.post("api/batch/", data={"name": "form instead of JSON"}), 400)
    project = alice.get("api/v1/projects/").json()["results"][0]["id"]
    _assert_json_4xx(alice.post("api/v1/datasets/", json={"project": project, "name": "json"}), 400)
    _assert_json_4xx(alice.post("api/v1/datasets/", data={"project": project}), 400, "name")
    _assert_json_4xx(
        alice.post("api/v1/datasets/", data={"project": "nope", "name": "n"}), 400, "project"
    )
    _assert_json_4xx(
        alice.post("api/v1/datasets/", data={"project": project, "name": "a\x00b"}), 400, "name"
    )
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/api/batch/")
    for name, value in {**headers, "Content-Length": str(1 << 30)}.items():
        connection.putheader(name, value)
    connection.endheaders(b"{")  # announces 1 GiB, sends one byte
    answer = connection.getresponse()
    assert answer.status == 413 and "at most" in json.loads(answer.read())["detail"]
    connection.close()


@pytest.mark.parametrize(
    "path",
    [
        "api/batch/00000000-0000-0000-0000-000000000000/",
        "api/batch/not-a-uuid/summary/",
        "api/batch/..%2F..%2Fjobs.sqlite3/",
        "api/job_runs/%00/",
        "api/job_previews/' OR 1=1 --/",
        "api/jobs/..%2Fshapes/",
        "api/v1/projects/00000000-0000-0000-0000-000000000000",
        "api/v1/datasets/..%2F..%2Fsigning.key/",
        "api/v1/datasets/x/download/",
        "api/v1/simruns/x/",
        "api/v1/sims/nope/",
        "api/v1/files/x/",
        "api/v1/simruns/?page=0",
        "api/v1/simruns/?page-size=-1",
        "api/v1/simruns/?page-size=100000",
        "api/v1/simruns/?page=abc",
        "api/v1/datasets/?page=99",
        "api/v1/datasets/?__=x",
        "api/v1/datasets/?no_such_field=x",
        "api/v1/simruns/?config=nocolon",
        "api/batch/?start_time=2024-13-45",
        "api/job_runs/counts/?start_time=2024-01-02T00:00:00Z&end_time=2024-01-01T00:00:00Z",
        "results/jobs/x.zip?expires=1&sig=x",
        "results/files/x/..%2F..%2Fsigning.key?expires=99999999999&sig=x",
        "results/datasets/x.zip?expires=-1&sig=x",
        "results/jobs/x.zip",
    ],
)
def test_unknown_ids_path_tricks_and_bad_queries(alice: Api, path: str) -> None:
    _assert_json_4xx(alice.get(path))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Token",
        "Token wrong",
        "Bearer token-alice",
        "token-alice",
        "Basic dG9rZW4tYWxpY2U=",
    ],
)
def test_missing_or_wrong_tokens(server: ServerProcess, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for path in ("api/jobs/", "api/batch/", "api/v1/projects/", "api/v1/datasets/"):
        _assert_json_4xx(
            requests.get(f"{server.url}/{path}", headers=headers, timeout=30), 401, "token"
        )
    post = requests.post(
        f"{server.url}/api/batch/", json={"name": "x", "job_runs": [RUN]}, headers=headers
    )
    _assert_json_4xx(post, 401)


def test_server_survives(server: ServerProcess) -> None:
    assert server.process is not None and server.process.poll() is None
    assert requests.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert "Traceback" not in server.log()


def test_schemathesis_finds_no_server_error(quota_server: ServerProcess, tmp_path: Path) -> None:
    """Schema-driven fuzzing of every operation; the small quota keeps fuzzed batches from rendering much."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{quota_server.url}/openapi.json",
        "--header", "Authorization: Token fuzz", "--checks", "not_a_server_error",
        "--phases", "coverage,fuzzing", "--max-examples", "5", "--seed", "1", "--workers", "2",
        "--generation-database", "none", "--request-timeout", "30", "--no-color",
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=subprocess_env(), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout.split("SUMMARY")[-1]
    assert "Traceback" not in quota_server.log()
