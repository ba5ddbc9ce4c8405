"""The Infinity dialect (shared/protocols/infinity-api.md) over the engine's `JobService`.

JSON in, JSON out, paths with trailing slashes. A batch holds jobs of one generator
and one kind (preview or not), as the original client submits them. A `state`
parameter naming an earlier job re-renders that job's parameters with the new
values laid over them.

Example (with the server running):
    $ curl -H 'Authorization: Token T' http://127.0.0.1:8080/api/jobs/shapes/
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from prefect_synthdata.engine.generators import GENERATORS, Generator, get_generator
from prefect_synthdata.engine.jobs import MAX_RENDERS
from prefect_synthdata.exceptions import (
    NotFoundError,
    ParameterValidationError,
    QuotaExceededError,
    UnknownGeneratorError,
)
from prefect_synthdata.models import JobState
from prefect_synthdata.params import validate_jobs
from prefect_synthdata.server.auth import Owner
from prefect_synthdata.server.context import Context, ServerContext
from prefect_synthdata.server.errors import ApiError

MAX_JOBS_PER_BATCH = 10_000
MAX_INT = 2**63

router = APIRouter(prefix="/api", tags=["infinity"])


class JobRunIn(BaseModel):
    """One requested job."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="Generator name.")
    is_preview: StrictBool = False
    param_values: dict[str, Any] = Field(default_factory=dict)


class BatchIn(BaseModel):
    """The body of `POST api/batch/` and `POST api/batch/estimate/`."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=500)
    job_runs: list[JobRunIn] = Field(min_length=1, max_length=MAX_JOBS_PER_BATCH)


def _too_big(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) >= MAX_INT
    if isinstance(value, dict):
        return any(_too_big(v) for v in value.values())
    if isinstance(value, list):
        return any(_too_big(v) for v in value)
    return False


def resolve_batch(
    ctx: ServerContext, owner: str, body: BatchIn
) -> tuple[Generator, bool, list[dict[str, Any]]]:
    """The generator, kind and complete parameter sets of a batch body; ApiError naming every problem."""
    generators = sorted({run.name for run in body.job_runs})
    kinds = {run.is_preview for run in body.job_runs}
    if len(generators) > 1:
        raise ApiError(400, f"all job_runs of a batch must use one generator, got {generators}")
    if len(kinds) > 1:
        raise ApiError(400, "all job_runs of a batch must share is_preview")
    try:
        generator = get_generator(generators[0])
    except UnknownGeneratorError as exc:
        raise ApiError(400, str(exc), code="unknown_generator") from None
    if any(_too_big(run.param_values) for run in body.job_runs):
        raise ApiError(400, "parameter values must be smaller than 2**63 in magnitude")
    is_preview = kinds.pop()
    values = [run.param_values for run in body.job_runs]
    try:
        jobs = validate_jobs(
            generator.spec,
            values,
            is_preview,
            state_lookup=lambda job_id: ctx.service.state_params(
                owner, generator.spec.name, job_id
            ),
        )
    except ParameterValidationError as exc:
        raise ApiError(400, str(exc), code="invalid_parameters", problems=exc.problems) from None
    return generator, is_preview, jobs


def _job_body(
    ctx: ServerContext, request: Request, owner: str, job: dict[str, Any]
) -> dict[str, Any]:
    finished = job["state"] in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
    url, error = None, job["error"]
    if job["state"] == JobState.SUCCEEDED and ctx.service.has_result(job["id"]):
        url = ctx.job_zip_url(request, job["id"], owner)
    elif job["state"] == JobState.SUCCEEDED:  # its result folder was lost: no URL to offer
        error = "the job's result was lost; POST api/batch/<id>/render-again/ renders it again"
    return {
        "id": job["id"],
        "name": job["generator"],
        "batch_id": job["batch_id"],
        "param_values": job["params"],
        "is_preview": job["is_preview"],
        "in_progress": not finished,
        "result_url": url,
        "state": job["state"],
        "error": error,
        "created": job["created"],
    }


def _batch_body(ctx: ServerContext, owner: str, batch_id: str) -> dict[str, Any]:
    try:
        batch = ctx.service.get_batch(owner, batch_id)
    except NotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    jobs = ctx.service.list_jobs(owner, batch_id=batch_id)
    return {
        "id": batch.batch_id,
        "name": batch.name,
        "created": jobs[0]["created"] if jobs else None,
        "job_runs": [
            {
                "id": j["id"],
                "name": j["generator"],
                "param_values": j["params"],
                "is_preview": j["is_preview"],
            }
            for j in jobs
        ],
    }


def _instant(raw: str | None, name: str, default: datetime) -> str:
    """An ISO 8601 query value as a UTC timestamp comparable with the engine's records."""
    if raw is None:
        moment = default
    else:
        try:
            moment = datetime.fromisoformat(raw.strip().replace(" ", "+"))
        except ValueError:
            raise ApiError(
                400,
                f"{name} must be an ISO 8601 time such as 2024-01-31T12:00:00+00:00, got {raw!r}",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _window(start_time: str | None, end_time: str | None) -> tuple[str, str]:
    start = _instant(start_time, "start_time", datetime(1970, 1, 1, tzinfo=UTC))
    end = _instant(end_time, "end_time", datetime.now(UTC))
    if end < start:
        raise ApiError(400, f"end_time {end_time} is before start_time {start_time}")
    return start, end


StartTime = Query(None, description="ISO 8601 with offset; default: the beginning of time")
EndTime = Query(None, description="ISO 8601 with offset; default: now")


@router.get("/jobs/", summary="List generators")
def list_generators(owner: Owner) -> list[dict[str, str]]:
    return [{"name": name} for name in sorted(GENERATORS)]


@router.get("/jobs/{generator}/", summary="A generator's parameters (parameter_info)")
def generator_info(generator: str, owner: Owner) -> dict[str, Any]:
    try:
        return get_generator(generator).spec.to_api()
    except UnknownGeneratorError as exc:
        raise ApiError(404, str(exc), code="unknown_generator") from None


@router.post("/batch/estimate/", summary="Frames each job would render")
def estimate_batch(body: BatchIn, ctx: Context, owner: Owner) -> list[int]:
    generator, is_preview, jobs = resolve_batch(ctx, owner, body)
    return [generator.frame_count(p, is_preview) for p in jobs]


@router.post("/batch/", summary="Submit a batch of jobs")
def submit_batch(body: BatchIn, ctx: Context, owner: Owner) -> dict[str, Any]:
    generator, is_preview, jobs = resolve_batch(ctx, owner, body)
    frames = sum(generator.frame_count(p, is_preview) for p in jobs)
    try:
        with ctx.quota.reserve(owner, frames):
            batch = ctx.service.submit(owner, body.name, generator.spec.name, jobs, is_preview)
    except QuotaExceededError as exc:
        raise ApiError(402, str(exc), code="quota_exceeded") from None
    return _batch_body(ctx, owner, batch.batch_id)


@router.get("/batch/", summary="Batches created in a time window")
def list_batches(
    ctx: Context, owner: Owner, start_time: str | None = StartTime, end_time: str | None = EndTime
) -> list[dict[str, Any]]:
    start, end = _window(start_time, end_time)
    return [
        {"id": b["id"], "name": b["name"], "created": b["created"], "cancelled": b["cancelled"]}
        for b in ctx.service.list_batches(owner, start, end)
    ]


@router.get("/batch/{batch_id}/", summary="A batch and its jobs' parameters")
def get_batch(batch_id: str, ctx: Context, owner: Owner) -> dict[str, Any]:
    return _batch_body(ctx, owner, batch_id)


def _summary(batch_id: str, ctx: ServerContext, owner: str, request: Request) -> dict[str, Any]:
    try:
        ctx.service.batch_status(owner, batch_id)  # also adopts jobs orphaned by a restart
    except NotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    jobs = ctx.service.list_jobs(owner, batch_id=batch_id)
    return {"job_runs": [_job_body(ctx, request, owner, j) for j in jobs]}


@router.post(
    "/batch/{batch_id}/cancel/",
    summary="Cancel a batch (extension: not in the original API)",
    description="Drops the batch's queued jobs and stops its running ones; they end in state "
    "`cancelled` (summary entries carry `state`) and their frames are credited back to the "
    "quota. Finished jobs keep their results. Idempotent: cancelling again cancels nothing more. "
    "A cancelled batch is listed with `cancelled: true` and is not adopted again by name.",
)
def cancel_batch(batch_id: str, ctx: Context, owner: Owner) -> dict[str, Any]:
    try:
        cancelled = ctx.service.cancel(owner, batch_id)
    except NotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    jobs = ctx.service.list_jobs(owner, job_ids=cancelled) if cancelled else []
    return {
        "id": batch_id,
        "cancelled_jobs": len(cancelled),
        "frames_credited": sum(j["frames"] for j in jobs),
    }


@router.post(
    "/batch/{batch_id}/render-again/",
    summary="Render a batch's failed or result-less jobs again (extension: not in the original API)",
    description="Queues again, in the same batch and under the same job ids, the jobs that "
    "failed (a full disk, a lost worker...) and the finished jobs whose result was lost, and "
    f"starts them. Each job is queued again at most {MAX_RENDERS} times; past that its failure "
    "is taken as permanent (`given_up_jobs`). Quota: the frames of failed jobs were credited "
    "back when they failed and are charged again (`frames_charged`, HTTP 402 when over the "
    "quota); a result-less job's frames are still charged and are not charged twice. Usage "
    "counts a job once, when it last succeeded. Idempotent: jobs queued or rendering are left "
    "alone; a cancelled batch renders nothing again.",
)
def render_again(batch_id: str, ctx: Context, owner: Owner) -> dict[str, Any]:
    try:
        ctx.service.get_batch(owner, batch_id)
    except NotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    broken = ctx.service.broken_jobs(batch_id)
    try:
        with ctx.quota.reserve(owner, broken.failed_frames):
            queued = ctx.service.render_again(broken)
    except QuotaExceededError as exc:
        raise ApiError(402, str(exc), code="quota_exceeded") from None
    return {
        "id": batch_id,
        "queued_jobs": queued,
        "frames_charged": broken.failed_frames,
        "given_up_jobs": len(broken.given_up),
        "max_renders": MAX_RENDERS,
    }


@router.get("/batch/{batch_id}/summary/", summary="Every job's progress and result URL")
def batch_summary(batch_id: str, ctx: Context, owner: Owner, request: Request) -> dict[str, Any]:
    return _summary(batch_id, ctx, owner, request)


@router.get("/batch/summary/{batch_id}/", summary="Every job's progress (older client path)")
def batch_summary_legacy(
    batch_id: str, ctx: Context, owner: Owner, request: Request
) -> dict[str, Any]:
    return _summary(batch_id, ctx, owner, request)


@router.get("/job_runs/counts/", summary="Frames rendered per generator in a time window")
def usage_counts(
    ctx: Context, owner: Owner, start_time: str | None = StartTime, end_time: str | None = EndTime
) -> dict[str, Any]:
    start, end = _window(start_time, end_time)
    counts = ctx.service.usage_counts(owner, start, end)
    return {
        "counts_by_generator": [
            {
                "generator": name,
                "preview_samples_rendered": c["preview"],
                "non_preview_samples_rendered": c["non_preview"],
            }
            for name, c in sorted(counts.items())
        ],
        "start_time": start,
        "end_time": end,
    }


def _jobs(
    ctx: ServerContext, request: Request, owner: str, is_preview: bool
) -> list[dict[str, Any]]:
    return [
        _job_body(ctx, request, owner, j)
        for j in ctx.service.list_jobs(owner, is_preview=is_preview)
    ]


def _job(
    ctx: ServerContext, request: Request, owner: str, job_id: str, is_preview: bool
) -> dict[str, Any]:
    jobs = ctx.service.list_jobs(owner, job_ids=[job_id], is_preview=is_preview)
    if not jobs:
        kind = "preview" if is_preview else "job run"
        raise ApiError(404, f"{kind} {job_id!r} not found")
    return _job_body(ctx, request, owner, jobs[0])


@router.get("/job_previews/", summary="Preview jobs")
def list_previews(ctx: Context, owner: Owner, request: Request) -> list[dict[str, Any]]:
    return _jobs(ctx, request, owner, True)


@router.get("/job_previews/{job_id}/", summary="One preview job")
def get_preview(job_id: str, ctx: Context, owner: Owner, request: Request) -> dict[str, Any]:
    return _job(ctx, request, owner, job_id, True)


@router.get("/job_runs/", summary="Standard (non-preview) jobs")
def list_job_runs(ctx: Context, owner: Owner, request: Request) -> list[dict[str, Any]]:
    return _jobs(ctx, request, owner, False)


@router.get("/job_runs/{job_id}/", summary="One standard job")
def get_job_run(job_id: str, ctx: Context, owner: Owner, request: Request) -> dict[str, Any]:
    return _job(ctx, request, owner, job_id, False)
