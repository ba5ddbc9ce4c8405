"""Frame quotas per token: an over-quota submission is a JSON 4xx and renders nothing."""

from __future__ import annotations

from typing import Any

from tests.reference_server import ServerProcess
from tests.server.conftest import Api


def test_frame_quota_rejects_before_rendering(quota_server: ServerProcess) -> None:
    api, other = Api(quota_server, "small"), Api(quota_server, "other")

    def batch(frames: int) -> dict[str, Any]:
        params = {"width": 64, "height": 64, "frames": frames}
        return {"name": f"f{frames}", "job_runs": [{"name": "shapes", "param_values": params}]}

    assert api.post("api/batch/", json=batch(4)).status_code == 200
    over = api.post("api/batch/", json=batch(2))
    assert over.status_code == 402
    assert over.json()["code"] == "quota_exceeded" and "4 of 5" in over.json()["detail"]
    assert [b["name"] for b in api.get("api/batch/").json()] == ["f4"]  # nothing recorded
    assert api.post("api/batch/estimate/", json=batch(2)).json() == [2]  # estimating is free
    assert other.post("api/batch/", json=batch(5)).status_code == 200  # quotas are per token

    project = api.get("api/v1/projects/").json()["results"][0]["id"]
    dataset = api.post("api/v1/datasets/", data={"project": project, "name": "too big"}).json()
    form = {"project": project, "sim": "shapes", "config": "{}", "amount": 2}
    zpy_over = api.post(f"api/v1/datasets/{dataset['id']}/generate/", data=form)
    assert zpy_over.status_code == 400 and zpy_over.json()["code"] == "quota_exceeded"
    assert api.get(f"api/v1/datasets/{dataset['id']}/").json()["state"] == "CREATED"
    assert api.get("api/v1/simruns/").json()["count"] == 0
