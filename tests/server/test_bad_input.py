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
from tests.server.conftest import TOKENS, Api

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


def _fuzz_ids(server: ServerProcess, token: str) -> dict[str, str]:
    """Real ids of the fuzz token's records, so fuzzing gets past 404s on `{id}` paths."""
    api = Api(server, token)
    run = {"name": "shapes", "is_preview": True, "param_values": {"width": 64, "height": 64}}
    batch = api.post("api/batch/", json={"name": "fuzz seed", "job_runs": [run]}).json()
    project = api.get("api/v1/projects/").json()["results"][0]["id"]
    dataset = api.post("api/v1/datasets/", data={"project": project, "name": "fuzz seed"}).json()
    return {
        "path.batch_id": batch["id"],
        "path.job_id": batch["job_runs"][0]["id"],
        "path.project_id": project,
        "path.dataset_id": dataset["id"],
        "path.generator": "shapes",
        "path.sim": "shapes",
    }


def test_schemathesis_finds_no_server_error(quota_server: ServerProcess, tmp_path: Path) -> None:
    """Schema-driven fuzzing of every operation; the small quota keeps fuzzed batches from rendering much."""
    config = tmp_path / "schemathesis.toml"
    lines = [f'"{key}" = "{value}"' for key, value in _fuzz_ids(quota_server, "fuzz").items()]
    config.write_text("[parameters]\n" + "\n".join(lines) + "\n")
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{quota_server.url}/openapi.json", "--header", "Authorization: Token fuzz",
        "--checks", "not_a_server_error", "--phases", "coverage,fuzzing", "--max-examples", "5",
        "--seed", "1", "--workers", "2", "--generation-database", "none", "--request-timeout", "30",
        "--no-color",
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=subprocess_env(), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary = result.stdout.split("SUMMARY")[-1]
    assert " passed" in summary and "failed" not in summary and "errored" not in summary, summary
    assert "Traceback" not in quota_server.log()


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: (method, path, body, extra headers): malformed paths, queries and bodies of both dialects.
MALFORMED = [
    ("GET", "/api/v1/files/?run__sim__nope=x", None, {}),
    ("GET", "/api/v1/files/?__=x", None, {}),
    ("GET", "/api/v1/files/?~=x", None, {}),
    ("GET", "/api/v1/files/?run__id__in=" + ",".join(["a"] * 1001), None, {}),
    ("GET", "/api/v1/files/?page=0", None, {}),
    ("GET", "/api/v1/files/?page=%F0%9F%92%A5", None, {}),
    ("GET", "/api/v1/files/?page-size=1e3", None, {}),
    ("GET", "/api/v1/files/?page=99999999999999999999", None, {}),
    ("GET", "/api/v1/files/%2e%2e%2f%2e%2e%2fsigning.key/", None, {}),
    ("GET", "/api/v1/files/" + "x" * 5000 + "/", None, {}),
    ("GET", "/api/v1/simruns/?config=" + "k:v," * 3000, None, {}),
    ("GET", "/api/batch/?start_time=%ff%fe", None, {}),
    ("GET", "/api/job_runs/counts/?start_time=9999-99-99", None, {}),
    ("GET", "/results/files/x/y.png?expires=%ff&sig=%ff", None, {}),
    ("GET", "/results/jobs/x.zip?expires=1e10&sig=x", None, {}),
    ("GET", "/results/jobs/x.zip?expires=" + "9" * 30 + "&sig=x", None, {}),
    ("POST", "/api/batch/", b"[" * 100_000 + b"]" * 100_000, JSON),
    ("POST", "/api/batch/", b'{"name": "x", "job_runs": NaN}', JSON),
    ("POST", "/api/batch/", b'{"name": "x", "job_runs": [{"name": "shapes", "param_values": {"width": Infinity}}]}', JSON),
    ("POST", "/api/batch/", b"", JSON),
    ("POST", "/api/batch/", b'{"name": "x"}', {"Content-Type": "text/plain"}),
    ("POST", "/api/batch/", b'{"name": "x", "name": 2, "job_runs": []}', JSON),
    ("POST", "/api/batch/estimate/", b"\x00" * 1000, JSON),
    ("POST", "/api/v1/datasets/", b"project=%ff&name=%fe", FORM),
    ("POST", "/api/v1/datasets/", b"=&=&&&", FORM),
    ("POST", "/api/v1/datasets/", b"--x\r\nbroken multipart", {"Content-Type": "multipart/form-data; boundary=x"}),
    ("POST", "/api/v1/datasets/", b"project=a", {"Content-Type": "multipart/form-data"}),
    ("POST", "/api/v1/projects/", b"name=" + b"n" * 100_000, FORM),
    ("POST", "/api/v1/datasets/x/generate/", b"sim=shapes&amount=1&config=" + b"[" * 50_000, FORM),
    ("POST", "/api/v1/datasets/x/generate/", b"sim=shapes&amount=-1", FORM),
    ("DELETE", "/api/v1/datasets/x/", None, {}),
    ("PUT", "/api/batch/", b"{}", JSON),
]  # fmt: skip


#: Odd but well-formed: answered normally.
ODD_BUT_VALID = [
    ("GET", "/api/v1/files/?run__sim__in=", None, {}),
    ("GET", "/api/v1/files/?path__icontains=%00%ff%fe", None, {}),
    ("GET", "/api/v1/files/?run__id__in=" + ",".join(["a"] * 1000), None, {}),
    ("GET", "/api/v1/datasets/?name__in=" + ",".join(["a"] * 5000), None, {}),
]


def _raw_request(
    server: ServerProcess, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in {"Authorization": f"Token {TOKENS[0]}", **headers}.items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    answer = connection.getresponse()
    payload = answer.read()
    connection.close()
    return answer.status, payload


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"), MALFORMED, ids=lambda v: str(v)[:50]
)
def test_malformed_requests_get_a_json_4xx(
    server: ServerProcess, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> None:
    status, payload = _raw_request(server, method, path, body, headers)
    assert 400 <= status < 500, (status, payload[:500])
    detail = json.loads(payload)["detail"]
    assert isinstance(detail, str) and detail
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"), ODD_BUT_VALID, ids=lambda v: str(v)[:50]
)
def test_odd_but_valid_requests_are_answered(
    server: ServerProcess, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> None:
    status, payload = _raw_request(server, method, path, body, headers)
    assert status == 200 and json.loads(payload)["count"] == 0, (status, payload[:500])
