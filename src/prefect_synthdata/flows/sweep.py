"""Parameter-sweep flow: vary generator parameters over a grid, fan out batches, publish.

Each axis names one generator parameter and its values: an explicit list, or a
linspace (`start`, `stop`, `num`; rounded for `int` parameters). `mode="grid"` takes
every combination of the axes, `mode="zip"` pairs them up element by element.

- `output="per_point"`: one batch and one published dataset per point, named
  `<name>-<index>-<param>-<value>...`. Every point is prepared once and its batch
  submitted before any is awaited, so the provider renders them all at once.
- `output="combined"`: one batch holding `num_jobs` jobs per point, one dataset.

To re-run chosen jobs with overrides, sweep the generator's `state` parameter over
their job ids (`SweepAxis(param="state", values=[...])`) next to the overridden ones.

Example:
    >>> SweepAxis(param="noise_std", start=0, stop=10, num=3).points()
    [0.0, 5.0, 10.0]
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC
from typing import Any, Literal, Self

from prefect import flow, get_run_logger, runtime
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefect_synthdata.artifacts import artifact_key, call_sync
from prefect_synthdata.blocks.credentials import resolve_provider
from prefect_synthdata.dataset.manifest import PublishedDataset
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.flows.generate import GenerateRequest
from prefect_synthdata.params import GeneratorSpec
from prefect_synthdata.pipeline import finish_run, prepare_runs, task_runner
from prefect_synthdata.request import RunSpec
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.tasks import opaque_input, submit_batch

MAX_POINTS = 1000


class SweepAxis(BaseModel):
    """One swept parameter: explicit `values`, or `num` evenly spaced values from `start` to `stop`."""

    model_config = ConfigDict(extra="forbid")

    param: str = Field(
        description="Generator parameter to vary, e.g. 'num_objects', 'noise_std' or 'state'."
    )
    values: list[Any] | None = Field(
        default=None, description="Explicit values (job ids for 'state')."
    )
    start: float | None = Field(default=None, description="First value of a linspace.")
    stop: float | None = Field(default=None, description="Last value of a linspace (inclusive).")
    num: int | None = Field(
        default=None, ge=1, le=MAX_POINTS, description="Number of linspace values."
    )

    @model_validator(mode="after")
    def _one_kind_of_values(self) -> Self:
        linspace = (self.start, self.stop, self.num)
        if self.values is None and None in linspace:
            raise ValueError(f"axis {self.param!r}: give either values or start, stop and num")
        if self.values is not None and any(v is not None for v in linspace):
            raise ValueError(f"axis {self.param!r}: give values or a linspace, not both")
        if self.values is not None and not self.values:
            raise ValueError(f"axis {self.param!r}: values must not be empty")
        return self

    def points(self, integer: bool = False) -> list[Any]:
        """The axis' values; linspace values are rounded when `integer`."""
        if self.values is not None:
            return list(self.values)
        assert self.start is not None and self.stop is not None and self.num is not None
        step = (self.stop - self.start) / (self.num - 1) if self.num > 1 else 0.0
        values = [self.start + i * step for i in range(self.num)]
        return [round(v) for v in values] if integer else values


class SweepRequest(BaseModel):
    """A sweep: the base request, the axes, how to combine them and how to publish."""

    model_config = ConfigDict(extra="forbid")

    base: GenerateRequest = Field(
        default_factory=GenerateRequest,
        description="The request every point starts from; axes override its params.",
    )
    axes: list[SweepAxis] = Field(min_length=1, description="Parameters to vary.")
    mode: Literal["grid", "zip"] = Field(
        default="grid",
        description="grid: every combination of the axes; zip: their values paired up in order.",
    )
    output: Literal["per_point", "combined"] = Field(
        default="per_point",
        description="One dataset per point, or one dataset with every point's jobs.",
    )

    def points(self, spec: GeneratorSpec) -> list[dict[str, Any]]:
        """Every point of the sweep as a `{param: value}` mapping; ConfigurationError on a bad sweep."""
        types = {p.name: p.type for p in spec.params}
        unknown = [a.param for a in self.axes if a.param not in types]
        if unknown:
            raise ConfigurationError(
                f"generator {spec.name!r} has no parameter(s) {unknown}; known: {sorted(types)}"
            )
        names = [a.param for a in self.axes]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"each parameter may be swept once, got {names}")
        columns = [a.points(integer=types[a.param] == "int") for a in self.axes]
        if self.mode == "zip":
            if len({len(c) for c in columns}) != 1:
                raise ConfigurationError(
                    f"zip needs axes of equal length, got {[len(c) for c in columns]}"
                )
            rows = list(zip(*columns, strict=True))
        else:
            rows = list(itertools.product(*columns))
        if len(rows) > MAX_POINTS:
            raise ConfigurationError(
                f"the sweep has {len(rows)} points; at most {MAX_POINTS} are allowed"
            )
        return [dict(zip(names, row, strict=True)) for row in rows]


def point_name(base: str, index: int, point: dict[str, Any]) -> str:
    """The dataset name of one sweep point: readable, unique, a valid path segment.

    Example:
        >>> point_name("shapes", 2, {"noise_std": 2.5, "background": "solid"})
        'shapes-002-noise_std-2.5-background-solid'
    """
    readable = "-".join(f"{k}-{v}" for k, v in point.items())
    return f"{base}-{index:03d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', readable)}"[:128].rstrip("-._")


def point_runs(base: RunSpec, points: list[dict[str, Any]]) -> list[RunSpec]:
    """One run per point of a per-point sweep."""
    return [
        base.model_copy(
            update={
                "params": {**base.params, **point},
                "name": point_name(base.name, i, point),
                "scene_name": base.scene_name or base.name,  # every point renders the same scenes
            }
        )
        for i, point in enumerate(points)
    ]


def combined_run(base: RunSpec, points: list[dict[str, Any]]) -> RunSpec:
    """One run with `base.num_jobs` jobs per point (or `base.job_params` per point)."""
    per_point = (
        base.job_params if base.job_params is not None else [{} for _ in range(base.num_jobs)]
    )
    return base.model_copy(
        update={"job_params": [{**job, **point} for point in points for job in per_point]}
    )


@flow(
    name="sweep-datasets",
    log_prints=False,
    task_runner=task_runner(),  # type: ignore[arg-type]
)
def sweep_datasets(request: SweepRequest) -> list[PublishedDataset]:
    """Run a parameter sweep and publish its dataset(s); returns one summary per published dataset.

    The whole sweep is validated (axes, every point's parameters, names, destination)
    before the first batch is submitted; each point is prepared once, and every batch
    is submitted before any is awaited.

    Args:
        request: The base request, the swept parameters and how to publish the points.
    """
    settings = SynthDataSettings()
    provider = resolve_provider(request.base.credentials, None, settings)
    day = runtime.flow_run.scheduled_start_time.astimezone(UTC).date()
    base = request.base.for_day(day)  # once: every point gets the same day's seed
    points = request.points(provider.create().describe(base.generator))
    if request.output == "combined":
        specs = [combined_run(base, points)]
    else:
        specs = point_runs(base, points)
    runs = prepare_runs(specs, provider, settings)

    # fan out: every batch is submitted before any is awaited
    submitted = [submit_batch.submit(run.provider, opaque_input(run.request)) for run in runs]
    get_run_logger().info("submitted %d batch(es) for %d sweep points", len(runs), len(points))
    datasets = [
        finish_run(run, future.result()) for run, future in zip(runs, submitted, strict=True)
    ]

    rows = [
        {"dataset": d.name, "uri": d.uri, "images": d.num_images, "annotations": d.num_annotations}
        | ({k: str(v) for k, v in point.items()} if request.output == "per_point" else {})
        for d, point in zip(datasets, points, strict=False)
    ]
    call_sync(
        create_table_artifact,
        rows,
        key=artifact_key("sweep", base.name),
        description=f"Sweep of {len(points)} points",
    )
    return datasets
