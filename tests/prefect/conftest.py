"""A real `prefect server start` on 127.0.0.1 and the deployments of deployments/ served on it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun

from tests.conftest import subprocess_env
from tests.reference_server import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = ROOT / "deployments"


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child process, killing it if it does not end within 20 s."""
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


@contextmanager
def running_prefect_server(tmp: Path, **extra_env: str) -> Iterator[dict[str, str]]:
    """A real Prefect server in a subprocess; yields the environment that points at it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
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
        OMP_NUM_THREADS="1",  # the train stage's torch: one thread beats two on a shared machine
        **extra_env,
    )
    env.pop("PREFECT_API_KEY", None)
    log = tmp / "server.log"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_healthy(url, process, log)
        yield env
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server in a subprocess; yields the environment that points at it."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server")) as env:
        yield env


@contextmanager
def serving_deployments(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python deployments/serve.py` against the server of `env`, stopped on exit."""
    with open(log, "wb") as out:
        serving = subprocess.Popen(
            [sys.executable, str(DEPLOYMENTS / "serve.py")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield serving
    finally:
        stop_process(serving)


async def wait_for_run(client: PrefectClient, run_id: UUID, timeout: float) -> FlowRun:
    """The flow run once it is in a final state; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        await asyncio.sleep(1)
    raise AssertionError(f"flow run {run_id} not finished after {timeout}s (state {run.state})")


async def deployments_named(
    client: PrefectClient, expected: set[str], timeout: float
) -> dict[str, UUID]:
    """Deployment ids by name, once every name in `expected` is registered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {d.name: d.id for d in await client.read_deployments()}
        if expected <= set(found):
            return found
        await asyncio.sleep(1)
    raise AssertionError(f"deployments {expected - set(found)} not registered after {timeout}s")
