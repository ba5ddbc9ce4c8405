"""A durable job service: batches of render jobs in SQLite, rendered by an executor.

The `local` provider runs it in-process; the reference server runs it behind HTTP.
State lives under `state_dir` (`jobs.sqlite3`; results in `results/<job_id>/` unless
a results store puts them elsewhere, e.g. on S3: `engine.results`), so a new process
sees earlier batches and their results. Each unfinished job is leased by the process that renders it; jobs whose
lease holder has died are adopted and rendered again by the next service that opens
the same state dir. Renders run in a local process pool, or on a Dask cluster
(`engine.executors`); the state stays here either way. `cancel` stops a batch.

Example:
    >>> import tempfile, pathlib
    >>> service = JobService(pathlib.Path(tempfile.mkdtemp()), workers=1)
    >>> params = {**get_generator("shapes").spec.defaults(), "width": 64, "height": 64}
    >>> batch = service.submit("me", "demo", "shapes", [params], is_preview=True)
    >>> service.wait(batch.batch_id, timeout=120).remaining
    0
    >>> service.close()
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect_synthdata.engine.executors import (
    Executor,
    ProcessPool,
    RenderJob,
    WorkerLost,
    default_workers,
)
from prefect_synthdata.engine.generators import get_generator
from prefect_synthdata.engine.results import DirectoryResults, ResultsStore
from prefect_synthdata.engine.statedb import open_state_db
from prefect_synthdata.exceptions import NotFoundError, StateFileError
from prefect_synthdata.models import BatchRef, BatchStatus, JobState, JobStatus

MAX_ATTEMPTS = 3  # a job whose worker process dies this often is failed
#: How often `render_again` queues one job again: a failure that outlasts this many
#: re-renders is taken as permanent (bad parameters, a generator bug) and left failed.
MAX_RENDERS = 3


SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, generator TEXT NOT NULL,
    is_preview INTEGER NOT NULL, created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_owner_name ON batches(owner, name);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id), idx INTEGER NOT NULL,
    params TEXT NOT NULL, frames INTEGER NOT NULL, state TEXT NOT NULL, error TEXT,
    runner INTEGER, attempts INTEGER NOT NULL DEFAULT 0, finished TEXT, rendered_by TEXT,
    renders INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch_id, idx);
"""
#: SQL condition on `batches`: some job of the batch was cancelled.
CANCELLED_BATCH = (
    "EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id AND jobs.state = 'cancelled')"
)
#: Columns added after the first release: (name, declaration), added to older databases on open.
ADDED_COLUMNS = [("rendered_by", "TEXT"), ("renders", "INTEGER NOT NULL DEFAULT 0")]


@dataclass(frozen=True)
class BrokenJobs:
    """Failed or result-less jobs, as `JobService.broken_jobs` finds them.

    `again` are to be rendered again (in `batches`); `failed_frames` is how many of their
    frames are not counted against a quota now (those of failed jobs; a result-less job's
    still count), so a quota is charged for them once more; `given_up` were rendered
    again `MAX_RENDERS` times already and stay as they are.
    """

    again: list[str]
    batches: list[str]
    failed_frames: int
    given_up: list[str]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobService:
    """Owns the SQLite state of one state directory and the executor that renders its jobs.

    `executor` defaults to a `ProcessPool` of `workers` processes (one per core);
    `results` (default: the directory `state_dir/results`) must be shared with the
    executor's workers: a shared filesystem path or an S3 prefix when they run on other
    machines (`engine.results.open_results`). With
    `adopt`, every orphaned job is adopted on open (the server resumes its work).
    """

    def __init__(
        self,
        state_dir: Path,
        workers: int | None = None,
        executor: Executor | None = None,
        results: ResultsStore | None = None,
        adopt: bool = True,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.results = results or DirectoryResults(self.state_dir / "results")
        self.workers = workers or default_workers()
        try:
            self._db = open_state_db(self.state_dir / "jobs.sqlite3", SCHEMA)
        except StateFileError:
            if executor is not None:  # handed to this service, which would have closed it
                executor.close()
            raise
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process crashes
        self.executor: Executor = executor or ProcessPool(self.workers)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for name, declaration in ADDED_COLUMNS:
            if name not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
        self._lock = threading.RLock()
        self._inflight: set[str] = set()
        self._closed = False
        if adopt:  # else each batch's orphans are adopted when its status is read
            self.adopt_orphans()

    # -- queries -------------------------------------------------------------------------
    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute(sql, args)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    def _batch_ref(self, row: sqlite3.Row) -> BatchRef:
        job_ids = [
            r["id"]
            for r in self._query("SELECT id FROM jobs WHERE batch_id=? ORDER BY idx", (row["id"],))
        ]
        return BatchRef(
            batch_id=row["id"],
            name=row["name"],
            generator=row["generator"],
            job_ids=job_ids,
            is_preview=bool(row["is_preview"]),
        )

    def find_batch(self, owner: str, name: str) -> BatchRef | None:
        """The newest batch of `owner` called `name` that was not cancelled, if any."""
        rows = self._query(
            f"SELECT * FROM batches WHERE owner=? AND name=? AND NOT {CANCELLED_BATCH}"
            " ORDER BY created DESC LIMIT 1",
            (owner, name),
        )
        return self._batch_ref(rows[0]) if rows else None

    def get_batch(self, owner: str, batch_id: str) -> BatchRef:
        """The batch `batch_id` if `owner` owns it, else NotFoundError."""
        rows = self._query("SELECT * FROM batches WHERE id=? AND owner=?", (batch_id, owner))
        if not rows:
            raise NotFoundError(f"batch {batch_id!r} not found")
        return self._batch_ref(rows[0])

    def batch_status(self, owner: str, batch_id: str) -> BatchStatus:
        """Every job's state in one read; adopts orphaned jobs on the way."""
        if not self._query("SELECT 1 FROM batches WHERE id=? AND owner=?", (batch_id, owner)):
            raise NotFoundError(f"batch {batch_id!r} not found")
        self.adopt_orphans(batch_id)
        rows = self._query(
            "SELECT id, state, error FROM jobs WHERE batch_id=? ORDER BY idx", (batch_id,)
        )
        return BatchStatus(
            batch_id=batch_id,
            jobs=[
                JobStatus(job_id=r["id"], state=JobState(r["state"]), error=r["error"])
                for r in rows
            ],
        )

    def job_params(self, job_id: str) -> dict[str, Any]:
        """The full parameter set a job was rendered with (for `state` re-runs)."""
        rows = self._query("SELECT params FROM jobs WHERE id=?", (job_id,))
        if not rows:
            raise NotFoundError(f"job {job_id!r} not found")
        params: dict[str, Any] = json.loads(rows[0]["params"])
        return params

    def state_params(self, owner: str, generator: str, job_id: str) -> dict[str, Any]:
        """The parameters of `owner`'s job `job_id` of `generator`, for a `state` re-run.

        NotFoundError if there is no such job for this owner, or if it was rendered
        by another generator.
        """
        rows = self._query(
            "SELECT jobs.params, batches.generator FROM jobs JOIN batches ON batches.id = jobs.batch_id"
            " WHERE jobs.id=? AND batches.owner=?",
            (job_id, owner),
        )
        if not rows:
            raise NotFoundError(f"job {job_id!r} not found")
        if rows[0]["generator"] != generator:
            raise NotFoundError(
                f"job {job_id!r} was rendered by generator {rows[0]['generator']!r}, not {generator!r}"
            )
        params: dict[str, Any] = json.loads(rows[0]["params"])
        return params

    def worker_pids(self) -> list[int]:
        """Process ids of the live render workers (none before the first job starts)."""
        return self.executor.worker_pids()

    def rendered_by(self, batch_id: str) -> dict[str, str | None]:
        """Job id -> `host:pid` of the process that rendered it (None if not rendered here)."""
        rows = self._query("SELECT id, rendered_by FROM jobs WHERE batch_id=?", (batch_id,))
        return {r["id"]: r["rendered_by"] for r in rows}

    def broken_jobs(
        self, batch_id: str | None = None, job_ids: list[str] | None = None
    ) -> BrokenJobs:
        """The jobs of a batch (or among `job_ids`) that failed (a full disk, a killed
        worker...) or succeeded but whose result folder is gone; see `render_again`.
        A cancelled batch has none (it is not adopted again)."""
        where, args = "state IN (?, ?)", [str(JobState.FAILED), str(JobState.SUCCEEDED)]
        if batch_id is not None:
            where += " AND batch_id=? AND batch_id NOT IN (SELECT batch_id FROM jobs WHERE state=?)"
            args += [batch_id, JobState.CANCELLED]
        if job_ids is not None:
            where += f" AND id IN ({','.join('?' * len(job_ids))})"
            args += job_ids
        rows = self._query(
            f"SELECT id, batch_id, state, frames, renders FROM jobs WHERE {where}"
            " ORDER BY batch_id, idx",
            tuple(args),
        )
        broken = [r for r in rows if r["state"] == JobState.FAILED or not self.has_result(r["id"])]
        again = [r for r in broken if r["renders"] < MAX_RENDERS]
        return BrokenJobs(
            again=[r["id"] for r in again],
            batches=sorted({r["batch_id"] for r in again}),
            failed_frames=sum(r["frames"] for r in again if r["state"] == JobState.FAILED),
            given_up=[r["id"] for r in broken if r["renders"] >= MAX_RENDERS],
        )

    def render_again(self, broken: BrokenJobs) -> int:
        """Queue `broken.again` again and start them; how many were queued.

        Each job keeps its id and batch, so a later run adopts the batch and nothing is
        paid for twice; a job is queued again at most `MAX_RENDERS` times. A job that is
        no longer failed or result-less (another caller got there first) is left alone.
        """
        with self._lock:
            queued = 0
            for job_id in broken.again:
                queued += self._db.execute(
                    "UPDATE jobs SET state=?, error=NULL, runner=NULL, attempts=0, finished=NULL,"
                    " renders=renders+1 WHERE id=? AND state IN (?, ?) AND renders < ?",
                    (JobState.QUEUED, job_id, JobState.FAILED, JobState.SUCCEEDED, MAX_RENDERS),
                ).rowcount
        for batch_id in broken.batches:
            self.adopt_orphans(batch_id)
        return queued

    def has_result(self, job_id: str) -> bool:
        """Whether the job's result is all there in the results store (a succeeded job's
        may have been lost: a folder deleted, an S3 object expired)."""
        return self.results.complete(job_id)

    def _succeeded(self, job_id: str) -> str:
        rows = self._query("SELECT state FROM jobs WHERE id=?", (job_id,))
        if not rows or rows[0]["state"] != JobState.SUCCEEDED:
            raise NotFoundError(f"job {job_id!r} has no result")
        return job_id

    def result_dir(self, job_id: str) -> Path:
        """A local folder with the files of a succeeded job (from S3: a cached copy),
        else NotFoundError."""
        return self.results.local_dir(self._succeeded(job_id))

    def result_files(self, job_id: str) -> list[tuple[str, int]]:
        """`(name, size)` of each file of a succeeded job's result, else NotFoundError."""
        return self.results.files(self._succeeded(job_id))

    def copy_result(self, job_id: str, dest: Path) -> None:
        """Put the files of a succeeded job in the new folder `dest` (whole or not at all)."""
        self.results.copy_to(self._succeeded(job_id), dest)

    # -- commands ------------------------------------------------------------------------
    def submit(
        self,
        owner: str,
        name: str,
        generator: str,
        jobs: list[dict[str, Any]],
        is_preview: bool,
        unique_name: bool = False,
    ) -> BatchRef:
        """Record a batch of validated jobs and start rendering them.

        With `unique_name`, a batch `owner` already has under `name` is returned instead:
        the look-up and the insert share one write transaction (`BEGIN IMMEDIATE` locks
        the database file), so concurrent submitters, in any process, get one batch.
        """
        gen = get_generator(generator)
        batch_id = str(uuid.uuid4())
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            if unique_name:
                existing = self._db.execute(
                    "SELECT id FROM batches WHERE owner=? AND name=? ORDER BY created DESC LIMIT 1",
                    (owner, name),
                ).fetchone()
                if existing is not None:
                    self._db.execute("COMMIT")
                    return self.get_batch(owner, existing[0])
            self._db.execute(
                "INSERT INTO batches VALUES (?,?,?,?,?,?)",
                (batch_id, owner, name, generator, int(is_preview), _now()),
            )
            self._db.executemany(
                "INSERT INTO jobs (id, batch_id, idx, params, frames, state) VALUES (?,?,?,?,?,?)",
                [
                    (
                        str(uuid.uuid4()),
                        batch_id,
                        i,
                        json.dumps(p),
                        gen.frame_count(p, is_preview),
                        JobState.QUEUED,
                    )
                    for i, p in enumerate(jobs)
                ],
            )
            self._db.execute("COMMIT")
        self.adopt_orphans(batch_id)
        return self.get_batch(owner, batch_id)

    def adopt_orphans(self, batch_id: str | None = None) -> int:
        """Lease and start every unfinished job no live process is rendering."""
        where = "state IN ('queued','running')" + (" AND batch_id=?" if batch_id else "")
        rows = self._query(
            f"SELECT jobs.id, jobs.params, jobs.runner, jobs.attempts, batches.generator, batches.is_preview "
            f"FROM jobs JOIN batches ON batches.id = jobs.batch_id WHERE {where}",
            (batch_id,) if batch_id else (),
        )
        started = 0
        me = os.getpid()
        for row in rows:
            runner = row["runner"]
            if row["id"] in self._inflight or (
                runner is not None and runner != me and _pid_alive(runner)
            ):
                continue
            with self._lock:
                claimed = self._db.execute(
                    "UPDATE jobs SET runner=?, state=?, attempts=attempts+1 WHERE id=? AND runner IS ?",
                    (me, JobState.RUNNING, row["id"], runner),
                ).rowcount
            if claimed:
                params = json.loads(row["params"])
                self._start(
                    row["id"],
                    row["generator"],
                    params,
                    bool(row["is_preview"]),
                    row["attempts"] > 0,
                )
                started += 1
        return started

    def _start(
        self, job_id: str, generator: str, params: dict[str, Any], is_preview: bool, started: bool
    ) -> None:
        """Render a leased job; one `started` before may have been rendered already."""
        if started and self.results.complete(job_id):  # rendered before a crash could record it
            self._finish(job_id, None, None)
            return
        with self._lock:
            self._inflight.add(job_id)
        job = RenderJob(job_id, generator, params, is_preview, self.results)
        self.executor.submit(job, self._finish)

    def _finish(self, job_id: str, error: BaseException | None, renderer: str | None) -> None:
        """Record a render's end; only a job still leased to this process changes state."""
        lease = "id=? AND state=? AND runner=?"
        with self._lock:
            self._inflight.discard(job_id)
            if self._closed:  # a render stopped by `close`: the next service adopts the job
                return
            if isinstance(error, WorkerLost):  # the worker died, not the job: render it again
                self._db.execute(
                    "UPDATE jobs SET state=CASE WHEN attempts < ? THEN ? ELSE ? END, runner=NULL,"
                    f" error=? WHERE {lease}",
                    (MAX_ATTEMPTS, JobState.QUEUED, JobState.FAILED, str(error),
                     job_id, JobState.RUNNING, os.getpid()),
                )  # fmt: skip
                return
            message = f"{type(error).__name__}: {error}" if error else None
            state = JobState.FAILED if message else JobState.SUCCEEDED
            self._db.execute(
                f"UPDATE jobs SET state=?, error=?, finished=?, rendered_by=? WHERE {lease}",
                (state, message, _now(), renderer, job_id, JobState.RUNNING, os.getpid()),
            )

    def cancel(self, owner: str, batch_id: str) -> list[str]:
        """Cancel every unfinished job of a batch; returns their ids (empty if none were left).

        Queued jobs are dropped and running ones stopped (in this process's executor; a
        job leased by another live process stops being recorded when it ends). Finished
        jobs keep their results. NotFoundError if `owner` has no such batch.
        """
        if not self._query("SELECT 1 FROM batches WHERE id=? AND owner=?", (batch_id, owner)):
            raise NotFoundError(f"batch {batch_id!r} not found")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE batch_id=? AND state IN (?, ?)",
                (batch_id, JobState.QUEUED, JobState.RUNNING),
            ).fetchall()
            cancelled = [r[0] for r in rows]
            self._db.execute(
                "UPDATE jobs SET state=?, error=?, finished=? WHERE batch_id=? AND state IN (?, ?)",
                (JobState.CANCELLED, "cancelled", _now(), batch_id, JobState.QUEUED, JobState.RUNNING),
            )  # fmt: skip
            self._db.execute("COMMIT")
            mine = [j for j in cancelled if j in self._inflight]
        if mine:
            self.executor.cancel(mine)
        return cancelled

    def wait(self, batch_id: str, timeout: float, owner: str | None = None) -> BatchStatus:
        """Block until the batch is done or `timeout` seconds pass; returns the last status."""
        rows = self._query("SELECT owner FROM batches WHERE id=?", (batch_id,))
        if not rows:
            raise NotFoundError(f"batch {batch_id!r} not found")
        deadline = time.monotonic() + timeout
        while True:
            status = self.batch_status(owner or rows[0]["owner"], batch_id)
            if status.done or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the executor (waiting for running local renders) and close the database."""
        self.executor.close()
        with self._lock:
            self._closed = True
            self._db.close()

    # -- reporting queries (used by the reference server) --------------------------------
    def list_batches(
        self, owner: str, start: str | None = None, end: str | None = None
    ) -> list[dict[str, Any]]:
        """`owner`'s batches created in `[start, end]` (ISO 8601 UTC strings), oldest first.

        Each row has `id`, `name`, `generator`, `is_preview`, `created` and `cancelled`.
        """
        rows = self._query(
            f"SELECT id, name, generator, is_preview, created, {CANCELLED_BATCH} AS cancelled"
            " FROM batches WHERE owner=?"
            " AND created >= ? AND created <= ? ORDER BY created, id",
            (owner, start or "", end or "\uffff"),
        )
        return [
            dict(r) | {"is_preview": bool(r["is_preview"]), "cancelled": bool(r["cancelled"])}
            for r in rows
        ]

    def list_jobs(
        self,
        owner: str,
        batch_id: str | None = None,
        job_ids: list[str] | None = None,
        is_preview: bool | None = None,
    ) -> list[dict[str, Any]]:
        """`owner`'s jobs, optionally of one batch, among `job_ids`, or of one kind; batch order.

        Each row has `id`, `batch_id`, `idx`, `generator`, `is_preview`, `params` (a dict),
        `frames`, `state`, `error`, `created` (of the batch) and `finished`.
        """
        where: list[str] = ["batches.owner=?"]
        args: list[Any] = [owner]
        if batch_id is not None:
            where.append("jobs.batch_id=?")
            args.append(batch_id)
        if job_ids is not None:
            where.append(f"jobs.id IN ({','.join('?' * len(job_ids))})")
            args.extend(job_ids)
        if is_preview is not None:
            where.append("batches.is_preview=?")
            args.append(int(is_preview))
        rows = self._query(
            "SELECT jobs.id, jobs.batch_id, jobs.idx, batches.generator, batches.is_preview, jobs.params,"
            " jobs.frames, jobs.state, jobs.error, batches.created, jobs.finished"
            " FROM jobs JOIN batches ON batches.id = jobs.batch_id"
            f" WHERE {' AND '.join(where)} ORDER BY batches.created, jobs.batch_id, jobs.idx",
            tuple(args),
        )
        return [
            dict(r) | {"is_preview": bool(r["is_preview"]), "params": json.loads(r["params"])}
            for r in rows
        ]

    def frames_submitted(self, owner: str) -> int:
        """Frames of every job `owner` submitted that has not failed or been cancelled (for quotas)."""
        rows = self._query(
            "SELECT COALESCE(SUM(jobs.frames), 0) AS n FROM jobs JOIN batches ON batches.id = jobs.batch_id"
            " WHERE batches.owner=? AND jobs.state NOT IN (?, ?)",
            (owner, JobState.FAILED, JobState.CANCELLED),
        )
        return int(rows[0]["n"])

    def usage_counts(self, owner: str, start: str, end: str) -> dict[str, dict[str, int]]:
        """Frames rendered by `owner`'s jobs that succeeded in `[start, end]`, per generator.

        Example: `{"shapes": {"preview": 2, "non_preview": 30}}`.
        """
        rows = self._query(
            "SELECT batches.generator, batches.is_preview, SUM(jobs.frames) AS n"
            " FROM jobs JOIN batches ON batches.id = jobs.batch_id"
            " WHERE batches.owner=? AND jobs.state=? AND jobs.finished >= ? AND jobs.finished <= ?"
            " GROUP BY batches.generator, batches.is_preview",
            (owner, JobState.SUCCEEDED, start, end),
        )
        counts: dict[str, dict[str, int]] = {}
        for r in rows:
            entry = counts.setdefault(r["generator"], {"preview": 0, "non_preview": 0})
            entry["preview" if r["is_preview"] else "non_preview"] += int(r["n"])
        return counts

    def job_owner(self, job_id: str) -> str | None:
        """The owner of the batch that holds `job_id`, or None if there is no such job."""
        rows = self._query(
            "SELECT batches.owner FROM jobs JOIN batches ON batches.id = jobs.batch_id WHERE jobs.id=?",
            (job_id,),
        )
        return str(rows[0]["owner"]) if rows else None
