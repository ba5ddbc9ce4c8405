"""The generate flow: one run of the pipeline (submit, wait, download, build, publish).

Example:
    >>> from prefect_synthdata.flows import GenerateRequest, generate_dataset
    >>> manifest = generate_dataset(GenerateRequest(num_jobs=2, dest="/tmp/ds"))  # doctest: +SKIP
    >>> manifest.uri  # doctest: +SKIP
    '/tmp/ds/synthetic-shapes/1f0c3b2a9d4e'
"""

from __future__ import annotations

from datetime import UTC

from prefect import flow, runtime
from pydantic import ConfigDict, Field

from prefect_synthdata.blocks.credentials import CredentialsReference, resolve_provider
from prefect_synthdata.dataset.manifest import PublishedDataset
from prefect_synthdata.pipeline import run_pipeline, task_runner
from prefect_synthdata.request import RunSpec
from prefect_synthdata.settings import SynthDataSettings


class GenerateRequest(RunSpec):
    """Everything a generate-and-publish run needs; the Prefect UI renders it as a form."""

    model_config = ConfigDict(extra="forbid")  # a mistyped field is refused, not ignored

    credentials: CredentialsReference = Field(
        default=None,
        description="The generation service: a saved SynthData Infinity or Zpy Credentials "
        "block, or 'local' for the embedded provider. Empty: the worker's environment "
        "(SYNTHDATA_CREDENTIALS_BLOCK, else SYNTHDATA_PROVIDER, else local).",
    )


@flow(
    name="generate-dataset",
    log_prints=False,
    task_runner=task_runner(),  # type: ignore[arg-type]
)
def generate_dataset(request: GenerateRequest) -> PublishedDataset:
    """Generate a synthetic dataset and publish it; returns where it is and what it holds.

    Bad input (unknown generator, bad parameters, unusable destination, bad name)
    fails here before any job is submitted. A re-run with the same request adopts
    the same batch, downloads nothing again and publishes nothing new.

    Args:
        request: What to generate, with which service, and where to publish it.
    """
    settings = SynthDataSettings()
    provider = resolve_provider(request.credentials, None, settings)
    day = runtime.flow_run.scheduled_start_time.astimezone(UTC).date()
    return run_pipeline(request.for_day(day), provider, settings)
