"""The `local` provider: the embedded engine and job service, in this process.

No account, no network. Batches and results persist under the state directory, so
a re-run (or a restarted process) finds and adopts its earlier batches.

Example:
    >>> import tempfile, pathlib
    >>> provider = LocalProvider(pathlib.Path(tempfile.mkdtemp()))
    >>> provider.describe("shapes").preview
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect_synthdata.engine.executors import open_executor
from prefect_synthdata.engine.generators import GENERATORS, get_generator
from prefect_synthdata.engine.jobs import JobService, default_workers
from prefect_synthdata.engine.results import DirectoryResults, ResultsStore
from prefect_synthdata.models import BatchRef, BatchRequest, BatchStatus
from prefect_synthdata.params import GeneratorSpec, validate_jobs

OWNER = "local"
_SERVICES: dict[Path, JobService] = {}


def job_service(
    state_dir: Path,
    workers: int | None = None,
    dask_address: str | None = None,
    results: ResultsStore | None = None,
) -> JobService:
    """The process-wide job service of `state_dir` (one executor per directory).

    Renders run in a process pool of `workers`, or on the Dask cluster at `dask_address`;
    `results` is where they land (default `state_dir/results`; a shared directory or an
    S3 prefix for Dask workers on other machines).
    Unfinished jobs of a dead process are adopted when their batch is next read, not
    on open, so that cancelling a batch never starts rendering it first.
    """
    key = Path(state_dir).resolve()
    if key not in _SERVICES:
        workers = workers or default_workers()
        _SERVICES[key] = JobService(
            key,
            workers=workers,
            executor=open_executor(workers, dask_address),
            results=results,
            adopt=False,
        )
    return _SERVICES[key]


def close_job_services(under: Path | None = None) -> None:
    """Stop the job services this process opened (render pools and databases);
    with `under`, only those whose state directory lies below that folder."""
    for key in list(_SERVICES):
        if under is None or key.is_relative_to(Path(under).resolve()):
            _SERVICES.pop(key).close()


class LocalProvider:
    """Provider over an in-process `JobService`."""

    def __init__(
        self,
        state_dir: Path,
        workers: int | None = None,
        dask_address: str | None = None,
        results: ResultsStore | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.service = job_service(self.state_dir, workers, dask_address, results)
        # results in a directory are on this machine; on S3 they are downloaded
        self.local_results = isinstance(self.service.results, DirectoryResults)

    @property
    def identity(self) -> str:
        return f"local:{self.state_dir.resolve()}"

    def list_generators(self) -> list[GeneratorSpec]:
        return [g.spec for g in GENERATORS.values()]

    def describe(self, generator: str) -> GeneratorSpec:
        return get_generator(generator).spec

    def validate(
        self, generator: str, jobs: list[dict[str, Any]], is_preview: bool
    ) -> list[dict[str, Any]]:
        """Complete parameter sets; a job's `state` names an earlier job of this provider to re-run."""
        return validate_jobs(
            self.describe(generator),
            jobs,
            is_preview,
            state_lookup=lambda job_id: self.service.state_params(OWNER, generator, job_id),
        )

    def estimate(self, generator: str, jobs: list[dict[str, Any]], is_preview: bool) -> list[int]:
        gen = get_generator(generator)
        return [gen.frame_count(p, is_preview) for p in self.validate(generator, jobs, is_preview)]

    def submit(self, request: BatchRequest) -> BatchRef:
        jobs = self.validate(request.generator, request.jobs, request.is_preview)
        return self.service.submit(
            OWNER, request.name, request.generator, jobs, request.is_preview, unique_name=True
        )

    def find_batch(self, name: str) -> BatchRef | None:
        return self.service.find_batch(OWNER, name)

    def render_again(self, batch: BatchRef, request: BatchRequest) -> int:
        """Render the batch's failed or result-less jobs again, in the same batch."""
        return self.service.render_again(self.service.broken_jobs(batch.batch_id))

    def batch_status(self, batch: BatchRef) -> BatchStatus:
        return self.service.batch_status(OWNER, batch.batch_id)

    def cancel(self, batch: BatchRef) -> int:
        return len(self.service.cancel(OWNER, batch.batch_id))

    def fetch_job_result(self, batch: BatchRef, job_id: str, dest: Path) -> None:
        self.service.copy_result(job_id, dest)
