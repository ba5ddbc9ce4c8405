"""Prefect flows: generate a batch, wait for it, download it, build and publish the dataset.

Example:
    >>> from prefect_synthdata.flows import GenerateRequest, generate_dataset
    >>> manifest = generate_dataset(GenerateRequest(num_jobs=2, dest="/tmp/ds"))  # doctest: +SKIP
    >>> manifest.uri  # doctest: +SKIP
    '/tmp/ds/synthetic-shapes/1f0c3b2a9d4e'
"""

from __future__ import annotations

from datetime import UTC, date

from prefect import flow, get_run_logger, runtime
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from prefect_synthdata import artifacts, batches
from prefect_synthdata.dataset.manifest import DatasetManifest
from prefect_synthdata.destinations import open_destination
from prefect_synthdata.exceptions import NotFoundError
from prefect_synthdata.request import GenerationSpec, PollSettings, ProviderChoice
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage import StoreOptions
from prefect_synthdata.tasks import (
    DatasetInfo,
    build_dataset,
    download_batch,
    publish_dataset,
    submit_batch,
    wait_for_batch,
    whole,
)


def _settings() -> SynthDataSettings:
    return SynthDataSettings()


class GenerateRequest(PollSettings, ProviderChoice, GenerationSpec):
    """Everything a generate-and-publish run needs; the Prefect UI renders it as a form."""

    dest: str = Field(
        default_factory=lambda: _settings().dest, description="Path, file:// or s3:// URI."
    )
    storage: StoreOptions = Field(
        default_factory=StoreOptions,
        description="How to reach an s3:// destination (endpoint, credentials...).",
    )
    shard_size: int = Field(
        default_factory=lambda: _settings().shard_size, ge=1, description="Jobs per download task."
    )
    seed_per_day: bool = Field(
        default=False,
        description="Add the run's scheduled date (YYYYMMDD, UTC) to seed: each nightly run renders new "
        "scenes, while a retry of the same night's run repeats them.",
    )

    def for_day(self, day: date) -> GenerateRequest:
        """The request as run on `day`: with `seed_per_day`, the seed moves with the date.

        Example:
            >>> GenerateRequest(seed=1, seed_per_day=True).for_day(date(2026, 1, 2)).seed
            20260103
        """
        if not self.seed_per_day:
            return self
        seed = self.seed + int(day.strftime("%Y%m%d"))
        return self.model_copy(update={"seed": seed, "seed_per_day": False})


#: Download shards run a few at a time: enough to overlap network waits, few enough that
#: thousands of small files are not written by dozens of threads at once.
DOWNLOAD_CONCURRENCY = 4


@flow(
    name="generate-dataset",
    log_prints=False,
    task_runner=ThreadPoolTaskRunner(max_workers=DOWNLOAD_CONCURRENCY),  # type: ignore[arg-type]
)
def generate_dataset(request: GenerateRequest) -> DatasetManifest:
    """Generate a synthetic dataset and publish it; returns where it is and what it holds.

    Bad input (unknown generator, bad parameters, unusable destination, bad name)
    fails here before any job is submitted. A re-run with the same request adopts
    the same batch, downloads nothing again and publishes nothing new.

    Args:
        request: What to generate, with which service, and where to publish it.
    """
    logger = get_run_logger()
    request = request.for_day(runtime.flow_run.scheduled_start_time.astimezone(UTC).date())
    request.check_names()
    open_destination(request.dest, request.storage).check_writable()
    provider_config = request.provider_config()
    provider = provider_config.create()
    batch_request = request.prepare(provider)
    version = request.dataset_version(batch_request)

    # Values holding every job or file go in `whole(...)`: Prefect does not walk them.
    batch = submit_batch(provider_config, whole(batch_request))
    try:
        status = wait_for_batch(provider_config, whole(batch), request.poll_policy())
    except NotFoundError:  # a cached batch the provider no longer has (e.g. its state was wiped)
        logger.warning("batch %s is gone from the provider; submitting again", batch.batch_id)
        batch = submit_batch.with_options(refresh_cache=True)(provider_config, whole(batch_request))
        status = wait_for_batch(provider_config, whole(batch), request.poll_policy())
    batches.raise_for_failures(status)

    work_dir = _settings().home / "work" / batch.name
    shards = [
        batch.job_ids[i : i + request.shard_size]
        for i in range(0, len(batch.job_ids), request.shard_size)
    ]
    futures = [
        download_batch.submit(provider_config, whole(batch), shard, work_dir / "jobs")
        for shard in shards
    ]
    job_dirs = [folder for future in futures for folder in future.result()]

    info = DatasetInfo(
        name=request.name, version=version, provider=provider.identity, formats=request.formats
    )
    manifest = build_dataset(
        whole(batch), whole(job_dirs), work_dir / "dataset", info, wait_for=futures
    )
    dataset = publish_dataset(request.dest, work_dir / "dataset", whole(manifest), request.storage)
    logger.info("dataset ready at %s", dataset.uri)
    artifacts.run_summary(dataset, provider.identity, len(batch.job_ids))
    return dataset
