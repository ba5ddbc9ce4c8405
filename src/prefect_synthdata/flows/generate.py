"""The generate flow: one run of the pipeline (submit, wait, download, build, publish).

Example:
    >>> from prefect_synthdata.flows import GenerateRequest, generate_dataset
    >>> manifest = generate_dataset(GenerateRequest(num_jobs=2, dest="/tmp/ds"))  # doctest: +SKIP
    >>> manifest.uri  # doctest: +SKIP
    '/tmp/ds/synthetic-shapes/1f0c3b2a9d4e'
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, runtime
from prefect.logging.loggers import flow_run_logger
from pydantic import ConfigDict, Field

from prefect_synthdata.batches import cancel_named_batch
from prefect_synthdata.blocks.credentials import CredentialsReference, resolve_provider
from prefect_synthdata.dataset.manifest import PublishedDataset
from prefect_synthdata.exceptions import CancelNotSupportedError
from prefect_synthdata.pipeline import prepare_runs, run_pipeline, task_runner
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


def cancel_batch_of_run(flow: Any, flow_run: Any, state: Any) -> None:
    """`on_cancellation`/`on_crashed` hook: cancel the batch this run submitted (found by name)."""
    logger, settings = flow_run_logger(flow_run), SynthDataSettings()
    request = GenerateRequest.model_validate(flow_run.parameters["request"])
    day = (flow_run.expected_start_time or datetime.now(UTC)).astimezone(UTC).date()
    provider = resolve_provider(request.credentials, None, settings)
    (run,) = prepare_runs([request.for_day(day)], provider, settings, publish=False)
    try:
        logger.info(cancel_named_batch(provider.create(), run.request))
    except CancelNotSupportedError as exc:
        logger.warning("%s", exc)


@flow(
    name="generate-dataset",
    log_prints=False,
    task_runner=task_runner(),  # type: ignore[arg-type]
    on_cancellation=[cancel_batch_of_run],
    on_crashed=[cancel_batch_of_run],
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
