"""Cancelling a running generate flow run through the Prefect API cancels its batch.

A real `prefect server start`, the generate flow served from its own process (a runner),
and the reference server as the rendering service with a frame quota. Cancelling the run
through the API (as the UI's Cancel button does) makes the runner stop the flow process
and run the flow's `on_cancellation` hook, which cancels the batch on the service: its
render process is stopped within seconds, the jobs are recorded cancelled and their frames
credited back. A second run of the same request submits the batch again and publishes.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.states import Cancelling

from tests.prefect.conftest import deployments_named, serving_deployments, wait_for_run
from tests.reference_server import ServerProcess, run_reference_server
from tests.server.conftest import Api, used_frames, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TOKEN = "cancel-e2e"
#: Frames per job: about 10 s of rendering each on an idle core, so the cancel (a few
#: seconds after submission) always finds jobs still rendering.
FRAMES = 600
QUOTA = 10 * 4 * FRAMES
REQUEST = {
    "name": "cancel-me",
    "num_jobs": 4,
    "params": {"width": 512, "height": 512, "frames": FRAMES},
}


def rendering_pids(data_dir: Path) -> set[int]:
    """Render processes of the service at work right now (their scratch folders name them)."""
    folders = (data_dir / "engine" / "results").glob("*.partial-*")
    return {int(f.name.rsplit("-", 1)[1]) for f in folders}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def test_cancelling_a_flow_run_cancels_its_batch(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    with run_reference_server(tmp_path / "srv", tokens=[TOKEN], quota=QUOTA) as service:
        env = {
            **prefect_server,
            "SYNTHDATA_PROVIDER": "infinity",
            "SYNTHDATA_PROVIDER_URL": service.url,
            "SYNTHDATA_TOKEN": TOKEN,
            "SYNTHDATA_DEST": str(tmp_path / "datasets"),
        }
        log = tmp_path / "serve.log"
        with serving_deployments(env, log):
            asyncio.run(_cancel_then_rerun(prefect_server["PREFECT_API_URL"], service, log))


async def _cancel_then_rerun(api_url: str, service: ServerProcess, log: Path) -> None:
    api = Api(service, TOKEN)
    async with PrefectClient(api=api_url) as client:
        deployment = (await deployments_named(client, {"generate"}, 90))["generate"]
        run = await client.create_flow_run_from_deployment(
            deployment, parameters={"request": REQUEST}
        )
        renderers = wait_for(lambda: rendering_pids(service.data_dir), timeout=120)
        batch_id = api.get("api/batch/").json()[0]["id"]

        await client.set_flow_run_state(run.id, Cancelling(), force=True)
        started = time.monotonic()
        cancelled = await wait_for_run(client, run.id, 60)
        assert cancelled.state is not None and cancelled.state.is_cancelled(), log.read_text()[
            -4000:
        ]
        wait_for(lambda: not any(alive(pid) for pid in renderers), timeout=10)
        summary = wait_for(lambda: _final_summary(api, batch_id), timeout=10)
        assert time.monotonic() - started < 30, "cancel took too long"
        states = [job["state"] for job in summary]
        assert "cancelled" in states and set(states) <= {"cancelled", "succeeded"}
        rendered = FRAMES * states.count("succeeded")
        assert used_frames(api, QUOTA) == rendered  # the cancelled jobs' frames were credited
        assert await _logged(client, run.id, f"cancelled batch {batch_id}"), log.read_text()[-4000:]

        rerun = await client.create_flow_run_from_deployment(
            deployment, parameters={"request": REQUEST}
        )
        finished = await wait_for_run(client, rerun.id, 180)
        assert finished.state is not None and finished.state.is_completed(), log.read_text()[-4000:]
        batches = api.get("api/batch/").json()
        assert [b["cancelled"] for b in batches] == [True, False]  # a new batch, cancelled one kept
        published = Path(service.data_dir.parent / "datasets" / "cancel-me")
        assert [v for v in published.iterdir() if (v / "_SUCCESS").is_file()]


def _final_summary(api: Api, batch_id: str) -> list[dict[str, object]] | None:
    runs = api.get(f"api/batch/{batch_id}/summary/").json()["job_runs"]
    return None if any(r["in_progress"] for r in runs) else runs


async def _logged(client: PrefectClient, run_id: UUID, text: str, timeout: float = 20) -> bool:
    """Whether the flow run's logs in the Prefect API say `text` (logs arrive in batches)."""
    only_run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in entry.message for entry in await client.read_logs(only_run, limit=200)):
            return True
        await asyncio.sleep(1)
    return False
