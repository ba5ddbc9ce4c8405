"""The `infinity` provider: the Infinity synthetic-data REST API over HTTP.

`InfinityApi` sends exactly the requests of the original `infinity-core` client
(see shared/protocols/infinity-api.md): `urljoin(server, endpoint)` with a trailing
slash, `Authorization: Token <token>`, `Accept: application/json`, JSON bodies.
`InfinityProvider` implements the `Provider` interface on top of it.

Example:
    >>> from pydantic import SecretStr
    >>> provider = InfinityProvider("http://127.0.0.1:8000", SecretStr("tok"))
    >>> provider.identity
    'infinity:http://127.0.0.1:8000/'
    >>> provider.api.url("api/batch/b1/summary/")
    'http://127.0.0.1:8000/api/batch/b1/summary/'
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from pydantic import SecretStr

from prefect_synthdata.exceptions import (
    AuthenticationError,
    NotFoundError,
    SynthDataError,
    TransientError,
    UnknownGeneratorError,
)
from prefect_synthdata.models import BatchRef, BatchRequest, BatchStatus, JobState, JobStatus
from prefect_synthdata.params import GeneratorSpec, validate_jobs
from prefect_synthdata.providers.archive import extract_zip
from prefect_synthdata.providers.http import (
    AmbiguousRequestError,
    HttpClient,
    RetryPolicy,
    call_cancel_endpoint,
    call_extension,
)
from prefect_synthdata.providers.trust import (
    refuse,
    server_count,
    server_id,
    server_object,
    server_objects,
    server_url,
)

logger = logging.getLogger(__name__)

DEFAULT_SERVER = "https://api.toinfinity.ai"
ACCEPT_JSON = {"Accept": "application/json"}
#: How far back `find_batch` looks for a batch of the same name.
FIND_WINDOW = timedelta(days=30)
#: How often an ambiguous submission is resolved (looked up, then re-sent if absent).
SUBMIT_ATTEMPTS = 5


class InfinityApi:
    """One method per Infinity endpoint; returns decoded JSON, raises domain exceptions."""

    def __init__(self, server: str, token: SecretStr, retry: RetryPolicy | None = None) -> None:
        self.http = HttpClient(server, token, retry=retry)
        self.server = self.http.base_url

    def __repr__(self) -> str:
        return f"InfinityApi({self.server!r})"

    def url(self, endpoint: str) -> str:
        """`urljoin(server, endpoint)` with a trailing slash forced, as the original client."""
        url = urljoin(self.server, endpoint)
        return url if url.endswith("/") else url + "/"

    def get(self, endpoint: str, params: dict[str, str] | None = None) -> Any:
        return self.http.get_json(self.url(endpoint), params=params, headers=ACCEPT_JSON)

    def generators(self) -> list[dict[str, Any]]:
        """`GET api/jobs/`: `[{"name": ...}]`."""
        return server_objects(self.get("api/jobs/"), "generator list", self.server)

    def generator(self, name: str) -> dict[str, Any]:
        """`GET api/jobs/{name}/`: the generator's `parameter_info`.

        The original client read both 404 and 500 here as "invalid generator name".
        """
        try:
            return server_object(self.get(f"api/jobs/{name}/"), "parameter_info", self.server)
        except NotFoundError:
            raise UnknownGeneratorError(f"unknown generator {name!r} on {self.server}") from None
        except TransientError as exc:
            if exc.status == 500:
                raise UnknownGeneratorError(
                    f"unknown generator {name!r} on {self.server}"
                ) from None
            raise

    def post_batch(
        self, name: str, generator: str, jobs: list[dict[str, Any]], is_preview: bool
    ) -> dict[str, Any]:
        """`POST api/batch/`, sent once; AmbiguousRequestError when its outcome is unknown."""
        return server_object(
            self.http.post_json(
                self.url("api/batch/"),
                json_body=batch_body(name, generator, jobs, is_preview),
                headers=ACCEPT_JSON,
            ),
            "created batch",
            self.server,
        )

    def estimate(
        self, generator: str, jobs: list[dict[str, Any]], is_preview: bool, name: str = ""
    ) -> list[int]:
        """`POST api/batch/estimate/` (creates nothing, so it is retried like a read)."""
        body = batch_body(name, generator, jobs, is_preview)
        frames = self.http.post_json(
            self.url("api/batch/estimate/"), idempotent=True, json_body=body, headers=ACCEPT_JSON
        )
        if not isinstance(frames, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in frames
        ):
            raise refuse(self.server, "estimate", frames, "expected a list of frame counts")
        return frames

    def batches(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """`GET api/batch/?start_time=...&end_time=...` (ISO 8601 with offset)."""
        return server_objects(
            self.get("api/batch/", params=time_window(start, end)), "batch list", self.server
        )

    def batch(self, batch_id: str) -> dict[str, Any]:
        """`GET api/batch/{id}/`: name, created and every job's `param_values`."""
        return server_object(self.get(f"api/batch/{batch_id}/"), "batch", self.server)

    def summary(self, batch_id: str) -> dict[str, Any]:
        """`GET api/batch/{id}/summary/`: every job's `in_progress` and `result_url`."""
        return server_object(self.get(f"api/batch/{batch_id}/summary/"), "summary", self.server)

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """`POST api/batch/{id}/cancel/`: an extension of the reference server (idempotent).

        Answers `{"id", "cancelled_jobs", "frames_credited"}`.
        """
        return dict(
            self.http.post_json(
                self.url(f"api/batch/{batch_id}/cancel/"), idempotent=True, headers=ACCEPT_JSON
            )
        )

    def render_again(self, batch_id: str) -> dict[str, Any]:
        """`POST api/batch/{id}/render-again/`: an extension of the reference server
        (idempotent). Answers `{"id", "queued_jobs", "frames_charged", "given_up_jobs",
        "max_renders"}`."""
        return server_object(
            self.http.post_json(
                self.url(f"api/batch/{batch_id}/render-again/"),
                idempotent=True,
                headers=ACCEPT_JSON,
            ),
            "render-again reply",
            self.server,
        )

    def usage(self, start: datetime, end: datetime) -> dict[str, Any]:
        """`GET api/job_runs/counts/?start_time=...&end_time=...`."""
        return server_object(
            self.get("api/job_runs/counts/", params=time_window(start, end)), "usage", self.server
        )


def batch_body(
    name: str, generator: str, jobs: list[dict[str, Any]], is_preview: bool
) -> dict[str, Any]:
    """The JSON body of `POST api/batch/` and `api/batch/estimate/`.

    Example:
        >>> batch_body("b", "shapes", [{"seed": 1}], False)
        {'name': 'b', 'job_runs': [{'name': 'shapes', 'is_preview': False, 'param_values': {'seed': 1}}]}
    """
    return {
        "name": name,
        "job_runs": [
            {"name": generator, "is_preview": is_preview, "param_values": p} for p in jobs
        ],
    }


def time_window(start: datetime, end: datetime) -> dict[str, str]:
    """`start_time`/`end_time` query values: ISO 8601 with a UTC offset (naive = local time)."""
    return {"start_time": start.astimezone().isoformat(), "end_time": end.astimezone().isoformat()}


def job_state(run: dict[str, Any]) -> JobState:
    """A summary entry's state: running while `in_progress`, then succeeded iff it has a URL
    (`cancelled` when the server says so, an extension of the reference server)."""
    if run.get("state") == JobState.CANCELLED:
        return JobState.CANCELLED
    if run.get("in_progress"):
        return JobState.RUNNING
    return JobState.SUCCEEDED if run.get("result_url") else JobState.FAILED


class InfinityProvider:
    """`Provider` over an Infinity API server.

    Results are downloaded to `<dest>.zip` next to the job folder (resumable),
    checked, and the zip's `<job_id>/` folder is extracted safely into `dest`.
    """

    local_results = False  # one download per job: waits on the network overlap

    def __init__(self, server: str, token: SecretStr, retry: RetryPolicy | None = None) -> None:
        self.api = InfinityApi(server, token, retry)
        self._specs: dict[str, GeneratorSpec] = {}
        self._result_urls: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"InfinityProvider({self.api.server!r})"

    @property
    def identity(self) -> str:
        return f"infinity:{self.api.server}"

    def list_generators(self) -> list[GeneratorSpec]:
        return [self.describe(g["name"]) for g in self.api.generators()]

    def describe(self, generator: str) -> GeneratorSpec:
        if generator not in self._specs:
            self._specs[generator] = GeneratorSpec.from_api(self.api.generator(generator))
        return self._specs[generator]

    def validate(
        self, generator: str, jobs: list[dict[str, Any]], is_preview: bool
    ) -> list[dict[str, Any]]:
        return validate_jobs(self.describe(generator), jobs, is_preview)

    def estimate(self, generator: str, jobs: list[dict[str, Any]], is_preview: bool) -> list[int]:
        return self.api.estimate(generator, self.validate(generator, jobs, is_preview), is_preview)

    def submit(self, request: BatchRequest) -> BatchRef:
        """POST the batch once; after an ambiguous failure adopt it by name or re-send."""
        body = self.post_batch_once(
            request.name, request.generator, request.jobs, request.is_preview
        )
        return self._ref(body, request.generator)

    def post_batch_once(
        self,
        name: str,
        generator: str,
        jobs: list[dict[str, Any]],
        is_preview: bool,
        created_after: datetime | None = None,
    ) -> dict[str, Any]:
        """The created batch's body. When a POST's outcome is unknown, a batch of that name
        (created after `created_after`, when given) is adopted, else the POST is re-sent."""
        for _ in range(SUBMIT_ATTEMPTS):
            try:
                return self.api.post_batch(name, generator, jobs, is_preview)
            except AmbiguousRequestError:
                found = self._find(name, created_after)
                if found is not None:
                    return found
        raise TransientError(f"could not submit batch {name!r} after {SUBMIT_ATTEMPTS} attempts")

    def find_batch(self, name: str) -> BatchRef | None:
        """The oldest batch named `name` created within `FIND_WINDOW`, if any."""
        found = self._find(name, None)
        return None if found is None else self._ref(found, generator=None)

    def _find(self, name: str, created_after: datetime | None) -> dict[str, Any] | None:
        end = datetime.now(UTC) + timedelta(minutes=5)  # tolerate clock skew
        start = created_after or end - FIND_WINDOW
        matches = [
            b
            for b in self.api.batches(start, end)
            if b.get("name") == name and not b.get("cancelled")
        ]
        if not matches:
            return None
        server = self.api.server
        oldest = min(matches, key=lambda b: (str(b.get("created", "")), str(b.get("id"))))
        return self.api.batch(server_id(oldest.get("id"), "batch list[].id", server))

    def _ref(self, body: dict[str, Any], generator: str | None) -> BatchRef:
        """The batch a server reply describes; every id checked (they name work folders)."""
        server = self.api.server
        runs = server_objects(body.get("job_runs"), "batch job_runs", server)
        if not runs:
            raise refuse(server, "batch job_runs", runs, "a batch has at least one job")
        job_ids = job_run_ids(runs, server)
        return BatchRef(
            batch_id=server_id(body.get("id"), "batch id", server),
            name=server_id(body.get("name"), "batch name", server),
            generator=generator or str(runs[0].get("name") or ""),
            job_ids=job_ids,
            is_preview=bool(runs[0].get("is_preview", False)),
        )

    def batch_status(self, batch: BatchRef) -> BatchStatus:
        """One `summary/` read for the whole batch; remembers the result URLs it saw."""
        server = self.api.server
        listed = server_objects(
            self.api.summary(batch.batch_id).get("job_runs"), "summary job_runs", server
        )
        runs = dict(zip(job_run_ids(listed, server), listed, strict=True))
        jobs = []
        for job_id in batch.job_ids:
            run = runs.get(job_id)
            if run is None:  # not listed yet: still queued
                jobs.append(JobStatus(job_id=job_id, state=JobState.QUEUED))
                continue
            state = job_state(run)
            if run.get("result_url"):
                self._result_urls[job_id] = server_url(
                    run["result_url"], f"result_url of job {job_id}", server
                )
            error = run.get("error") or (
                "finished without a result" if state == JobState.FAILED else None
            )
            jobs.append(JobStatus(job_id=job_id, state=state, error=error))
        return BatchStatus(batch_id=batch.batch_id, jobs=jobs)

    def cancel(self, batch: BatchRef) -> int:
        """Cancel through the reference server's extension endpoint; the original API has none."""
        body = call_cancel_endpoint(
            lambda: self.api.cancel(batch.batch_id),
            lambda: self.api.batch(batch.batch_id),
            f"{self.api.server} cannot cancel batches (no POST api/batch/<id>/cancel/): "
            f"batch {batch.batch_id} keeps rendering and counting against the quota",
        )
        return server_count(
            body.get("cancelled_jobs", 0),
            "cancel cancelled_jobs",
            self.api.server,
            len(batch.job_ids),
        )

    def render_again(self, batch: BatchRef, request: BatchRequest) -> int:
        """Queue the batch's failed or result-less jobs again through the reference server's
        extension, when the summary shows any; a server without it is logged and left as is."""
        failed = self.batch_status(batch).failed
        if not failed:
            return 0
        server = self.api.server
        body = call_extension(
            lambda: self.api.render_again(batch.batch_id), lambda: self.api.batch(batch.batch_id)
        )
        if body is None:
            logger.warning(
                "%s cannot render jobs again (no POST api/batch/<id>/render-again/): "
                "%d failed or result-less job(s) of batch %s stay so",
                server,
                len(failed),
                batch.batch_id,
            )
            return 0
        jobs = len(batch.job_ids)
        given_up = server_count(body.get("given_up_jobs", 0), "given_up_jobs", server, jobs)
        if given_up:
            logger.warning(
                "batch %s: %d job(s) failed after every re-render the server allows; "
                "they are not rendered again",
                batch.batch_id,
                given_up,
            )
        return server_count(body.get("queued_jobs"), "render-again queued_jobs", server, jobs)

    def result_url(self, batch: BatchRef, job_id: str, refresh: bool = False) -> str:
        """The job's result URL, from the last summary read (one new read if unknown)."""
        if refresh or job_id not in self._result_urls:
            self.batch_status(batch)
        if job_id not in self._result_urls:
            raise NotFoundError(f"job {job_id} of batch {batch.batch_id} has no result")
        return self._result_urls[job_id]

    def fetch_job_result(self, batch: BatchRef, job_id: str, dest: Path) -> None:
        """Download and extract one job; a rejected (e.g. expired pre-signed) URL is refreshed once."""
        try:
            download_job(self.api.http, self.result_url(batch, job_id), job_id, dest)
        except (AuthenticationError, NotFoundError):
            download_job(self.api.http, self.result_url(batch, job_id, refresh=True), job_id, dest)


def job_run_ids(runs: list[dict[str, Any]], server: str) -> list[str]:
    """The checked, distinct ids of a batch's `job_runs`.

    Example:
        >>> job_run_ids([{"id": "j1"}, {"id": 2}], "http://127.0.0.1:8000/")
        ['j1', '2']
    """
    ids = [server_id(run.get("id"), f"job_runs[{i}].id", server) for i, run in enumerate(runs)]
    if len(set(ids)) != len(ids):
        raise refuse(server, "job_runs ids", ids, "each job id must appear once")
    return ids


def download_job(http: HttpClient, url: str, job_id: str, dest: Path) -> None:
    """Download a job zip to `<dest>.zip` (resumable) and extract its `<job_id>/` folder to `dest`.

    A zip that turns out corrupt is deleted, so the next attempt downloads it again.
    """
    archive = dest.with_name(dest.name + ".zip")
    http.download(url, archive)
    scratch = dest.with_name(dest.name + ".extracting")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        files = extract_zip(archive, scratch, folder=job_id)
    except SynthDataError:
        archive.unlink(missing_ok=True)
        raise
    if not files:
        shutil.rmtree(scratch, ignore_errors=True)
        archive.unlink(missing_ok=True)
        raise NotFoundError(f"result zip of job {job_id} has no {job_id}/ folder")
    scratch.rename(dest)
    archive.unlink()
