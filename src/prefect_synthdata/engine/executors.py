"""Where the job service's renders run: a local process pool (the default) or a Dask cluster.

An executor takes one render at a time (`RenderJob`) and calls `done(job_id, error)` when
it ends: `error` is None on success, a `WorkerLost` when the process or machine that
rendered it went away or the job was cancelled (the service renders a lost job again), or
the job's own exception. Renders write into the results store (`engine.results`), which
the workers and the service share: a directory, or an S3 prefix for workers anywhere.

Cancelling stops exactly the cancelled jobs: the pool kills only the process rendering
one (a fresh process takes its place), and a Dask task whose key the scheduler released
stops at its next frame (`render_on_dask` checks its worker's task state between frames).

Example:
    >>> import tempfile, pathlib, queue
    >>> from prefect_synthdata.engine.generators import get_generator
    >>> from prefect_synthdata.engine.results import DirectoryResults
    >>> pool = ProcessPool(workers=1)
    >>> params = {**get_generator("shapes").spec.defaults(), "width": 32, "height": 32}
    >>> results = DirectoryResults(pathlib.Path(tempfile.mkdtemp()))
    >>> outcome = queue.Queue()
    >>> pool.submit(RenderJob("job-1", "shapes", params, True, results), lambda j, e, w: outcome.put(e))
    >>> outcome.get(timeout=120), (results.root / "job-1" / "labels.json").is_file()
    (None, True)
    >>> pool.close()
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import shutil
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from prefect_synthdata.engine.allocator import tune_allocator
from prefect_synthdata.engine.generators import RENDER_THREADS_ENV
from prefect_synthdata.engine.render import render_job
from prefect_synthdata.engine.results import ResultsStore

LOGGER = logging.getLogger(__name__)


class WorkerLost(Exception):
    """The worker rendering a job died or left the cluster: the job did not fail, render it again."""


@dataclass(frozen=True)
class RenderJob:
    """One job to render into `results` (where it appears whole or not at all)."""

    job_id: str
    generator: str
    params: dict[str, Any]
    is_preview: bool
    results: ResultsStore


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


def render_into(job: RenderJob, should_stop: Callable[[], bool] | None = None) -> str:
    """Worker entry: render into a private scratch folder, then publish it to the results.

    A job rendered twice (its first worker was lost after finishing) writes the same
    bytes: renders are deterministic. `should_stop` is asked between frames (see
    `render_job`). Returns the renderer's `host:pid`.
    """
    me = renderer_id()
    scratch = job.results.scratch(job.job_id, me)
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        render_job(job.generator, job.params, job.is_preview, scratch, should_stop)
        job.results.publish(job.job_id, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return me


def discard_scratch(job: RenderJob, pid: int | None) -> None:
    """Remove the scratch folder a killed render process `pid` of this host left behind."""
    if pid is not None:
        shutil.rmtree(job.results.scratch(job.job_id, f"{socket.gethostname()}:{pid}"), True)


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


#: How long closing waits for a render process, or for a Dask scheduler that may be gone.
CLOSE_TIMEOUT_SECONDS = 5


def _render_worker(conn: Connection, parent: int, workers: int) -> None:
    """Render-process main loop: receive a `RenderJob`, send back `(renderer, None)` or
    `(None, error)`; a `None` job (or the parent's end closing) ends the process."""
    _start_render_worker(parent, workers)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            reply: tuple[str | None, BaseException | None] = (render_into(job), None)
        except Exception as exc:  # the job's own failure, reported to the service
            reply = (None, exc)
        try:
            conn.send(reply)
        except (TypeError, AttributeError, pickle.PicklingError):  # an unpicklable error
            conn.send((None, RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))


@dataclass
class _Slot:
    """One render process of a `ProcessPool` and the job it is rendering, if any."""

    process: BaseProcess | None = None
    conn: Connection | None = None
    job: RenderJob | None = None
    cancelled: bool = False  # the job was cancelled
    killed: bool = False  # the process was killed for it: replace it before the next job


class ProcessPool:
    """`workers` spawned render processes on this machine, started with the first job.

    Jobs wait here in one queue, in submission order; each process renders one job at a
    time. Cancelling a job that is being rendered kills only the process rendering it
    (a new one takes its place for the next job), so other batches' renders go on.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._cond = threading.Condition()
        self._queue: deque[tuple[RenderJob, Done]] = deque()
        self._slots: list[_Slot] = []
        self._threads: list[threading.Thread] = []
        self._closing = False

    def submit(self, job: RenderJob, done: Done) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("the render pool is closed")
            self._queue.append((job, done))
            if not self._threads:
                for n in range(self.workers):
                    slot = _Slot()
                    thread = threading.Thread(
                        target=self._serve, args=(slot,), name=f"render-slot-{n}", daemon=True
                    )
                    self._slots.append(slot)
                    self._threads.append(thread)
                    thread.start()
            self._cond.notify()

    def _next(self, slot: _Slot) -> tuple[RenderJob, Done] | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            slot.job, slot.cancelled = self._queue[0][0], False
            return self._queue.popleft()

    def _serve(self, slot: _Slot) -> None:
        """One slot's loop: take the next job, have the slot's process render it, report."""
        while (item := self._next(slot)) is not None:
            job, done = item
            renderer, error = self._render(slot, job)
            with self._cond:
                slot.job = None
            try:
                done(job.job_id, error, renderer)
            except Exception:  # as concurrent.futures does with a failing callback
                LOGGER.exception("recording the end of render job %s failed", job.job_id)
        if slot.conn is not None:
            with suppress(OSError):
                slot.conn.send(None)
        if slot.process is not None:
            slot.process.join(CLOSE_TIMEOUT_SECONDS)
            if slot.process.is_alive():
                slot.process.kill()

    def _render(self, slot: _Slot, job: RenderJob) -> tuple[str | None, BaseException | None]:
        with self._cond:
            if slot.process is None or slot.killed or not slot.process.is_alive():
                if slot.process is not None:
                    slot.process.join(CLOSE_TIMEOUT_SECONDS)
                slot.process, slot.conn = self._spawn()
                slot.killed = False
            if slot.cancelled:
                return None, WorkerLost("cancelled")
            conn = slot.conn
        assert conn is not None
        try:
            conn.send(job)
            renderer, error = conn.recv()
            return renderer, error
        except (EOFError, OSError) as exc:  # the process died: killed by `cancel`, or crashed
            with self._cond:
                cancelled, pid = slot.cancelled, slot.process.pid if slot.process else None
                if slot.process is not None:
                    slot.process.join(CLOSE_TIMEOUT_SECONDS)
                slot.process, slot.conn, slot.killed = None, None, False
            discard_scratch(job, pid)
            if cancelled:
                return None, WorkerLost("cancelled")
            return None, WorkerLost(f"render process {pid} died ({type(exc).__name__})")

    def _spawn(self) -> tuple[BaseProcess, Connection]:
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        process = context.Process(
            target=_render_worker,
            args=(theirs, os.getpid(), self.workers),
            name="synthdata-render",
            daemon=True,
        )
        process.start()
        theirs.close()  # so that `recv` sees EOF when the process dies
        return process, mine

    def cancel(self, job_ids: Collection[str]) -> None:
        """Queued jobs are dropped; a job being rendered is stopped by killing its process.

        Only that process is killed: other jobs keep rendering and queued ones keep their
        place. `done` is called for every cancelled job with `WorkerLost("cancelled")`.
        """
        wanted = set(job_ids)
        with self._cond:  # held while killing: the slot cannot move on to another job
            dropped = [(job, done) for job, done in self._queue if job.job_id in wanted]
            self._queue = deque(item for item in self._queue if item[0].job_id not in wanted)
            for slot in self._slots:
                if slot.job is not None and slot.job.job_id in wanted:
                    slot.cancelled = True
                    if slot.process is not None:
                        slot.process.kill()
                        slot.killed = True
        for job, done in dropped:
            done(job.job_id, WorkerLost("cancelled"), None)

    def worker_pids(self) -> list[int]:
        with self._cond:
            return sorted(
                s.process.pid
                for s in self._slots
                if s.process is not None and s.process.pid and s.process.is_alive()
            )

    def close(self) -> None:
        """Drop queued jobs, let running renders finish, stop the processes."""
        with self._cond:
            self._closing = True
            dropped, self._queue = list(self._queue), deque()
            threads = list(self._threads)
            self._cond.notify_all()
        for job, done in dropped:
            done(job.job_id, WorkerLost("render pool shut down"), None)
        for thread in threads:
            thread.join()


#: Worker-side states of a task that is still meant to run (any other: it was released).
RUNNING_TASK_STATES = ("executing", "long-running")


def render_on_dask(job: RenderJob) -> str:
    """Dask task entry: `render_into`, stopping at the next frame once the scheduler has
    released the task (cancelled): the worker then marks it `cancelled` locally, which is
    read here between frames without any round trip."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()

    def released() -> bool:
        task = worker.state.tasks.get(key)
        return task is None or task.state not in RUNNING_TASK_STATES

    return render_into(job, should_stop=released)


class DaskExecutor:
    """Renders as tasks on an existing Dask cluster, reached at its scheduler `address`.

    Each job is one task (key `render-<job_id>-<n>`, never retried by Dask itself beyond
    its `allowed-failures`): a task whose worker dies is moved to another worker by the
    scheduler; one that cannot be finished that way, or is lost with the connection to
    the scheduler, is reported `WorkerLost` and submitted again by the service. A
    cancelled task is released on the scheduler and stops at its next frame.
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
            future = self.client.submit(render_on_dask, job, key=key, pure=False)
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
        """Release the jobs' tasks on the scheduler; a running one stops at its next frame."""
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

    def executing_keys(self) -> list[str]:
        """Keys of the render tasks some worker is executing right now (cancelled ones
        included until their render has stopped)."""

        def executing(dask_worker: Any) -> list[str]:
            return [
                str(key)
                for key, task in dask_worker.state.tasks.items()
                if str(key).startswith("render-")
                and (
                    task.state in RUNNING_TASK_STATES
                    or (
                        task.state in ("cancelled", "resumed")
                        and task.previous in RUNNING_TASK_STATES
                    )
                )
            ]

        per_worker = self.client.run(executing)
        return sorted(key for keys in per_worker.values() for key in keys)

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
