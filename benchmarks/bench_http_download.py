"""Peak memory and time of downloading + extracting a result zip: ours vs the original client.

The original `infinity-core` did `zipfile.ZipFile(io.BytesIO(requests.get(url).content)).extractall(out)`:
the whole zip in memory. Ours streams to disk (resumable) and extracts safely. Each
variant runs in its own process; "extra peak RSS" is the growth of its peak RSS
(`ru_maxrss`) during the download, imports excluded. Both run against a
local HTTP server on 127.0.0.1 serving one zip of incompressible data.

    PYTHONPATH=src python benchmarks/bench_http_download.py --mb 64 --runs 3
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHILD = r"""
import io, json, resource, sys, time, zipfile
from pathlib import Path
import requests
from pydantic import SecretStr
variant, url, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
if variant == "ours":
    from prefect_synthdata.providers.infinity import InfinityProvider, download_job
    http = InfinityProvider(url, SecretStr("unused")).api.http
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # after imports
start = time.perf_counter()
if variant == "original":
    r = requests.get(url)
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        z.extractall(out)
else:
    download_job(http, url, "job1", out / "job1")
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "peak_mb": peak - before}))
"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def run(variant: str, url: str, work: Path) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(dir=work))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, variant, url, str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="size of the zip's payload")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(root / "job1.zip", "w") as zf:
            for index in range(args.mb):
                zf.writestr(f"job1/image.{index:06d}.rgb.png", os.urandom(1 << 20))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/job1.zip"
        results: dict[str, list[dict[str, float]]] = {"original": [], "ours": []}
        for _ in range(args.runs):
            for variant in results:
                results[variant].append(run(variant, url, root))
        httpd.shutdown()
    medians = {
        v: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_mb")}
        for v, rs in results.items()
    }
    print(f"zip payload {args.mb} MiB, {args.runs} runs each, medians:")
    for variant, m in medians.items():
        print(f"  {variant:<9} extra peak RSS {m['peak_mb']:7.1f} MiB   time {m['seconds']:6.2f} s")
    o, b = medians["ours"], medians["original"]
    print(
        f"  ratio ours/original: extra peak RSS {o['peak_mb'] / b['peak_mb']:.2f}, time {o['seconds'] / b['seconds']:.2f}"
    )


if __name__ == "__main__":
    main()
