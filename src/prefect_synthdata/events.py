"""Prefect events of a generation run, so automations and deployment triggers can chain stages.

Event names and their primary resource:

- `prefect-synthdata.batch.submitted`, `.completed`, `.failed`: the batch,
  `prefect-synthdata.batch.<batch id>` (labels: batch id, batch name, generator);
- `prefect-synthdata.dataset.published`: the dataset, `prefect-synthdata.dataset.<name>`
  (labels: URI, version, batch id), with the batch as a related resource.

A deployment trigger on `prefect-synthdata.dataset.published` can pass the URI on as a
parameter: `"{{ event.resource['prefect-synthdata.uri'] }}"`.

Example:
    >>> from prefect_synthdata.models import BatchRef
    >>> batch_resource(BatchRef(batch_id="b1", name="demo-1", generator="shapes", job_ids=[]))["prefect.resource.id"]
    'prefect-synthdata.batch.b1'
"""

from __future__ import annotations

from typing import Any

from prefect.events import Event, emit_event

from prefect_synthdata.dataset.manifest import PublishedDataset
from prefect_synthdata.models import BatchRef, BatchStatus

BATCH_SUBMITTED = "prefect-synthdata.batch.submitted"
BATCH_COMPLETED = "prefect-synthdata.batch.completed"
BATCH_FAILED = "prefect-synthdata.batch.failed"
DATASET_PUBLISHED = "prefect-synthdata.dataset.published"

URI_LABEL = "prefect-synthdata.uri"
BATCH_ID_LABEL = "prefect-synthdata.batch-id"
VERSION_LABEL = "prefect-synthdata.version"


def batch_resource(batch: BatchRef) -> dict[str, str]:
    """The resource a batch event is about."""
    return {
        "prefect.resource.id": f"prefect-synthdata.batch.{batch.batch_id}",
        "prefect.resource.name": batch.name,
        BATCH_ID_LABEL: batch.batch_id,
        "prefect-synthdata.generator": batch.generator,
    }


def dataset_resource(dataset: PublishedDataset) -> dict[str, str]:
    """The resource a dataset event is about: its name, with URI, version and batch id as labels.

    Example:
        >>> d = PublishedDataset(uri="/d/x/1", name="x", version="1", batch_id="b", generator="shapes",
        ...     num_images=1, num_annotations=2, categories=[], manifest_sha256="", content_sha256="")
        >>> dataset_resource(d)["prefect-synthdata.uri"]
        '/d/x/1'
    """
    return {
        "prefect.resource.id": f"prefect-synthdata.dataset.{dataset.name}",
        "prefect.resource.name": dataset.name,
        URI_LABEL: dataset.uri,
        VERSION_LABEL: dataset.version,
        BATCH_ID_LABEL: dataset.batch_id,
    }


def emit_batch_submitted(batch: BatchRef, adopted: bool) -> Event | None:
    """`prefect-synthdata.batch.submitted`; `adopted` says an earlier identical batch was reused."""
    payload = {"num_jobs": len(batch.job_ids), "adopted": adopted, "is_preview": batch.is_preview}
    return emit_event(BATCH_SUBMITTED, resource=batch_resource(batch), payload=payload)


def emit_batch_finished(batch: BatchRef, status: BatchStatus) -> Event | None:
    """`.completed` when every job succeeded, else `.failed` with the first errors."""
    payload: dict[str, Any] = {"counts": status.counts(), "num_jobs": len(status.jobs)}
    if status.failed:
        payload["errors"] = {j.job_id: j.error for j in status.failed[:10]}
        return emit_event(BATCH_FAILED, resource=batch_resource(batch), payload=payload)
    return emit_event(BATCH_COMPLETED, resource=batch_resource(batch), payload=payload)


def emit_batch_error(batch: BatchRef, error: BaseException) -> Event | None:
    """`.failed` for a batch whose wait ended in an error (deadline passed, service unreachable)."""
    payload = {"error": f"{type(error).__name__}: {error}"}
    return emit_event(BATCH_FAILED, resource=batch_resource(batch), payload=payload)


def emit_dataset_published(dataset: PublishedDataset) -> Event | None:
    """`prefect-synthdata.dataset.published`, related to the batch that made the dataset."""
    related = [
        {
            "prefect.resource.id": f"prefect-synthdata.batch.{dataset.batch_id}",
            "prefect.resource.role": "batch",
            BATCH_ID_LABEL: dataset.batch_id,
        }
    ]
    payload = dataset.model_dump(
        include={
            "uri",
            "version",
            "batch_id",
            "generator",
            "num_images",
            "num_annotations",
            "categories",
            "manifest_sha256",
        }
    )
    return emit_event(
        DATASET_PUBLISHED, resource=dataset_resource(dataset), related=related, payload=payload
    )
