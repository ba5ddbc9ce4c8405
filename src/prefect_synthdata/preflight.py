"""Checks of a generate request that need no Prefect, run before a Prefect API is started.

Everything a user can get wrong on the command line (dataset name and version, the
destination, the provider's credentials, the generator's name, every job's parameters)
is checked here in about a second, and every problem is reported in one error, once:
a problem shared by all jobs is listed once, not once per job, and a near-miss name
comes with a suggestion.

Example:
    >>> suggestion("widht", ["width", "height"])
    " (did you mean 'width'?)"
    >>> group_by_jobs({"'n' must be <= 5": [0, 1, 2]}, num_jobs=3)
    ["'n' must be <= 5"]
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from prefect_synthdata.destinations import AWS_BLOCK_TYPES, open_destination
from prefect_synthdata.exceptions import ConfigurationError, SynthDataError
from prefect_synthdata.params import GeneratorSpec, check_job
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.request import GenerationSpec
from prefect_synthdata.storage import StoreOptions

#: Jobs named one by one in a problem shared by only some of them; the rest are counted.
JOBS_LISTED = 5


class PreflightError(ConfigurationError):
    """The request cannot run; `problems` lists every reason, each once."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def suggestion(name: str, candidates: Iterable[str]) -> str:
    """`" (did you mean 'x'?)"` for the closest candidate to a misspelt `name`, else `""`."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def group_by_jobs(problems: dict[str, list[int]], num_jobs: int) -> list[str]:
    """One line per problem: bare if every job has it, else prefixed with the jobs that do."""
    lines = []
    for problem, jobs in problems.items():
        if len(jobs) == num_jobs:
            lines.append(problem)
            continue
        named = ", ".join(map(str, jobs[:JOBS_LISTED]))
        more = f" and {len(jobs) - JOBS_LISTED} more" if len(jobs) > JOBS_LISTED else ""
        lines.append(f"job{'s' if len(jobs) > 1 else ''} {named}{more}: {problem}")
    return lines


def job_problems(spec: GeneratorSpec, jobs: list[dict[str, Any]], is_preview: bool) -> list[str]:
    """Every problem of every job against the generator's parameters, each stated once.

    Identical jobs are checked once. An unknown parameter name comes with the closest
    known one.

    Example:
        >>> from prefect_synthdata.params import ParamSpec
        >>> spec = GeneratorSpec(name="g", params=[ParamSpec(name="width", type="int")])
        >>> job_problems(spec, [{"widht": 2}] * 4, is_preview=False)
        ["unknown parameter 'widht' (did you mean 'width'?)"]
    """
    problems: dict[str, list[int]] = {}
    if not jobs:
        problems["a batch needs at least one job"] = []
    if is_preview and not spec.preview:
        problems[f"generator '{spec.name}' does not support previews"] = list(range(len(jobs)))
    known = [p.name for p in spec.params]
    alike: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        alike.setdefault(json.dumps(job, sort_keys=True, default=repr), []).append(index)
    for indices in alike.values():
        job = jobs[indices[0]]
        if not isinstance(job, dict):
            found = [f"job parameters must be a mapping, got {type(job).__name__}"]
        else:
            found = [
                f"unknown parameter {name!r}{suggestion(name, known)}"
                for name in job
                if name not in known
            ]
            found += check_job(spec, {k: v for k, v in job.items() if k in known})[1]
        for problem in found:
            problems.setdefault(problem, []).extend(indices)
    return group_by_jobs({p: sorted(jobs) for p, jobs in problems.items()}, len(jobs))


def generator_problems(provider: ProviderConfig, generation: GenerationSpec) -> list[str]:
    """The generator's name and every job's parameters, checked against the provider."""
    service = provider.create()
    names = [spec.name for spec in service.list_generators()]
    if generation.generator not in names:
        return [
            f"unknown generator {generation.generator!r}"
            f"{suggestion(generation.generator, names)}; available: {', '.join(sorted(names))}"
        ]
    spec = service.describe(generation.generator)
    return job_problems(spec, generation.jobs(), generation.is_preview)


def check_jobs(provider: ProviderConfig, generation: GenerationSpec) -> None:
    """PreflightError unless the provider has the generator and every job's parameters fit it."""
    problems = generator_problems(provider, generation)
    if problems:
        raise PreflightError(problems)


def check_generate(
    generation: GenerationSpec,
    provider: ProviderConfig | None,
    dest: str,
    storage: StoreOptions,
) -> None:
    """Raise PreflightError listing every problem of a generate request, before any Prefect.

    `provider` is None when the provider comes from a credentials block, which only the
    Prefect API can load: the generator and its parameters are then checked by the flow.
    A destination that needs a saved prefect-aws block is checked only for the block's type.
    """
    problems: list[str] = []

    def attempt(check: Any) -> None:
        try:
            check()
        except PreflightError as exc:
            problems.extend(exc.problems)
        except SynthDataError as exc:
            problems.append(str(exc))

    attempt(generation.check_names)
    if storage.aws_block is None:
        attempt(lambda: open_destination(dest, storage).check_writable())
    elif storage.aws_block.partition("/")[0] not in AWS_BLOCK_TYPES and "/" in storage.aws_block:
        problems.append(
            f"--aws-block {storage.aws_block!r} must be one of "
            + ", ".join(f"{kind}/NAME" for kind in AWS_BLOCK_TYPES)
        )
    if provider is not None:
        attempt(lambda: check_jobs(provider, generation))
    if problems:
        raise PreflightError(problems)
