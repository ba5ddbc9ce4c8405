"""The one interface every provider implements: local engine, Infinity or zpy over HTTP.

Example:
    >>> from prefect_synthdata.providers import ProviderConfig
    >>> provider = ProviderConfig(kind="local").create()
    >>> "shapes" in [g.name for g in provider.list_generators()]
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from prefect_synthdata.models import BatchRef, BatchRequest, BatchStatus
from prefect_synthdata.params import GeneratorSpec


@runtime_checkable
class Provider(Protocol):
    """Steps of a generation service. Implementations raise `prefect_synthdata.exceptions` types."""

    #: Whether a job's result is already on this machine, so that fetching it is file work
    #: only (copying, extracting, hashing): threads of one process then only contend for
    #: the GIL, and `batches.download_jobs` fetches from one thread at a time per process.
    local_results: bool

    @property
    def identity(self) -> str:
        """A non-secret string naming this service instance (kind and address), for cache keys."""
        ...

    def list_generators(self) -> list[GeneratorSpec]:
        """Every generator the service offers, with its parameters."""
        ...

    def describe(self, generator: str) -> GeneratorSpec:
        """One generator's parameters; UnknownGeneratorError if there is none of that name."""
        ...

    def validate(
        self, generator: str, jobs: list[dict[str, Any]], is_preview: bool
    ) -> list[dict[str, Any]]:
        """Complete parameter sets of `jobs`, or ParameterValidationError naming every problem."""
        ...

    def estimate(self, generator: str, jobs: list[dict[str, Any]], is_preview: bool) -> list[int]:
        """Frames each job will render."""
        ...

    def submit(self, request: BatchRequest) -> BatchRef:
        """Submit a batch. Callers look for an existing one with `find_batch` first."""
        ...

    def find_batch(self, name: str) -> BatchRef | None:
        """The batch submitted under the deterministic `name`, if any."""
        ...

    def render_again(self, batch: BatchRef, request: BatchRequest) -> int:
        """Queue the batch's failed or result-less jobs again, in the same batch (each job
        at most `engine.jobs.MAX_RENDERS` times); returns how many (0 when none are
        broken, or when the service cannot, which is logged). `request` is the one the
        batch was submitted for."""
        ...

    def batch_status(self, batch: BatchRef) -> BatchStatus:
        """Every job's state, read with one batch-level call."""
        ...

    def cancel(self, batch: BatchRef) -> int:
        """Stop the batch's unfinished jobs; returns how many were cancelled (0 if none were left).

        CancelNotSupportedError if the service has no way to cancel. A cancelled batch is
        not adopted again by `find_batch`.
        """
        ...

    def fetch_job_result(self, batch: BatchRef, job_id: str, dest: Path) -> None:
        """Write one succeeded job's result folder (see `engine.render`) to `dest`.

        `dest` must not exist yet; on failure nothing is left at `dest`.
        """
        ...
