"""The remote steps of a generation run, written once against the `Provider` interface:
prepare a request, submit it idempotently, poll it to completion, download its jobs.

Prefect tasks in `prefect_synthdata.tasks` wrap these with retries, caching and logs.

Example:
    >>> import tempfile, pathlib
    >>> from prefect_synthdata.providers.local import LocalProvider
    >>> provider = LocalProvider(pathlib.Path(tempfile.mkdtemp()))
    >>> request = prepare_request(provider, "shapes", [{"width": 64, "height": 64}], True, "demo", seed=1)
    >>> batch, adopted = submit_idempotent(provider, request)
    >>> poll_until_done(provider, batch, PollPolicy(deadline_seconds=120)).remaining
    0
    >>> submit_idempotent(provider, request)[1]
    True
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect_synthdata.exceptions import BatchFailedError, BatchTimeoutError, TransientError
from prefect_synthdata.models import (
    BatchRef,
    BatchRequest,
    BatchStatus,
    batch_name_for,
    request_key,
)
from prefect_synthdata.params import sample_unspecified
from prefect_synthdata.providers.base import Provider
from prefect_synthdata.providers.http import deadline as http_deadline

#: Written into a job folder once its download is complete: each file's size. A folder whose
#: files still have those sizes is not downloaded again.
DOWNLOADED = ".downloaded.json"


def prepare_request(
    provider: Provider,
    generator: str,
    jobs: list[dict[str, Any]],
    is_preview: bool,
    label: str,
    seed: int = 0,
    randomize: bool = False,
    scenes: str | None = None,
) -> BatchRequest:
    """Fill in per-job seeds, validate, and key the request.

    Each job that leaves the generator's `seed` parameter out gets one drawn from
    `(scenes or label, seed, job index)`: the label is the dataset's name, so jobs differ,
    re-runs of one request repeat, and datasets of different names share no scene unless
    they name the same `scenes` (the points of a sweep share their base's). With
    `randomize`, every other unspecified parameter is drawn from its sampling range
    (`params.sample_unspecified`). Raises UnknownGeneratorError or
    ParameterValidationError before anything is submitted.
    """
    spec = provider.describe(generator)
    has_seed = any(p.name == "seed" for p in spec.params)
    filled = []
    for index, job in enumerate(jobs):
        rng = random.Random(f"{scenes or label}:{seed}:{index}")
        values = dict(job)
        if has_seed and "seed" not in values and values.get("state") is None:
            values["seed"] = rng.randint(0, 2**31 - 1)
        filled.append(sample_unspecified(spec, values, rng) if randomize else values)
    resolved = provider.validate(generator, filled, is_preview)
    key = request_key(provider.identity, generator, resolved, is_preview, label)
    return BatchRequest(
        generator=generator,
        jobs=resolved,
        is_preview=is_preview,
        key=key,
        name=batch_name_for(label, key),
    )


def submit_idempotent(provider: Provider, request: BatchRequest) -> tuple[BatchRef, bool]:
    """Adopt the batch already submitted under `request.name`, else submit it.

    Returns the batch and whether it was adopted (True) rather than newly submitted.
    """
    existing = provider.find_batch(request.name)
    if existing is not None:
        return existing, True
    return provider.submit(request), False


@dataclass(frozen=True)
class PollPolicy:
    """How to wait: exponential backoff from `initial` to `cap` seconds, up to a deadline."""

    initial_seconds: float = 0.25
    cap_seconds: float = 1.0
    deadline_seconds: float = 6 * 3600
    transient_retries: int = 5


StatusListener = Callable[[BatchStatus], None]


def poll_until_done(
    provider: Provider,
    batch: BatchRef,
    policy: PollPolicy,
    on_change: StatusListener | None = None,
) -> BatchStatus:
    """Read the batch status until every job has finished.

    One batch-level call per poll, which must finish (retries included) before the
    deadline. A retryable failure of one poll is retried on its own (up to
    `policy.transient_retries` in a row; one whose own retry budget is spent is not);
    `on_change` is called
    only when the per-state counts change. BatchTimeoutError past the deadline.
    """
    deadline = time.monotonic() + policy.deadline_seconds
    interval = policy.initial_seconds
    failures = 0
    last: dict[str, int] | None = None
    while True:
        try:
            with http_deadline(deadline - time.monotonic()):
                status = provider.batch_status(batch)
            failures = 0
        except TransientError as exc:
            if time.monotonic() >= deadline:
                raise _timeout(batch, policy, last) from exc
            failures += 1
            if not exc.retryable or failures > policy.transient_retries:
                raise
        else:
            counts = status.counts()
            if counts != last:
                last = counts
                interval = policy.initial_seconds  # progress: look again soon
                if on_change is not None:
                    on_change(status)
            if status.done:
                return status
        if time.monotonic() + interval > deadline:
            raise _timeout(batch, policy, last)
        time.sleep(interval)
        interval = min(interval * 2, policy.cap_seconds)


def _timeout(batch: BatchRef, policy: PollPolicy, last: dict[str, int] | None) -> BatchTimeoutError:
    return BatchTimeoutError(
        f"batch {batch.batch_id} not finished after {policy.deadline_seconds:g}s (states: {last})"
    )


def raise_for_failures(status: BatchStatus) -> None:
    """BatchFailedError naming how many jobs failed (and the first five errors), if any did.

    Example:
        >>> raise_for_failures(BatchStatus(batch_id="b", jobs=[]))
    """
    if status.failed:
        details = "; ".join(f"{j.job_id}: {j.error}" for j in status.failed[:5])
        raise BatchFailedError(f"{len(status.failed)} of {len(status.jobs)} jobs failed: {details}")


def _downloaded(folder: Path) -> bool:
    """Whether the job folder holds a complete download: every recorded file, at its size."""
    record = folder / DOWNLOADED
    if not record.is_file():
        return False
    sizes: dict[str, int] = json.loads(record.read_text())
    return all(
        (folder / name).is_file() and (folder / name).stat().st_size == size
        for name, size in sizes.items()
    )


#: Held while a thread downloads from a provider with `local_results`: such downloads are
#: many small file operations, each of which releases and re-takes the GIL, so threads
#: doing them at once hand the GIL back and forth and finish several times later than
#: one thread doing them in turn. Processes (e.g. Dask workers) still run in parallel.
_LOCAL_FETCHES = threading.Lock()


def download_jobs(
    provider: Provider, batch: BatchRef, job_ids: list[str], work_dir: Path
) -> list[Path]:
    """Fetch each job's result to `work_dir/<job_id>/`, skipping ones already downloaded.

    A job folder counts as downloaded while its files have the sizes recorded in
    `.downloaded.json` (every file's sha256 is computed once, for the dataset's manifest,
    when it is built); a partial download never appears under
    the final name. Threads of one process download from a provider with
    `local_results` one at a time.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    with _LOCAL_FETCHES if provider.local_results else contextlib.nullcontext():
        for job_id in job_ids:
            if not _downloaded(work_dir / job_id):
                _download_job(provider, batch, job_id, work_dir)
    return [work_dir / job_id for job_id in job_ids]


def _download_job(provider: Provider, batch: BatchRef, job_id: str, work_dir: Path) -> None:
    """Fetch one job into `work_dir/<job_id>/` and record its files' sizes."""
    folder = work_dir / job_id
    shutil.rmtree(folder, ignore_errors=True)
    scratch = work_dir / f"{job_id}.download"
    shutil.rmtree(scratch, ignore_errors=True)
    provider.fetch_job_result(batch, job_id, scratch)
    record = {p.name: p.stat().st_size for p in sorted(scratch.iterdir()) if p.is_file()}
    (scratch / DOWNLOADED).write_text(json.dumps(record))
    scratch.rename(folder)
