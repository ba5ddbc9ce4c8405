"""End to end against a real `prefect server start` on 127.0.0.1: serve the deployments of
`deployments/prefect.yaml`, trigger the generate deployment with custom parameters through
the API (as the UI's custom run does), see the dataset published and the train stage run
from the dataset-published event. `prefect deploy` registers the same deployments on a
process work pool, with their schedule, trigger and UI form schemas, and a worker runs one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.client.schemas.objects import FlowRun

from tests.prefect.conftest import (
    DEPLOYMENTS,
    ROOT,
    deployments_named,
    serving_deployments,
    stop_process,
    wait_for_run,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


async def _triggered_run(client: PrefectClient, deployment_id: UUID, timeout: float) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(),
        )
        if runs:
            return await wait_for_run(client, runs[0].id, max(deadline - time.monotonic(), 1))
        await asyncio.sleep(1)
    raise AssertionError(f"no run of deployment {deployment_id} after {timeout}s")


def test_served_generate_run_publishes_and_triggers_train(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with serving_deployments(prefect_server, log):
        asyncio.run(_check_served_run(prefect_server, log))


async def _check_served_run(env: dict[str, str], log: Path) -> None:
    async with PrefectClient(api=env["PREFECT_API_URL"]) as client:
        found = await deployments_named(
            client, {"nightly-refresh", "generate", "preview", "sweep", "train"}, 60
        )
        nightly = await client.read_deployment(found["nightly-refresh"])
        assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]  # type: ignore[union-attr]

        request = {
            "name": "e2e-shapes",
            "num_jobs": 2,
            "params": {"width": 64, "height": 64},
            "seed": 7,
        }
        run = await client.create_flow_run_from_deployment(
            found["generate"], parameters={"request": request}
        )
        finished = await wait_for_run(client, run.id, 90)
        assert finished.state is not None and finished.state.is_completed(), log.read_text()[-4000:]

        versions = list((Path(env["SYNTHDATA_DEST"]) / "e2e-shapes").iterdir())
        published = [v for v in versions if (v / "_SUCCESS").is_file()]
        assert len(published) == 1, versions

        train = await _triggered_run(client, found["train"], 180)
        assert train.state is not None and train.state.is_completed(), log.read_text()[-4000:]
        assert train.parameters["dataset_uri"] == str(published[0])
        lineage = json.loads(
            (
                Path(env["SYNTHDATA_HOME"])
                / "models/e2e-shapes"
                / published[0].name
                / "lineage.json"
            ).read_text()
        )
        assert lineage["dataset_uri"] == str(published[0]) and lineage["steps"] == 300
        artifacts = await client.read_artifacts()
        (report,) = [
            a for a in artifacts if a.key == "train-e2e-shapes" and a.flow_run_id == train.id
        ]
        assert lineage["manifest_sha256"] in str(report.data)


def test_prefect_deploy_registers_the_yaml_and_a_worker_runs_it(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    server = prefect_server
    subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "create", "synthdata", "--type", "process"],
        env=server,
        check=True,
        capture_output=True,
        timeout=120,
    )
    deploy = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect",
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            str(DEPLOYMENTS / "prefect.yaml"),
        ],
        cwd=ROOT,
        env=server,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    asyncio.run(_check_registered(server))

    with open(tmp_path / "worker.log", "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "synthdata"],
            env=server,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        asyncio.run(_check_worker_run(server, tmp_path / "worker.log"))
    finally:
        stop_process(worker)


async def _check_worker_run(env: dict[str, str], log: Path) -> None:
    async with PrefectClient(api=env["PREFECT_API_URL"]) as client:
        preview = await client.read_deployment_by_name("preview-generator/preview")
        request = {"num_frames": 1, "params": {"width": 64, "height": 64}}
        run = await client.create_flow_run_from_deployment(
            preview.id, parameters={"request": request}
        )
        finished = await wait_for_run(client, run.id, 90)
        assert finished.state is not None and finished.state.is_completed(), log.read_text()[-4000:]
        keys = {a.key for a in await client.read_artifacts() if a.flow_run_id == run.id}
        assert "preview-shapes" in keys


async def _check_registered(env: dict[str, str]) -> None:
    async with PrefectClient(api=env["PREFECT_API_URL"]) as client:
        deployments = {
            d.name: d for d in await client.read_deployments() if d.work_pool_name == "synthdata"
        }
        assert set(deployments) == {"nightly-refresh", "generate", "preview", "sweep", "train"}
        assert (
            deployments["generate"].entrypoint
            == "prefect_synthdata.flows.generate:generate_dataset"
        )
        # the UI renders its forms from these schemas: defaults, bounds and choices
        form = deployments["generate"].parameter_openapi_schema["definitions"]["GenerateRequest"]
        assert (
            form["properties"]["num_jobs"]["minimum"],
            form["properties"]["num_jobs"]["maximum"],
        ) == (1, 100000)
        sweep = deployments["sweep"].parameter_openapi_schema["definitions"]["SweepRequest"]
        assert sweep["properties"]["mode"]["enum"] == ["grid", "zip"]
        train_form = deployments["train"].parameter_openapi_schema["properties"]
        assert (train_form["steps"]["default"], train_form["steps"]["maximum"]) == (300, 100000)
        assert [s.schedule.cron for s in deployments["nightly-refresh"].schedules] == ["0 2 * * *"]  # type: ignore[union-attr]
        owned = await client.read_resource_related_automations(
            f"prefect.deployment.{deployments['train'].id}"
        )
        assert [a.trigger.expect for a in owned] == [{"prefect-synthdata.dataset.published"}]  # type: ignore[union-attr]
