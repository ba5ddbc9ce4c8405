"""Typed records that move between providers, tasks and flows.

They hold no secrets, so they are safe to cache, persist and log.

Example:
    >>> status = BatchStatus(batch_id="b1", jobs=[JobStatus(job_id="j1", state=JobState.SUCCEEDED)])
    >>> status.done, status.remaining
    (True, 0)
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class JobState(StrEnum):
    """Where a job is in its life; only SUCCEEDED and FAILED are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BatchRequest(BaseModel):
    """A fully resolved batch: every job carries its complete parameter set.

    `name` is the deterministic batch name derived from `key`; providers use it to
    find a batch that was already submitted for the same logical request.
    """

    generator: str
    jobs: list[dict[str, Any]]
    is_preview: bool = False
    key: str
    name: str


class BatchRef(BaseModel):
    """A submitted batch as the provider knows it."""

    batch_id: str
    name: str
    generator: str
    job_ids: list[str]
    is_preview: bool = False


class JobStatus(BaseModel):
    """One job's state within a batch status read."""

    job_id: str
    state: JobState
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in (JobState.SUCCEEDED, JobState.FAILED)


class BatchStatus(BaseModel):
    """A batch-level status read: one call, every job's state."""

    batch_id: str
    jobs: list[JobStatus] = Field(default_factory=list)

    @property
    def remaining(self) -> int:
        return sum(not j.finished for j in self.jobs)

    @property
    def done(self) -> bool:
        return self.remaining == 0

    @property
    def succeeded(self) -> list[str]:
        return [j.job_id for j in self.jobs if j.state == JobState.SUCCEEDED]

    @property
    def failed(self) -> list[JobStatus]:
        return [j for j in self.jobs if j.state == JobState.FAILED]

    def counts(self) -> dict[str, int]:
        """Jobs per state, e.g. `{"queued": 3, "succeeded": 1}`."""
        out: dict[str, int] = {}
        for job in self.jobs:
            out[job.state.value] = out.get(job.state.value, 0) + 1
        return out


def request_key(
    provider_identity: str, generator: str, jobs: list[dict[str, Any]], is_preview: bool, label: str
) -> str:
    """Deterministic sha256 of a logical request; never includes credentials.

    Example:
        >>> len(request_key("local", "shapes", [{"seed": 1}], False, "demo"))
        64
    """
    payload = json.dumps(
        {
            "provider": provider_identity,
            "generator": generator,
            "jobs": jobs,
            "is_preview": is_preview,
            "label": label,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def batch_name_for(label: str, key: str) -> str:
    """The deterministic batch name submitted to a provider: `<label>-<key prefix>`.

    Example:
        >>> batch_name_for("demo", "ab" * 32)
        'demo-abababababababab'
    """
    return f"{label}-{key[:16]}"


def batch_label(name: str) -> str:
    """The label a batch name was made from by `batch_name_for` (the name itself otherwise).

    Example:
        >>> batch_label(batch_name_for("demo-set", "ab" * 32))
        'demo-set'
    """
    label, _, suffix = name.rpartition("-")
    return label if label and len(suffix) == 16 else name
