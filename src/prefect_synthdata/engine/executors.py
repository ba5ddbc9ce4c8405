"""Where the job service's renders run: a local process pool (the default) or a Dask cluster.

An executor takes one render at a time (`RenderJob`) and calls `done(job_id, error)` when
it ends: `error` is None on success, a `WorkerLost` when the process or machine that
rendered it went away (the service renders the job again), or the job's own exception.
Renders write into the results directory (`RenderJob.final`), which the workers and the
service share: for Dask workers on other machines it must be on a shared filesystem.

Example:
    >>> import tempfile, pathlib
    >>> from prefect_synthdata.engine.generators import get_generator
    >>> pool = ProcessPool(workers=1)
    >>> params = {**get_generator("shapes").spec.defaults(), "width": 32, "height": 32}
    >>> final = pathlib.Path(tempfile.mkdtemp()) / "job-1"
    >>> outcome = {}
    >>> pool.submit(RenderJob("job-1", "shapes", params, True, final), lambda j, e, w: outcome.update(job=j, error=e))
    >>> pool.close()
    >>> outcome["error"], (final / "labels.json").is_file()
    (None, True)
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from prefect_synthdata.engine.allocator import tune_allocator
from prefect_synthdata.engine.generators import RENDER_THREADS_ENV
from prefect_synthdata.engine.render import render_job


class WorkerLost(Exception):
    """The worker rendering a job died or left the cluster: the job did not fail, render it again."""


@dataclass(frozen=True)
class RenderJob:
    """One job to render into `final` (a folder that appears whole or not at all)."""

    job_id: str
    generator: str
    params: dict[str, Any]
    is_preview: bool
    final: Path


#: Called once per submitted job: `(job_id, error or None, "host:pid" of the renderer or None)`.
Done = Callable[[str, BaseException | None, str | None], None]


class Executor(Protocol):
    """Runs renders; `JobService` keeps the state."""

    def submit(self, job: RenderJob, done: Done) -> None:
        """Start rendering `job`; `done` is called when it ends (in any thread)."""
        ...

    def cancel(self, job_ids: Collection[str]) -> None:
        """Stop these jobs: drop the queued ones, stop the running ones. `done` is still called."""
        ...

    def worker_pids(self) -> list[int]:
        """Process ids of the render workers (on this machine or the cluster's)."""
        ...

    def close(self) -> None:
        """Stop rendering and release the workers (a Dask cluster itself keeps running)."""
        ...


def default_workers() -> int:
    """Render processes to run: one per core this process may use.

    Example:
        >>> default_workers() >= 1
        True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def renderer_id() -> str:
    """`host:pid` of this process, recorded with each job it renders."""
    return f"{socket.gethostname()}:{os.getpid()}"


def render_into(job: RenderJob) -> str:
    """Worker entry: render into a private scratch folder, then move it into place.

    A job rendered twice (its first worker was lost after finishing) keeps the first
    result: renders are deterministic, and `os.replace` onto a full folder fails.
    Returns the renderer's `host:pid`.
    """
    me = renderer_id()
    scratch = job.final.with_name(f"{job.final.name}.partial-{me.replace(':', '-')}")
    shutil.rmtree(scratch, ignore_errors=True)
    render_job(job.generator, job.params, job.is_preview, scratch)
    try:
        os.replace(scratch, job.final)
    except OSError:  # already rendered by someone else: deterministic, keep theirs
        shutil.rmtree(scratch, ignore_errors=True)
    return me


def _start_render_worker(parent: int, workers: int) -> None:
    """Render-process initializer: tune the allocator, take a 1/`workers` share of the
    cores for renderers with threads (`SYNTHDATA_RENDER_THREADS`), end with `parent`.

    A pool's workers outlive a parent killed with SIGKILL: each holds both ends of the
    task queue, so it never sees the queue close and waits forever. A daemon thread
    notices the new parent and exits; the jobs that were rendering are leased again by
    the next process (see `JobService.adopt_orphans`). The parent's pid is passed in,
    not read here: a parent killed while this process was starting is already gone.
    """
    tune_allocator()
    os.environ[RENDER_THREADS_ENV] = str(max(1, default_workers() // workers))

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


class ProcessPool:
    """Spawned render processes on this machine (`workers` of them, started with the first job)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._futures: dict[str, Future[str]] = {}
        self._jobs: dict[str, RenderJob] = {}

    def submit(self, job: RenderJob, done: Done) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_render_worker,
                    initargs=(os.getpid(), self.workers),
                )
            future = self._pool.submit(render_into, job)
            self._futures[job.job_id], self._jobs[job.job_id] = future, job
        future.add_done_callback(lambda f: self._done(job.job_id, f, done))

    def _done(self, job_id: str, future: Future[str], done: Done) -> None:
        with self._lock:
            self._futures.pop(job_id, None)
            self._jobs.pop(job_id, None)
        if future.cancelled():
            done(job_id, WorkerLost("render pool shut down"), None)
            return
        error = future.exception()
        if isinstance(error, BrokenProcessPool):  # the process died, not the job
            with self._lock:
                self._pool = None
            done(job_id, WorkerLost(f"worker process died: {error}"), None)
            return
        done(job_id, error, None if error else future.result())

    def cancel(self, job_ids: Collection[str]) -> None:
        """Queued jobs are dropped; a job being rendered is stopped by killing its process.

        Killing a process breaks the pool: jobs of other batches that were rendering are
        reported `WorkerLost` and rendered again, and the next job starts a new pool.
        """
        with self._lock:
            targets = [(self._futures[j], self._jobs[j]) for j in job_ids if j in self._futures]
            pids = set(self._live_pids())
        running = [job for future, job in targets if not future.cancel()]  # runs callbacks
        for job in running:
            for scratch in job.final.parent.glob(f"{job.final.name}.partial-*"):
                pid = int(scratch.name.rsplit("-", 1)[-1])
                if pid in pids:
                    os.kill(pid, signal.SIGKILL)

    def _live_pids(self) -> list[int]:
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(pid for pid, process in processes.items() if process.is_alive())

    def worker_pids(self) -> list[int]:
        with self._lock:
            return self._live_pids()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


#: How long closing waits for a Dask scheduler that may be gone.
CLOSE_TIMEOUT_SECONDS = 5


class DaskExecutor:
    """Renders as tasks on an existing Dask cluster, reached at its scheduler `address`.

    Each job is one task (key `render-<job_id>-<n>`, never retried by Dask itself beyond
    its `allowed-failures`): a task whose worker dies is moved to another worker by the
    scheduler; one that cannot be finished that way, or is lost with the connection to
    the scheduler, is reported `WorkerLost` and submitted again by the service.
    """

    def __init__(self, address: str) -> None:
        from distributed import Client

        self.address = address
        self.client = Client(address, timeout="10s", set_as_default=False)
        self._lock = threading.Lock()
        self._futures: dict[str, Any] = {}
        self._cancelled: set[str] = set()
        self._submitted = 0

    def submit(self, job: RenderJob, done: Done) -> None:
        with self._lock:
            self._submitted += 1
            key = f"render-{job.job_id}-{self._submitted}"
            future = self.client.submit(render_into, job, key=key, pure=False)
            self._futures[job.job_id] = future
            self._cancelled.discard(job.job_id)
        future.add_done_callback(lambda f: self._done(job.job_id, f, done))

    def _done(self, job_id: str, future: Any, done: Done) -> None:
        with self._lock:
            if self._futures.get(job_id) is future:
                del self._futures[job_id]
            cancelled = job_id in self._cancelled
        if future.status == "finished":
            done(job_id, None, future.result())
        elif future.status == "error":
            error = future.exception()
            lost = type(error).__name__ in ("KilledWorker", "CommClosedError")
            done(job_id, WorkerLost(f"dask worker lost: {error}") if lost else error, None)
        elif cancelled:
            done(job_id, WorkerLost("cancelled"), None)
        else:  # cancelled by the cluster (scheduler restarted, connection lost)
            done(job_id, WorkerLost(f"dask task {future.key} was {future.status}"), None)

    def cancel(self, job_ids: Collection[str]) -> None:
        """Release the jobs' tasks on the scheduler (a render already running finishes, unused)."""
        with self._lock:
            futures = [self._futures[j] for j in job_ids if j in self._futures]
            self._cancelled.update(job_ids)
        if futures:
            self.client.cancel(futures, force=True)

    def task_keys(self) -> list[str]:
        """Keys of the render tasks the scheduler holds right now (any client's)."""
        keys = self.client.run_on_scheduler(
            lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks]
        )
        return [k for k in keys if k.startswith("render-")]

    def worker_pids(self) -> list[int]:
        return sorted(self.client.run(os.getpid).values())

    def close(self) -> None:
        with self._lock:
            futures = list(self._futures.values())
        if futures:
            self.client.cancel(futures, force=True)
        self.client.close(timeout=CLOSE_TIMEOUT_SECONDS)


def open_executor(workers: int, dask_address: str | None) -> Executor:
    """The Dask executor when a scheduler address is given, else a process pool of `workers`."""
    if dask_address:
        return DaskExecutor(dask_address)
    return ProcessPool(workers)
