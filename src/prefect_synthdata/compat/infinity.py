"""`Session` and `Batch` in the style of the `infinity-core` client, over our Infinity provider.

Code written for the original client runs with a changed import. What differs, on purpose:

- errors are `prefect_synthdata.exceptions` types (AuthenticationError, UnknownGeneratorError,
  ParameterValidationError listing every problem, QuotaExceededError, TransientError...);
- every request has a timeout, and reads are retried with backoff;
- a submission whose outcome is unknown (timeout, reset, 5xx) is looked up by name and
  adopted rather than sent twice; an unnamed batch therefore gets a unique name;
- `download` streams each zip to disk (resumable) instead of holding it in memory,
  extracts it safely, and a failed job leaves the other jobs' folders in place;
- `await_completion` polls one batch-level summary per interval and stops at `timeout`.

Job parameters are a list of dicts or a pandas DataFrame (one row a job; empty cells
mean "unspecified").

Example:
    >>> session = Session(token="tok", generator="shapes", server="http://127.0.0.1:8000")  # doctest: +SKIP
    >>> batch = session.submit([{"width": 128}, {"width": 256}], batch_name="demo")  # doctest: +SKIP
    >>> batch.await_completion(timeout=600)  # doctest: +SKIP
    >>> batch.download("out/")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from prefect_synthdata import batches
from prefect_synthdata.exceptions import NotFoundError, SynthDataError
from prefect_synthdata.models import BatchRef
from prefect_synthdata.params import GeneratorSpec, check_job, sample_unspecified, validate_jobs
from prefect_synthdata.providers.http import RetryPolicy
from prefect_synthdata.providers.infinity import DEFAULT_SERVER, InfinityProvider, download_job

JobParams = dict[str, Any]
logger = logging.getLogger(__name__)
DOWNLOAD_THREADS = 4


class DownloadError(SynthDataError):
    """Some jobs of a batch could not be downloaded; `failed` lists their ids."""

    def __init__(self, message: str, failed: list[str]) -> None:
        super().__init__(message)
        self.failed = failed


def _is_missing(value: Any) -> bool:
    """An empty DataFrame cell: None, NaN, NA or NaT (pandas does not keep them apart)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so they validate and serialise like user input."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


def as_job_list(job_params: Any) -> list[JobParams]:
    """A list of per-job dicts from a list of dicts or a pandas DataFrame (one row a job).

    In a DataFrame an empty cell means "unspecified": the parameter takes its default.

    Example:
        >>> as_job_list([{"width": 64}])
        [{'width': 64}]
    """
    if hasattr(job_params, "to_dict") and hasattr(job_params, "columns"):
        records = job_params.to_dict(orient="records")
        return [{str(k): _plain(v) for k, v in r.items() if not _is_missing(v)} for r in records]
    if not isinstance(job_params, list):
        raise TypeError(
            f"job_params must be a list of dicts or a DataFrame, got {type(job_params).__name__}"
        )
    for index, record in enumerate(job_params):
        if not isinstance(record, dict):
            raise TypeError(f"job_params[{index}] must be a dict, got {type(record).__name__}")
    return [dict(r) for r in job_params]


@dataclass(frozen=True)
class CompletedJob:
    """A finished job of a batch; `result_url` is None when it failed."""

    job_id: str
    generator: str
    params: JobParams
    result_url: str | None = None

    @property
    def uid(self) -> str:
        return self.job_id


ValidCompletedJob = CompletedJob


@dataclass(frozen=True)
class Batch:
    """A submitted batch: its jobs, status reads, waiting and downloading."""

    batch_id: str
    name: str
    jobs: dict[str, JobParams]
    generator: str
    is_preview: bool
    provider: InfinityProvider = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, provider: InfinityProvider, batch_id: str) -> Batch:
        """Rebuild a batch from `GET api/batch/{id}/`."""
        data = provider.api.batch(batch_id)
        runs = data.get("job_runs") or []
        if not runs:
            raise NotFoundError(f"batch {batch_id} has no jobs")
        return cls(
            batch_id=str(data["id"]),
            name=str(data.get("name") or ""),
            jobs={str(r["id"]): dict(r.get("param_values") or {}) for r in runs},
            generator=str(runs[0].get("name") or ""),
            is_preview=bool(runs[0].get("is_preview", False)),
            provider=provider,
        )

    @property
    def uid(self) -> str:
        """The batch id (the name older `infinity_api` versions used)."""
        return self.batch_id

    @property
    def job_ids(self) -> list[str]:
        return list(self.jobs)

    @property
    def job_params(self) -> list[JobParams]:
        return list(self.jobs.values())

    @property
    def num_jobs(self) -> int:
        return len(self.jobs)

    def get_job_params_seeded_for_rerun(self) -> list[JobParams]:
        """Each job's parameters with `state` set to its id: submit them to re-render these jobs."""
        return [
            {**params, "state": job_id} if "state" in params else dict(params)
            for job_id, params in self.jobs.items()
        ]

    def _ref(self) -> BatchRef:
        return BatchRef(
            batch_id=self.batch_id,
            name=self.name,
            generator=self.generator,
            job_ids=self.job_ids,
            is_preview=self.is_preview,
        )

    def get_batch_data(self) -> dict[str, Any]:
        return self.provider.api.batch(self.batch_id)

    def get_batch_summary_data(self) -> dict[str, Any]:
        return self.provider.api.summary(self.batch_id)

    def get_job_summary_data(self, job_id: str) -> dict[str, Any]:
        for run in self.get_batch_summary_data().get("job_runs", []):
            if str(run["id"]) == job_id:
                return dict(run)
        raise NotFoundError(f"job {job_id} is not part of batch {self.batch_id}")

    def get_num_jobs_remaining(self) -> int:
        """Jobs not yet finished, from one summary read."""
        return self.provider.batch_status(self._ref()).remaining

    def get_completed_jobs(self) -> list[CompletedJob]:
        """Finished jobs (failed ones have no `result_url`)."""
        return [
            CompletedJob(
                job_id=str(run["id"]),
                generator=str(run.get("name") or self.generator),
                params=self.jobs.get(str(run["id"]), {}),
                result_url=run.get("result_url"),
            )
            for run in self.get_batch_summary_data().get("job_runs", [])
            if not run.get("in_progress")
        ]

    def get_valid_completed_jobs(self) -> list[ValidCompletedJob]:
        """Finished jobs that have a result to download."""
        return [job for job in self.get_completed_jobs() if job.result_url is not None]

    def await_completion(
        self, polling_interval: float = 10, timeout: float | None = None
    ) -> list[ValidCompletedJob]:
        """Poll the batch summary until every job finished; BatchTimeoutError after `timeout` s."""
        policy = batches.PollPolicy(
            initial_seconds=polling_interval,
            cap_seconds=polling_interval,
            deadline_seconds=timeout if timeout is not None else float("inf"),
        )

        def report(status: Any) -> None:
            logger.info(
                "batch %s: %d of %d jobs remaining",
                self.batch_id,
                status.remaining,
                len(status.jobs),
            )

        batches.poll_until_done(self.provider, self._ref(), policy, report)
        return self.get_valid_completed_jobs()

    def download(self, path: str | Path, overwrite: bool = False) -> None:
        """Download every valid completed job to `path/<job_id>/`.

        `path/batch_id.txt` records the batch; a folder of another batch is refused.
        Jobs already there are kept unless `overwrite`. Jobs download in parallel,
        each streamed to disk and extracted safely; one failure does not remove the
        others, and DownloadError lists the jobs that failed.
        """
        out_dir = Path(path)
        marker = out_dir / "batch_id.txt"
        if marker.is_file() and marker.read_text() != self.batch_id:
            raise DownloadError(
                f"{out_dir} holds batch {marker.read_text()!r}, not {self.batch_id!r}", failed=[]
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.batch_id)
        jobs = self.get_valid_completed_jobs()
        todo = [
            (j.job_id, j.result_url) for j in jobs if overwrite or not (out_dir / j.job_id).is_dir()
        ]
        logger.info("%d jobs already downloaded, %d to download", len(jobs) - len(todo), len(todo))

        def fetch(job_id: str, url: str) -> None:
            """Download beside the job's folder, then swap it in: a failed overwrite keeps the old one."""
            fresh = out_dir / f"{job_id}.new"
            shutil.rmtree(fresh, ignore_errors=True)
            download_job(self.provider.api.http, url, job_id, fresh)
            shutil.rmtree(out_dir / job_id, ignore_errors=True)
            fresh.rename(out_dir / job_id)

        failed = []
        with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
            futures = {job_id: pool.submit(fetch, job_id, str(url)) for job_id, url in todo}
            for job_id, future in futures.items():
                error = future.exception()
                if error is not None:
                    logger.warning("job %s failed to download: %s", job_id, error)
                    failed.append(job_id)
        if failed:
            raise DownloadError(
                f"{len(failed)} of {len(todo)} jobs failed to download: {failed}", failed
            )


class Session:
    """A user session with one generator of an Infinity server.

    Raises AuthenticationError for a bad token and UnknownGeneratorError for a bad
    generator name, as the original reported "Invalid token" / "Invalid generator name".
    """

    def __init__(
        self,
        token: str | SecretStr,
        generator: str,
        server: str = DEFAULT_SERVER,
        retry: RetryPolicy | None = None,
    ) -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        self.provider = InfinityProvider(server, secret, retry)
        self.generator = generator
        self.server = self.provider.api.server
        self._generator_info = self.provider.api.generator(generator)
        self.spec = GeneratorSpec.from_api(self._generator_info)

    def __repr__(self) -> str:
        return f"Session(generator={self.generator!r}, server={self.server!r})"

    @property
    def parameter_info(self) -> dict[str, dict[str, Any]]:
        """`{name: {"type", "default_value", "options"}}` of the generator's parameters."""
        return {
            p["name"]: {
                "type": p.get("type"),
                "default_value": p.get("default_value"),
                "options": p.get("options"),
            }
            for p in self._generator_info.get("params", [])
        }

    @property
    def default_job(self) -> JobParams:
        """Every parameter at its default value."""
        return self.spec.defaults()

    def random_job(self) -> JobParams:
        """Every parameter sampled (choices, [min, max]) or at its default."""
        return sample_unspecified(self.spec, {}, random.Random())

    def randomize_unspecified_params(self, params: JobParams) -> JobParams:
        """`params` with every parameter it leaves out sampled."""
        return sample_unspecified(self.spec, dict(params), random.Random())

    def validate_job_params(self, job_params: Any) -> list[str | None]:
        """One error string (or None) per job."""
        return [
            "; ".join(problems) or None
            for _, problems in (check_job(self.spec, j) for j in as_job_list(job_params))
        ]

    def _complete(self, job_params: Any, is_preview: bool) -> list[JobParams]:
        return validate_jobs(self.spec, as_job_list(job_params), is_preview)

    def estimate_samples(
        self, job_params: Any, is_preview: bool = False, batch_name: str | None = None
    ) -> list[int]:
        """Frames each job will render (`POST api/batch/estimate/`)."""
        jobs = self._complete(job_params, is_preview)
        return self.provider.api.estimate(self.generator, jobs, is_preview, batch_name or "")

    def submit(
        self, job_params: Any, is_preview: bool = False, batch_name: str | None = None
    ) -> Batch:
        """Validate (all problems at once), complete with defaults, and submit one batch."""
        jobs = self._complete(job_params, is_preview)
        name = batch_name or f"batch-{uuid.uuid4().hex[:12]}"
        started = datetime.now(UTC) - timedelta(seconds=60)
        body = self.provider.post_batch_once(
            name, self.generator, jobs, is_preview, created_after=started
        )
        runs = body.get("job_runs") or []
        return Batch(
            batch_id=str(body["id"]),
            name=str(body.get("name") or name),
            jobs={
                str(r["id"]): dict(r.get("param_values") or p)
                for r, p in zip(runs, jobs, strict=False)
            },
            generator=self.generator,
            is_preview=is_preview,
            provider=self.provider,
        )

    def batch_from_api(self, batch_id: str) -> Batch:
        return Batch.from_api(self.provider, batch_id)

    def get_batches_last_n_days(self, n_days: int) -> list[dict[str, Any]]:
        """Batches of the last `n_days`, newest first, with `batch_id` and a `created` datetime."""
        end = datetime.now().astimezone()
        data = self.provider.api.batches(end - timedelta(days=n_days), end)[::-1]
        for entry in data:
            entry["batch_id"] = entry.pop("id")
            entry["created"] = datetime.fromisoformat(str(entry["created"]).replace("Z", "+00:00"))
        return data

    def get_usage_stats_last_n_days(self, n_days: int) -> dict[str, Any]:
        """Frames rendered per generator over the last `n_days` (`api/job_runs/counts/`)."""
        end = datetime.now().astimezone()
        return self.provider.api.usage(end - timedelta(days=n_days), end)


__all__ = ["Batch", "CompletedJob", "DownloadError", "Session", "ValidCompletedJob", "as_job_list"]
