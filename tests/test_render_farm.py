"""Rendering on a real Dask cluster (a scheduler and two worker processes on 127.0.0.1).

The generate flow runs once on the process pool and then with the local provider and
the reference server pointed at the cluster: the jobs render in the workers' processes
and the published datasets are byte-identical, with results in a shared directory or on
an S3 prefix (moto's server over HTTP; the reference server then hands out pre-signed S3
result URLs). A worker killed mid-batch loses nothing. A cancelled batch's running tasks
stop within seconds.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from prefect_synthdata import GenerateRequest
from prefect_synthdata.blocks import InfinityCredentials, ZpyCredentials
from prefect_synthdata.engine.executors import DaskExecutor
from prefect_synthdata.engine.generators import get_generator
from prefect_synthdata.flows.generate import generate_dataset
from prefect_synthdata.models import BatchStatus
from prefect_synthdata.providers.local import close_job_services, job_service
from prefect_synthdata.tasks import STATUS_LISTENERS
from tests.dask_cluster import DaskCluster, run_dask_cluster
from tests.reference_server import run_reference_server
from tests.server.conftest import Api, wait_for
from tests.storage.conftest import AWS_ENV, aws_env, bucket, moto_endpoint, s3_client  # noqa: F401

PARAMS = {"width": 96, "height": 64, "frames": 2}
DATA_ONLY = {"manifest.json", "_SUCCESS"}  # name the batch (ids differ per service)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    with pytest.MonkeyPatch.context() as env:  # the workers' own credentials, for S3 results
        for name, value in AWS_ENV.items():
            env.setenv(name, value)
        cluster_context = run_dask_cluster(tmp_path_factory.mktemp("dask"), workers=2)
        cluster = cluster_context.__enter__()
    try:
        yield cluster
    finally:
        cluster_context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def pool_dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The reference: the same request rendered by the local process pool."""
    home = tmp_path_factory.mktemp("pool-home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SYNTHDATA_HOME", str(home))
        result = generate_dataset(request(home / "datasets", num_jobs=6))
    close_job_services(under=home)
    return published_files(result.uri)


def request(dest: Path, num_jobs: int, **fields: object) -> GenerateRequest:
    return GenerateRequest(
        num_jobs=num_jobs,
        params=PARAMS,
        dest=str(dest),
        name="farm",
        version="v1",
        poll_initial_seconds=0.05,
        poll_cap_seconds=0.2,
        **fields,
    )


def published_files(uri: str) -> dict[str, bytes]:
    root = Path(uri)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in DATA_ONLY
    }


def worker_pids(cluster: DaskCluster) -> set[int]:
    return {w.pid for w in cluster.workers}


def pids_of(rendered_by: list[str | None]) -> set[int]:
    assert all(rendered_by), rendered_by  # every job records the process that rendered it
    return {int(str(r).rsplit(":", 1)[1]) for r in rendered_by}


def test_local_provider_renders_on_the_cluster_byte_identical(
    farm: DaskCluster,
    pool_dataset: dict[str, bytes],
    tmp_path: Path,
    synthdata_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNTHDATA_DASK_ADDRESS", farm.address)
    result = generate_dataset(request(tmp_path / "datasets", num_jobs=6))

    assert published_files(result.uri) == pool_dataset
    service = job_service(synthdata_home / "local")
    rendered = pids_of(list(service.rendered_by(result.batch_id).values()))
    assert rendered <= worker_pids(farm) and len(rendered) == 2  # both workers, never this process
    assert sorted(service.worker_pids()) == sorted(worker_pids(farm))


def test_reference_server_renders_on_the_cluster_byte_identical(
    farm: DaskCluster, pool_dataset: dict[str, bytes], tmp_path: Path
) -> None:
    data = tmp_path / "srv"
    with run_reference_server(
        data, tokens=["farm-token"], extra_env={"SYNTHDATA_SERVER_DASK_ADDRESS": farm.address}
    ) as server:
        service = InfinityCredentials(url=server.url, token=SecretStr("farm-token"))
        result = generate_dataset(request(tmp_path / "datasets", num_jobs=6, credentials=service))
    assert published_files(result.uri) == pool_dataset
    with sqlite3.connect(data / "engine" / "jobs.sqlite3") as db:
        rendered = [r for (r,) in db.execute("SELECT rendered_by FROM jobs")]
    assert len(rendered) == 6 and pids_of(rendered) <= worker_pids(farm)


def test_reference_server_with_results_on_s3_hands_out_pre_signed_urls(
    farm: DaskCluster,
    pool_dataset: dict[str, bytes],
    bucket: str,  # noqa: F811
    moto_endpoint: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = tmp_path / "srv"
    env = {
        "SYNTHDATA_SERVER_DASK_ADDRESS": farm.address,
        "SYNTHDATA_SERVER_RESULTS_URL": f"s3://{bucket}/renders",
        "SYNTHDATA_SERVER_RESULTS_ENDPOINT_URL": moto_endpoint,
        **AWS_ENV,
    }
    with run_reference_server(data, tokens=["farm-token"], extra_env=env) as server:
        service = InfinityCredentials(url=server.url, token=SecretStr("farm-token"))
        result = generate_dataset(request(tmp_path / "datasets", num_jobs=6, credentials=service))
        runs = Api(server, "farm-token").get(f"api/batch/{result.batch_id}/summary/").json()

    assert published_files(result.uri) == pool_dataset
    urls = [urlsplit(run["result_url"]) for run in runs["job_runs"]]
    assert {u.netloc for u in urls} == {urlsplit(moto_endpoint).netloc}  # pre-signed on S3
    assert all("X-Amz-Signature=" in u.query for u in urls)  # SigV4
    keys = {o["Key"] for o in s3_client(moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"]}
    assert {f"renders/{run['id']}.zip" for run in runs["job_runs"]} <= keys
    assert not list((data / "engine").glob("results/*"))  # nothing rendered on the server
    with sqlite3.connect(data / "engine" / "jobs.sqlite3") as db:
        rendered = [r for (r,) in db.execute("SELECT rendered_by FROM jobs")]
    assert len(rendered) == 6 and pids_of(rendered) <= worker_pids(farm)


def test_zpy_datasets_are_packaged_from_results_on_s3(
    bucket: str,  # noqa: F811
    moto_endpoint: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """zpy keeps server-signed URLs: the server packages the dataset zip from the jobs'
    objects on S3 (rendered here by its own process pool, which writes to S3 too); the
    dataset is the one a server with a results directory makes."""
    on_s3 = {
        "SYNTHDATA_SERVER_RESULTS_URL": f"s3://{bucket}/zpy",
        "SYNTHDATA_SERVER_RESULTS_ENDPOINT_URL": moto_endpoint,
        **AWS_ENV,
    }
    published, listed = [], []
    for name, env in (("dir", {}), ("s3", on_s3)):
        with run_reference_server(tmp_path / name, tokens=["zpy"], extra_env=env) as server:
            service = ZpyCredentials(url=server.url, token=SecretStr("zpy"))
            dest = tmp_path / f"datasets-{name}"
            published.append(
                published_files(generate_dataset(request(dest, 3, credentials=service)).uri)
            )
            page = Api(server, "zpy").get("api/v1/files/", params={"page-size": 1000}).json()
            listed.append(sorted((f["name"], f["size_bytes"]) for f in page["results"]))
    assert published[0] == published[1]
    assert listed[0] == listed[1] and len(listed[0]) == 3 * (2 + 2 * 4)  # files/ from S3 too
    listing = s3_client(moto_endpoint).list_objects_v2(Bucket=bucket, Prefix="zpy/")
    assert len([o for o in listing["Contents"] if o["Key"].endswith(".zip")]) == 3
    assert not list((tmp_path / "s3" / "engine").glob("results/*"))


@pytest.mark.parametrize("results", ["directory", "s3"])
def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(
    results: str,
    bucket: str,  # noqa: F811
    moto_endpoint: str,  # noqa: F811
    pool_dataset: dict[str, bytes],
    tmp_path: Path,
    synthdata_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with run_dask_cluster(tmp_path / "dask", workers=2) as cluster:
        victim = cluster.workers[0].pid
        monkeypatch.setenv("SYNTHDATA_DASK_ADDRESS", cluster.address)
        if results == "s3":
            monkeypatch.setenv("SYNTHDATA_RESULTS_URL", f"s3://{bucket}/farm")
            monkeypatch.setenv("SYNTHDATA_RESULTS_ENDPOINT_URL", moto_endpoint)

        def kill_victim_while_it_renders(status: BatchStatus) -> None:
            if status.remaining and cluster.workers[0].poll() is None:
                cluster.kill_worker(0)  # at the first status: both workers hold tasks

        STATUS_LISTENERS.append(kill_victim_while_it_renders)
        try:
            result = generate_dataset(request(tmp_path / "datasets", num_jobs=6))
        finally:
            STATUS_LISTENERS.remove(kill_victim_while_it_renders)
        assert cluster.workers[0].poll() is not None  # it was killed while jobs remained
        rendered = job_service(synthdata_home / "local").rendered_by(result.batch_id)
        close_job_services(under=synthdata_home)  # before its scheduler goes away

    assert published_files(result.uri) == pool_dataset
    if results == "s3":
        listing = s3_client(moto_endpoint).list_objects_v2(Bucket=bucket, Prefix="farm/")
        jobs = {o["Key"][5:-4] for o in listing["Contents"] if o["Key"].endswith(".zip")}
        assert not (synthdata_home / "local" / "results").exists()
    else:
        folder = synthdata_home / "local" / "results"
        jobs = {p.name for p in folder.iterdir() if "." not in p.name}
    assert sorted(jobs) == sorted(rendered)
    assert pids_of(list(rendered.values())) == {cluster.workers[1].pid}  # the victim's were redone
    assert victim not in pids_of(list(rendered.values()))


def test_cancel_stops_the_running_tasks_of_the_batch_within_seconds(
    farm: DaskCluster, synthdata_home: Path
) -> None:
    service = job_service(synthdata_home / "local", dask_address=farm.address)
    executor = service.executor
    assert isinstance(executor, DaskExecutor)
    slow = {
        **get_generator("shapes").spec.defaults(),
        "width": 512,
        "height": 512,
        "frames": 1500,
    }  # ~40 s a job
    batch = service.submit("local", "slow", "shapes", [slow] * 4, is_preview=False)
    of_batch = lambda keys: [k for k in keys if any(j in k for j in batch.job_ids)]  # noqa: E731
    wait_for(lambda: len(of_batch(executor.executing_keys())) == 2)  # both workers render
    assert service.frames_submitted("local") == 4 * 1500

    started = time.monotonic()
    cancelled = service.cancel("local", batch.batch_id)
    assert sorted(cancelled) == sorted(batch.job_ids)  # a job takes far longer than this
    wait_for(lambda: not of_batch(executor.executing_keys()), 10)  # the renders have stopped
    wait_for(lambda: not of_batch(executor.task_keys()), 10)  # and the scheduler holds none
    assert time.monotonic() - started < 10
    status = service.batch_status("local", batch.batch_id)
    assert status.done and sorted(status.cancelled) == sorted(batch.job_ids)
    assert service.frames_submitted("local") == 0  # the cancelled frames are credited
    assert farm.live_workers() == 2  # the workers stay up for other work

    quick = {**slow, "width": 64, "height": 48, "frames": 1}
    after = service.submit("local", "after", "shapes", [quick] * 2, is_preview=False)
    assert service.wait(after.batch_id, timeout=30).succeeded == after.job_ids
