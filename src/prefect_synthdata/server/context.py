"""The server's long-lived parts, opened once per process and shared by every route.

Example:
    >>> import tempfile, pathlib
    >>> from pydantic import SecretStr
    >>> from prefect_synthdata.server.config import ServerConfig
    >>> ctx = ServerContext.open(ServerConfig(data_dir=pathlib.Path(tempfile.mkdtemp()), tokens=[SecretStr("t")], workers=1))
    >>> ctx.store.list_projects(ctx.tokens.owners[0])[0]["name"]
    'default'
    >>> ctx.close()
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from prefect_synthdata.engine.executors import open_executor
from prefect_synthdata.engine.jobs import JobService, default_workers
from prefect_synthdata.engine.results import open_results, results_location
from prefect_synthdata.server.archives import ArchiveStore
from prefect_synthdata.server.auth import TokenRegistry
from prefect_synthdata.server.config import ServerConfig
from prefect_synthdata.server.quota import FrameQuota
from prefect_synthdata.server.signing import UrlSigner
from prefect_synthdata.server.store import ZpyStore


@dataclass
class ServerContext:
    """Job service, zpy records, archives, URL signer, quota and tokens of one data dir."""

    config: ServerConfig
    service: JobService
    store: ZpyStore
    archives: ArchiveStore
    signer: UrlSigner
    quota: FrameQuota
    tokens: TokenRegistry

    @classmethod
    def open(cls, config: ServerConfig) -> ServerContext:
        """Open (or create) everything under `config.data_dir`; unfinished jobs resume here."""
        data_dir = config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        workers = config.workers or default_workers()
        results = open_results(
            results_location(config.results_dir, config.results_url),
            default=data_dir / "engine" / "results",
            options=config.results_options,
        )
        service = JobService(
            data_dir / "engine",
            workers=workers,
            executor=open_executor(workers, config.dask_address),
            results=results,
        )
        store = ZpyStore(data_dir / "zpy.sqlite3")
        tokens = TokenRegistry(config.tokens)
        for owner in tokens.owners:
            store.default_project(owner)
        return cls(
            config=config,
            service=service,
            store=store,
            archives=ArchiveStore(data_dir / "archives"),
            signer=UrlSigner.load(data_dir, config.url_ttl_seconds),
            quota=FrameQuota(service, config.quota_frames),
            tokens=tokens,
        )

    def job_zip_url(self, request: Request, job_id: str, owner: str) -> str:
        """The result URL of a job's zip: pre-signed on S3 when the results live there,
        else a signed URL of this server's own route; both expire after the URL TTL."""
        presigned = self.service.results.zip_url(job_id, self.signer.ttl_seconds)
        return presigned or self.signed_url(
            request, "result_job_zip", f"job:{job_id}", owner, job_id=job_id
        )

    def signed_url(
        self, request: Request, route: str, resource: str, owner: str, **path: str
    ) -> str:
        """An absolute, signed, expiring URL of a result route (no auth header needed).

        Built on `config.public_url`, never on the request's `Host` header (which the client chooses).
        """
        base = self.config.public_url + route_path(request.app, route, **path)
        return f"{base}?{self.signer.query(resource, owner)}"

    def close(self) -> None:
        self.service.close()
        self.store.close()


@functools.lru_cache(maxsize=64)
def _route_template(app: FastAPI, route: str, names: tuple[str, ...]) -> str:
    return app.url_path_for(route, **{name: "{" + name + "}" for name in names})


def route_path(app: FastAPI, route: str, **params: str) -> str:
    """`app.url_path_for(route, **params)`, the route searched for once, not on every call.

    Example:
        >>> app = FastAPI()
        >>> app.get("/results/{job_id}.zip", name="job_zip")(lambda job_id: None) and None
        >>> route_path(app, "job_zip", job_id="j1")
        '/results/j1.zip'
    """
    if not all(value and "/" not in value for value in params.values()):
        raise ValueError(f"path parameters must be non-empty and without '/': {params}")
    return _route_template(app, route, tuple(sorted(params))).format(**params)


async def get_context(request: Request) -> ServerContext:
    """FastAPI dependency: the app's `ServerContext`."""
    context: ServerContext = request.app.state.context
    return context


Context = Annotated[ServerContext, Depends(get_context)]
