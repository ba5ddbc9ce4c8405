"""The Infinity dialect over HTTP, driven the way the infinity-core client drives it.

URLs are built as that client builds them (`urljoin(server, endpoint)` with a forced
trailing slash, query strings after the slash), with `Authorization: Token ...`.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from pycocotools.coco import COCO

from prefect_synthdata.engine.generators import get_generator
from tests.reference_server import ServerProcess
from tests.server.conftest import Api, wait_for

SMALL = {"width": 64, "height": 48, "num_objects": 3}


def _submit(
    api: Api, jobs: list[dict[str, Any]], name: str, is_preview: bool = False
) -> dict[str, Any]:
    body = {
        "name": name,
        "job_runs": [{"name": "shapes", "is_preview": is_preview, "param_values": p} for p in jobs],
    }
    response = api.post("api/batch/", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _finished(api: Api, batch_id: str) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        runs: list[dict[str, Any]] = api.get(f"api/batch/{batch_id}/summary/").json()["job_runs"]
        return runs if all(not r["in_progress"] for r in runs) else None

    return list(wait_for(check))


@pytest.fixture(scope="module")
def video_batch(alice: Api) -> dict[str, Any]:
    """Two 2-frame jobs, submitted and finished."""
    batch = _submit(
        alice, [{**SMALL, "frames": 2, "seed": 1}, {**SMALL, "frames": 2, "seed": 2}], "video"
    )
    batch["summary"] = _finished(alice, batch["id"])
    return batch


def test_generators_and_parameter_info(alice: Api) -> None:
    assert alice.get("api/jobs/").json() == [{"name": "shapes"}, {"name": "tabletop"}]
    info = alice.get("api/jobs/shapes/").json()
    assert info == json.loads(json.dumps(get_generator("shapes").spec.to_api()))
    assert info["options"] == {"preview": True}
    missing = alice.get("api/jobs/no-such-generator/")
    assert missing.status_code == 404 and "no-such-generator" in missing.json()["detail"]


def test_estimate_counts_frames_and_previews(alice: Api) -> None:
    body = {
        "name": "",
        "job_runs": [
            {"name": "shapes", "is_preview": False, "param_values": {"frames": f}} for f in (1, 5)
        ],
    }
    assert alice.post("api/batch/estimate/", json=body).json() == [1, 5]
    for run in body["job_runs"]:
        run["is_preview"] = True
    assert alice.post("api/batch/estimate/", json=body).json() == [1, 1]


def test_submit_answers_ids_and_full_parameter_sets(
    alice: Api, video_batch: dict[str, Any]
) -> None:
    defaults = get_generator("shapes").spec.defaults()
    assert video_batch["name"] == "video" and video_batch["created"]
    assert [r["param_values"] for r in video_batch["job_runs"]] == [
        {**defaults, **SMALL, "frames": 2, "seed": s} for s in (1, 2)
    ]
    again = alice.get(f"api/batch/{video_batch['id']}/").json()
    assert [r["id"] for r in again["job_runs"]] == [r["id"] for r in video_batch["job_runs"]]
    assert all(r["is_preview"] is False for r in again["job_runs"])
    legacy = alice.get(f"api/batch/summary/{video_batch['id']}/").json()
    assert [r["id"] for r in legacy["job_runs"]] == [r["id"] for r in video_batch["summary"]]


def test_result_zip_layout_checksum_and_no_auth(
    video_batch: dict[str, Any], tmp_path: Path
) -> None:
    for run in video_batch["summary"]:
        assert run["name"] == "shapes" and run["result_url"]
        response = requests.get(run["result_url"], timeout=30)  # pre-signed: no auth header
        assert response.status_code == 200
        body = response.content
        assert int(response.headers["Content-Length"]) == len(body)
        digest = hashlib.sha256(body).hexdigest()
        assert (
            response.headers["ETag"] == f'"{digest}"'
            and response.headers["X-Checksum-Sha256"] == digest
        )
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = archive.namelist()
            assert {n.split("/")[0] for n in names} == {run["id"]}
            archive.extractall(tmp_path)
        job_dir = tmp_path / run["id"]
        job = json.loads((job_dir / "job.json").read_text())
        assert job["name"] == "shapes" and job["params"]["frames"] == 2
        coco = COCO(str(job_dir / "labels.json"))
        assert [img["frame_number"] for img in coco.dataset["images"]] == [0, 1]
        assert all((job_dir / img["file_name"]).is_file() for img in coco.dataset["images"])
        assert coco.getAnnIds()


def test_download_resumes_with_byte_ranges(video_batch: dict[str, Any]) -> None:
    url = video_batch["summary"][0]["result_url"]
    whole = requests.get(url, timeout=30).content
    head = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert head.status_code == 206 and head.headers["Content-Range"] == f"bytes 0-99/{len(whole)}"
    tail = requests.get(url, headers={"Range": "bytes=100-"}, timeout=30)
    assert tail.status_code == 206
    assert head.content + tail.content == whole


def test_signed_urls_cannot_be_forged_or_reused(
    alice: Api, bob: Api, video_batch: dict[str, Any]
) -> None:
    first, second = (r["result_url"] for r in video_batch["summary"])
    tampered = first[:-4] + ("0000" if not first.endswith("0000") else "1111")
    assert requests.get(tampered, timeout=30).status_code == 403
    # the signature of job 1 does not open job 2
    swapped = second.split("?")[0] + "?" + first.split("?")[1]
    response = requests.get(swapped, timeout=30)
    assert response.status_code == 403 and response.json()["detail"]
    unsigned = requests.get(first.split("?")[0], timeout=30)
    assert unsigned.status_code == 400 and "sig" in unsigned.json()["detail"]
    # bob cannot see alice's batch nor her jobs
    assert bob.get(f"api/batch/{video_batch['id']}/summary/").status_code == 404
    assert bob.get(f"api/job_runs/{video_batch['job_runs'][0]['id']}/").status_code == 404
    assert video_batch["id"] not in [b["id"] for b in bob.get("api/batch/").json()]


def test_batch_list_time_window(alice: Api, video_batch: dict[str, Any]) -> None:
    now = datetime.now().astimezone()
    window = {
        "start_time": (now - timedelta(days=1)).isoformat(),
        "end_time": (now + timedelta(minutes=1)).isoformat(),
    }
    listed = alice.get("api/batch/?" + urlencode(window)).json()
    listed_video = {"id": video_batch["id"], "name": "video", "created": video_batch["created"]}
    assert {**listed_video, "cancelled": False} in listed
    past = {"start_time": "2001-01-01T00:00:00+00:00", "end_time": "2001-01-02T00:00:00+00:00"}
    assert alice.get("api/batch/?" + urlencode(past)).json() == []
    bad = alice.get("api/batch/?" + urlencode({"start_time": "yesterday"}))
    assert bad.status_code == 400 and "start_time" in bad.json()["detail"]


def test_usage_counts_by_generator(alice: Api, bob: Api, video_batch: dict[str, Any]) -> None:
    preview = _submit(alice, [SMALL], "preview", is_preview=True)
    _finished(alice, preview["id"])
    end = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    counts = alice.get("api/job_runs/counts/?" + urlencode({"end_time": end})).json()
    (shapes,) = counts["counts_by_generator"]
    assert shapes["generator"] == "shapes"
    assert shapes["preview_samples_rendered"] >= 1 and shapes["non_preview_samples_rendered"] >= 4
    assert bob.get("api/job_runs/counts/").json()["counts_by_generator"] == []
    previews = alice.get("api/job_previews/").json()
    assert preview["job_runs"][0]["id"] in [p["id"] for p in previews]
    one = alice.get(f"api/job_previews/{preview['job_runs'][0]['id']}/").json()
    assert one["is_preview"] is True and one["result_url"] and one["in_progress"] is False
    standard = alice.get("api/job_runs/").json()
    assert {r["id"] for r in video_batch["job_runs"]} <= {r["id"] for r in standard}
    assert alice.get(f"api/job_runs/{preview['job_runs'][0]['id']}/").status_code == 404


def test_state_reruns_an_earlier_job_with_overrides(
    alice: Api, video_batch: dict[str, Any]
) -> None:
    earlier = video_batch["job_runs"][0]
    rerun = _submit(alice, [{"state": earlier["id"], "noise_std": 0.0}], "rerun")
    params = rerun["job_runs"][0]["param_values"]
    assert params == {**earlier["param_values"], "noise_std": 0.0, "state": earlier["id"]}
    unknown = {
        "name": "x",
        "job_runs": [
            {"name": "shapes", "param_values": {"state": "00000000-0000-0000-0000-000000000000"}}
        ],
    }
    response = alice.post("api/batch/", json=unknown)
    assert response.status_code == 400 and "state" in response.json()["detail"]


def test_invalid_parameters_are_all_named(alice: Api) -> None:
    body = {
        "name": "bad",
        "job_runs": [{"name": "shapes", "param_values": {"width": 1, "colour": "red"}}],
    }
    response = alice.post("api/batch/", json=body)
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert any("width" in p for p in problems) and any("colour" in p for p in problems)


def test_openapi_document_lists_both_dialects(server: ServerProcess) -> None:
    paths = requests.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]
    for path in [
        "/api/jobs/", "/api/jobs/{generator}/", "/api/batch/", "/api/batch/estimate/",
        "/api/batch/{batch_id}/", "/api/batch/{batch_id}/summary/", "/api/job_runs/counts/",
        "/api/job_previews/", "/api/job_previews/{job_id}/", "/api/job_runs/", "/api/job_runs/{job_id}/",
        "/api/v1/projects/{project_id}", "/api/v1/sims/", "/api/v1/datasets/", "/api/v1/datasets/{dataset_id}/",
        "/api/v1/datasets/{dataset_id}/generate/", "/api/v1/datasets/{dataset_id}/download/",
        "/api/v1/simruns/", "/api/v1/files/", "/results/jobs/{job_id}.zip",
    ]:  # fmt: skip
        assert path in paths, path
