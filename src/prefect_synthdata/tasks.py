"""Prefect tasks: thin wrappers over `batches`, `dataset` and `storage` that add
retries, caching, logging, status listeners, events (`prefect_synthdata.events`) and
artifacts (`prefect_synthdata.artifacts`).

Example:
    >>> from prefect_synthdata.tasks import submit_batch, wait_for_batch  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import get_client, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import State
from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError
from prefect.concurrency.sync import concurrency
from prefect.context import TaskRunContext
from prefect.exceptions import ObjectAlreadyExists
from prefect.utilities.annotations import opaque
from pydantic import BaseModel

from prefect_synthdata import artifacts, assets, batches, events
from prefect_synthdata.dataset.assemble import assemble_dataset
from prefect_synthdata.dataset.exports import add_exports
from prefect_synthdata.dataset.manifest import Manifest, PublishedDataset
from prefect_synthdata.dataset.quality import QualityGate
from prefect_synthdata.dataset.splits import assign_splits
from prefect_synthdata.destinations import open_destination
from prefect_synthdata.exceptions import ConfigurationError, SynthDataError, VersionConflictError
from prefect_synthdata.models import BatchRef, BatchRequest, BatchStatus
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.storage import ObjectStore, StoreOptions
from prefect_synthdata.storage.publish import publish

#: Extra listeners of batch status changes in this process (the CLI's progress bar).
STATUS_LISTENERS: list[batches.StatusListener] = []

T = TypeVar("T")


def opaque_input(value: T) -> T:
    """Prefect's `opaque` for a task argument that holds every job or file (job ids, a manifest).

    Prefect then records which task produced it (the graph keeps its edge) without
    walking it element by element, which it otherwise does twice per task run: seconds
    per task at 10,000 jobs. Typed as the value itself, so task calls still type-check.

    Example:
        >>> opaque_input([1, 2, 3]).unwrap()
        [1, 2, 3]
    """
    return cast(T, opaque(value))


def _submit_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Cache on the request key alone: it names provider, generator and jobs, never credentials."""
    request: BatchRequest = parameters["request"]
    return f"prefect-synthdata-submit-{request.key}"


def _retry_transient(task: Any, task_run: Any, state: State) -> bool:
    """Retry only failures that may pass: errors that say they are `retryable` (not those
    whose retry budget is already spent) and local I/O errors."""
    error = state.result(raise_on_failure=False)
    if isinstance(error, SynthDataError):
        return error.retryable
    return isinstance(error, OSError)


#: Task options of steps a passing failure may stop: three retries, backing off.
RETRY_TRANSIENT: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 5, 15],
    "retry_condition_fn": _retry_transient,
}

#: Submit leases are spread over this many Prefect global concurrency limits (limit 1 each)
#: by request key: a bounded set of limits, and unrelated requests rarely wait on each other.
SUBMIT_LEASE_BUCKETS = 256


@contextmanager
def one_submitter(request_key: str) -> Iterator[None]:
    """Hold the Prefect concurrency lease of this request key while the block runs (renewed
    while held; a killed holder's lease lapses after 60 s, the server's minimum). Not
    granted within 120 s (a lease that never lapses), the block runs without it."""
    name = f"prefect-synthdata-submit-{int(request_key[:8], 16) % SUBMIT_LEASE_BUCKETS:03d}"
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    try:
        with concurrency(name, occupy=1, timeout_seconds=120, lease_duration=60, strict=True):
            yield
            return
    except AcquireConcurrencySlotTimeoutError:
        # a lease no one releases (its holder was killed and the API does not expire it)
        get_run_logger().warning("submit lease %s not granted in 120 s; submitting without", name)
    yield


@task(
    name="submit_batch",
    cache_key_fn=_submit_cache_key,
    persist_result=True,
    **RETRY_TRANSIENT,
)
def submit_batch(provider: ProviderConfig, request: BatchRequest) -> BatchRef:
    """Submit a batch once per logical request: adopt an existing one with the same name.

    For HTTP services (which cannot deduplicate) find-or-submit runs under
    `one_submitter`, so concurrent runs of one request on one Prefect API pay for one
    batch; the local job service keeps batch names unique itself."""
    with one_submitter(request.key) if provider.kind != "local" else nullcontext():
        batch, adopted = batches.submit_idempotent(provider.create(), request)
    verb = "adopted existing" if adopted else "submitted"
    get_run_logger().info(
        "%s batch %s (%d jobs, name %s)", verb, batch.batch_id, len(batch.job_ids), batch.name
    )
    events.emit_batch_submitted(batch, adopted)
    return batch


@task(
    name="render_again",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def render_again(provider: ProviderConfig, batch: BatchRef, request: BatchRequest) -> int:
    """Queue the adopted batch's failed or result-less jobs again, in the same batch."""
    queued = provider.create().render_again(batch, request)
    if queued:
        get_run_logger().info(
            "batch %s: %d failed or result-less job(s) queued again", batch.batch_id, queued
        )
    return queued


@task(name="wait_for_batch", cache_policy=NO_CACHE)
def wait_for_batch(
    provider: ProviderConfig, batch: BatchRef, policy: batches.PollPolicy
) -> BatchStatus:
    """Poll the batch-level status until every job is finished; logs only changes.

    Keeps a progress artifact up to date, records a table of the jobs' outcomes and
    emits `prefect-synthdata.batch.completed` or `.failed`.
    """
    logger = get_run_logger()
    progress = artifacts.BatchProgress(batch)

    def on_change(status: BatchStatus) -> None:
        logger.info("batch %s: %s", batch.batch_id, status.counts())
        progress(status)
        for listener in STATUS_LISTENERS:
            listener(status)

    try:
        status = batches.poll_until_done(provider.create(), batch, policy, on_change)
    except Exception as exc:
        events.emit_batch_error(batch, exc)
        raise
    artifacts.jobs_table(batch, status)
    events.emit_batch_finished(batch, status)
    return status


@task(
    name="download_batch",
    cache_policy=NO_CACHE,
    **RETRY_TRANSIENT,
)
def download_batch(
    provider: ProviderConfig, batch: BatchRef, job_ids: list[str], work_dir: Path
) -> list[Path]:
    """Download one shard of a batch's jobs; jobs already downloaded are skipped."""
    folders = batches.download_jobs(provider.create(), batch, job_ids, work_dir)
    get_run_logger().info("shard of %d jobs ready under %s", len(folders), work_dir)
    return folders


class DatasetInfo(BaseModel):
    """Names a dataset gets when it is assembled, its splits and the gate it must pass."""

    name: str
    version: str
    provider: str
    formats: list[str] = ["coco"]
    splits: dict[str, float] = {}
    seed: int = 0
    quality: QualityGate | None = None


@task(name="build_dataset", cache_policy=NO_CACHE)
def build_dataset(
    batch: BatchRef, job_dirs: list[Path], out_dir: Path, info: DatasetInfo
) -> Manifest:
    """Assemble job folders into the canonical layout with a merged COCO file and manifest."""
    manifest = assemble_dataset(
        [(folder.name, folder) for folder in job_dirs],
        out_dir,
        name=info.name,
        version=info.version,
        provider=info.provider,
        generator=batch.generator,
        batch_id=batch.batch_id,
        is_preview=batch.is_preview,
        quality=info.quality,
        job_splits=assign_splits(len(job_dirs), info.splits, info.name, info.seed),
    )
    manifest = add_exports(out_dir, manifest, info.formats)
    get_run_logger().info(
        "assembled %d images, %d annotations in %s",
        manifest.num_images,
        manifest.num_annotations,
        out_dir,
    )
    return manifest


def _browser_url(store: ObjectStore, uri: str) -> str | None:
    """An http(s) URL of the dataset a browser can open (S3 stores only)."""
    client = getattr(store, "client", None)  # S3Store's boto3 client
    if client is None:
        return None
    return artifacts.dataset_url(uri, client.meta.endpoint_url, client.meta.region_name)


def _retry_publish(task: Any, task_run: Any, state: State) -> bool:
    """Publishing is idempotent: retry anything but a bad destination or a version conflict."""
    return not isinstance(
        state.result(raise_on_failure=False), ConfigurationError | VersionConflictError
    )


@task(
    name="publish_dataset",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_retry_publish,
    cache_policy=NO_CACHE,
)
def publish_dataset(
    dest: str, folder: Path, manifest: Manifest, storage: StoreOptions | None = None
) -> PublishedDataset:
    """Publish data, then `manifest.json`, then `_SUCCESS`; identical content is a no-op.

    Emits `prefect-synthdata.dataset.published`, records the version as a materialized
    Prefect asset (its URI is the key) and records as artifacts a link to the
    dataset, a summary of the run and a report of the dataset (samples, class counts,
    histograms).
    """
    store = open_destination(dest, storage)
    result = publish(store, folder, manifest)
    get_run_logger().info(
        "published %s (%d files written, %d already there)",
        result.uri,
        result.files_uploaded,
        result.files_skipped,
    )
    dataset = PublishedDataset.from_manifest(manifest, result.uri, result.files_uploaded)
    artifacts.dataset_link(dataset, _browser_url(store, result.uri))
    artifacts.run_summary(dataset, manifest.provider, manifest.num_jobs)
    artifacts.dataset_report(dataset, folder)
    events.emit_dataset_published(dataset)
    published = assets.asset(dataset.uri, f"{dataset.name} {dataset.version}", "dataset version")
    if published is not None:
        assets.record_materialization(
            published, {"manifest_sha256": dataset.manifest_sha256, "images": dataset.num_images}
        )
    return dataset
