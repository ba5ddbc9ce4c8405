"""The FastAPI application: both dialects, signed results, JSON errors, optional faults.

`create_app(config)` returns an ASGI app; state under `config.data_dir` is opened at
startup (unfinished jobs of an earlier run resume) and closed at shutdown. The
OpenAPI document is at `/openapi.json`, interactive docs at `/docs`.

Example:
    >>> import tempfile, pathlib
    >>> from fastapi.testclient import TestClient
    >>> from pydantic import SecretStr
    >>> config = ServerConfig(data_dir=pathlib.Path(tempfile.mkdtemp()), tokens=[SecretStr("t")], workers=1)
    >>> with TestClient(create_app(config)) as client:
    ...     {"name": "shapes"} in client.get("/api/jobs/", headers={"Authorization": "Token t"}).json()
    True
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from prefect_synthdata.server import infinity, results, zpy
from prefect_synthdata.server.body_limit import BodyLimit
from prefect_synthdata.server.config import ServerConfig
from prefect_synthdata.server.context import ServerContext
from prefect_synthdata.server.datasets import ZpyDatasets
from prefect_synthdata.server.errors import install_error_handlers
from prefect_synthdata.server.faults import FaultMiddleware
from prefect_synthdata.server.files import FileIndex


def create_app(config: ServerConfig) -> FastAPI:
    """The reference server for `config` (faults applied outermost when enabled)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = ServerContext.open(config)
        datasets = ZpyDatasets(context)
        app.state.context, app.state.tokens, app.state.datasets = context, context.tokens, datasets
        app.state.files = FileIndex(context)
        app.state.files.catch_up()  # files of simruns finished before this start (upgrades too)
        datasets.start()
        try:
            yield
        finally:
            datasets.stop()
            context.close()

    app = FastAPI(
        title="prefect-synthdata reference server",
        version="1",
        description="The Infinity and zpy synthetic-data APIs served over the prefect-synthdata engine.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(infinity.router)
    app.include_router(zpy.router)
    app.include_router(results.router)

    @app.get("/healthz", tags=["health"], summary="Readiness probe (no auth)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodyLimit)
    if config.faults.enabled:
        app.add_middleware(FaultMiddleware, config=config.faults)
    return app
