"""End to end, reference server -> S3 on 127.0.0.1: the generate flow versus a seed-style
script, side by side in one run; then a re-run of the finished flow.

Each repeat renders a new batch of preview jobs for each variant (its own seed, so the
server renders both; the variants alternate so neither always goes first):

- ours: `generate_dataset` with the infinity provider and an `s3://` destination
  (default poll policy, sharded parallel downloads, streaming extraction, skip-unchanged
  concurrent uploads);
- seed-style: what the original client's users wrote: POST the batch, poll `summary/`
  every `T` seconds until no job is in progress (infinity-core's `await_completion`
  uses T = 10 s), then for each job GET its zip into memory, extract it, and upload the
  files one by one with boto3's `upload_file`.

The seed-style script runs once per `--baseline-intervals` value: 10 s (the original)
and 1 s (a fairer, equal-footing loop), reported separately.

The S3 server is moto's (its WSGI app on a werkzeug server, like `ThreadedMotoServer`,
in its own process) behind a counter of write requests and bytes; submissions and result downloads are
counted from the reference server's access log. The re-run of the flow with the same
request must submit nothing, download nothing and upload no data.

    PYTHONPATH=src python benchmarks/bench_end_to_end.py                 # 200 jobs, 3 repeats
    PYTHONPATH=src python benchmarks/bench_end_to_end.py --jobs 20 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import io
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
for _name, _value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                      "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
    os.environ.setdefault(_name, _value)

import boto3  # noqa: E402
import requests  # noqa: E402
from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from prefect_synthdata import batches  # noqa: E402
from prefect_synthdata.providers.infinity import InfinityProvider  # noqa: E402
from tests.reference_server import ServerProcess, run_reference_server  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log from the S3 server

TOKEN = "bench-e2e-token"
BUCKET = "bench-datasets"


class CountingS3:
    """moto's S3 on 127.0.0.1, counting write requests (PUT/POST) and their body bytes.

    It runs in its own process, as a real S3 would: in this one, its request handling
    would compete with the variants for the GIL.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.requests, self.bytes = context.Value("q", 0), context.Value("q", 0)
        ports: multiprocessing.Queue[int] = context.Queue()
        self.process = context.Process(
            target=serve_counting_s3, args=(self.requests, self.bytes, ports), daemon=True
        )
        self.process.start()
        self.endpoint = f"http://127.0.0.1:{ports.get(timeout=120)}"

    def snapshot(self) -> Counter[str]:
        return Counter(requests=self.requests.value, bytes=self.bytes.value)


def serve_counting_s3(requests: Any, body_bytes: Any, ports: Any) -> None:
    """Serve moto's S3 app on a free 127.0.0.1 port (put on `ports`), counting writes."""
    app = DomainDispatcherApplication(create_backend_app)

    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] in ("PUT", "POST"):
            with requests.get_lock():
                requests.value += 1
            with body_bytes.get_lock():
                body_bytes.value += int(environ.get("CONTENT_LENGTH") or 0)
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, counted, threaded=True)
    ports.put(server.server_address[1])
    server.serve_forever()


def server_counts(server: ServerProcess) -> Counter[str]:
    """Batch submissions and result downloads the reference server has logged so far."""
    log = server.log()
    return Counter(
        submissions=log.count('"POST /api/batch/ '), downloads=log.count('"GET /results/')
    )


def job_params(server: ServerProcess, jobs: int, size: int, seed: int) -> list[dict[str, Any]]:
    """The full per-job parameters (seeded, defaults filled) both variants render."""
    provider = InfinityProvider(server.url, SecretStr(TOKEN))
    params = {"width": size, "height": size}
    return batches.prepare_request(provider, "shapes", [params] * jobs, True, "p", seed).jobs


def run_ours(server: ServerProcess, s3: CountingS3, jobs: list[dict[str, Any]], label: str,
             home: Path) -> tuple[float, Any]:  # fmt: skip
    from prefect_synthdata.blocks import InfinityCredentials
    from prefect_synthdata.flows import GenerateRequest, generate_dataset
    from prefect_synthdata.storage import StoreOptions

    os.environ["SYNTHDATA_HOME"] = str(home)
    request = GenerateRequest(
        credentials=InfinityCredentials(url=server.url, token=SecretStr(TOKEN)),
        job_params=jobs, is_preview=True, name=label, dest=f"s3://{BUCKET}/ours",
        storage=StoreOptions(endpoint_url=s3.endpoint),
    )  # fmt: skip
    start = time.perf_counter()
    dataset = generate_dataset(request)
    return time.perf_counter() - start, (request, dataset)


def run_seed_style(server: ServerProcess, s3: CountingS3, jobs: list[dict[str, Any]], label: str,
                   interval: float, work: Path) -> float:  # fmt: skip
    """Submit, await completion every `interval` s, download each zip into memory, extract,
    upload file by file."""
    start = time.perf_counter()
    session = requests.Session()
    session.headers.update(server.headers(TOKEN))
    body = {"name": label, "job_runs": [
        {"name": "shapes", "is_preview": True, "param_values": p} for p in jobs]}  # fmt: skip
    batch = session.post(f"{server.url}/api/batch/", json=body, timeout=60).json()
    while True:
        summary = session.get(f"{server.url}/api/batch/{batch['id']}/summary/", timeout=60).json()
        runs = summary["job_runs"]
        if len(runs) == len(jobs) and not any(r["in_progress"] for r in runs):
            break
        time.sleep(interval)
    out = work / label
    for run in runs:
        content = requests.get(run["result_url"], timeout=60).content
        with zipfile.ZipFile(io.BytesIO(content)) as zf:
            zf.extractall(out)
    client = boto3.client("s3", endpoint_url=s3.endpoint)
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        client.upload_file(str(path), BUCKET, f"seed/{label}/{path.relative_to(out).as_posix()}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--size", type=int, default=128, help="image width and height")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-intervals", type=float, nargs="+", default=[10.0, 1.0])
    parser.add_argument("--workers", type=int, default=2, help="render workers of the server")
    args = parser.parse_args()

    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    s3 = CountingS3()
    boto3.client("s3", endpoint_url=s3.endpoint).create_bucket(Bucket=BUCKET)
    times: dict[str, list[float]] = {"ours": []}
    times.update({f"seed {t:g}s": [] for t in args.baseline_intervals})
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120), \
            temporary_settings({PREFECT_LOCAL_STORAGE_PATH: Path(tmp) / "results"}), \
            run_reference_server(Path(tmp) / "srv", tokens=[TOKEN], workers=args.workers) as server:  # fmt: skip
        root = Path(tmp)
        last: tuple[Any, Any] | None = None
        for repeat in range(args.repeats):
            order = list(times) if repeat % 2 == 0 else list(times)[::-1]
            for index, name in enumerate(order):
                seed = 1000 * repeat + index
                jobs = job_params(server, args.jobs, args.size, seed)
                if name == "ours":
                    seconds, last = run_ours(
                        server, s3, jobs, f"ours-{seed}", root / f"home-{repeat}"
                    )
                else:
                    interval = args.baseline_intervals[list(times).index(name) - 1]
                    seconds = run_seed_style(
                        server, s3, jobs, f"seed-{seed}", interval, root / "seed"
                    )
                times[name].append(seconds)
                print(f"  repeat {repeat + 1} {name:<10} {seconds:7.2f} s", flush=True)

        assert last is not None
        request, dataset = last
        before_server, before_s3 = server_counts(server), s3.snapshot()
        from prefect_synthdata.flows import generate_dataset

        start = time.perf_counter()
        again = generate_dataset(request)
        rerun = time.perf_counter() - start
        server_delta = server_counts(server) - before_server
        s3_delta = s3.snapshot() - before_s3

    print(f"\n{args.jobs} preview jobs of {args.size}x{args.size}, reference server ({args.workers} "
          f"render workers) -> moto S3, medians of {args.repeats} repeats:")  # fmt: skip
    ours = statistics.median(times["ours"])
    print(f"  {'ours (generate flow)':<28} {ours:7.2f} s")
    for t in args.baseline_intervals:
        baseline = statistics.median(times[f"seed {t:g}s"])
        print(
            f"  {f'seed-style, {t:g} s polls':<28} {baseline:7.2f} s"
            f"   ours/seed-style = {ours / baseline:.2f}"
        )
    print(f"\nre-run of the finished flow with the same request: {rerun:.2f} s")
    print(f"  batch submissions: {server_delta['submissions']}, result downloads: "
          f"{server_delta['downloads']}")  # fmt: skip
    print(f"  S3 write requests: {s3_delta['requests']} carrying {s3_delta['bytes']} bytes "
          f"(files_uploaded={again.files_uploaded}; same batch: {again.batch_id == dataset.batch_id})")  # fmt: skip


if __name__ == "__main__":
    main()
