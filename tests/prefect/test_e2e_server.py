"""End to end against a real `prefect server start` on 127.0.0.1: serve the deployments of
`deployments/prefect.yaml`, trigger the generate deployment with custom parameters through
the API (as the UI's custom run does), see the dataset published and the train stage run
from the dataset-published event. `prefect deploy` registers the same deployments on a
process work pool, with their schedule, trigger and UI form schemas, and a worker runs one.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.client.schemas.objects import FlowRun

from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = ROOT / "deployments"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prefect server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server in a subprocess; yields the environment that points at it."""
    tmp = tmp_path_factory.mktemp("prefect-server")
    url = f"http://127.0.0.1:{_free_port()}/api"
    env = subprocess_env(
        PREFECT_HOME=str(tmp / "prefect-home"),
        PREFECT_API_URL=url,
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
        SYNTHDATA_HOME=str(tmp / "synthdata-home"),
        SYNTHDATA_DEST=str(tmp / "datasets"),
        SYNTHDATA_POLL_CAP_SECONDS="0.5",
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        PREFECT_WORKER_QUERY_SECONDS="1",
    )
    env.pop("PREFECT_API_KEY", None)
    log = tmp / "server.log"
    port = url.split(":")[2].split("/")[0]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                port,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, process, log)
        yield env
    finally:
        _stop(process)


async def _wait_for_run(client: PrefectClient, run_id: UUID, timeout: float) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        await asyncio.sleep(1)
    raise AssertionError(f"flow run {run_id} not finished after {timeout}s (state {run.state})")


async def _deployments(
    client: PrefectClient, expected: set[str], timeout: float
) -> dict[str, UUID]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {d.name: d.id for d in await client.read_deployments()}
        if expected <= set(found):
            return found
        await asyncio.sleep(1)
    raise AssertionError(f"deployments {expected - set(found)} not registered after {timeout}s")


async def _triggered_run(client: PrefectClient, deployment_id: UUID, timeout: float) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(),
        )
        if runs:
            return await _wait_for_run(client, runs[0].id, max(deadline - time.monotonic(), 1))
        await asyncio.sleep(1)
    raise AssertionError(f"no run of deployment {deployment_id} after {timeout}s")


def test_served_generate_run_publishes_and_triggers_train(
    server: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serving = subprocess.Popen(
            [sys.executable, str(DEPLOYMENTS / "serve.py")],
            cwd=ROOT,
            env=server,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        asyncio.run(_check_served_run(server, log))
    finally:
        _stop(serving)


async def _check_served_run(env: dict[str, str], log: Path) -> None:
    async with PrefectClient(api=env["PREFECT_API_URL"]) as client:
        found = await _deployments(
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
        finished = await _wait_for_run(client, run.id, 90)
        assert finished.state is not None and finished.state.is_completed(), log.read_text()[-4000:]

        versions = list((Path(env["SYNTHDATA_DEST"]) / "e2e-shapes").iterdir())
        published = [v for v in versions if (v / "_SUCCESS").is_file()]
        assert len(published) == 1, versions

        train = await _triggered_run(client, found["train"], 60)
        assert train.state is not None and train.state.is_completed(), log.read_text()[-4000:]
        assert train.parameters["dataset_uri"] == str(published[0])
        manifest = json.loads((published[0] / "manifest.json").read_text())
        artifacts = await client.read_artifacts()
        stats = [
            a for a in artifacts if a.key == "class-stats-e2e-shapes" and a.flow_run_id == train.id
        ]
        rows = json.loads(str(stats[0].data))
        assert sum(row["instances"] for row in rows) == manifest["num_annotations"] > 0
        assert {row["name"] for row in rows} == set(manifest["categories"])


def test_prefect_deploy_registers_the_yaml_and_a_worker_runs_it(
    server: dict[str, str], tmp_path: Path
) -> None:
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
        _stop(worker)


async def _check_worker_run(env: dict[str, str], log: Path) -> None:
    async with PrefectClient(api=env["PREFECT_API_URL"]) as client:
        preview = await client.read_deployment_by_name("preview-generator/preview")
        request = {"num_frames": 1, "params": {"width": 64, "height": 64}}
        run = await client.create_flow_run_from_deployment(
            preview.id, parameters={"request": request}
        )
        finished = await _wait_for_run(client, run.id, 90)
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
        assert train_form["holdout_fraction"]["default"] == 0.25
        assert [s.schedule.cron for s in deployments["nightly-refresh"].schedules] == ["0 2 * * *"]  # type: ignore[union-attr]
        owned = await client.read_resource_related_automations(
            f"prefect.deployment.{deployments['train'].id}"
        )
        assert [a.trigger.expect for a in owned] == [{"prefect-synthdata.dataset.published"}]  # type: ignore[union-attr]
