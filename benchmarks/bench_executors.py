"""The job service's two executors side by side: a local process pool and a Dask cluster,
the latter with results in a directory and on an S3 prefix (moto's server, a process).

All render the same batches through `JobService` (SQLite state) with two render
processes: the pool's two spawned processes, or two `dask worker` processes (one thread
each, no nanny) of a `dask scheduler`, all on 127.0.0.1. Each variant is warmed up once
(processes started, engine imported), then the variants alternate.

- small jobs: many 32x32 preview jobs, so a job's time is mostly the executor's
  overhead (submit, schedule, report, record): milliseconds per job;
- larger jobs: 512x512 jobs of several frames: frames per second.

    PYTHONPATH=src python benchmarks/bench_executors.py [--repeats 3] [--small 200] [--large 8]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect_synthdata.engine.executors import DaskExecutor, ProcessPool
from prefect_synthdata.engine.generators import get_generator
from prefect_synthdata.engine.jobs import JobService
from prefect_synthdata.engine.results import open_results
from prefect_synthdata.storage import StoreOptions

WORKERS = 2
#: Credentials moto accepts; set before the Dask workers start, so they upload with them.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def dask_cluster(log_dir: Path) -> Iterator[str]:
    """`dask scheduler` and WORKERS `dask worker` processes on 127.0.0.1; yields the address."""
    address = f"tcp://127.0.0.1:{free_port()}"
    common = {"stdout": (log_dir / "dask.log").open("ab"), "stderr": subprocess.STDOUT}
    dask = [sys.executable, "-m", "dask"]
    processes = [
        subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port",
                          address.rsplit(":", 1)[1], "--no-dashboard"], **common)  # type: ignore[call-overload]
    ]  # fmt: skip
    processes += [
        subprocess.Popen([*dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                          "--no-nanny", "--no-dashboard", "--memory-limit", "0"], **common)  # type: ignore[call-overload]
        for _ in range(WORKERS)
    ]  # fmt: skip
    try:
        from distributed import Client

        with Client(address, timeout="60s", set_as_default=False) as client:
            client.wait_for_workers(WORKERS, timeout=120)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """moto's S3 server as a process on 127.0.0.1, with a bucket `bench`; yields its endpoint."""
    import boto3
    import requests

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (log_dir / "moto.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                str(port)], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def params(width: int, frames: int) -> dict[str, Any]:
    return {**get_generator("shapes").spec.defaults(), "width": width, "height": width,
            "frames": frames}  # fmt: skip


def run_batch(service: JobService, jobs: list[dict[str, Any]], preview: bool) -> float:
    """Seconds from submission until every job is recorded finished (all must succeed)."""
    started = time.perf_counter()
    batch = service.submit("bench", f"b{time.monotonic_ns()}", "shapes", jobs, preview)
    status = service.wait(batch.batch_id, timeout=3600)
    elapsed = time.perf_counter() - started
    assert len(status.succeeded) == len(jobs), status.counts()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", type=int, default=200, help="32x32 preview jobs per batch")
    parser.add_argument("--large", type=int, default=8, help="512x512 jobs per batch")
    parser.add_argument("--frames", type=int, default=10, help="frames per large job")
    args = parser.parse_args()
    small = [params(32, 1) for _ in range(args.small)]
    large = [{**params(512, args.frames), "seed": i} for i in range(args.large)]

    os.environ.update(AWS_ENV)
    with (
        tempfile.TemporaryDirectory() as tmp,
        moto_server(Path(tmp)) as endpoint,
        dask_cluster(Path(tmp)) as address,
    ):
        on_s3 = StoreOptions(endpoint_url=endpoint)
        makers: dict[str, Callable[[Path], JobService]] = {
            "process pool": lambda d: JobService(d, WORKERS, ProcessPool(WORKERS)),
            "dask (2 workers)": lambda d: JobService(d, WORKERS, DaskExecutor(address)),
            "dask, results on S3": lambda d: JobService(
                d,
                WORKERS,
                DaskExecutor(address),
                results=open_results("s3://bench/renders", d / "results", on_s3),
            ),
        }
        services = {
            name: make(Path(tmp) / f"v{i}") for i, (name, make) in enumerate(makers.items())
        }
        for service in services.values():  # warm up: start processes, import the engine
            run_batch(service, small[: WORKERS * 2], True)
        times: dict[tuple[str, str], list[float]] = {}
        for repeat in range(args.repeats):
            order = list(services) if repeat % 2 == 0 else list(reversed(services))
            for name in order:
                times.setdefault((name, "small"), []).append(run_batch(services[name], small, True))
                times.setdefault((name, "large"), []).append(
                    run_batch(services[name], large, False)
                )
        for service in services.values():
            service.close()

    frames = args.large * args.frames
    print(f"median of {args.repeats} runs, {WORKERS} render processes each\n")
    print("| executor | per small job (ms) | small batch (s) | large batch (s) | frames/s |")
    print("|---|---:|---:|---:|---:|")
    medians = {key: statistics.median(values) for key, values in times.items()}
    for name in services:
        s, big = medians[(name, "small")], medians[(name, "large")]
        print(
            f"| {name} | {1000 * s / args.small:.2f} | {s:.2f} | {big:.2f} | {frames / big:.1f} |"
        )
    pool, *others = list(services)
    for name in others:
        print(
            f"\n{name} / pool: small-job overhead "
            f"{medians[(name, 'small')] / medians[(pool, 'small')]:.2f}x, "
            f"large-job time {medians[(name, 'large')] / medians[(pool, 'large')]:.2f}x"
        )


if __name__ == "__main__":
    main()
