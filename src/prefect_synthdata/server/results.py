"""Signed result downloads: job zips (Infinity), dataset zips and single files (zpy).

No auth header: the `expires` + `sig` query parameters are the credential. Answers
carry `Content-Length`, `Accept-Ranges: bytes` (resumable with `Range`), an `ETag`
that is the quoted sha256 of the body, and the same digest in `X-Checksum-Sha256`.

Example (with the server running):
    $ curl -O "$(curl -s -H 'Authorization: Token T' http://127.0.0.1:8080/api/batch/B/summary/ \\
          | jq -r '.job_runs[0].result_url')"
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from prefect_synthdata.dataset.manifest import sha256_file
from prefect_synthdata.exceptions import NotFoundError
from prefect_synthdata.server.archives import Archive
from prefect_synthdata.server.context import Context, ServerContext
from prefect_synthdata.server.errors import ApiError
from prefect_synthdata.server.signing import SignatureError

router = APIRouter(prefix="/results", tags=["results"])
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
Expires = Query(description="expiry, seconds since the epoch", max_length=20)
Signature = Query(description="HMAC signature", max_length=128)


def _check(ctx: ServerContext, resource: str, owner: str | None, expires: str, sig: str) -> str:
    if owner is None:
        raise ApiError(404, f"{resource.split(':')[0]} not found")
    try:
        ctx.signer.verify(resource, owner, expires, sig)
    except SignatureError as exc:
        raise ApiError(403, str(exc)) from None
    return owner


def _zip_response(archive: Archive, filename: str) -> FileResponse:
    return FileResponse(
        archive.path,
        media_type="application/zip",
        filename=filename,
        headers={"ETag": f'"{archive.sha256}"', "X-Checksum-Sha256": archive.sha256},
    )


@router.api_route(
    "/jobs/{job_id}.zip", methods=["GET", "HEAD"], name="result_job_zip", summary="A job's zip"
)
def download_job(
    job_id: str, ctx: Context, expires: str = Expires, sig: str = Signature
) -> FileResponse:
    _check(ctx, f"job:{job_id}", ctx.service.job_owner(job_id), expires, sig)
    try:
        job_dir = ctx.service.result_dir(job_id)
    except NotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    return _zip_response(ctx.archives.job_zip(job_id, job_dir), f"{job_id}.zip")


@router.api_route(
    "/datasets/{dataset_id}.zip",
    methods=["GET", "HEAD"],
    name="result_dataset_zip",
    summary="A dataset's zip",
)
def download_dataset(
    dataset_id: str, ctx: Context, expires: str = Expires, sig: str = Signature
) -> FileResponse:
    dataset = ctx.store.get_dataset(None, dataset_id)
    _check(ctx, f"dataset:{dataset_id}", dataset["owner"] if dataset else None, expires, sig)
    path = ctx.archives.root / "datasets" / f"{dataset_id}.zip"
    if dataset is None or dataset["state"] != "READY" or not path.is_file():
        raise ApiError(404, f"dataset {dataset_id!r} has no packaged result")
    archive = Archive(path=path, size=path.stat().st_size, sha256=dataset["sha256"])
    stem = UNSAFE_CHARS.sub("_", dataset["name"])[:100]
    return _zip_response(archive, f"{stem}-{dataset_id[:8]}.zip")


@router.api_route(
    "/files/{simrun_id}/{name}",
    methods=["GET", "HEAD"],
    name="result_file",
    summary="One file of a simrun",
)
def download_file(
    simrun_id: str, name: str, ctx: Context, expires: str = Expires, sig: str = Signature
) -> FileResponse:
    _check(ctx, f"file:{simrun_id}/{name}", ctx.store.simrun_owner(simrun_id), expires, sig)
    try:
        job_dir: Path = ctx.service.result_dir(simrun_id)
    except NotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    path = job_dir / name
    if not SAFE_NAME.fullmatch(name) or not path.is_file():
        raise ApiError(404, f"file {name!r} not found in simrun {simrun_id}")
    digest = sha256_file(path)
    return FileResponse(
        path, filename=name, headers={"ETag": f'"{digest}"', "X-Checksum-Sha256": digest}
    )
