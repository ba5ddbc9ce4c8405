"""Durable state: a server killed mid-batch resumes on restart; results and records survive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from tests.reference_server import run_reference_server
from tests.server.conftest import Api, wait_for

JOB = {"width": 480, "height": 360, "num_objects": 12, "frames": 6}


def _summary(api: Api, batch_id: str) -> list[dict[str, Any]]:
    response = api.get(f"api/batch/{batch_id}/summary/")
    assert response.status_code == 200, response.text
    return list(response.json()["job_runs"])


def test_kill_mid_batch_then_restart_finishes_everything(tmp_path: Path) -> None:
    with run_reference_server(tmp_path / "data", tokens=["durable"], workers=1) as server:
        api = Api(server, "durable")
        runs = [
            {"name": "shapes", "is_preview": False, "param_values": {**JOB, "seed": s}}
            for s in range(6)
        ]
        batch = api.post("api/batch/", json={"name": "long", "job_runs": runs}).json()
        project = api.get("api/v1/projects/").json()["results"][0]["id"]
        dataset = api.post(
            "api/v1/datasets/", data={"project": project, "name": "interrupted"}
        ).json()
        config = json.dumps({"width": 320, "height": 240, "num_objects": 12})
        generate = {"project": project, "sim": "shapes", "config": config, "amount": 3}
        assert (
            api.post(f"api/v1/datasets/{dataset['id']}/generate/", data=generate).status_code == 200
        )

        def some_done() -> list[dict[str, Any]] | None:
            summary = _summary(api, batch["id"])
            return summary if any(not r["in_progress"] for r in summary) else None

        before = wait_for(some_done)
        assert any(r["in_progress"] for r in before), (
            "batch finished before the crash; make jobs bigger"
        )
        done_before = {r["id"]: r["result_url"] for r in before if r["result_url"]}
        first_zip = {
            job_id: requests.get(url, timeout=30).content for job_id, url in done_before.items()
        }

        server.kill()  # SIGKILL: no shutdown hooks, render workers die too
        server.restart()

        after = wait_for(
            lambda: (s := _summary(api, batch["id"])) and all(not r["in_progress"] for r in s) and s
        )
        assert [r["id"] for r in after] == [r["id"] for r in batch["job_runs"]]
        assert all(r["result_url"] for r in after), after
        for job_id, body in first_zip.items():  # finished results survived, byte for byte
            url = next(r["result_url"] for r in after if r["id"] == job_id)
            assert requests.get(url, timeout=30).content == body
        old_url = next(iter(done_before.values()))
        assert requests.get(old_url, timeout=30).status_code == 200  # signed URLs survive a restart

        def dataset_done() -> dict[str, Any] | None:
            state = api.get(f"api/v1/datasets/{dataset['id']}/").json()
            return (
                state
                if state["state"] in ("READY", "GENERATING_FAILED", "PACKAGING_FAILED")
                else None
            )

        assert wait_for(dataset_done)["state"] == "READY"
        link = api.get(f"api/v1/datasets/{dataset['id']}/download/").json()
        assert requests.get(link["redirect_link"], timeout=30).status_code == 200
