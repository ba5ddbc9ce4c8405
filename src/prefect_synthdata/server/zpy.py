"""The zpy dialect (shared/protocols/zpy-api.md): projects, sims, datasets, simruns and files.

Form-encoded POSTs answered with 200, paginated lists with Django-style filters,
UUID ids, zpy timestamps. Every record is scoped to the caller's token.

Example (with the server running):
    $ curl -H 'Authorization: token T' 'http://127.0.0.1:8080/api/v1/sims/?name=shapes'
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from prefect_synthdata.engine.generators import GENERATORS
from prefect_synthdata.server.auth import Owner
from prefect_synthdata.server.context import Context
from prefect_synthdata.server.datasets import (
    MAX_AMOUNT,
    ZpyDatasets,
    config_params,
    find_sim,
    sim_record,
)
from prefect_synthdata.server.errors import ApiError
from prefect_synthdata.server.files import FileIndex
from prefect_synthdata.server.filters import ANY, apply_filters, page_body, page_window, paginate
from prefect_synthdata.server.store import DuplicateNameError

router = APIRouter(prefix="/api/v1", tags=["zpy"])
NAME = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
ID = Field(min_length=1, max_length=64)
Page = Annotated[int | None, Query(alias="page", ge=1, le=10**9)]
PageSize = Annotated[int | None, Query(alias="page-size", ge=1, le=1000)]


class ProjectForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = NAME


class DatasetForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = ID
    name: str = NAME


class GenerateForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str | None = Field(default=None, max_length=64)
    sim: str = Field(min_length=1, max_length=200, description="sim name or id")
    config: str = Field(
        default="{}", max_length=1_000_000, description="JSON object of parameter values"
    )
    amount: int = Field(ge=1, le=MAX_AMOUNT, description="datapoints (one frame each)")


def _datasets(request: Request) -> ZpyDatasets:
    datasets: ZpyDatasets = request.app.state.datasets
    return datasets


PROJECT_FIELDS = dict.fromkeys(["id", "name", "created_at"])
SIM_FIELDS = dict.fromkeys(
    ["id", "name", "state", "version", "description", "project", "created_at"]
)
DATASET_FIELDS = dict.fromkeys(
    ["id", "name", "project", "state", "sim", "amount", "error", "size_bytes", "created_at"]
)
SIMRUN_FIELDS = {
    **dict.fromkeys(
        ["id", "name", "sim", "sim_name", "project", "state", "datasets", "error", "created_at"]
    ),
    "config": ANY,
}


def _listing(
    request: Request, rows: list[dict[str, Any]], fields: dict[str, Any], skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in skip]
    return paginate(request, apply_filters(rows, params, fields))


def _project_body(project: dict[str, Any]) -> dict[str, Any]:
    return {"id": project["id"], "name": project["name"], "created_at": project["created"]}


def _dataset_body(dataset: dict[str, Any]) -> dict[str, Any]:
    sim = find_sim(dataset["sim"]) if dataset["sim"] else None
    return {
        "id": dataset["id"],
        "name": dataset["name"],
        "project": dataset["project"],
        "state": dataset["state"],
        "sim": sim_record(sim)["id"] if sim else None,
        "config": json.loads(dataset["config"]) if dataset["config"] else None,
        "amount": dataset["amount"],
        "error": dataset["error"],
        "size_bytes": dataset["size_bytes"],
        "created_at": dataset["created"],
    }


def _owned_project(ctx: Context, owner: str, project_id: str) -> dict[str, Any]:
    project = ctx.store.get_project(owner, project_id)
    if project is None:
        raise ApiError(404, f"project {project_id!r} not found")
    return project


def _owned_dataset(ctx: Context, owner: str, dataset_id: str) -> dict[str, Any]:
    dataset = ctx.store.get_dataset(owner, dataset_id)
    if dataset is None:
        raise ApiError(404, f"dataset {dataset_id!r} not found")
    return dataset


# -- projects -------------------------------------------------------------------------------
@router.get("/projects/", summary="Your projects")
def list_projects(
    ctx: Context, owner: Owner, request: Request, page: Page = None, page_size: PageSize = None
) -> dict[str, Any]:
    return _listing(
        request, [_project_body(p) for p in ctx.store.list_projects(owner)], PROJECT_FIELDS
    )


@router.post("/projects/", summary="Create a project")
def create_project(
    form: Annotated[ProjectForm, Form()], ctx: Context, owner: Owner
) -> dict[str, Any]:
    return _project_body(ctx.store.create_project(owner, form.name))


@router.get(
    "/projects/{project_id}", summary="One project (the client asks without a trailing slash)"
)
def get_project(project_id: str, ctx: Context, owner: Owner) -> dict[str, Any]:
    return _project_body(_owned_project(ctx, owner, project_id))


@router.get("/projects/{project_id}/", summary="One project", include_in_schema=False)
def get_project_slash(project_id: str, ctx: Context, owner: Owner) -> dict[str, Any]:
    return get_project(project_id, ctx, owner)


# -- sims -----------------------------------------------------------------------------------
@router.get("/sims/", summary="Sims (the engine's generators)")
def list_sims(
    ctx: Context,
    owner: Owner,
    request: Request,
    project: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    page: Page = None,
    page_size: PageSize = None,
) -> dict[str, Any]:
    rows = [sim_record(g) for _, g in sorted(GENERATORS.items())]
    if project is not None and ctx.store.get_project(owner, project) is None:
        rows = []  # sims are shared by all projects, but only your projects can be named
    return _listing(request, rows, SIM_FIELDS, skip=("project",))


@router.get("/sims/{sim}/", summary="One sim, by id or name")
def get_sim(sim: str, owner: Owner) -> dict[str, Any]:
    generator = find_sim(sim)
    if generator is None:
        raise ApiError(404, f"sim {sim!r} not found")
    return sim_record(generator)


# -- datasets -------------------------------------------------------------------------------
@router.get("/datasets/", summary="Your datasets")
def list_datasets(
    ctx: Context,
    owner: Owner,
    request: Request,
    project: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[str | None, Query(max_length=64)] = None,
    page: Page = None,
    page_size: PageSize = None,
) -> dict[str, Any]:
    return _listing(
        request, [_dataset_body(d) for d in ctx.store.list_datasets(owner)], DATASET_FIELDS
    )


@router.post("/datasets/", summary="Create a dataset (then POST its generate/)")
def create_dataset(
    form: Annotated[DatasetForm, Form()], ctx: Context, owner: Owner
) -> dict[str, Any]:
    if ctx.store.get_project(owner, form.project) is None:
        raise ApiError(400, f"project {form.project!r} not found")
    try:
        return _dataset_body(ctx.store.create_dataset(owner, form.project, form.name))
    except DuplicateNameError as exc:
        raise ApiError(400, str(exc), code="duplicate_name") from None


@router.get("/datasets/{dataset_id}/", summary="One dataset")
def get_dataset(dataset_id: str, ctx: Context, owner: Owner) -> dict[str, Any]:
    return _dataset_body(_owned_dataset(ctx, owner, dataset_id))


@router.post(
    "/datasets/{dataset_id}/generate/",
    summary="Render `amount` datapoints of a sim",
    description="On a CREATED dataset: links `amount` simruns, rendering those not rendered "
    "before. On a GENERATING_FAILED or PACKAGING_FAILED dataset (extension: zpy leaves "
    "them final), the same sim, config and amount recover it: its failed or result-less "
    "simruns are rendered again (each at most a few times) and it is packaged again. "
    "`rendered_again` (extension) says how many simruns were queued again.",
)
def generate_dataset(
    dataset_id: str,
    form: Annotated[GenerateForm, Form()],
    ctx: Context,
    owner: Owner,
    request: Request,
) -> dict[str, Any]:
    dataset = _owned_dataset(ctx, owner, dataset_id)
    if form.project is not None and form.project != dataset["project"]:
        raise ApiError(
            400,
            f"dataset {dataset_id} belongs to project {dataset['project']}, not {form.project!r}",
        )
    try:
        config = json.loads(form.config)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"config must be a JSON object: {exc}") from None
    if not isinstance(config, dict):
        raise ApiError(400, f"config must be a JSON object, got {type(config).__name__}")
    again = _datasets(request).generate(owner, dataset, form.sim, config, form.amount)
    return {**_dataset_body(_owned_dataset(ctx, owner, dataset_id)), "rendered_again": again}


@router.post(
    "/datasets/{dataset_id}/cancel/",
    summary="Cancel a dataset's generation (extension: not in the original API)",
    description="Moves a CREATED or GENERATING dataset to `CANCELLED` (the state zpy names), "
    "drops its queued simruns and stops its running ones; their frames are credited back to "
    "the quota. A READY or failed dataset is left as it is. Idempotent.",
)
def cancel_dataset(dataset_id: str, ctx: Context, owner: Owner, request: Request) -> dict[str, Any]:
    _owned_dataset(ctx, owner, dataset_id)
    cancelled = _datasets(request).cancel(owner, dataset_id)
    return {**_dataset_body(_owned_dataset(ctx, owner, dataset_id)), "cancelled_simruns": cancelled}


@router.get("/datasets/{dataset_id}/download/", summary="A signed link to the dataset's zip")
def dataset_download_link(
    dataset_id: str, ctx: Context, owner: Owner, request: Request
) -> dict[str, Any]:
    dataset = _owned_dataset(ctx, owner, dataset_id)
    if dataset["state"] != "READY":
        raise ApiError(
            400, f"dataset {dataset_id} is {dataset['state']}; only READY datasets download"
        )
    link = ctx.signed_url(
        request, "result_dataset_zip", f"dataset:{dataset_id}", owner, dataset_id=dataset_id
    )
    return {
        "id": dataset_id,
        "name": dataset["name"],
        "redirect_link": link,
        "size_bytes": dataset["size_bytes"],
        "sha256": dataset["sha256"],
    }


# -- simruns and files ---------------------------------------------------------------------
def _config_filter(runs: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """The `config=k:v,k:v` filter of `zpy.preview`: top-level keys, values compared as str().

    Keys a sim does not have match none of its runs.
    """
    wanted = []
    for pair in filter(None, query.split(",")):
        key, sep, value = pair.partition(":")
        if not sep:
            raise ApiError(400, f"config filter must be 'key:value,...', got {pair!r}")
        wanted.append((key, value))
    selected = []
    for run in runs:
        generator = find_sim(run["sim"])
        if generator is None:
            continue
        try:
            params = config_params(generator.spec, dict(wanted))
        except ApiError:
            continue
        if all(str(run["config"].get(k)) == v for k, v in params.items()):
            selected.append(run)
    return selected


@router.get("/simruns/", summary="Your simruns (one rendered datapoint each)")
def list_simruns(
    ctx: Context,
    owner: Owner,
    request: Request,
    datasets: Annotated[str | None, Query(max_length=64)] = None,
    sim: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=64)] = None,
    config: Annotated[str | None, Query(max_length=10_000)] = None,
    page: Page = None,
    page_size: PageSize = None,
) -> dict[str, Any]:
    runs = _datasets(request).simruns(owner)
    if config is not None:
        runs = _config_filter(runs, config)
    return _listing(request, runs, SIMRUN_FIELDS, skip=("config",))


@router.get("/simruns/{simrun_id}/", summary="One simrun")
def get_simrun(simrun_id: str, owner: Owner, request: Request) -> dict[str, Any]:
    for run in _datasets(request).simruns(owner):
        if run["id"] == simrun_id:
            return run
    raise ApiError(404, f"simrun {simrun_id!r} not found")


def _with_url(ctx: Context, owner: str, request: Request, record: dict[str, Any]) -> dict[str, Any]:
    run_id, name = record["path"].split("/", 1)
    url = ctx.signed_url(
        request, "result_file", f"file:{record['path']}", owner, simrun_id=run_id, name=name
    )
    return {**record, "url": url}


def _files(request: Request) -> FileIndex:
    files: FileIndex = request.app.state.files
    return files


@router.get("/files/", summary="Files of finished simruns, with signed URLs")
async def list_files(
    ctx: Context,
    owner: Owner,
    request: Request,
    run__sim: Annotated[str | None, Query(max_length=64)] = None,
    path__icontains: Annotated[str | None, Query(max_length=200)] = None,
    page: Page = None,
    page_size: PageSize = None,
) -> JSONResponse:
    page_number, size = page_window(request)
    count, records = _files(request).page(
        owner, request.query_params.multi_items(), page_number, size
    )
    results = [_with_url(ctx, owner, request, r) for r in records]
    # a JSONResponse: FastAPI's response validation and encoding would double the time of a page
    return JSONResponse(page_body(request, count, page_number, size, results))


@router.get("/files/{file_id}/", summary="One file")
def get_file(file_id: str, ctx: Context, owner: Owner, request: Request) -> dict[str, Any]:
    record = _files(request).get(owner, file_id)
    if record is None:
        raise ApiError(404, f"file {file_id!r} not found")
    return _with_url(ctx, owner, request, record)
