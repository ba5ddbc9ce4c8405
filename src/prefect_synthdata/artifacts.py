"""Prefect artifacts of a generation run: a progress bar while waiting, a table of jobs,
where the published dataset is and a markdown summary.

Every key is derived from the dataset's name (lowercase letters, digits and dashes, as
the Artifacts page requires), never from a batch id, so successive runs of one dataset
form one artifact history per kind: `dataset-<name>-progress`, `dataset-<name>-jobs`,
`dataset-<name>` and `summary-<name>`. Nothing here ever holds a credential.

Example:
    >>> artifact_key("dataset", "Synthetic_Shapes v2")
    'dataset-synthetic-shapes-v2'
    >>> dataset_url("s3://bucket/cv/demo/v1", "http://127.0.0.1:9000", None)
    'http://127.0.0.1:9000/bucket/cv/demo/v1/manifest.json'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from prefect_synthdata.dataset.manifest import MANIFEST, PublishedDataset
from prefect_synthdata.dataset.report import report_markdown
from prefect_synthdata.models import BatchRef, BatchStatus, batch_label

MAX_TABLE_ROWS = 1000


def call_sync(function: Callable[..., Any], *args: Any, **kwargs: Any) -> UUID:
    """Call one of Prefect's artifact functions synchronously, even from async code.

    They dispatch on the caller's context and would return a coroutine there.
    """
    return cast(UUID, function(*args, _sync=True, **kwargs))


def artifact_key(*parts: str) -> str:
    """A valid artifact key from free-form parts."""
    text = "-".join(parts).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:200]


class BatchProgress:
    """A progress artifact for one batch, created on the first status and updated on changes.

    Use it as a status listener: `poll_until_done(..., on_change=BatchProgress(batch))`.
    """

    def __init__(self, batch: BatchRef) -> None:
        self.batch = batch
        self.artifact_id: UUID | None = None

    def __call__(self, status: BatchStatus) -> None:
        total = max(len(status.jobs), 1)
        percent = 100.0 * (len(status.jobs) - status.remaining) / total
        description = f"Batch `{self.batch.name}`: {len(status.jobs) - status.remaining}/{len(status.jobs)} jobs finished"
        if self.artifact_id is None:
            self.artifact_id = call_sync(
                create_progress_artifact,
                percent,
                key=artifact_key("dataset", batch_label(self.batch.name), "progress"),
                description=description,
            )
        else:
            call_sync(update_progress_artifact, self.artifact_id, percent, description=description)


def jobs_table(batch: BatchRef, status: BatchStatus) -> UUID:
    """A table artifact with one row per job: index, id, state and error (first 1,000 jobs)."""
    rows = [
        {"index": index, "job_id": job.job_id, "state": job.state.value, "error": job.error or ""}
        for index, job in enumerate(status.jobs[:MAX_TABLE_ROWS])
    ]
    shown = (
        ""
        if len(status.jobs) <= MAX_TABLE_ROWS
        else f" (first {MAX_TABLE_ROWS} of {len(status.jobs)})"
    )
    return call_sync(
        create_table_artifact,
        rows,
        key=artifact_key("dataset", batch_label(batch.name), "jobs"),
        description=f"Jobs of batch `{batch.name}`{shown}: {status.counts()}",
    )


def dataset_url(uri: str, endpoint_url: str | None, region: str | None) -> str | None:
    """An http(s) URL of an S3 dataset's `manifest.json` that a browser can open; None for a path.

    With a custom endpoint (MinIO, moto...) the URL is path-style on that endpoint; on AWS
    it is the bucket's virtual-hosted address in its region.
    """
    if not uri.startswith("s3://"):
        return None
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    key = quote(f"{prefix}/{MANIFEST}" if prefix else MANIFEST)
    if endpoint_url and "amazonaws.com" not in endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{bucket}/{key}"
    return f"https://{bucket}.s3.{region or 'us-east-1'}.amazonaws.com/{key}"


def dataset_link(dataset: PublishedDataset, url: str | None) -> UUID:
    """Where the published dataset is: a link artifact to `url` (http(s)) with the URI as
    text, or for a local folder a markdown artifact with its path (no dead `file://` link)."""
    key = artifact_key("dataset", dataset.name)
    text = f"Published dataset `{dataset.name}` version `{dataset.version}` at `{dataset.uri}`"
    if url is None:
        return call_sync(create_markdown_artifact, text + "\n", key=key, description=text)
    return call_sync(
        create_link_artifact,
        url,
        link_text=f"{dataset.name} {dataset.version}: {MANIFEST}",
        key=key,
        description=text,
    )


def dataset_report(dataset: PublishedDataset, folder: Path) -> UUID:
    """A markdown artifact showing the published dataset: samples, class counts, histograms."""
    return call_sync(
        create_markdown_artifact,
        report_markdown(folder, f"{dataset.name} {dataset.version}"),
        key=artifact_key("report", dataset.name),
        description=f"Report of dataset `{dataset.name}` version `{dataset.version}`",
    )


def summary_markdown(dataset: PublishedDataset, provider: str, num_jobs: int) -> str:
    """The markdown of a run summary.

    Example:
        >>> d = PublishedDataset(uri="/d/x/1", name="x", version="1", batch_id="b", generator="shapes",
        ...     num_images=4, num_annotations=9, categories=["circle"], manifest_sha256="ab", content_sha256="cd")
        >>> "| Images | 4 |" in summary_markdown(d, "local", 4)
        True
    """
    rows = [
        ("Dataset", f"`{dataset.name}` version `{dataset.version}`"),
        ("Location", f"`{dataset.uri}`"),
        ("Provider", f"`{provider}`"),
        ("Generator", f"`{dataset.generator}`"),
        ("Batch", f"`{dataset.batch_id}` ({num_jobs} jobs)"),
        ("Images", str(dataset.num_images)),
        ("Annotations", str(dataset.num_annotations)),
        ("Categories", ", ".join(dataset.categories) or "-"),
        (
            "Files written",
            f"{dataset.files_uploaded} (0 means identical content was already published)",
        ),
        ("Manifest sha256", f"`{dataset.manifest_sha256}`"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"# Synthetic dataset `{dataset.name}`\n\n| | |\n|---|---|\n{table}\n"


def run_summary(dataset: PublishedDataset, provider: str, num_jobs: int) -> UUID:
    """A markdown artifact summarising a finished generate-and-publish run."""
    return call_sync(
        create_markdown_artifact,
        summary_markdown(dataset, provider, num_jobs),
        key=artifact_key("summary", dataset.name),
        description=f"Run summary of dataset `{dataset.name}`",
    )
