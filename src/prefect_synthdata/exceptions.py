"""Domain exceptions raised by providers, storage and the dataset builder.

Every error a user can cause names the problem in its message. HTTP providers map
response codes onto these types, so callers never need to inspect status codes.

Example:
    >>> from prefect_synthdata.exceptions import ParameterValidationError
    >>> str(ParameterValidationError(["job 0: 'size' must be <= 64"]))
    "invalid job parameters:\\n  job 0: 'size' must be <= 64"
"""

from __future__ import annotations


class SynthDataError(Exception):
    """Base class of every error this package raises on purpose.

    `retryable` says whether the same call may succeed if tried again (requests'
    exceptions.py style: the type says it, callers never match messages); `status` is the
    HTTP status of the response behind the error, when there was one.
    """

    retryable: bool = False
    status: int | None = None

    def __init__(self, *args: object, status: int | None = None) -> None:
        super().__init__(*args)
        if status is not None:
            self.status = status


class ConfigurationError(SynthDataError):
    """A setting, URI or argument is unusable (bad destination, bad provider...)."""


class UnknownGeneratorError(SynthDataError):
    """The provider has no generator of that name."""


class ParameterValidationError(SynthDataError):
    """One or more job parameters are invalid; `problems` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid job parameters:\n" + "\n".join(f"  {p}" for p in problems))


class AuthenticationError(SynthDataError):
    """The token was missing, wrong or not allowed to see the resource."""


class NotFoundError(SynthDataError):
    """A batch, job, dataset or sim does not exist (for this token)."""


class QuotaExceededError(SynthDataError):
    """The submission would exceed the account's frame quota."""


class TransientError(SynthDataError):
    """A failure that may go away on retry (timeouts, 5xx, 429, dropped connections)."""

    retryable = True


class RetriesExhaustedError(TransientError):
    """A transient failure that outlasted the call's whole retry budget or deadline.

    The budget was spent where the failure happened, so nothing above retries it again:
    a dead server fails once, within the documented bound, instead of once per layer.
    """

    retryable = False


class ServerResponseError(SynthDataError):
    """A server sent something refused at the trust boundary: a wrong-shaped reply, an
    unsafe identifier, name, path or URL, or more bytes than allowed. The message names
    the field and the server. Never retried: the same server sends the same thing again."""


class BatchFailedError(SynthDataError):
    """The batch finished but some or all jobs failed."""


class BatchCancelledError(BatchFailedError):
    """The batch was cancelled before every job finished.

    `before_waiting` says it was already cancelled when the caller began to wait for it
    (a re-run of a cancelled run then submits the batch again).
    """

    def __init__(self, message: str, before_waiting: bool) -> None:
        super().__init__(message)
        self.before_waiting = before_waiting


class CancelNotSupportedError(SynthDataError):
    """The service offers no way to cancel a batch (its jobs keep rendering)."""


class BatchTimeoutError(SynthDataError):
    """The batch did not finish before the wall-clock deadline."""


class IntegrityError(SynthDataError):
    """Downloaded or published bytes do not match their recorded checksum or size."""


class UnsafeArchiveError(SynthDataError):
    """A result archive holds absolute paths, `..`, links, or too many bytes."""


class DestinationError(SynthDataError):
    """The publish destination is unreachable, unwritable, or holds conflicting content."""


class VersionConflictError(DestinationError):
    """The dataset version is already published with different content."""


class GeneratorContractError(SynthDataError):
    """A generator failed to load or broke the `Generator` contract; `generator` names it."""

    def __init__(self, generator: str, reason: str) -> None:
        super().__init__(generator, reason)  # both in args: the error pickles across processes
        self.generator, self.reason = generator, reason

    def __str__(self) -> str:
        return f"generator {self.generator!r} is unusable: {self.reason}"


class DatasetQualityError(SynthDataError):
    """An assembled dataset is unusable for training (no labels, too many unlabelled objects)."""


class StateFileError(SynthDataError):
    """A state file (a job or record database, the signing key) exists but cannot be used.

    `path` is the file, `problem` says what is wrong with it; the message adds what to do.
    """

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(path, problem)  # both in args: the error pickles across processes
        self.path, self.problem = path, problem

    def __str__(self) -> str:
        return f"{self.problem}; move it away or use another state directory"
