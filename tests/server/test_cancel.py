"""Cancelling a batch on the reference server, in both dialects, through the HTTP providers.

The server drops queued jobs and stops running ones, records them cancelled and credits
their frames back to the quota; against a server without the endpoint the provider says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from prefect_synthdata.batches import cancel_named_batch, prepare_request, submit_idempotent
from prefect_synthdata.exceptions import CancelNotSupportedError, NotFoundError
from prefect_synthdata.models import BatchRef, JobState
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.zpy import ZpyProvider
from tests.providers.scripted_server import Reply, scripted_server
from tests.reference_server import ServerProcess, run_reference_server
from tests.server.conftest import Api, used_frames, wait_for

TOKEN = "cancel-token"
QUOTA = 1000
#: Four jobs of 60 frames at 512 x 512: seconds of work for one render process.
SLOW = {"width": 512, "height": 512, "frames": 60}


@pytest.fixture(scope="module")
def cancel_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("cancel") / "data"
    with run_reference_server(data, tokens=[TOKEN], quota=QUOTA, workers=1) as server:
        yield server
    assert "Traceback" not in server.log(), server.log()[-5000:]


def test_infinity_cancel_stops_the_batch_and_credits_the_quota(
    cancel_server: ServerProcess,
) -> None:
    api = Api(cancel_server, TOKEN)
    provider = InfinityProvider(cancel_server.url, SecretStr(TOKEN))
    request = prepare_request(provider, "shapes", [SLOW] * 4, False, "slow-infinity", seed=1)
    batch, _ = submit_idempotent(provider, request)
    assert used_frames(api, QUOTA) == 240
    wait_for(lambda: provider.batch_status(batch).counts().get("running"))

    assert "cancelled batch" in cancel_named_batch(provider, request)
    status = provider.batch_status(batch)
    assert status.done and len(status.cancelled) >= 3  # the first may have finished
    rendered = len(status.succeeded)
    assert used_frames(api, QUOTA) == 60 * rendered  # unrendered frames credited back
    summary = api.get(f"api/batch/{batch.batch_id}/summary/").json()["job_runs"]
    assert {r["state"] for r in summary} <= {"cancelled", "succeeded"}
    assert all(r["result_url"] is None for r in summary if r["state"] == "cancelled")
    again = api.post(f"api/batch/{batch.batch_id}/cancel/").json()
    assert again == {"id": batch.batch_id, "cancelled_jobs": 0, "frames_credited": 0}
    assert provider.find_batch(request.name) is None  # a re-run submits it again
    assert api.post("api/batch/not-a-batch/cancel/").status_code == 404


def test_zpy_cancel_moves_the_dataset_to_cancelled(
    cancel_server: ServerProcess, tmp_path: Path
) -> None:
    provider = ZpyProvider(cancel_server.url, SecretStr(TOKEN), None, tmp_path / "cache")
    jobs = [{**SLOW, "seed": 100 + i} for i in range(4)]
    request = prepare_request(provider, "shapes", jobs, False, "slow-zpy", seed=1)
    batch, _ = submit_idempotent(provider, request)
    wait_for(lambda: provider.batch_status(batch).remaining)

    assert provider.cancel(batch) >= 3
    api = Api(cancel_server, TOKEN)
    dataset = api.get(f"api/v1/datasets/{batch.batch_id}/").json()
    assert dataset["state"] == "CANCELLED"
    runs = api.get("api/v1/simruns/", params={"datasets": batch.batch_id}).json()["results"]
    assert {r["state"] for r in runs} <= {"CANCELLED", "READY"}
    status = provider.batch_status(batch)
    assert status.done and status.cancelled and not status.failed
    assert provider.cancel(batch) == 0  # idempotent


def test_a_service_without_a_cancel_endpoint_says_so() -> None:
    body = {"id": "b1", "name": "n", "job_runs": [{"id": "j1", "name": "shapes"}]}
    with scripted_server() as (state, url):
        state.script("/api/batch/b1/", Reply(200, json.dumps(body).encode()))
        provider = InfinityProvider(url.rstrip("/"), SecretStr("t"))
        batch = BatchRef(batch_id="b1", name="n", generator="shapes", job_ids=["j1"])
        with pytest.raises(CancelNotSupportedError, match="cannot cancel batches"):
            provider.cancel(batch)
        with pytest.raises(NotFoundError):  # an unknown batch stays a NotFoundError
            provider.cancel(batch.model_copy(update={"batch_id": "b2"}))
        assert [c.method for c in state.calls("/api/batch/b1/cancel/")] == ["POST"]


def test_job_state_reads_cancelled_from_the_summary() -> None:
    from prefect_synthdata.providers.infinity import job_state

    assert job_state({"in_progress": False, "state": "cancelled"}) == JobState.CANCELLED
