"""A recognisable token, used by generate runs against the reference server, is found
nowhere the runs left a trace: logs (captured and in the Prefect API), artifacts,
events, task-run cache keys, flow-run parameters and states, persisted results, the
Prefect database, the dataset and the work dirs.

The token reaches the flow once through a saved `InfinityCredentials` block and once
through an unsaved one built in Python (as the CLI's `--token` does); a wrong
recognisable token fails the run, and its error does not echo the token either. (The local-provider case is in
tests/prefect/test_events_artifacts.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventOccurredFilter
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, get_current_settings, temporary_settings
from pydantic import SecretStr

from prefect_synthdata.blocks import InfinityCredentials
from prefect_synthdata.events import DATASET_PUBLISHED
from prefect_synthdata.exceptions import AuthenticationError
from prefect_synthdata.flows import GenerateRequest, generate_dataset
from tests.reference_server import ServerProcess, run_reference_server

pytestmark = pytest.mark.timeout(120)

TOKEN = "tok-SECRET-1234-recognisable"
WRONG = "tok-SECRET-9876-wrong-recognisable"


def _an_hour_ago() -> Any:
    """A datetime for event filters (typed `Any`: Prefect annotates its own DateTime)."""
    return datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_reference_server(tmp_path_factory.mktemp("secrets") / "srv", tokens=[TOKEN]) as srv:
        yield srv


def _request(tmp_path: Path, credentials: InfinityCredentials) -> GenerateRequest:
    return GenerateRequest(
        name="secrets",
        num_jobs=2,
        params={"width": 64, "height": 64},
        is_preview=True,
        dest=str(tmp_path / "datasets"),
        poll_initial_seconds=0.1,
        poll_cap_seconds=0.3,
        credentials=credentials,
    )


async def _recorded(flow_run_id: UUID) -> list[str]:
    """Everything the Prefect API holds about a flow run, as text."""
    await APILogHandler.aflush()
    async with get_client() as client:
        events = await _events(client, flow_run_id)  # waits until they have all arrived
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        task_runs = await client.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
        )
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    assert logs and artifacts and task_runs
    return (
        [runs[0].model_dump_json()]
        + [t.model_dump_json() for t in task_runs]
        + [log.model_dump_json() for log in logs]
        + [a.model_dump_json() for a in artifacts]
        + [e.model_dump_json() for e in events]
    )


async def _events(client: Any, flow_run_id: UUID, timeout: float = 30) -> list[Any]:
    """Events of (or related to) the flow run, once our dataset-published event has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        page = await client.read_events(
            filter=EventFilter(
                any_resource=EventAnyResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
                occurred=EventOccurredFilter(since=_an_hour_ago()),
            ),
            limit=50,
        )
        names = {e.event for e in page.events}
        if DATASET_PUBLISHED in names or time.monotonic() > deadline:
            assert DATASET_PUBLISHED in names
            return list(page.events)
        await asyncio.sleep(0.5)


def _files_holding(token: str, *roots: Path) -> list[Path]:
    return [
        path
        for root in roots
        if root.exists()
        for path in root.rglob("*")
        if path.is_file() and token.encode() in path.read_bytes()
    ]


def _database() -> Path:
    url = get_current_settings().server.database.connection_url
    assert url is not None
    return Path(url.get_secret_value().split(":///", 1)[1])


@pytest.mark.parametrize("via", ["saved credentials block", "unsaved credentials block"])
def test_token_appears_nowhere(
    via: str,
    server: ServerProcess,
    tmp_path: Path,
    synthdata_home: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    credentials = InfinityCredentials(url=server.url, token=SecretStr(TOKEN))
    if via == "saved credentials block":
        credentials.save("proof-secrets", overwrite=True)
        credentials = InfinityCredentials.load("proof-secrets")
    request = _request(tmp_path, credentials)
    results = tmp_path / "results"
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: results}):
        state = generate_dataset(request, return_state=True)
    dataset = state.result()
    assert dataset.num_images == 2
    # the cached submission was persisted here, under its cache key
    assert [p.name.startswith("prefect-synthdata-submit-") for p in results.iterdir()] == [True]

    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    recorded = asyncio.run(_recorded(flow_run_id))
    leaks = [text[:200] for text in [*recorded, caplog.text, repr(request)] if TOKEN in text]
    assert leaks == []
    database = _database()
    roots = [results, synthdata_home, tmp_path / "datasets"]
    assert _files_holding(TOKEN, *roots) == []
    assert [
        p for p in database.parent.glob(database.name + "*") if TOKEN.encode() in p.read_bytes()
    ] == []


def test_a_rejected_token_is_not_echoed(
    server: ServerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = InfinityCredentials(url=server.url, token=SecretStr(WRONG))
    state = generate_dataset(_request(tmp_path, credentials), return_state=True)
    assert state.is_failed()
    with pytest.raises(AuthenticationError) as info:
        state.result()
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None

    async def run_texts() -> list[str]:
        await APILogHandler.aflush()
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
        return [run.model_dump_json()] + [log.message for log in logs]

    texts = [str(info.value), repr(info.value), caplog.text, *asyncio.run(run_texts())]
    assert "token" in str(info.value).lower()
    assert [t[:200] for t in texts if WRONG in t] == []
