"""Prefect flows: generate a batch, wait for it, download it, build and publish the dataset.

Example:
    >>> from prefect_synthdata.flows import GenerateRequest, generate_dataset
    >>> manifest = generate_dataset(GenerateRequest(num_jobs=2, dest="/tmp/ds"))  # doctest: +SKIP
    >>> manifest.uri  # doctest: +SKIP
    '/tmp/ds/synthetic-shapes/1f0c3b2a9d4e'
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from prefect_synthdata import batches
from prefect_synthdata.dataset.manifest import DatasetManifest
from prefect_synthdata.destinations import open_destination
from prefect_synthdata.exceptions import BatchFailedError, NotFoundError
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage import StoreOptions
from prefect_synthdata.storage.publish import check_segment
from prefect_synthdata.tasks import (
    DatasetInfo,
    build_dataset,
    download_batch,
    publish_dataset,
    submit_batch,
    wait_for_batch,
)


def _settings() -> SynthDataSettings:
    return SynthDataSettings()


class GenerateRequest(BaseModel):
    """Everything a generate-and-publish run needs; the Prefect UI renders it as a form."""

    provider: ProviderConfig = Field(
        default_factory=ProviderConfig, description="Generation service."
    )
    generator: str = Field(default="shapes", description="Generator name, e.g. 'shapes'.")
    num_jobs: int = Field(
        default=4, ge=1, le=100_000, description="Jobs to render (ignored with job_params)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters applied to every job."
    )
    job_params: list[dict[str, Any]] | None = Field(
        default=None, description="Per-job parameters (one dict a job), merged over `params`."
    )
    is_preview: bool = Field(default=False, description="Render one preview frame per job.")
    seed: int = Field(
        default=0, ge=0, description="Seed from which each job's scene seed is drawn."
    )
    randomize: bool = Field(
        default=False,
        description="Sample every unspecified parameter within its bounds (Infinity rules).",
    )
    name: str = Field(
        default="synthetic-shapes", description="Dataset name (also the batch label)."
    )
    version: str | None = Field(
        default=None, description="Dataset version; default: derived from the request."
    )
    dest: str = Field(
        default_factory=lambda: _settings().dest, description="Path, file:// or s3:// URI."
    )
    storage: StoreOptions = Field(
        default_factory=StoreOptions,
        description="How to reach an s3:// destination (endpoint, credentials...).",
    )
    poll_initial_seconds: float = Field(
        default_factory=lambda: _settings().poll_initial_seconds, gt=0
    )
    poll_cap_seconds: float = Field(default_factory=lambda: _settings().poll_cap_seconds, gt=0)
    deadline_seconds: float = Field(default_factory=lambda: _settings().deadline_seconds, gt=0)
    shard_size: int = Field(
        default_factory=lambda: _settings().shard_size, ge=1, description="Jobs per download task."
    )

    def jobs(self) -> list[dict[str, Any]]:
        """The per-job parameter dicts this request asks for."""
        if self.job_params is not None:
            return [{**self.params, **job} for job in self.job_params]
        return [dict(self.params) for _ in range(self.num_jobs)]


@flow(name="generate-dataset", log_prints=False)
def generate_dataset(request: GenerateRequest) -> DatasetManifest:
    """Generate a synthetic dataset and publish it; returns where it is and what it holds.

    Bad input (unknown generator, bad parameters, unusable destination, bad name)
    fails here before any job is submitted. A re-run with the same request adopts
    the same batch, downloads nothing again and publishes nothing new.
    """
    logger = get_run_logger()
    check_segment("name", request.name)
    if request.version is not None:
        check_segment("version", request.version)
    open_destination(request.dest, request.storage).check_writable()
    provider = request.provider.create()
    batch_request = batches.prepare_request(
        provider,
        request.generator,
        request.jobs(),
        request.is_preview,
        request.name,
        request.seed,
        request.randomize,
    )
    version = request.version or batch_request.key[:12]

    batch = submit_batch(request.provider, batch_request)
    policy = batches.PollPolicy(
        request.poll_initial_seconds, request.poll_cap_seconds, request.deadline_seconds
    )
    try:
        status = wait_for_batch(request.provider, batch, policy)
    except NotFoundError:  # a cached batch the provider no longer has (e.g. its state was wiped)
        logger.warning("batch %s is gone from the provider; submitting again", batch.batch_id)
        batch = submit_batch.with_options(refresh_cache=True)(request.provider, batch_request)
        status = wait_for_batch(request.provider, batch, policy)
    if status.failed:
        details = "; ".join(f"{j.job_id}: {j.error}" for j in status.failed[:5])
        raise BatchFailedError(f"{len(status.failed)} of {len(status.jobs)} jobs failed: {details}")

    work_dir = _settings().home / "work" / batch.name
    shards = [
        batch.job_ids[i : i + request.shard_size]
        for i in range(0, len(batch.job_ids), request.shard_size)
    ]
    futures = [
        download_batch.submit(request.provider, batch, shard, work_dir / "jobs") for shard in shards
    ]
    job_dirs = [folder for future in futures for folder in future.result()]

    info = DatasetInfo(name=request.name, version=version, provider=provider.identity)
    manifest = build_dataset(batch, job_dirs, work_dir / "dataset", info)
    uri, uploaded = publish_dataset(request.dest, work_dir / "dataset", manifest, request.storage)
    logger.info("dataset ready at %s", uri)
    return DatasetManifest(
        uri=uri,
        name=manifest.name,
        version=manifest.version,
        batch_id=manifest.batch_id,
        generator=manifest.generator,
        num_images=manifest.num_images,
        num_annotations=manifest.num_annotations,
        categories=manifest.categories,
        manifest_sha256=manifest.sha256(),
        content_sha256=manifest.content_sha256(),
        files_uploaded=uploaded,
    )
