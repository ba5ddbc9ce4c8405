"""`SynthDataJob` / `SynthDataJobRun`: a saved generation run and one triggered run of it.

The pair follows Prefect's `JobBlock`/`JobRun` interface as prefect-dbt's
`DbtCloudJob`/`DbtCloudJobRun` do: the job holds a nested credentials block, the
generation spec, the destination with its storage options and the wait settings;
`trigger()` submits the batch (adopting an identical one already submitted) and
returns a `SynthDataJobRun`, whose `wait_for_completion()` waits for it and
`fetch_result()` downloads, builds and publishes the dataset. Each step is the same
step of `prefect_synthdata.pipeline` the flows run, events and artifacts included:
inside a flow its tasks belong to that flow run; outside one (a script) each step is
a flow run of its own (`synthdata-job-trigger`, `-wait`, `-fetch`), so that its
tasks, logs and artifacts show in the UI.

Example:
    >>> job = SynthDataJob(num_jobs=1, params={"width": 64, "height": 64}, name="demo")
    >>> job.credentials is None  # the environment decides; default: the local provider
    True
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from prefect import flow
from prefect.blocks.abstract import JobBlock, JobRun
from prefect.context import FlowRunContext
from pydantic import Field

from prefect_synthdata.blocks.credentials import ProviderChoice, resolve_provider
from prefect_synthdata.dataset.manifest import PublishedDataset
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.models import BatchRef, BatchStatus
from prefect_synthdata.pipeline import (
    PreparedRun,
    build_run,
    prepare_runs,
    publish_run,
    submit_run,
    task_runner,
    wait_for_run,
)
from prefect_synthdata.request import RunSpec
from prefect_synthdata.settings import SynthDataSettings

T = TypeVar("T")


def _in_a_flow_run(name: str, step: Callable[[], T]) -> T:
    """Run a pipeline step in the current flow run, else as a flow run of its own."""
    if FlowRunContext.get() is not None:
        return step()
    runner = task_runner()
    as_flow = flow(name=f"synthdata-job-{name}", log_prints=False, task_runner=runner)  # type: ignore[arg-type]
    return as_flow(step)()


class SynthDataJobRun(JobRun[PublishedDataset]):
    """One submitted batch of a `SynthDataJob`: wait for it, then fetch its published dataset."""

    def __init__(self, job: SynthDataJob, run: PreparedRun, batch: BatchRef) -> None:
        self.job = job
        self.run = run
        self.batch = batch
        self.status: BatchStatus | None = None

    @property
    def batch_id(self) -> str:
        """The provider's id of the batch."""
        return self.batch.batch_id

    async def wait_for_completion(self) -> logging.Logger:
        """Wait until every job has finished; BatchFailedError if any failed.

        A batch the provider no longer has is submitted again. Returns the logger used,
        as Prefect's `JobRun` interface asks.
        """
        self.batch, self.status = await asyncio.to_thread(
            _in_a_flow_run, "wait", lambda: wait_for_run(self.run, self.batch)
        )
        return self.logger  # type: ignore[return-value]

    async def fetch_result(self) -> PublishedDataset:
        """Download every job, build the dataset and publish it; call after `wait_for_completion()`."""
        if self.status is None:
            raise ConfigurationError(
                "fetch_result() needs a batch that completed: await wait_for_completion() first"
            )
        return await asyncio.to_thread(_in_a_flow_run, "fetch", self._fetch)

    def _fetch(self) -> PublishedDataset:
        dataset_dir, manifest = build_run(self.run, self.batch, self.batch.job_ids)
        return publish_run(self.run, dataset_dir, manifest)


class SynthDataJob(JobBlock[PublishedDataset], RunSpec):
    """A saved synthetic-data generation run: service, generator, parameters and destination.

    `trigger()` submits its batch and returns a `SynthDataJobRun`. Triggering twice with the
    same configuration adopts the batch already submitted instead of paying again.
    Empty fields take the `SYNTHDATA_*` settings of the process that triggers it.

    Example:
        Trigger a saved job, wait for it and get its published dataset:
        ```python
        import asyncio
        from prefect_synthdata.blocks import SynthDataJob

        async def main(job: SynthDataJob):
            run = await job.trigger()
            await run.wait_for_completion()
            return await run.fetch_result()

        if __name__ == "__main__":  # the render workers re-import this module
            job = SynthDataJob.load("BLOCK_NAME")
            print(asyncio.run(main(job)).uri)
        ```
    """

    _block_type_name = "SynthData Job"
    _block_type_slug = "synthdata-job"

    credentials: ProviderChoice = Field(
        default=None,
        description="The generation service: a SynthData Infinity or Zpy Credentials block, or "
        "'local' for the embedded provider. Empty: the environment (SYNTHDATA_CREDENTIALS_BLOCK, "
        "else SYNTHDATA_PROVIDER, else local).",
    )

    async def trigger(self) -> SynthDataJobRun:
        """Validate and submit the batch (or adopt the identical one already submitted).

        Bad input (unknown generator, bad parameters, bad name or destination) raises
        before anything is submitted. Emits `prefect-synthdata.batch.submitted`.
        """
        return await asyncio.to_thread(_in_a_flow_run, "trigger", self._submit)

    def _submit(self) -> SynthDataJobRun:
        settings = SynthDataSettings()
        provider = resolve_provider(self.credentials, None, settings)
        (run,) = prepare_runs([self.for_day(datetime.now(UTC).date())], provider, settings)
        return SynthDataJobRun(self, run, submit_run(run))
