"""Completion detection: how long after a batch's last job finishes each poll loop notices,
and how many status requests it sends, for this plugin and for the original clients' loops.

Side by side in one run against the reference server on 127.0.0.1: for each job count a
batch is submitted and, at once, two loops watch it in parallel threads. Every batch
renders about the same number of small frames (`--frames`, 64x64), split over its jobs,
so it runs for a comparable time (tiny previews alone finish before the first poll):

- infinity: ours (`batches.poll_until_done`, default `PollPolicy`: 0.2 s doubling to a
  5 s cap, back to 0.2 s on progress, one `summary/` read a poll) versus the original
  `infinity-core` loop (one `summary/` read every 10 s until no job is in progress);
- zpy: ours (the zpy provider: dataset state, plus the READY simrun count while not
  done, same `PollPolicy`) versus the original zpy loop (every 60 s: the dataset's state
  and the two simrun counts, all and READY; done once the state is final).

The originals' loops are reimplemented here with `requests` on the same endpoints and
intervals (their code is not installed); their intervals are real, not scaled. Latency
is measured from the last job's `finished` timestamp in the server's job database to
the moment the loop returns; for zpy that includes the server packaging the dataset
(for both loops alike), so zpy rows also show the latency after the dataset was packaged
(the mtime of its archive's checksum file, written just before it turns READY). Requests are counted client-side (a response hook on each loop's
HTTP session: every request sent, retries included).

    python benchmarks/bench_polling.py                       # 10, 100, 1000 jobs, 3 repeats
    python benchmarks/bench_polling.py --jobs 10 --repeats 1 --dialects infinity  # a quick look

With a fixed interval T and a finish time uniform in it, the expected latency of a fixed
loop is T/2 (5 s and 30 s for the originals); that figure is printed next to the measured
ones, since few repeats of a 60 s loop give a noisy median.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect_synthdata import batches  # noqa: E402
from prefect_synthdata.models import BatchRef  # noqa: E402
from prefect_synthdata.providers.infinity import InfinityProvider  # noqa: E402
from prefect_synthdata.providers.zpy import ZpyProvider  # noqa: E402
from tests.reference_server import ServerProcess, run_reference_server  # noqa: E402

TOKEN = "bench-polling-token"
PARAMS = {"width": 64, "height": 64, "num_objects": 2, "noise_std": 0.0}
INFINITY_CORE_INTERVAL = 10.0
ZPY_INTERVAL = 60.0
ZPY_FINAL = ("READY", "CANCELLED", "PACKAGING_FAILED", "GENERATING_FAILED")


@dataclass
class Watch:
    """What one loop saw: when it noticed completion, and the requests it sent."""

    noticed: float = 0.0
    started: float = 0.0
    sent: int = 0

    def count(self, session: requests.Session) -> None:
        def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            self.sent += 1

        session.hooks["response"].append(hook)


def ours(provider: InfinityProvider | ZpyProvider, batch: BatchRef) -> Callable[[Watch], None]:
    def run(watch: Watch) -> None:
        watch.count(provider.api.http.session)
        batches.poll_until_done(provider, batch, batches.PollPolicy())
        watch.noticed = time.time()

    return run


def original_infinity(server: ServerProcess, batch: BatchRef) -> Callable[[Watch], None]:
    """infinity-core's await_completion: `summary/` every 10 s until nothing is in progress."""

    def run(watch: Watch) -> None:
        session = requests.Session()
        watch.count(session)
        url = f"{server.url}/api/batch/{batch.batch_id}/summary/"
        while True:
            response = session.get(url, headers=server.headers(TOKEN), timeout=30)
            response.raise_for_status()
            runs = response.json()["job_runs"]
            remaining = len(batch.job_ids) - sum(1 for r in runs if not r["in_progress"])
            if remaining == 0:
                watch.noticed = time.time()
                return
            time.sleep(INFINITY_CORE_INTERVAL)

    return run


def original_zpy(server: ServerProcess, dataset_id: str) -> Callable[[Watch], None]:
    """zpy's generate loop: every 60 s the dataset's state and two simrun counts."""

    def run(watch: Watch) -> None:
        session = requests.Session()
        watch.count(session)
        api = f"{server.url}/api/v1"
        headers = server.headers(TOKEN)
        while True:
            state = session.get(f"{api}/datasets/{dataset_id}/", headers=headers, timeout=30)
            for extra in ("", "&state=READY"):
                session.get(
                    f"{api}/simruns/?datasets={dataset_id}{extra}", headers=headers, timeout=30
                )
            if state.json()["state"] in ZPY_FINAL:
                watch.noticed = time.time()
                return
            time.sleep(ZPY_INTERVAL)

    return run


def last_finished(server: ServerProcess, job_ids: list[str]) -> float:
    """When the batch's last job finished, from the server's job database."""
    marks = ",".join("?" * len(job_ids))
    with sqlite3.connect(server.data_dir / "engine" / "jobs.sqlite3") as db:
        row = db.execute(
            f"SELECT max(finished) FROM jobs WHERE id IN ({marks})", job_ids
        ).fetchone()
    return datetime.fromisoformat(row[0]).timestamp()


def packaged(server: ServerProcess, dataset_id: str) -> float:
    """When the server finished packaging a zpy dataset (it turns READY right after)."""
    return next(server.data_dir.rglob(f"{dataset_id}.sha256")).stat().st_mtime


def watch_side_by_side(loops: dict[str, Callable[[Watch], None]]) -> dict[str, Watch]:
    watches = {name: Watch(started=time.time()) for name in loops}
    threads = [threading.Thread(target=loop, args=(watches[name],)) for name, loop in loops.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return watches


def measure(
    server: ServerProcess, dialect: str, jobs: int, frames: int, label: str
) -> dict[str, dict[str, float]]:
    if dialect == "infinity":
        provider: InfinityProvider | ZpyProvider = InfinityProvider(server.url, SecretStr(TOKEN))
    else:
        provider = ZpyProvider(
            server.url, SecretStr(TOKEN), None, server.data_dir.parent / "zpy-cache"
        )
    params = {**PARAMS, "frames": max(1, frames // jobs)}
    # a new seed each time: the server reuses the results of identical jobs
    seed = time.time_ns() % 2**31
    request = batches.prepare_request(provider, "shapes", [params] * jobs, False, label, seed)
    batch, _ = batches.submit_idempotent(provider, request)
    original = (
        original_infinity(server, batch)
        if dialect == "infinity"
        else original_zpy(server, batch.batch_id)
    )
    watches = watch_side_by_side({"ours": ours(provider, batch), "original": original})
    finished = last_finished(server, batch.job_ids)
    ready = finished if dialect == "infinity" else packaged(server, batch.batch_id)
    return {
        name: {
            "latency": w.noticed - finished,
            "after_ready": w.noticed - ready,
            "requests": w.sent,
            "per_second": w.sent / max(w.noticed - w.started, 1e-9),
            "render": finished - w.started,
        }
        for name, w in watches.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--frames", type=int, default=5000, help="frames per batch, split evenly over its jobs"
    )
    parser.add_argument("--dialects", nargs="+", default=["infinity", "zpy"])
    parser.add_argument("--workers", type=int, default=2, help="render workers of the server")
    args = parser.parse_args()
    intervals = {"infinity": INFINITY_CORE_INTERVAL, "zpy": ZPY_INTERVAL}
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_reference_server(Path(tmp) / "srv", tokens=[TOKEN], workers=args.workers) as server,
    ):
        print(
            f"reference server on {server.url}, {args.workers} render workers; medians of {args.repeats} run(s)"
        )
        print(
            f"{'dialect':<9}{'jobs':>6}  {'render s':>8}  {'loop':<9}{'latency s':>10}"
            f"{'after READY':>12}{'requests':>10}{'req/s':>7}"
        )
        for dialect in args.dialects:
            for jobs in args.jobs:
                runs = [
                    measure(server, dialect, jobs, args.frames, f"poll-{dialect}-{jobs}-{i}")
                    for i in range(args.repeats)
                ]
                render = statistics.median(r["ours"]["render"] for r in runs)
                for loop in ("ours", "original"):
                    med = {k: statistics.median(r[loop][k] for r in runs) for k in runs[0][loop]}
                    print(
                        f"{dialect:<9}{jobs:>6}  {render:8.1f}  {loop:<9}{med['latency']:10.2f}"
                        f"{med['after_ready']:12.2f}{med['requests']:10.0f}{med['per_second']:7.2f}"
                    )
                ratio = statistics.median(r["original"]["latency"] for r in runs) / max(
                    statistics.median(r["ours"]["latency"] for r in runs), 1e-3
                )
                print(
                    f"{'':<17}original/ours latency {ratio:.1f}x; "
                    f"expected original latency T/2 = {intervals[dialect] / 2:.0f} s"
                )


if __name__ == "__main__":
    main()
