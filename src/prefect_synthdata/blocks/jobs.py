"""`SynthDataJob` / `SynthDataJobRun`: a saved, configured generation job and one run of it.

The pair follows Prefect's `JobBlock`/`JobRun` interface (as prefect-dbt does for dbt
Cloud): `trigger()` submits the batch (adopting an identical one already submitted),
`wait_for_completion()` polls it to the end, `fetch_result()` downloads and assembles the
dataset and, given a destination, publishes it. Batch and dataset events are emitted as
in the flows, so automations see block-driven runs too.

Example:
    >>> import asyncio, tempfile
    >>> job = SynthDataJob(num_jobs=1, params={"width": 64, "height": 64}, name="demo")
    >>> async def main():
    ...     run = await job.trigger()
    ...     await run.wait_for_completion()
    ...     return await run.fetch_result(tempfile.mkdtemp())
    >>> asyncio.run(main()).num_images  # doctest: +SKIP
    1
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from prefect.blocks.abstract import JobBlock, JobRun
from pydantic import Field

from prefect_synthdata import batches, events
from prefect_synthdata.blocks.credentials import InfinityCredentials, ZpyCredentials
from prefect_synthdata.dataset.assemble import assemble_dataset
from prefect_synthdata.dataset.exports import add_exports
from prefect_synthdata.dataset.manifest import DatasetManifest
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.models import BatchRef, BatchRequest, BatchStatus
from prefect_synthdata.providers import Provider, ProviderConfig
from prefect_synthdata.request import GenerationSpec, PollSettings
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage import open_store
from prefect_synthdata.storage.publish import publish
from prefect_synthdata.tasks import published_dataset


class SynthDataJobRun(JobRun[DatasetManifest]):
    """One submitted batch of a `SynthDataJob`: wait for it, then fetch (and publish) its dataset."""

    def __init__(
        self, job: SynthDataJob, provider: Provider, request: BatchRequest, batch: BatchRef
    ) -> None:
        self.job = job
        self.provider = provider
        self.request = request
        self.batch = batch
        self.status: BatchStatus | None = None

    @property
    def batch_id(self) -> str:
        """The provider's id of the batch."""
        return self.batch.batch_id

    async def wait_for_completion(self) -> logging.Logger:
        """Poll until every job has finished; BatchFailedError if any failed.

        Emits `prefect-synthdata.batch.completed` or `.failed`. Returns the logger used,
        as Prefect's `JobRun` interface asks.
        """
        logger = self.logger
        policy = self.job.poll_policy()

        def on_change(status: BatchStatus) -> None:
            logger.info("batch %s: %s", self.batch_id, status.counts())

        try:
            status = await asyncio.to_thread(
                batches.poll_until_done, self.provider, self.batch, policy, on_change
            )
        except Exception as exc:
            events.emit_batch_error(self.batch, exc)
            raise
        self.status = status
        events.emit_batch_finished(self.batch, status)
        batches.raise_for_failures(status)
        return logger  # type: ignore[return-value]

    async def fetch_result(self, work_dir: str | Path | None = None) -> DatasetManifest:
        """Download every job, assemble the dataset and publish it to `job.dest` if set.

        Without a destination the result's `uri` is the assembled folder under `work_dir`
        (default: `$SYNTHDATA_HOME/work/<batch name>`). Call after `wait_for_completion()`.
        """
        if self.status is None or self.status.failed:
            raise ConfigurationError(
                "fetch_result() needs a batch that completed: await wait_for_completion() first"
            )
        root = (
            Path(work_dir)
            if work_dir is not None
            else SynthDataSettings().home / "work" / self.batch.name
        )
        return await asyncio.to_thread(self._fetch, root)

    def _fetch(self, root: Path) -> DatasetManifest:
        job_dirs = batches.download_jobs(
            self.provider, self.batch, self.batch.job_ids, root / "jobs"
        )
        manifest = assemble_dataset(
            [(folder.name, folder) for folder in job_dirs],
            root / "dataset",
            name=self.job.name,
            version=self.job.dataset_version(self.request),
            provider=self.provider.identity,
            generator=self.batch.generator,
            batch_id=self.batch.batch_id,
            is_preview=self.batch.is_preview,
        )
        manifest = add_exports(root / "dataset", manifest, self.job.formats)
        if self.job.dest is None:
            return published_dataset(manifest, str(root / "dataset"), 0)
        result = publish(open_store(self.job.dest), root / "dataset", manifest)
        dataset = published_dataset(manifest, result.uri, result.files_uploaded)
        events.emit_dataset_published(dataset)
        self.logger.info("published %s", result.uri)
        return dataset


class SynthDataJob(JobBlock[DatasetManifest], PollSettings, GenerationSpec):
    """A configured synthetic-data generation job: service, generator, parameters and destination.

    `trigger()` submits its batch and returns a `SynthDataJobRun`. Triggering twice with the
    same configuration adopts the batch already submitted instead of paying again.

    Example:
        Trigger a saved job, wait for it and get its (published) dataset:
        ```python
        import asyncio
        from prefect_synthdata.blocks import SynthDataJob

        job = SynthDataJob.load("BLOCK_NAME")

        async def main():
            run = await job.trigger()
            await run.wait_for_completion()
            return await run.fetch_result()

        print(asyncio.run(main()).uri)
        ```
    """

    _block_type_name = "SynthData Job"
    _block_type_slug = "synthdata-job"

    credentials: InfinityCredentials | ZpyCredentials | None = Field(
        default=None,
        description="Credentials of an HTTP provider; empty means the embedded local provider.",
    )
    dest: str | None = Field(
        default=None,
        description="Where fetch_result publishes (path or s3:// URI); empty: do not publish.",
    )

    def provider_config(self) -> ProviderConfig:
        """The provider this job runs on: its credentials' one, else the local provider."""
        return (
            self.credentials.provider_config() if self.credentials is not None else ProviderConfig()
        )

    async def trigger(self) -> SynthDataJobRun:
        """Validate and submit the batch (or adopt the identical one already submitted).

        Bad input (unknown generator, bad parameters, bad name or destination) raises
        before anything is submitted. Emits `prefect-synthdata.batch.submitted`.
        """
        return await asyncio.to_thread(self._submit)

    def _submit(self) -> SynthDataJobRun:
        self.check_names()
        if self.dest is not None:
            open_store(self.dest).check_writable()
        provider = self.provider_config().create()
        request = self.prepare(provider)
        batch, adopted = batches.submit_idempotent(provider, request)
        events.emit_batch_submitted(batch, adopted)
        self.logger.info(
            "%s batch %s (%d jobs)",
            "adopted" if adopted else "submitted",
            batch.batch_id,
            len(batch.job_ids),
        )
        return SynthDataJobRun(self, provider, request, batch)
