"""A real Dask cluster for tests: `dask scheduler` and `dask worker` processes on 127.0.0.1.

Example:
    with run_dask_cluster(tmp_path, workers=2) as cluster:
        cluster.address            # tcp://127.0.0.1:<port>
        cluster.workers[0].pid     # each worker is its own process (no nanny), one thread
        cluster.kill_worker(0)     # SIGKILL: the scheduler moves its tasks elsewhere
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import subprocess_env
from tests.reference_server import free_port

STARTUP_TIMEOUT = 60.0


@dataclass
class DaskCluster:
    address: str
    log_dir: Path
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        """One worker process (no nanny, one thread, no dashboard) joined to the scheduler."""
        n = len(self.workers)
        log = (self.log_dir / f"worker-{n}.log").open("ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", self.address, "--host", "127.0.0.1",
             "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{n}",
             "--memory-limit", "0", "--death-timeout", "60"],
            env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self.workers.append(worker)
        return worker

    def live_workers(self) -> int:
        from distributed import Client

        with Client(self.address, timeout="10s", set_as_default=False) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])

    def wait_for_workers(self, n: int) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while self.live_workers() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{n} dask workers not up:\n{self.logs()}")
            time.sleep(0.2)

    def kill_worker(self, index: int) -> None:
        self.workers[index].kill()
        self.workers[index].wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def run_dask_cluster(log_dir: Path, workers: int = 2) -> Iterator[DaskCluster]:
    """A scheduler on a free 127.0.0.1 port (no dashboard) and `workers` worker processes."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (log_dir / "scheduler.log").open("ab")
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard", "--no-show"],
        env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    cluster = DaskCluster(f"tcp://127.0.0.1:{port}", log_dir, scheduler)
    try:
        for _ in range(workers):
            cluster.start_worker()
        cluster.wait_for_workers(workers)
        yield cluster
    finally:
        cluster.stop()
