"""Generator parameter specs, validation and random sampling (the Infinity rules).

A generator describes its parameters in the Infinity `parameter_info` shape. The
same rules serve the embedded engine, the reference server and the HTTP clients:

- unknown names are errors; `int`/`float` values are cast and range-checked;
  `str`/`bool` are checked by type; `choices` by membership; `uuid` takes a string or None;
- validation runs on the user's values, then on `{**defaults, **values}`, and the
  merged set is what gets submitted;
- every problem of every job is reported at once;
- a job whose `state` names an earlier job starts from that job's full parameter
  set, and its other given values override it (`resolve_state`);
- randomization (`sample_unspecified`) draws a parameter from its *sampling range*,
  which is distinct from its validity bounds: the extra key `sample` of a parameter
  entry is `false` (never sampled: it keeps its default), or `{"min", "max"}` /
  `{"choices"}` inside the bounds, with `at_least` naming a parameter it may not fall
  below (`max_scale` >= `min_scale`). A parameter without `sample` (an original
  Infinity server's) follows the Infinity rule: choices, else uniform in [min, max].
  Original clients ignore the extra key and read the table as before.

Example:
    >>> spec = GeneratorSpec(name="g", params=[ParamSpec(name="n", type="int", default_value=1,
    ...     options=ParamOptions(min=1, max=5))])
    >>> validate_jobs(spec, [{"n": 3}])
    [{'n': 3}]
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from prefect_synthdata.exceptions import ParameterValidationError, SynthDataError

ParamType = Literal["int", "float", "str", "bool", "uuid"]
STATE = "state"

StateLookup = Callable[[str], dict[str, Any]]
"""Full parameter set of an earlier job by id; raises a SynthDataError naming why it cannot."""


class ParamOptions(BaseModel):
    """Constraints of one parameter: inclusive `min`/`max` and/or a list of `choices`."""

    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None


class SampleRange(BaseModel):
    """Where randomization draws a parameter: `min`/`max` (inclusive) or `choices`.

    `at_least` names another parameter this one is never drawn below, so paired
    bounds (`min_scale`/`max_scale`) always come out ordered.
    """

    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None
    at_least: str | None = None


class ParamSpec(BaseModel):
    """One generator parameter: name, type, default, validity constraints and sampling range.

    `sample` is False (never sampled), a `SampleRange`, or None (not said: the
    Infinity rule samples over the validity bounds).
    """

    name: str
    type: ParamType
    default_value: Any = None
    options: ParamOptions = Field(default_factory=ParamOptions)
    description: str = ""
    sample: SampleRange | Literal[False] | None = None

    def to_api(self) -> dict[str, Any]:
        """The Infinity `params[]` entry (options without unset keys, plus `sample` if said)."""
        entry = {
            "name": self.name,
            "type": self.type,
            "default_value": self.default_value,
            "options": self.options.model_dump(exclude_none=True),
        }
        if self.sample is not None:
            entry["sample"] = self.sample and self.sample.model_dump(exclude_none=True)
        return entry

    def sampling_range(self) -> SampleRange | None:
        """Where randomization draws this parameter, or None if it keeps its default.

        Example:
            >>> ParamSpec(name="n", type="int", options=ParamOptions(min=1, max=9)).sampling_range().max
            9.0
        """
        if self.type == "uuid" or self.sample is False:
            return None
        if self.sample is None:
            opts = self.options
            return SampleRange(min=opts.min, max=opts.max, choices=opts.choices)
        return self.sample


class GeneratorSpec(BaseModel):
    """A generator's public description: its parameters and whether it renders previews."""

    name: str
    version: str = "1"
    description: str = ""
    params: list[ParamSpec]
    preview: bool = True

    def defaults(self) -> dict[str, Any]:
        """Every parameter's default value."""
        return {p.name: p.default_value for p in self.params}

    def to_api(self) -> dict[str, Any]:
        """The Infinity `GET api/jobs/{generator}/` body."""
        return {
            "name": self.name,
            "version": self.version,
            "params": [p.to_api() for p in self.params],
            "options": {"preview": self.preview},
        }

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> GeneratorSpec:
        """Parse an Infinity `parameter_info` body."""
        return cls(
            name=body["name"],
            version=str(body.get("version") or "1"),
            params=[ParamSpec.model_validate(p) for p in body.get("params", [])],
            preview=bool((body.get("options") or {}).get("preview", False)),
        )


def _check_value(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """Cast and check one value; returns (normalised value, problem or None)."""
    name, opts = spec.name, spec.options
    if spec.type == "uuid":
        if value is None:
            return None, None
        if not isinstance(value, str):
            return value, f"'{name}' must be a uuid string or null, got {type(value).__name__}"
        try:
            return str(uuid.UUID(value)), None
        except ValueError:
            return value, f"'{name}' must be a uuid, got {value!r}"
    if spec.type == "bool":
        if not isinstance(value, bool):
            return value, f"'{name}' must be a bool, got {value!r}"
        return value, None
    if spec.type == "str":
        if not isinstance(value, str):
            return value, f"'{name}' must be a str, got {value!r}"
    else:
        if isinstance(value, bool) or value is None:
            return value, f"'{name}' must be {spec.type}, got {value!r}"
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value, f"'{name}' must be {spec.type}, got {value!r}"
        if number != number or number in (float("inf"), float("-inf")):
            return value, f"'{name}' must be a finite number, got {value!r}"
        if spec.type == "int":
            if not number.is_integer():
                return value, f"'{name}' must be an int, got {value!r}"
            value = int(number)
        else:
            value = number
        if opts.min is not None and value < opts.min:
            return value, f"'{name}' must be >= {opts.min:g}, got {value}"
        if opts.max is not None and value > opts.max:
            return value, f"'{name}' must be <= {opts.max:g}, got {value}"
    if opts.choices is not None and value not in opts.choices:
        return value, f"'{name}' must be one of {opts.choices}, got {value!r}"
    return value, None


def check_job(spec: GeneratorSpec, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Validate one job's values; returns the merged full parameter set and its problems.

    Example:
        >>> spec = GeneratorSpec(name="g", params=[ParamSpec(name="x", type="float", default_value=0.5)])
        >>> check_job(spec, {"y": 1})[1]
        ["unknown parameter 'y'"]
    """
    if not isinstance(values, dict):
        return {}, [f"job parameters must be a mapping, got {type(values).__name__}"]
    by_name = {p.name: p for p in spec.params}
    problems = [f"unknown parameter '{k}'" for k in values if k not in by_name]
    merged: dict[str, Any] = {}
    for p in spec.params:
        value, problem = _check_value(p, values.get(p.name, p.default_value))
        merged[p.name] = value
        if problem:
            problems.append(problem)
    return merged, problems


def resolve_state(
    spec: GeneratorSpec, values: dict[str, Any], lookup: StateLookup
) -> tuple[dict[str, Any], list[str]]:
    """Expand a job that names an earlier job in `state`: that job's parameters, then `values`.

    Returns the expanded values and the problems found (an unknown job id, say).
    Values without a usable `state` come back unchanged; `state` itself is kept,
    so the job records where it came from.

    Example:
        >>> spec = GeneratorSpec(name="g", params=[ParamSpec(name="n", type="int", default_value=1),
        ...     ParamSpec(name="seed", type="int", default_value=0), ParamSpec(name="state", type="uuid")])
        >>> earlier = {"n": 5, "seed": 9, "state": None}
        >>> job = "6f1c2a3e-0000-4000-8000-000000000000"
        >>> resolve_state(spec, {"state": job, "n": 2}, lambda job_id: earlier)[0] == {"n": 2, "seed": 9, "state": job}
        True
    """
    state = values.get(STATE) if isinstance(values, dict) else None
    if state is None:
        return values, []
    state_spec = next((p for p in spec.params if p.name == STATE), None)
    if state_spec is None or _check_value(state_spec, state)[1]:
        return values, []  # check_job reports the unknown or malformed parameter
    try:
        earlier = lookup(str(uuid.UUID(state)))
    except SynthDataError as exc:
        return values, [f"'{STATE}' cannot be resolved: {exc}"]
    known = {p.name for p in spec.params}
    return {**{k: v for k, v in earlier.items() if k in known}, **values}, []


def validate_jobs(
    spec: GeneratorSpec,
    jobs: list[dict[str, Any]],
    is_preview: bool = False,
    state_lookup: StateLookup | None = None,
) -> list[dict[str, Any]]:
    """Validate every job; return the merged parameter sets or raise with all problems.

    With `state_lookup`, jobs naming an earlier job in `state` are expanded first
    (see `resolve_state`); without it, `state` is only checked to be a uuid.

    Example:
        >>> spec = GeneratorSpec(name="g", params=[ParamSpec(name="n", type="int", default_value=1)])
        >>> validate_jobs(spec, [{"n": "2"}, {}])
        [{'n': 2}, {'n': 1}]
    """
    problems: list[str] = []
    if not jobs:
        problems.append("a batch needs at least one job")
    if is_preview and not spec.preview:
        problems.append(f"generator '{spec.name}' does not support previews")
    merged_jobs = []
    for index, values in enumerate(jobs):
        state_problems: list[str] = []
        if state_lookup is not None:
            values, state_problems = resolve_state(spec, values, state_lookup)
        merged, job_problems = check_job(spec, values)
        problems.extend(f"job {index}: {p}" for p in state_problems + job_problems)
        merged_jobs.append(merged)
    if problems:
        raise ParameterValidationError(problems)
    return merged_jobs


def _number(value: Any) -> float | None:
    """`value` as a float if it is a plain number (validation reports anything else)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _draw(p: ParamSpec, lo: float, hi: float, rng: random.Random) -> Any:
    """A uniform int or float in [lo, hi]."""
    return rng.randint(int(lo), int(hi)) if p.type == "int" else rng.uniform(lo, hi)


def sample_unspecified(
    spec: GeneratorSpec, values: dict[str, Any], rng: random.Random
) -> dict[str, Any]:
    """Fill parameters the user left out from their sampling ranges (see `ParamSpec.sampling_range`).

    Parameters that are not sampled keep their default, and a job that names an
    earlier job in `state` is left as it is: its missing values come from that job.
    Paired bounds stay ordered: a parameter with `at_least: other` is drawn no lower
    than `other`, and `other` no higher than it, whichever of them is given.

    Example:
        >>> spec = GeneratorSpec(name="g", params=[ParamSpec(name="c", type="str", default_value="a",
        ...     options=ParamOptions(choices=["a", "b"]))])
        >>> sample_unspecified(spec, {}, random.Random(1))["c"] in ("a", "b")
        True
    """
    filled = dict(values)
    if filled.get(STATE) is not None:
        return filled
    ranges = {p.name: p.sampling_range() for p in spec.params}
    for p in spec.params:
        if p.name in filled:
            continue
        span = ranges[p.name]
        if span is None:
            filled[p.name] = p.default_value
        elif span.choices:
            filled[p.name] = rng.choice(span.choices)
        elif span.min is not None and span.max is not None and p.type in ("int", "float"):
            floor = _number(filled.get(span.at_least)) if span.at_least else None
            ceilings = [
                _number(filled.get(other))
                for other, other_span in ranges.items()
                if other_span and other_span.at_least == p.name
            ]
            lo = max(span.min, floor) if floor is not None else span.min
            hi = min([span.max, *(c for c in ceilings if c is not None)])
            if p.type == "int":
                lo, hi = math.ceil(lo), math.floor(hi)
            # a given value outside the range wins: paired bounds stay ordered
            filled[p.name] = (
                _draw(p, lo, hi, rng) if lo <= hi else (lo if floor is not None else hi)
            )
        else:
            filled[p.name] = p.default_value
    return filled
