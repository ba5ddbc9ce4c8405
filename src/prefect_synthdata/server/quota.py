"""Frame quotas per account, checked and committed atomically with the submission.

Every submitted frame counts (previews too) unless its job failed; frames of reused
zpy simruns are not rendered again and do not count twice.

Example:
    >>> import tempfile, pathlib
    >>> from prefect_synthdata.engine.jobs import JobService
    >>> quota = FrameQuota(JobService(pathlib.Path(tempfile.mkdtemp()), workers=1), limit=10)
    >>> with quota.reserve("acct-1", 11):
    ...     pass
    Traceback (most recent call last):
    ...
    prefect_synthdata.exceptions.QuotaExceededError: frame quota exceeded: 0 of 10 frames used, this request needs 11
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prefect_synthdata.engine.jobs import JobService
from prefect_synthdata.exceptions import QuotaExceededError


class FrameQuota:
    """A per-account frame limit over one `JobService` (None = unlimited)."""

    def __init__(self, service: JobService, limit: int | None) -> None:
        self.service = service
        self.limit = limit
        self._lock = threading.Lock()

    @contextmanager
    def reserve(self, owner: str, frames: int) -> Iterator[None]:
        """Hold the quota lock while the caller submits `frames`; QuotaExceededError if over."""
        with self._lock:
            if self.limit is not None:
                used = self.service.frames_submitted(owner)
                if used + frames > self.limit:
                    raise QuotaExceededError(
                        f"frame quota exceeded: {used} of {self.limit} frames used, this request needs {frames}"
                    )
            yield
