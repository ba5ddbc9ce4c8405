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
    """Base class of every error this package raises on purpose."""


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


class BatchFailedError(SynthDataError):
    """The batch finished but some or all jobs failed."""


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


class DatasetQualityError(SynthDataError):
    """An assembled dataset is unusable for training (no labels, too many unlabelled objects)."""
