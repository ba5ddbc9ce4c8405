"""Events and artifacts of a generate run, read back from the (harness) Prefect API."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

from prefect_synthdata.events import BATCH_COMPLETED, BATCH_SUBMITTED, DATASET_PUBLISHED
from prefect_synthdata.flows import GenerateRequest, generate_dataset


async def _events(flow_run_id: UUID, expected: int, timeout: float = 30) -> list[Any]:
    """Our events related to the flow run, once `expected` of them have arrived."""
    event_filter = EventFilter(
        event=EventNameFilter(prefix=["prefect-synthdata."]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            page = await client.read_events(filter=event_filter, limit=50)
            if len(page.events) >= expected or time.monotonic() > deadline:
                return sorted(page.events, key=lambda e: e.occurred)
            await asyncio.sleep(0.5)


async def _recorded(flow_run_id: UUID) -> tuple[list[Any], list[Any], dict[str, Any]]:
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        deadline = time.monotonic() + 30
        while True:  # run logs reach the API in batches, a moment after the run ends
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
            if logs or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        return artifacts, logs, runs[0].parameters


def test_generate_run_emits_events_and_records_artifacts(tmp_path: Path) -> None:
    request = GenerateRequest(
        credentials="local",
        name="events-demo",
        num_jobs=3,
        params={"width": 64, "height": 64},
        dest=str(tmp_path / "ds"),
        poll_cap_seconds=0.2,
    )
    state = generate_dataset(request, return_state=True)
    dataset = state.result()
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None

    events = asyncio.run(_events(flow_run_id, expected=3))
    assert [e.event for e in events] == [BATCH_SUBMITTED, BATCH_COMPLETED, DATASET_PUBLISHED]
    submitted, completed, published = events
    assert submitted.resource.id == f"prefect-synthdata.batch.{dataset.batch_id}"
    assert submitted.payload == {"num_jobs": 3, "adopted": False, "is_preview": False}
    assert completed.payload["counts"] == {"succeeded": 3}
    assert published.resource.id == "prefect-synthdata.dataset.events-demo"
    assert published.resource["prefect-synthdata.uri"] == dataset.uri
    assert published.resource["prefect-synthdata.batch-id"] == dataset.batch_id
    assert published.resource["prefect-synthdata.version"] == dataset.version
    assert [r.id for r in published.related if r.role == "batch"] == [submitted.resource.id]

    artifacts, logs, parameters = asyncio.run(_recorded(flow_run_id))
    by_type: dict[str, list[Any]] = {}
    for artifact in artifacts:
        by_type.setdefault(artifact.type, []).append(artifact)
    assert by_type["progress"][0].data == 100.0
    (table,) = by_type["table"]
    rows = json.loads(table.data)
    assert [(r["index"], r["state"]) for r in rows] == [
        (0, "succeeded"),
        (1, "succeeded"),
        (2, "succeeded"),
    ]
    # keys name the dataset, not the batch: one history per dataset across runs
    assert {a.key for a in artifacts} == {
        "dataset-events-demo-progress",
        "dataset-events-demo-jobs",
        "dataset-events-demo",
        "summary-events-demo",
        "report-events-demo",
    }
    by_key = {a.key: a for a in by_type["markdown"]}
    # a local dataset: its path as text, no dead file:// link
    where = by_key["dataset-events-demo"].data
    assert f"`{dataset.uri}`" in where and "file://" not in where and "](" not in where
    summary = by_key["summary-events-demo"]
    assert f"| Images | {dataset.num_images} |" in summary.data and dataset.uri in summary.data
    report = by_key["report-events-demo"].data  # every published dataset gets its report
    assert report.startswith(f"# Dataset report: events-demo {dataset.version}")
    assert "![samples](data:image/png;base64," in report and "## Objects per class" in report

    assert logs and parameters["request"]["credentials"] == "local"
