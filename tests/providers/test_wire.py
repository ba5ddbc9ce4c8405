"""What goes over the wire: the original clients' requests, and how an ambiguous POST is resolved.

A scripted server on 127.0.0.1 records every request, so paths, headers, bodies and the
number of POSTs can be checked exactly.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from prefect_synthdata.compat.infinity import Batch, DownloadError
from prefect_synthdata.models import BatchRequest
from prefect_synthdata.providers.http import RetryPolicy
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.zpy import ZpyProvider
from tests.providers.scripted_server import Reply, ScriptedServer, scripted_server

TOKEN = "wire-token"
FAST = RetryPolicy(attempts=3, initial_seconds=0.01, cap_seconds=0.02)
BATCH = {"id": "b1", "name": "demo-1", "created": "2026-01-01T00:00:00+00:00"}
BATCH_BODY = {
    **BATCH,
    "job_runs": [{"id": "j1", "name": "shapes", "is_preview": False, "param_values": {"seed": 1}}],
}


def js(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
def wire() -> Iterator[tuple[ScriptedServer, str]]:
    with scripted_server() as pair:
        yield pair


def request(name: str = "demo-1") -> BatchRequest:
    return BatchRequest(generator="shapes", jobs=[{"seed": 1}], key="k" * 64, name=name)


def test_infinity_requests_match_the_original_client(wire: tuple[ScriptedServer, str]) -> None:
    state, url = wire
    state.script("/api/batch/", Reply(200, js(BATCH_BODY)))
    infinity = InfinityProvider(url.rstrip("/"), SecretStr(TOKEN), FAST)
    infinity.submit(request())
    post = state.calls("/api/batch/")[0]
    assert post.method == "POST"
    assert post.headers["Authorization"] == f"Token {TOKEN}"
    assert post.headers["Accept"] == "application/json"
    assert post.headers["Content-Type"] == "application/json"
    assert json.loads(post.body) == {
        "name": "demo-1",
        "job_runs": [{"name": "shapes", "is_preview": False, "param_values": {"seed": 1}}],
    }
    state.script("/api/batch/", Reply(200, js([])))
    assert infinity.find_batch("demo-1") is None
    listing = state.calls("/api/batch/")[-1]
    assert listing.method == "GET"
    query = parse_qs(urlsplit(listing.path).query)
    assert set(query) == {"start_time", "end_time"}
    assert query["start_time"][0].endswith("+00:00")  # ISO 8601 with an offset


def test_ambiguous_infinity_submission_adopts_the_batch_it_created(
    wire: tuple[ScriptedServer, str],
) -> None:
    state, url = wire
    state.script("/api/batch/", Reply(503, b'{"detail": "lost"}'), Reply(200, js([BATCH])))
    state.script("/api/batch/b1/", Reply(200, js(BATCH_BODY)))
    ref = InfinityProvider(url, SecretStr(TOKEN), FAST).submit(request())
    assert ref.batch_id == "b1" and ref.job_ids == ["j1"]
    assert [c.method for c in state.calls("/api/batch/")] == [
        "POST",
        "GET",
    ]  # looked up, not re-sent


def test_ambiguous_infinity_submission_is_resent_only_when_certainly_absent(
    wire: tuple[ScriptedServer, str],
) -> None:
    state, url = wire
    state.script(
        "/api/batch/",
        Reply(200, b'{"id": "b1", "na', cut_after=8),  # connection dropped mid-reply
        Reply(200, js([])),  # lookup: nothing of that name
        Reply(200, js(BATCH_BODY)),  # second POST
    )
    ref = InfinityProvider(url, SecretStr(TOKEN), FAST).submit(request())
    assert ref.batch_id == "b1"
    assert [c.method for c in state.calls("/api/batch/")] == ["POST", "GET", "POST"]


def page(*results: dict[str, object]) -> bytes:
    return js({"count": len(results), "next": None, "previous": None, "results": list(results)})


def test_zpy_requests_and_ambiguous_generate(
    wire: tuple[ScriptedServer, str], tmp_path: object
) -> None:
    state, url = wire
    dataset = {"id": "d1", "name": "demo-1", "state": "CREATED"}
    run = {"id": "r1", "name": "shapes-r1", "sim": "s1", "state": "QUEUED", "config": {"seed": 1}}
    state.script("/api/v1/projects/", Reply(200, page({"id": "p1", "name": "default"})))
    state.script("/api/v1/datasets/", Reply(200, page()), Reply(200, js(dataset)))
    state.script("/api/v1/datasets/d1/generate/", Reply(502, b"{}"))
    state.script(
        "/api/v1/datasets/d1/",
        Reply(200, js(dataset)),  # before the first generate: not generated
        Reply(200, js({**dataset, "state": "GENERATING"})),  # after the ambiguous 502: it was
    )
    state.script("/api/v1/simruns/", Reply(200, page()), Reply(200, page(run)))
    state.script(
        "/api/v1/sims/", Reply(200, page({"id": "s1", "name": "shapes", "run_kwargs": []}))
    )
    zpy = ZpyProvider(url, SecretStr(TOKEN), None, tmp_path)  # type: ignore[arg-type]
    ref = zpy.submit(request())
    assert (ref.batch_id, ref.job_ids, ref.generator) == ("d1", ["r1"], "shapes")
    assert zpy.identity.endswith("#project=p1")  # the token's first project

    create = [c for c in state.calls("/api/v1/datasets/") if c.method == "POST"]
    assert len(create) == 1
    assert create[0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(create[0].body.decode()) == {"project": ["p1"], "name": ["demo-1"]}
    generate = state.calls("/api/v1/datasets/d1/generate/")
    assert len(generate) == 1  # ambiguous, then found generated: not re-sent
    form = parse_qs(generate[0].body.decode())
    assert form["sim"] == ["shapes"] and form["amount"] == ["1"] and form["project"] == ["p1"]
    assert json.loads(form["config"][0]) == {"seed": 1}
    assert all(c.headers["Authorization"] == f"Token {TOKEN}" for c in state.requests)


def test_one_failed_job_download_keeps_the_others(
    wire: tuple[ScriptedServer, str], tmp_path: Path
) -> None:
    state, url = wire
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("j1/job.json", "{}")
    runs = [
        {"id": "j1", "name": "shapes", "in_progress": False, "result_url": url + "results/j1.zip"},
        {"id": "j2", "name": "shapes", "in_progress": False, "result_url": url + "results/j2.zip"},
    ]
    state.script("/api/batch/b1/summary/", Reply(200, js({"job_runs": runs})))
    state.script("/results/j1.zip", Reply(200, good.getvalue()))
    state.script("/results/j2.zip", Reply(404, b'{"detail": "gone"}'))
    batch = Batch(
        batch_id="b1",
        name="demo",
        jobs={"j1": {}, "j2": {}},
        generator="shapes",
        is_preview=False,
        provider=InfinityProvider(url, SecretStr(TOKEN), FAST),
    )
    (tmp_path / "earlier.txt").write_text("not ours")
    with pytest.raises(DownloadError) as info:
        batch.download(tmp_path)
    assert info.value.failed == ["j2"]
    assert (tmp_path / "j1" / "job.json").is_file() and not (tmp_path / "j2").exists()
    assert (tmp_path / "earlier.txt").read_text() == "not ours"  # the original deleted the folder
