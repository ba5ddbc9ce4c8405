"""Latency of paging `/api/v1/files/` under concurrent clients: SQL pages vs the old folder walk.

One account holds `--files` files (default 10,000). `--clients` concurrent clients
(default 50, keep-alive connections from one asyncio process on 127.0.0.1) page through the listing for `--seconds`:
client i starts at page i and follows `next` links, wrapping around. Each variant is
a real `python -m prefect_synthdata.server` process on the same data dir:

- `walk` (baseline): the server as it was before files were recorded in SQL, i.e. the
  source of commit `--baseline` (default addea86), taken with `git archive` into a
  temporary directory and put first on PYTHONPATH. It walks every READY simrun's
  folder on every request.
- `sql`: this checkout's server (files recorded once, pages with LIMIT/OFFSET).

Seeding is fast and documented: one simrun is rendered for real through the zpy API
(`shapes`, 32x32, one frame), then cloned, as the engine and the zpy store record
simruns: its job row (state `succeeded`) and simrun row are copied under new ids,
and its files are hard-linked into each clone's result folder, until the account
holds `--files` files. The `sql` server records them all at startup (back-fill, as
after an upgrade); that startup time is reported too.

    PYTHONPATH=src python benchmarks/bench_file_listing.py --files 10000 --clients 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-files-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`python -m prefect_synthdata.server` from `src` on 127.0.0.1, as a context manager."""

    def __init__(self, src: Path, data_dir: Path) -> None:
        self.src, self.data_dir, self.port = src, data_dir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_seconds = 0.0

    def __enter__(self) -> Server:
        env = dict(os.environ, PYTHONPATH=str(self.src), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        command = [sys.executable, "-m", "prefect_synthdata.server", "--port", str(self.port),
                   "--data-dir", str(self.data_dir), "--token", TOKEN, "--workers", "1"]  # fmt: skip
        started = time.perf_counter()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        while True:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited:\n{self.log.read().decode()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        self.startup_seconds = time.perf_counter() - started
        return self

    def __exit__(self, error: type[BaseException] | None, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        if error is not None:
            self.log.seek(0)
            print(self.log.read().decode()[-5000:], file=sys.stderr)
        self.log.close()


def render_one_simrun(server: Server) -> None:
    """One real simrun through the zpy API; waits until its dataset is READY."""
    headers = {"Authorization": f"Token {TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
        project = api.get("/api/v1/projects/").json()["results"][0]["id"]
        dataset = api.post("/api/v1/datasets/", data={"project": project, "name": "seed"}).json()
        config = json.dumps({"width": 32, "height": 32})
        form = {"project": project, "sim": "shapes", "config": config, "amount": 1}
        api.post(f"/api/v1/datasets/{dataset['id']}/generate/", data=form).raise_for_status()
        while api.get(f"/api/v1/datasets/{dataset['id']}/").json()["state"] != "READY":
            time.sleep(0.2)


def clone_simruns(data_dir: Path, files: int) -> int:
    """Clone the one rendered simrun until the account holds `files` files; how many simruns."""
    engine = sqlite3.connect(data_dir / "engine" / "jobs.sqlite3", isolation_level=None)
    zpy = sqlite3.connect(data_dir / "zpy.sqlite3", isolation_level=None)
    job = engine.execute("SELECT * FROM jobs").fetchone()
    batch = engine.execute("SELECT * FROM batches").fetchone()
    run = zpy.execute("SELECT * FROM simruns").fetchone()
    source = data_dir / "engine" / "results" / job[0]
    names = sorted(f.name for f in source.iterdir() if f.is_file())
    clones, remaining = [], files - len(names)
    while remaining > 0:
        clones.append((str(uuid.uuid4()), names[:remaining]))
        remaining -= len(names)
    batch_id = str(uuid.uuid4())
    engine.execute("BEGIN")
    engine.execute("INSERT INTO batches VALUES (?,?,?,?,?,?)", (batch_id, *batch[1:]))
    engine.executemany(
        "INSERT INTO jobs VALUES (" + ",".join("?" * len(job)) + ")",
        [(job_id, batch_id, i, *job[3:]) for i, (job_id, _) in enumerate(clones)],
    )
    engine.execute("COMMIT")
    zpy.execute("BEGIN")
    zpy.executemany(
        "INSERT INTO simruns VALUES (?,?,?,?,?,?,?)",
        [
            (job_id, run[1], run[2], run[3], uuid.uuid4().hex, run[5], run[6])
            for job_id, _ in clones
        ],
    )
    zpy.execute("COMMIT")
    for job_id, subset in clones:
        folder = source.parent / job_id
        folder.mkdir()
        for name in subset:
            os.link(source / name, folder / name)
    engine.close()
    zpy.close()
    return len(clones) + 1


class Connection:
    """One keep-alive HTTP/1.1 connection doing GETs (asyncio streams: a light client, so
    that the load generator takes little of the CPU the server runs on)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get_json(self, target: str) -> dict[str, Any]:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {TOKEN}\r\n\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in head[1:] if line)
        body = await reader.readexactly(int(headers["content-length"]))
        if not head[0].startswith("HTTP/1.1 200"):
            raise RuntimeError(f"{target}: {head[0]} {body[:300]!r}")
        if headers.get("connection") == "close":
            writer.close()
            self.streams = None
        return dict(json.loads(body))


async def load(url: str, clients: int, seconds: float) -> tuple[list[float], int]:
    """Per-request latencies of `clients` concurrent pagers over `seconds`; the listing's count."""
    port = int(url.rsplit(":", 1)[1])
    first = await Connection(port).get_json("/api/v1/files/")
    pages = -(-first["count"] // max(1, len(first["results"])))
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        connection, target = Connection(port), f"/api/v1/files/?page={index % pages + 1}"
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            reply = await connection.get_json(target)
            latencies.append(time.perf_counter() - started)
            target = (
                urlsplit(reply["next"] or "/api/v1/files/")._replace(scheme="", netloc="").geturl()
            )

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, int(first["count"])


def baseline_source(commit: str, into: Path) -> Path:
    """The `src` tree of `commit` of this repository, extracted under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration per variant")
    parser.add_argument("--baseline", default="addea86", help="commit of the folder-walk server")
    parser.add_argument("--variants", nargs="+", default=["walk", "sql"], choices=["walk", "sql"])
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        sources = {"walk": lambda: baseline_source(args.baseline, root / "baseline")}
        variants = {v: sources.get(v, lambda: REPO / "src")() for v in args.variants}
        with Server(variants["sql"], data_dir) as server:
            render_one_simrun(server)
        seeded = time.perf_counter()
        simruns = clone_simruns(data_dir, args.files)
        print(f"seeded {simruns} simruns in {time.perf_counter() - seeded:.1f}s", file=sys.stderr)
        with sqlite3.connect(data_dir / "zpy.sqlite3") as db:  # as before the upgrade: no records
            db.execute("DROP TABLE files")
            db.execute("DROP TABLE unrecorded_simruns")
        for name, src in variants.items():
            with Server(src, data_dir) as server:
                latencies, count = asyncio.run(load(server.url, args.clients, args.seconds))
            assert count == args.files, (name, count)
            results[name] = {
                "requests": len(latencies),
                "p50_s": round(statistics.median(latencies), 4),
                "p95_s": round(percentile(latencies, 0.95), 4),
                "startup_s": round(server.startup_seconds, 2),
            }
            print(name, results[name], file=sys.stderr)
    summary: dict[str, Any] = {
        "files": args.files,
        "clients": args.clients,
        "seconds": args.seconds,
        **{f"{name}_{key}": value for name, r in results.items() for key, value in r.items()},
    }
    if len(results) == 2:
        walk, sql = results["walk"], results["sql"]
        summary["p50_speedup"] = round(walk["p50_s"] / sql["p50_s"], 1)
        summary["p95_speedup"] = round(walk["p95_s"] / sql["p95_s"], 1)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
