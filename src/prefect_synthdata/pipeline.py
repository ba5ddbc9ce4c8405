"""The one pipeline of a generation run, composed of the Prefect tasks in `tasks.py`:

    prepare -> submit (idempotent) -> wait (a batch gone from the provider is submitted
    again) -> download shards -> build -> publish

Every entry point runs it: the generate flow (`run_pipeline`), the preview flow (a
preview run that publishes nothing), the sweep flow (many prepared runs, all submitted
before any is awaited), the `SynthDataJob` block (`trigger` = prepare + submit,
`wait_for_completion` = wait, `fetch_result` = download + build + publish), the CLI's
`generate` and `flows/generate_and_ingest.py` (both through the generate flow).

The steps are task runs of the flow run that calls them (a block used outside a flow
runs each of its steps as a flow run of its own, see `blocks/jobs.py`); the download
shards run on that flow's task runner, `DOWNLOAD_CONCURRENCY` at a time.

Example (inside a flow, as the generate flow does):
    >>> from prefect import flow
    >>> @flow(task_runner=task_runner())
    ... def my_dataset() -> PublishedDataset:
    ...     settings = SynthDataSettings()
    ...     return run_pipeline(RunSpec(num_jobs=2), ProviderConfig().with_dirs(settings), settings)
    >>> my_dataset().uri  # doctest: +SKIP
    './datasets/synthetic-shapes/1f0c3b2a9d4e'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.exceptions import MissingContextError
from prefect.logging.loggers import get_logger
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_synthdata import batches
from prefect_synthdata.dataset.manifest import Manifest, PublishedDataset
from prefect_synthdata.destinations import open_destination
from prefect_synthdata.exceptions import BatchCancelledError, NotFoundError
from prefect_synthdata.models import BatchRef, BatchRequest, BatchStatus
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.request import RunSpec
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.tasks import (
    DatasetInfo,
    build_dataset,
    download_batch,
    opaque_input,
    publish_dataset,
    render_again,
    submit_batch,
    wait_for_batch,
)

#: Download shards run a few at a time: enough to overlap network waits, few enough that
#: thousands of small files are not written by dozens of threads at once.
DOWNLOAD_CONCURRENCY = 4


@dataclass(frozen=True)
class PreparedRun:
    """A run checked and keyed before anything is paid for: every value the later steps need."""

    spec: RunSpec  # with the settings' defaults applied
    provider: ProviderConfig
    provider_identity: str
    request: BatchRequest
    work_dir: Path
    publish: bool = True  # a run that publishes passes the quality gate first

    @property
    def version(self) -> str:
        """The dataset version this run publishes."""
        return self.spec.dataset_version(self.request)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run logger inside a flow or task run, else the package's logger."""
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("prefect_synthdata")


def prepare_runs(
    specs: list[RunSpec],
    provider: ProviderConfig,
    settings: SynthDataSettings,
    publish: bool = True,
) -> list[PreparedRun]:
    """Check and key every run before any is submitted: names, destinations, parameters.

    Each distinct destination is checked once (`check_writable`: a probe write on S3)
    when the runs will publish. Raises the first problem found; nothing is submitted.
    """
    specs = [spec.with_defaults(settings) for spec in specs]
    for spec in specs:
        spec.check_names()
    if publish:
        checked: set[str] = set()
        for spec in specs:
            assert spec.dest is not None
            key = spec.dest + spec.storage.model_dump_json()
            if key not in checked:
                open_destination(spec.dest, spec.storage).check_writable()
                checked.add(key)
    service = provider.create()
    prepared = []
    for spec in specs:
        request = spec.prepare(service)
        work_dir = settings.home / "work" / request.name
        prepared.append(PreparedRun(spec, provider, service.identity, request, work_dir, publish))
    return prepared


def submit_run(run: PreparedRun) -> BatchRef:
    """Submit the run's batch, or adopt the one already submitted for the same request."""
    return submit_batch(run.provider, opaque_input(run.request))


def wait_for_run(
    run: PreparedRun, batch: BatchRef, allow_failures: bool = False
) -> tuple[BatchRef, BatchStatus]:
    """Wait until every job of the batch has finished; returns the batch and its final status.

    This is the one place where the batch is known while it renders. Jobs an earlier
    run left failed or without a result are queued again first (`render_again`). A batch the
    provider no longer has (its state was wiped under a cached submission), or that an
    earlier run cancelled, is submitted again once; a batch cancelled while this run
    waits ends it (BatchCancelledError). BatchFailedError if a job failed, unless
    `allow_failures`.
    """
    policy = run.spec.poll_policy()
    try:
        render_again(run.provider, opaque_input(batch), opaque_input(run.request))
        status = wait_for_batch(run.provider, opaque_input(batch), policy)
    except (NotFoundError, BatchCancelledError) as exc:
        if isinstance(exc, BatchCancelledError) and not exc.before_waiting:
            raise
        _logger().warning("batch %s: %s; submitting again", batch.batch_id, exc)
        batch = submit_batch.with_options(refresh_cache=True)(
            run.provider, opaque_input(run.request)
        )
        status = wait_for_batch(run.provider, opaque_input(batch), policy)
    if not allow_failures:
        batches.raise_for_failures(status)
    return batch, status


def task_runner() -> ThreadPoolTaskRunner[Any]:
    """The task runner of the pipeline's flows: download shards run a few at a time."""
    return ThreadPoolTaskRunner(max_workers=DOWNLOAD_CONCURRENCY)


def build_run(run: PreparedRun, batch: BatchRef, job_ids: list[str]) -> tuple[Path, Manifest]:
    """Download the jobs in shards (a few at a time) and assemble the dataset folder.

    Returns the assembled folder and its manifest: the one place where the built dataset
    exists before it is published (exports and quality checks plug in here).
    """
    size = run.spec.shard_size
    assert size is not None
    jobs_dir, dataset_dir = run.work_dir / "jobs", run.work_dir / "dataset"
    futures = [
        download_batch.submit(run.provider, opaque_input(batch), job_ids[i : i + size], jobs_dir)
        for i in range(0, len(job_ids), size)
    ]
    job_dirs = [folder for future in futures for folder in future.result()]
    info = DatasetInfo(
        name=run.spec.name,
        version=run.version,
        provider=run.provider_identity,
        formats=run.spec.formats,
        splits=run.spec.splits,
        seed=run.spec.seed,
        quality=run.spec.quality if run.publish else None,
    )
    manifest = build_dataset(
        opaque_input(batch), opaque_input(job_dirs), dataset_dir, info, wait_for=futures
    )
    return dataset_dir, manifest


def publish_run(run: PreparedRun, dataset_dir: Path, manifest: Manifest) -> PublishedDataset:
    """Publish the assembled dataset to the run's destination."""
    assert run.spec.dest is not None
    dataset = publish_dataset(run.spec.dest, dataset_dir, opaque_input(manifest), run.spec.storage)
    _logger().info("dataset ready at %s", dataset.uri)
    return dataset


def finish_run(run: PreparedRun, batch: BatchRef) -> PublishedDataset:
    """Wait for a submitted run, then download, build and publish its dataset."""
    batch, _ = wait_for_run(run, batch)
    dataset_dir, manifest = build_run(run, batch, batch.job_ids)
    return publish_run(run, dataset_dir, manifest)


def run_pipeline(
    spec: RunSpec, provider: ProviderConfig, settings: SynthDataSettings
) -> PublishedDataset:
    """Generate and publish one dataset: every step of the pipeline, in order."""
    (run,) = prepare_runs([spec], provider, settings)
    return finish_run(run, submit_run(run))
