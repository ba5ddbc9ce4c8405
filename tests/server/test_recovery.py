"""The recovery extensions on the wire: `POST api/batch/<id>/render-again/` (Infinity) and
generate again on a failed zpy dataset; bounded per job, charged once, owner-scoped."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from prefect_synthdata.engine.jobs import MAX_RENDERS
from tests.reference_server import ServerProcess, run_reference_server
from tests.server.conftest import Api, wait_for

pytestmark = pytest.mark.timeout(300)

QUOTA = 6
JOB = {"name": "shapes", "param_values": {"width": 64, "height": 64}}  # one frame


@pytest.fixture(scope="module")
def recovery_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("recovery") / "data"
    tokens = ("bounded", "quota", "stranger", "zpy")
    with run_reference_server(data, tokens=tokens, quota=QUOTA) as srv:
        yield srv


def results_blocked(server: ServerProcess, blocked: bool) -> None:
    """Make every render of the server fail (its results folder is a file), or undo it."""
    results = server.data_dir / "engine" / "results"
    if blocked:
        shutil.rmtree(results)
        results.write_text("not a folder")
    else:
        results.unlink()
        results.mkdir()


def finished(api: Api, batch_id: str) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        runs: list[dict[str, Any]] = api.get(f"api/batch/{batch_id}/summary/").json()["job_runs"]
        return runs if not any(r["in_progress"] for r in runs) else None

    return wait_for(check, timeout=60, interval=0.1)  # type: ignore[no-any-return]


def render_again(api: Api, batch_id: str) -> dict[str, Any]:
    reply = api.post(f"api/batch/{batch_id}/render-again/")
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_a_job_failing_every_time_is_given_up_after_max_renders(
    recovery_server: ServerProcess,
) -> None:
    api = Api(recovery_server, "bounded")
    results_blocked(recovery_server, True)
    try:
        batch = api.post("api/batch/", json={"name": "bounded", "job_runs": [JOB, JOB]}).json()
        assert all(r["error"] for r in finished(api, batch["id"]))
        for _ in range(MAX_RENDERS):
            body = render_again(api, batch["id"])
            assert body == {"id": batch["id"], "queued_jobs": 2, "frames_charged": 2,
                            "given_up_jobs": 0, "max_renders": MAX_RENDERS}  # fmt: skip
            runs = finished(api, batch["id"])
            assert [r["result_url"] for r in runs] == [None, None]
        body = render_again(api, batch["id"])  # a failure that outlasts every re-render
        assert (body["queued_jobs"], body["frames_charged"], body["given_up_jobs"]) == (0, 0, 2)
    finally:
        results_blocked(recovery_server, False)
    assert [r["id"] for r in finished(api, batch["id"])] == [j["id"] for j in batch["job_runs"]]


def test_render_again_charges_failed_frames_within_the_quota_and_is_idempotent(
    recovery_server: ServerProcess,
) -> None:
    api = Api(recovery_server, "quota")
    results_blocked(recovery_server, True)
    try:
        failed = api.post("api/batch/", json={"name": "q-failed", "job_runs": [JOB] * 3}).json()
        finished(api, failed["id"])
    finally:
        results_blocked(recovery_server, False)
    ok = api.post("api/batch/", json={"name": "q-ok", "job_runs": [JOB] * 4})  # 4 of 6 frames
    assert ok.status_code == 200, ok.text
    refused = api.post(f"api/batch/{failed['id']}/render-again/")
    assert refused.status_code == 402, refused.text  # 4 + 3 > 6: nothing is queued
    assert "4 of 6 frames used, this request needs 3" in refused.json()["detail"]
    assert all(not r["result_url"] for r in finished(api, failed["id"]))

    finished(api, ok.json()["id"])
    shutil.rmtree(recovery_server.data_dir / "engine" / "results" / ok.json()["job_runs"][0]["id"])
    runs = api.get(f"api/batch/{ok.json()['id']}/summary/").json()["job_runs"]
    assert runs[0]["result_url"] is None and "result was lost" in runs[0]["error"]
    body = render_again(api, ok.json()["id"])  # a result-less job: its frame is charged already
    assert (body["queued_jobs"], body["frames_charged"]) == (1, 0)
    assert render_again(api, ok.json()["id"])["queued_jobs"] == 0  # queued already: idempotent
    assert all(r["result_url"] for r in finished(api, ok.json()["id"]))
    usage = api.get("api/job_runs/counts/").json()["counts_by_generator"]
    assert usage == [{"generator": "shapes", "preview_samples_rendered": 0,
                      "non_preview_samples_rendered": 4}]  # fmt: skip  # counted once


def test_render_again_is_owner_scoped(recovery_server: ServerProcess) -> None:
    owner, stranger = Api(recovery_server, "bounded"), Api(recovery_server, "stranger")
    batch = owner.post("api/batch/", json={"name": "mine", "job_runs": [JOB]}).json()
    assert stranger.post(f"api/batch/{batch['id']}/render-again/").status_code == 404
    assert owner.post("api/batch/no-such-batch/render-again/").status_code == 404


def test_a_failed_dataset_recovers_only_with_the_same_sim_config_and_amount(
    recovery_server: ServerProcess,
) -> None:
    api = Api(recovery_server, "zpy")
    project = api.get("api/v1/projects/").json()["results"][0]["id"]
    dataset = api.post("api/v1/datasets/", data={"project": project, "name": "zpy-again"}).json()
    form = {"project": project, "sim": "shapes", "config": json.dumps({"width": 64, "height": 64})}
    url = f"api/v1/datasets/{dataset['id']}/"
    results_blocked(recovery_server, True)
    try:
        assert api.post(url + "generate/", data={**form, "amount": 2}).status_code == 200
        wait_for(lambda: api.get(url).json()["state"] == "GENERATING_FAILED", timeout=60)
    finally:
        results_blocked(recovery_server, False)
    other = api.post(url + "generate/", data={**form, "amount": 3})
    assert other.status_code == 400 and "with another sim, config or amount" in other.text
    again = api.post(url + "generate/", data={**form, "amount": 2})
    assert again.status_code == 200 and again.json()["rendered_again"] == 2
    assert wait_for(lambda: api.get(url).json()["state"] == "READY", timeout=60)
    runs = api.get("api/v1/simruns/", params={"datasets": dataset["id"]}).json()["results"]
    assert sorted(r["state"] for r in runs) == ["READY", "READY"]
    assert api.post(url + "generate/", data={**form, "amount": 2}).status_code == 400  # READY
