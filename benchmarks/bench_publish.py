"""Publish one generated dataset to an S3 server on 127.0.0.1 two ways, side by side:
prefect-synthdata's `publish` (S3Store on boto3 managed transfers) and a plain boto3
`upload_file` loop with boto3's defaults. Prints medians, the throughput ratio and each
uploader's peak RSS.

    python benchmarks/bench_publish.py            # ~1 GB in 4,000 files, 3 repeats
    python benchmarks/bench_publish.py --quick    # ~64 MB in 400 files, 1 repeat (smoke run)

The S3 server is moto (`python -m moto.server`) in its own process, reset between runs;
it keeps objects in memory, and its memory is not counted. Each upload runs in a fresh
child process, so its peak RSS (`ru_maxrss`) is that uploader's alone. The dataset is
random bytes (incompressible, like PNGs), mostly 64-448 KiB files plus a few 16 MiB ones
that go up as multipart uploads; it is made once and kept under --workdir.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
SRC = Path(__file__).resolve().parents[1] / "src"
MIB = 1024 * 1024
BUCKET = "bench"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def make_dataset(folder: Path, total_mb: int, files: int) -> None:
    """Random-bytes files adding up to about `total_mb`, plus manifest.json."""
    sys.path.insert(0, str(SRC))
    from prefect_synthdata.dataset.manifest import Manifest, file_entry

    if (folder / "manifest.json").is_file():
        return
    rng = random.Random(0)
    big = max(1, files // 500)
    big_size = 16 * MIB
    small_mean = max(4096, (total_mb * MIB - big * big_size) // max(1, files - big))
    entries = []
    for index in range(files):
        size = big_size if index < big else rng.randint(small_mean // 4, small_mean * 7 // 4)
        relative = f"images/{index // 100:06d}/image.{index:06d}.rgb.png"
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        entries.append(file_entry(path, relative))
    manifest = Manifest(
        name="bench", version="v1", provider="bench", generator="random-bytes", batch_id="bench",
        is_preview=False, num_jobs=files, num_images=files, num_annotations=0, categories=[],
        job_params=[], files=entries,
    )  # fmt: skip
    (folder / "manifest.json").write_bytes(manifest.to_bytes())


def child(variant: str, endpoint: str, folder: Path) -> None:
    """Upload the dataset once with `variant`; print seconds and this process's peak RSS."""
    if variant == "synthdata":
        sys.path.insert(0, str(SRC))
        from prefect_synthdata.dataset.manifest import Manifest
        from prefect_synthdata.storage import StoreOptions, open_store
        from prefect_synthdata.storage.publish import publish

        manifest = Manifest.model_validate_json((folder / "manifest.json").read_bytes())
        store = open_store(f"s3://{BUCKET}/synthdata", StoreOptions(endpoint_url=endpoint))
        started = time.perf_counter()
        publish(store, folder, manifest)
    else:  # the baseline loads nothing of this package
        import boto3

        paths = [f["path"] for f in json.loads((folder / "manifest.json").read_bytes())["files"]]
        client = boto3.client("s3", endpoint_url=endpoint)
        started = time.perf_counter()
        for path in paths:
            client.upload_file(str(folder / path), BUCKET, f"boto3/bench/v1/{path}")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(method: str, url: str, data: bytes = b"") -> None:
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(url, data=data or None, method=method), timeout=30
    ).read()


def _reset(endpoint: str) -> None:
    """Empty the server (frees the previous run's objects) and create the bucket."""
    _request("POST", f"{endpoint}/moto-api/reset")
    _request("PUT", f"{endpoint}/{BUCKET}")


def _count(endpoint: str) -> int:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sum(len(page.get("Contents", [])) for page in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="dataset size (default 1024)")
    parser.add_argument("--files", type=int, default=4000, help="number of files (default 4000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 MB, 400 files, 1 repeat")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-publish"
    )
    parser.add_argument("--child", choices=["synthdata", "boto3"], help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.endpoint, args.dataset)
        return
    if args.quick:
        args.size_mb, args.files, args.repeats = 64, 400, 1

    os.environ.update(CREDENTIALS)
    folder = args.workdir / f"{args.size_mb}mb-{args.files}files"
    started = time.perf_counter()
    make_dataset(folder, args.size_mb, args.files)
    manifest = json.loads((folder / "manifest.json").read_text())
    total_bytes = sum(f["size"] for f in manifest["files"])
    print(
        f"dataset: {len(manifest['files'])} files, {total_bytes / MIB:.0f} MiB in {folder} "
        f"(ready in {time.perf_counter() - started:.1f}s)"
    )

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, list[dict[str, float]]] = {"synthdata": [], "boto3": []}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _request("GET", f"{endpoint}/moto-api/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        for repeat in range(args.repeats):
            order = ["synthdata", "boto3"] if repeat % 2 == 0 else ["boto3", "synthdata"]
            for variant in order:
                _reset(endpoint)
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        variant,
                        "--endpoint",
                        endpoint,
                        "--dataset",
                        str(folder),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=3600,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                objects = _count(endpoint)
                expected = len(manifest["files"]) + (3 if variant == "synthdata" else 0)
                if objects != expected:
                    raise RuntimeError(
                        f"{variant}: {objects} objects on the server, expected {expected}"
                    )
                results[variant].append(result)
                print(
                    f"  run {repeat + 1} {variant:<9} {result['seconds']:7.2f}s "
                    f"{total_bytes / MIB / result['seconds']:7.1f} MiB/s  peak RSS {result['peak_rss_mb']:.0f} MB"
                )
    finally:
        server.terminate()
        server.wait(timeout=30)

    medians = {v: statistics.median(r["seconds"] for r in runs) for v, runs in results.items()}
    print(
        f"\nmedians over {args.repeats} run(s), {len(manifest['files'])} files, {total_bytes / MIB:.0f} MiB:"
    )
    for variant, seconds in medians.items():
        peak = max(r["peak_rss_mb"] for r in results[variant])
        print(
            f"  {variant:<9} {seconds:7.2f}s  {total_bytes / MIB / seconds:7.1f} MiB/s  "
            f"{len(manifest['files']) / seconds:7.0f} files/s  peak RSS {peak:.0f} MB"
        )
    print(
        f"throughput ratio synthdata / boto3 upload_file loop: {medians['boto3'] / medians['synthdata']:.2f}x"
    )


if __name__ == "__main__":
    main()
