"""Hostile replies for both HTTP dialects, scripted on a `ScriptedServer` (127.0.0.1).

Each builder scripts one hostile answer into a server and returns the provider call that
meets it; `tests/providers/test_hostile_server.py` and the bad-input catalogue run them.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from prefect_synthdata import batches
from prefect_synthdata.models import BatchRef
from prefect_synthdata.providers.http import RetryPolicy
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.zpy import ZpyProvider
from tests.providers.scripted_server import Reply, ScriptedServer

TOKEN = "hostile-token"
NAME = "hostile-0123456789abcdef"
FAST = RetryPolicy(attempts=3, initial_seconds=0.01, cap_seconds=0.02, deadline_seconds=3)

#: A hostile call: given the server, its URL and a work folder, run the provider step.
Call = Callable[[ScriptedServer, str, Path], Any]


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def infinity(url: str, retry: RetryPolicy = FAST) -> InfinityProvider:
    return InfinityProvider(url, SecretStr(TOKEN), retry)


def zpy(url: str, work: Path, retry: RetryPolicy = FAST) -> ZpyProvider:
    return ZpyProvider(url, SecretStr(TOKEN), "p1", work / "cache", retry)


# ------------------------------------------------------------------ infinity


def infinity_batch(batch: dict[str, Any]) -> Call:
    """find_batch where the server lists batch b1 and describes it as `batch`."""

    def call(state: ScriptedServer, url: str, work: Path) -> Any:
        state.script("/api/batch/", Reply(200, body([{"id": "b1", "name": NAME}])))
        state.script("/api/batch/b1/", Reply(200, body(batch)))
        return infinity(url).find_batch(NAME)

    return call


def infinity_listed(listing: Any) -> Call:
    """find_batch where the batch list is `listing`."""

    def call(state: ScriptedServer, url: str, work: Path) -> Any:
        state.script("/api/batch/", Reply(200, body(listing)))
        return infinity(url).find_batch(NAME)

    return call


def infinity_summary(summary: Any) -> Call:
    """Downloading job j1 of batch b1 where the summary is `summary`."""

    def call(state: ScriptedServer, url: str, work: Path) -> Any:
        state.script("/api/batch/b1/summary/", Reply(200, body(summary)))
        batch = BatchRef(batch_id="b1", name=NAME, generator="shapes", job_ids=["j1"])
        return batches.download_jobs(infinity(url), batch, ["j1"], work / "jobs")

    return call


def job(**fields: Any) -> dict[str, Any]:
    return {"id": "j1", "name": "shapes", "is_preview": False, **fields}


# ------------------------------------------------------------------ zpy


def zpy_datasets(*datasets: dict[str, Any]) -> Call:
    """find_batch where the datasets named NAME are `datasets`."""

    def call(state: ScriptedServer, url: str, work: Path) -> Any:
        state.script("/api/v1/datasets/", Reply(200, body({"results": list(datasets)})))
        return zpy(url, work).find_batch(NAME)

    return call


def zpy_ready(state: ScriptedServer, url: str, simruns: list[dict[str, Any]]) -> None:
    """Script dataset d1, READY, with `simruns`, of sim `shapes`."""
    state.script("/api/v1/datasets/", Reply(200, body({"results": [{"id": "d1", "name": NAME}]})))
    state.script("/api/v1/datasets/d1/", Reply(200, body({"id": "d1", "state": "READY"})))
    state.script("/api/v1/simruns/", Reply(200, body({"results": simruns, "next": None})))
    sims = {"results": [{"id": "s1", "name": "shapes", "run_kwargs": []}]}
    state.script("/api/v1/sims/", Reply(200, body(sims)))


def zpy_simruns(*simruns: dict[str, Any]) -> Call:
    """find_batch of a READY dataset whose simruns are `simruns`."""

    def call(state: ScriptedServer, url: str, work: Path) -> Any:
        zpy_ready(state, url, list(simruns))
        return zpy(url, work).find_batch(NAME)

    return call


def zpy_self_paging() -> Call:
    """find_batch where the dataset list's `next` points back at itself, forever."""

    def call(state: ScriptedServer, url: str, work: Path) -> Any:
        page = {"results": [], "next": f"{url}api/v1/datasets/?page=2"}
        state.script("/api/v1/datasets/", Reply(200, body(page)))
        return zpy(url, work).find_batch(NAME)

    return call


def zumo_zip(images: dict[str, Any]) -> bytes:
    """A dataset zip with simrun folder r1 whose zumo annotations list `images`."""
    buffer = io.BytesIO()
    zumo = {"images": images, "categories": {}, "annotations": []}
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("r1/_annotations.zumo.json", json.dumps(zumo))
        zf.writestr("r1/image.000000.rgb.png", b"not really a png")
    return buffer.getvalue()


def zpy_download(link: dict[str, Any] | None, archive: bytes, reply: Reply | None = None) -> Call:
    """Fetching simrun r1 of READY dataset d1 whose download link is `link` (default: the
    scripted `files/d1.zip`, size announced) and whose zip is `archive`."""

    def call(state: ScriptedServer, url: str, work: Path) -> Any:
        zpy_ready(state, url, [{"id": "r1", "sim": "shapes", "config": {"seed": 1}}])
        announced = link or {"redirect_link": f"{url}files/d1.zip", "size_bytes": len(archive)}
        state.script("/api/v1/datasets/d1/download/", Reply(200, body(announced)))
        state.script("/files/d1.zip", reply or Reply(200, archive))
        provider = zpy(url, work)
        batch = provider.find_batch(NAME)
        assert batch is not None
        return batches.download_jobs(provider, batch, ["r1"], work / "jobs")

    return call
