"""The first minute: how long a typo takes to be reported, and where the main job's time goes.

Every figure is a median of wall times of fresh `python` processes (subprocess and
time.perf_counter), side by side in one run:

1. time-to-error of `synthdata generate --param widht=256`: this CLI (checks before
   Prefect) versus the CLI as of BASELINE (the commit before this work, run from
   `git show`; it started a temporary Prefect API and failed inside the flow run);
2. the main job, `python flows/generate_and_ingest.py --jobs 4`, as a whole, and the
   same steps timed one by one in a child process (importing the flows, readying the
   Prefect API, the flow run), under each way of getting a Prefect API:
   - temporary: Prefect's default, a temporary API started for the process;
   - temporary, lean: the same with PREFECT_API_BLOCKS_REGISTER_ON_START=false and
     PREFECT_API_DATABASE_MIGRATE_ON_START=false (its database is kept warm, see below);
   - running server: `prefect server start` once, PREFECT_API_URL pointing at it.

Each run renders and publishes a new dataset (fresh SYNTHDATA_HOME and destination).
All variants share one PREFECT_HOME made for the benchmark, whose database a first,
uncounted run creates and migrates (that is what "warm" means here).

    python benchmarks/bench_cli_startup.py                 # 3 repeats
    python benchmarks/bench_cli_startup.py --repeats 1     # a quick look
    python benchmarks/bench_cli_startup.py --part typo     # only the time-to-error
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The CLI before this work (pre-Prefect checks did not exist).
BASELINE = "dcc0c18"
TYPO = ["generate", "--jobs", "4", "--param", "widht=256"]
MAIN_JOB = ROOT / "flows" / "generate_and_ingest.py"
LEAN = {"PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
        "PREFECT_API_DATABASE_MIGRATE_ON_START": "false"}  # fmt: skip

#: The main job's steps, timed one by one in a child process; prints one JSON line.
PHASES = """
import json, sys, time
started = time.perf_counter()
from prefect_synthdata.flows import GenerateRequest, generate_dataset
imported = time.perf_counter()
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    assert client.api_healthcheck() is None
ready = time.perf_counter()
generate_dataset(GenerateRequest(num_jobs=4, dest=sys.argv[1]))
done = time.perf_counter()
print(json.dumps({"import": imported - started, "api": ready - imported, "flow": done - ready}))
"""


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(
    cmd: list[str], env: dict[str, str], cwd: Path
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - started, done


def base_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SYNTHDATA_"))}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # Prefect's default (20 s) is too short on a busy 2-core machine; equal for all.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    env.update(extra)
    return env


def time_to_error(work: Path, prefect_home: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds until `synthdata generate --param widht=256` exits, new CLI and BASELINE's."""
    old_cli = work / "baseline_cli.py"
    old_cli.write_text(
        subprocess.run(
            ["git", "show", f"{BASELINE}:src/prefect_synthdata/cli.py"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    variants = {
        "this CLI": [sys.executable, "-m", "prefect_synthdata.cli", *TYPO],
        f"CLI of {BASELINE}": [sys.executable, str(old_cli), *TYPO],
    }
    found: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(repeats):
        for name, cmd in variants.items():
            home = work / f"typo-{repeat}-{len(found[name])}"
            env = base_env(prefect_home, SYNTHDATA_HOME=str(home / "state"))
            seconds, done = timed([*cmd, "--dest", str(home / "out")], env, work)
            assert done.returncode != 0 and "widht" in done.stderr, done.stderr[-2000:]
            found[name].append(seconds)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(prefect_home: Path) -> Iterator[tuple[str, float]]:
    """`prefect server start` on 127.0.0.1; yields its API URL and its start-up seconds."""
    port = free_port()
    env = base_env(prefect_home, PREFECT_UI_ENABLED="false")
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        import httpx

        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - started > 300:
                raise RuntimeError("prefect server start did not come up")
            time.sleep(0.2)
        yield url, time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)


def main_job(work: Path, env: dict[str, str], tag: str) -> tuple[float, dict[str, float]]:
    """The main job as a whole (wall seconds) and its steps timed one by one."""
    run = work / tag
    whole, done = timed(
        [sys.executable, str(MAIN_JOB), "--jobs", "4", "--dest", str(run / "a")],
        {**env, "SYNTHDATA_HOME": str(run / "home-a")},
        work,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    wall, done = timed(
        [sys.executable, "-c", PHASES, str(run / "b")],
        {**env, "SYNTHDATA_HOME": str(run / "home-b")},
        work,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    phases["exit and interpreter"] = wall - sum(phases.values())
    return whole, phases


def report_time_to_error(work: Path, prefect_home: Path, repeats: int) -> None:
    errors = time_to_error(work, prefect_home, repeats)
    print("time-to-error of `synthdata generate --param widht=256` (median of "
          f"{repeats}):")  # fmt: skip
    for name, values in errors.items():
        print(
            f"  {name:<22} {median(values):6.2f} s   (runs: {', '.join(f'{v:.1f}' for v in values)})"
        )
    ours, old = errors["this CLI"], errors[f"CLI of {BASELINE}"]
    print(f"  speed-up               {median(old) / median(ours):6.1f}x")


def report_main_job(work: Path, env: dict[str, str], prefect_home: Path, repeats: int) -> None:
    results: dict[str, list[tuple[float, dict[str, float]]]] = {}
    with running_server(prefect_home) as (url, server_seconds):
        variants = {
            "temporary API": env,
            "temporary API, lean": {**env, **LEAN},
            "running server": {**env, "PREFECT_API_URL": url},
        }
        for repeat in range(repeats):
            for name, variant_env in variants.items():
                results.setdefault(name, []).append(
                    main_job(work, variant_env, f"{name.replace(' ', '-')}-{repeat}")
                )
    print(f"\nmain job, 4 jobs of 'shapes' at 512x512 (median of {repeats}); "
          f"`prefect server start` took {server_seconds:.1f} s once:")  # fmt: skip
    steps = ["import", "api", "flow", "exit and interpreter"]
    print(f"  {'Prefect API':<22} {'whole job':>9} | {'import':>7} {'API ready':>9} "
          f"{'flow run':>8} {'exit':>6}")  # fmt: skip
    for name, runs in results.items():
        whole = median([w for w, _ in runs])
        split = [median([p[step] for _, p in runs]) for step in steps]
        print(f"  {name:<22} {whole:8.1f}s | " + " ".join(
            f"{v:{w}.1f}s" for v, w in zip(split, (6, 8, 7, 5), strict=True)))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=["all", "typo", "main"], default="all")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    prefect_home = work / "prefect-home"
    try:
        env = base_env(prefect_home)
        main_job(work, env, "warm-up")  # creates and migrates the benchmark's Prefect database
        if args.part != "main":
            report_time_to_error(work, prefect_home, args.repeats)
        if args.part != "typo":
            report_main_job(work, env, prefect_home, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
