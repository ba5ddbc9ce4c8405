"""A hostile server on 127.0.0.1, both dialects: what it sends is checked where it enters,
bounded in time and size, refused once with an error naming field and server, and never
retried; no file appears outside the work folder."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.states import Failed

from prefect_synthdata import batches, tasks
from prefect_synthdata.exceptions import (
    BatchTimeoutError,
    RetriesExhaustedError,
    ServerResponseError,
    SynthDataError,
    TransientError,
    UnsafeArchiveError,
)
from prefect_synthdata.models import BatchRef
from prefect_synthdata.providers.http import AmbiguousRequestError, HttpClient, RetryPolicy
from tests.providers import hostile
from tests.providers.hostile import NAME, job
from tests.providers.scripted_server import Reply, ScriptedServer, scripted_server
from tests.reference_server import free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hostile_server() -> Iterator[tuple[ScriptedServer, str]]:
    with scripted_server() as pair:
        yield pair


REFUSED: dict[str, tuple[hostile.Call, str]] = {
    # infinity: ids that would become paths, wrong shapes, relative URLs
    "infinity job id with ..": (hostile.infinity_batch({"id": "b1", "name": NAME, "job_runs": [job(id="../../..")]}), "job_runs[0].id '../../..'"),
    "infinity absolute job id": (hostile.infinity_batch({"id": "b1", "name": NAME, "job_runs": [job(id="/tmp/x")]}), "job_runs[0].id '/tmp/x'"),
    "infinity batch id with a slash": (hostile.infinity_listed([{"id": "a/../../b", "name": NAME}]), "batch list[].id"),
    "infinity batch name with a slash": (hostile.infinity_batch({"id": "b1", "name": "../x", "job_runs": [job()]}), "batch name '../x'"),
    "infinity job_runs null": (hostile.infinity_batch({"id": "b1", "name": NAME, "job_runs": None}), "batch job_runs None"),
    "infinity job without id": (hostile.infinity_batch({"id": "b1", "name": NAME, "job_runs": [{"name": "shapes"}]}), "job_runs[0].id None"),
    "infinity duplicate job ids": (hostile.infinity_batch({"id": "b1", "name": NAME, "job_runs": [job(), job()]}), "each job id must appear once"),
    "infinity batch list not a list": (hostile.infinity_listed({"oops": 1}), "batch list"),
    "infinity relative result_url": (hostile.infinity_summary({"job_runs": [job(in_progress=False, result_url="results/j1.zip")]}), "result_url of job j1"),
    "infinity file result_url": (hostile.infinity_summary({"job_runs": [job(in_progress=False, result_url="file:///etc/passwd")]}), "absolute http/https URL"),
    "infinity summary job_runs null": (hostile.infinity_summary({"job_runs": None}), "summary job_runs"),
    # zpy: ids, pagination, links, sizes, file names inside annotations
    "zpy dataset id with ..": (hostile.zpy_datasets({"id": "..", "name": NAME}), "dataset id '..'"),
    "zpy dataset without id": (hostile.zpy_datasets({"name": NAME}), "dataset id None"),
    "zpy simrun id absolute": (hostile.zpy_simruns({"id": "/etc", "sim": "shapes"}), "simruns[0].id '/etc'"),
    "zpy next points to itself": (hostile.zpy_self_paging(), "a page seen before"),
    "zpy relative redirect_link": (hostile.zpy_download({"redirect_link": "files/d1.zip"}, hostile.zumo_zip({})), "download redirect_link"),
    "zpy negative size": (hostile.zpy_download({"redirect_link": "http://127.0.0.1:9/x.zip", "size_bytes": -5}, hostile.zumo_zip({})), "download size_bytes -5"),
    "zpy image name absolute": (hostile.zpy_download(None, hostile.zumo_zip({"1": {"id": 1, "name": "/etc/hostname", "frame": 0, "width": 1, "height": 1}})), "images[].name '/etc/hostname'"),
    "zpy image name with ..": (hostile.zpy_download(None, hostile.zumo_zip({"1": {"id": 1, "name": "../../secret.png", "frame": 0, "width": 1, "height": 1}})), "images[].name '../../secret.png'"),
    "zpy image without size": (hostile.zpy_download(None, hostile.zumo_zip({"1": {"id": 1, "name": "image.000000.rgb.png", "frame": 0}})), "malformed _annotations.zumo.json for simrun r1"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_hostile_reply_is_refused_once_naming_field_and_server(
    case: str, hostile_server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = hostile_server
    call, words = REFUSED[case]
    work = tmp_path / "work"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    with pytest.raises(ServerResponseError) as raised:
        call(state, url, work)
    message = str(raised.value)
    assert words in message, message
    assert "127.0.0.1" in message or "_annotations.zumo.json" in message, message  # who sent it
    assert not raised.value.retryable
    assert not tasks._retry_transient(None, None, Failed(data=raised.value))
    paths = [r.path.split("?")[0] for r in state.requests]
    assert len(paths) == len(set(paths)) or case == "zpy next points to itself", (
        paths
    )  # none retried
    assert [r for r in state.requests if r.method == "POST"] == []
    assert (outside / "keep.txt").read_text() == "keep"
    left = [p.name for p in work.rglob("*") if p.is_file()] if work.exists() else []
    assert not any(p.endswith((".part", ".png")) for p in left), left


def test_self_paging_list_stops_after_one_repeat(
    hostile_server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = hostile_server
    with pytest.raises(ServerResponseError, match="pagination leads to a page seen before"):
        hostile.zpy_self_paging()(state, url, tmp_path)
    assert len(state.calls("/api/v1/datasets/")) == 2


def test_zip_member_name_over_255_bytes_is_refused(
    hostile_server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = hostile_server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("r1/" + "é" * 200 + ".png", b"x")  # 400 bytes in UTF-8
    with pytest.raises(UnsafeArchiveError, match="over 255 bytes"):
        hostile.zpy_download(None, buffer.getvalue())(state, url, tmp_path)


# ------------------------------------------------------------------ bounds


@pytest.mark.parametrize("dialect", ["infinity", "zpy"])
def test_a_dripping_status_reply_cannot_hold_a_poll_past_its_deadline(
    dialect: str, hostile_server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = hostile_server
    drip = Reply(
        200, b'{"job_runs": [], "state": "GENERATING", "count": 0, "results": []}', drip_seconds=0.5
    )
    patient = RetryPolicy(attempts=3, initial_seconds=0.01, deadline_seconds=60)  # per call
    if dialect == "infinity":
        state.script("/api/batch/b1/summary/", drip)
        provider = hostile.infinity(url, patient)
        batch = BatchRef(batch_id="b1", name=NAME, generator="shapes", job_ids=["j1"])
    else:
        state.script("/api/v1/datasets/d1/", drip)
        provider = hostile.zpy(url, tmp_path, patient)  # type: ignore[assignment]
        batch = BatchRef(batch_id="d1", name=NAME, generator="shapes", job_ids=["r1", "r2"])
    started = time.monotonic()
    with pytest.raises(BatchTimeoutError, match="not finished after 2s"):
        batches.poll_until_done(provider, batch, batches.PollPolicy(deadline_seconds=2))
    assert time.monotonic() - started < 4


def test_a_dripping_reply_is_bounded_by_the_call_deadline(
    hostile_server: tuple[ScriptedServer, str],
) -> None:
    state, url = hostile_server
    state.script("/api/x/", Reply(200, b'{"padding": "' + b"x" * 100 + b'"}', drip_seconds=0.2))
    client = HttpClient(
        url, hostile.SecretStr(hostile.TOKEN), retry=RetryPolicy(deadline_seconds=1.5)
    )
    started = time.monotonic()
    with pytest.raises(RetriesExhaustedError) as raised:
        client.get_json(url + "api/x/")
    assert time.monotonic() - started < 2.5
    assert not raised.value.retryable


def client_sockets_open(provider_http: HttpClient) -> list[object]:
    """The sockets the client's connection pools still hold open."""
    open_ = []
    for adapter in provider_http.session.adapters.values():
        pools = adapter.poolmanager.pools  # type: ignore[attr-defined]
        for key in list(pools.keys()):  # the container refuses plain iteration
            open_ += [c.sock for c in list(pools[key].pool.queue) if c is not None and c.sock]
    return open_


@pytest.mark.parametrize("dialect", ["infinity", "zpy"])
def test_dripped_status_line_and_headers_end_at_the_call_deadline(
    dialect: str, hostile_server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    """Each byte arrives well within the read timeout, so only the watchdog ends the call."""
    state, url = hostile_server
    drip = Reply(200, b'{"job_runs": [], "state": "GENERATING"}', head_drip_seconds=1.0)
    policy = RetryPolicy(attempts=3, initial_seconds=0.01, deadline_seconds=1.5)
    if dialect == "infinity":
        state.script("/api/batch/b1/summary/", drip)
        provider = hostile.infinity(url, policy)
        batch = BatchRef(batch_id="b1", name=NAME, generator="shapes", job_ids=["j1"])
        http = provider.api.http
    else:
        state.script("/api/v1/datasets/d1/", drip)
        provider = hostile.zpy(url, tmp_path, policy)  # type: ignore[assignment]
        batch = BatchRef(batch_id="d1", name=NAME, generator="shapes", job_ids=["r1"])
        http = provider.api.http  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(RetriesExhaustedError, match="no complete reply before the deadline"):
        provider.batch_status(batch)
    assert time.monotonic() - started < 1.5 + 0.5
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    assert client_sockets_open(http) == []


def test_dripped_headers_of_a_download_end_at_its_deadline(
    hostile_server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = hostile_server
    state.script("/results/j1.zip", Reply(200, b"PK", head_drip_seconds=1.0))
    client = HttpClient(
        url,
        hostile.SecretStr(hostile.TOKEN),
        retry=RetryPolicy(attempts=3, initial_seconds=0.01, download_deadline_seconds=1.5),
    )
    started = time.monotonic()
    with pytest.raises(RetriesExhaustedError, match="no complete reply before the deadline"):
        client.download(url + "results/j1.zip", tmp_path / "j1.zip")
    assert time.monotonic() - started < 1.5 + 0.5
    assert not (tmp_path / "j1.zip").exists()
    assert client_sockets_open(client) == []


def test_a_post_whose_reply_drips_is_ambiguous_at_the_deadline(
    hostile_server: tuple[ScriptedServer, str],
) -> None:
    state, url = hostile_server
    state.script("/api/batch/", Reply(200, b"{}", head_drip_seconds=1.0))
    client = HttpClient(
        url, hostile.SecretStr(hostile.TOKEN), retry=RetryPolicy(deadline_seconds=1.5)
    )
    started = time.monotonic()
    with pytest.raises(AmbiguousRequestError, match="no complete reply before the deadline"):
        client.post_json(url + "api/batch/", json_body={"name": "x"})
    assert time.monotonic() - started < 1.5 + 0.5
    assert len(state.calls("/api/batch/")) == 1  # sent once


@pytest.mark.parametrize("chunked", [False, True])
def test_json_replies_are_capped(chunked: bool, hostile_server: tuple[ScriptedServer, str]) -> None:
    state, url = hostile_server
    big = b'{"results": ["' + b"x" * (3 << 20) + b'"]}'
    state.script("/api/x/", Reply(200, big, chunked=chunked))
    client = HttpClient(
        url, hostile.SecretStr(hostile.TOKEN), retry=RetryPolicy(max_json_bytes=1 << 20)
    )
    with pytest.raises(ServerResponseError, match="over the limit of 1048576"):
        client.get_json(url + "api/x/")
    assert len(state.calls("/api/x/")) == 1


@pytest.mark.parametrize("chunked", [False, True])
def test_download_stops_at_the_announced_size(
    chunked: bool, hostile_server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = hostile_server
    archive = hostile.zumo_zip({})
    huge = Reply(200, archive + bytes(8 << 20), chunked=chunked)
    with pytest.raises(ServerResponseError, match=f"{len(archive)} bytes"):
        hostile.zpy_download(None, archive, huge)(state, url, tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size > len(archive)]
    assert len(state.calls("/files/d1.zip")) == 1


def test_download_without_announced_size_stops_at_the_cap(
    hostile_server: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = hostile_server
    state.script("/files/x.zip", Reply(200, bytes(4 << 20), chunked=True))
    client = HttpClient(
        url, hostile.SecretStr(hostile.TOKEN), retry=RetryPolicy(max_download_bytes=1 << 20)
    )
    with pytest.raises(ServerResponseError, match="more than the 1048576 bytes allowed"):
        client.download(url + "files/x.zip", tmp_path / "x.zip")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ a dead server


@pytest.mark.parametrize("dialect", ["infinity", "zpy"])
def test_a_dead_server_fails_once_within_seconds(dialect: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    provider = (
        hostile.infinity(url, RetryPolicy())
        if dialect == "infinity"
        else hostile.zpy(url, tmp_path, RetryPolicy())
    )
    started = time.monotonic()
    with pytest.raises(
        RetriesExhaustedError, match="connection refused, giving up after 6 attempts"
    ) as raised:
        provider.find_batch(NAME)
    assert time.monotonic() - started < 10  # README: about 6 s with the default policy
    assert isinstance(raised.value, TransientError) and not raised.value.retryable
    assert not tasks._retry_transient(None, None, Failed(data=raised.value))
    with pytest.raises(RetriesExhaustedError):  # a poll does not multiply it either
        batches.poll_until_done(
            provider,
            BatchRef(batch_id="b1", name=NAME, generator="shapes", job_ids=["j1"]),
            batches.PollPolicy(),
        )
    assert time.monotonic() - started < 20


def test_http_errors_carry_the_status_as_a_field(
    hostile_server: tuple[ScriptedServer, str],
) -> None:
    state, url = hostile_server
    state.script("/api/x/", Reply(500, b'{"detail": "boom"}'))
    state.script("/api/y/", Reply(409, b'{"detail": "conflict"}'))
    client = HttpClient(url, hostile.SecretStr(hostile.TOKEN), retry=hostile.FAST)
    with pytest.raises(RetriesExhaustedError) as exhausted:
        client.get_json(url + "api/x/")
    with pytest.raises(SynthDataError) as conflict:
        client.get_json(url + "api/y/")
    assert (exhausted.value.status, conflict.value.status) == (500, 409)
    assert len(state.calls("/api/x/")) == hostile.FAST.attempts
