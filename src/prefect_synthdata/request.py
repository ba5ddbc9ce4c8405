"""What one generation run is, as plain models (no Prefect): the one description of a run.

- `GenerationSpec`: the generator, its jobs' parameters and the dataset's name;
- `WaitSettings`: how to wait for the batch;
- `RunSpec`: both, plus where the dataset is published and how it is downloaded.

The generate flow's `GenerateRequest` and the `SynthDataJob` block are a `RunSpec` plus
*which service* runs it (a credentials block); `prefect_synthdata.pipeline` runs one.

Fields left empty (`None`) take their value from `SynthDataSettings` (`SYNTHDATA_*`),
which the entry point reads once and applies with `RunSpec.with_defaults`; each default
is declared once, in `settings.py`, and named in the field's description.

Example:
    >>> spec = RunSpec(num_jobs=2, params={"width": 64})
    >>> spec.jobs()
    [{'width': 64}, {'width': 64}]
    >>> spec.with_defaults(SynthDataSettings(dest="/data")).dest
    '/data'
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from prefect_synthdata import batches
from prefect_synthdata.dataset.exports import check_formats
from prefect_synthdata.dataset.quality import QualityGate
from prefect_synthdata.dataset.splits import check_fractions
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.models import BatchRequest
from prefect_synthdata.providers import Provider
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage import StoreOptions
from prefect_synthdata.storage.publish import SAFE_SEGMENT, check_segment

_DEFAULTS = SynthDataSettings.model_fields


def _from_settings(name: str, text: str) -> str:
    """A field description naming the `SYNTHDATA_*` setting (and its default) an empty value takes."""
    default = _DEFAULTS[name].default
    return f"{text} Empty: ${'SYNTHDATA_' + name.upper()}, else {default}."


def _empty_is_none(value: Any) -> Any:
    """A form's untouched list field arrives as `[]`: that means "not given"."""
    return None if value == [] else value


class GenerationSpec(BaseModel):
    """The generator, its jobs' parameters and the dataset's name."""

    generator: str = Field(
        default="shapes",
        description="Generator name ('synthdata generators' lists them).",
        json_schema_extra={"examples": ["shapes", "tabletop"]},
    )
    num_jobs: int = Field(
        default=4, ge=1, le=100_000, description="Jobs to render (ignored with job_params)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description='Parameters applied to every job, e.g. {"width": 256, "num_objects": 8}; '
        "each is checked against the generator's bounds before anything is submitted.",
    )
    job_params: Annotated[list[dict[str, Any]] | None, BeforeValidator(_empty_is_none)] = Field(
        default=None,
        max_length=100_000,
        description="Per-job parameters (one mapping a job), merged over params. "
        "Empty: num_jobs jobs of params.",
    )
    is_preview: bool = Field(default=False, description="Render one preview frame per job.")
    seed: int = Field(
        default=0, ge=0, description="Seed from which each job's scene seed is drawn."
    )
    randomize: bool = Field(
        default=False,
        description="Sample every unspecified parameter within its bounds (Infinity rules).",
    )
    name: str = Field(
        default="synthetic-shapes",
        description="Dataset name (also the batch label): letters, digits, '.', '_', '-'.",
        json_schema_extra={"pattern": SAFE_SEGMENT.pattern},
    )
    version: str | None = Field(
        default=None,
        description="Dataset version. Empty: derived from the request (same request, same version).",
        json_schema_extra={"pattern": SAFE_SEGMENT.pattern},
    )
    scene_name: str | None = Field(
        default=None,
        description="Draw the scenes dataset `scene_name` draws. Empty: this dataset's own "
        "name, so datasets of different names share no scene (sweep points share their base's).",
    )
    formats: list[str] = Field(
        default_factory=lambda: ["coco"],
        description="Exports published with the dataset: coco (always), hf, yolo, webdataset, mot.",
    )

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, formats: list[str]) -> list[str]:
        try:
            return check_formats(["coco", *formats])
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None

    splits: dict[str, float] = Field(
        default_factory=dict,
        description="Split fractions by name, e.g. {'train': 0.8, 'val': 0.1, 'test': 0.1}: "
        "assigned by job (a video never spans two splits), one COCO file each.",
    )
    quality: QualityGate = Field(
        default_factory=QualityGate,
        description="What a dataset must meet to be published (labels, unlabelled share).",
    )

    @field_validator("splits")
    @classmethod
    def _check_splits(cls, splits: dict[str, float]) -> dict[str, float]:
        problems = check_fractions(splits)
        if problems:
            raise ValueError("; ".join(problems))
        return splits

    def jobs(self) -> list[dict[str, Any]]:
        """The per-job parameter dicts this request asks for."""
        if self.job_params is not None:
            return [{**self.params, **job} for job in self.job_params]
        return [dict(self.params) for _ in range(self.num_jobs)]

    def check_names(self) -> None:
        """ConfigurationError unless name and version are plain path segments."""
        check_segment("name", self.name)
        if self.version is not None:
            check_segment("version", self.version)

    def prepare(self, provider: Provider) -> BatchRequest:
        """Validate the jobs against the provider and key the batch (nothing is submitted)."""
        return batches.prepare_request(
            provider,
            self.generator,
            self.jobs(),
            self.is_preview,
            self.name,
            self.seed,
            self.randomize,
            self.scene_name,
        )

    def dataset_version(self, request: BatchRequest) -> str:
        """The version the dataset is published under: explicit, else derived from the batch
        key, and from the splits and exports beyond COCO, which change the published files."""
        if self.version:
            return self.version
        extra = [name for name in self.formats if name != "coco"]
        if not extra and not self.splits:
            return request.key[:12]
        variant = json.dumps({"splits": self.splits, "formats": extra}, sort_keys=True)
        return hashlib.sha256(f"{request.key}:{variant}".encode()).hexdigest()[:12]


class WaitSettings(BaseModel):
    """How to wait for a batch: poll backoff and deadline."""

    poll_initial_seconds: float | None = Field(
        default=None,
        gt=0,
        description=_from_settings("poll_initial_seconds", "First poll interval (s)."),
    )
    poll_cap_seconds: float | None = Field(
        default=None,
        gt=0,
        description=_from_settings("poll_cap_seconds", "Longest poll interval (s)."),
    )
    deadline_seconds: float | None = Field(
        default=None,
        gt=0,
        description=_from_settings("deadline_seconds", "Give up waiting after this many seconds."),
    )

    def poll_policy(self) -> batches.PollPolicy:
        """The `PollPolicy` of these settings (call on a spec `with_defaults` applied)."""
        assert self.poll_initial_seconds and self.poll_cap_seconds and self.deadline_seconds
        return batches.PollPolicy(
            self.poll_initial_seconds, self.poll_cap_seconds, self.deadline_seconds
        )


class RunSpec(WaitSettings, GenerationSpec):
    """One generation run without the service: what to render, how to wait, where to publish."""

    dest: str | None = Field(
        default=None,
        description=_from_settings("dest", "Where to publish: a path, file:// or s3:// URI."),
    )
    storage: StoreOptions = Field(
        default_factory=StoreOptions,
        description="How to reach an s3:// destination (endpoint, region, prefect-aws block...).",
    )
    shard_size: int | None = Field(
        default=None, ge=1, description=_from_settings("shard_size", "Jobs per download task.")
    )
    seed_per_day: bool = Field(
        default=False,
        description="Add the run's scheduled date (YYYYMMDD, UTC) to seed: each nightly run renders new "
        "scenes, while a retry of the same night's run repeats them.",
    )

    def with_defaults(self, settings: SynthDataSettings) -> Self:
        """This spec with every empty field taken from `settings` (read once by the entry point)."""
        defaults = {
            name: getattr(settings, name)
            for name in (
                "poll_initial_seconds",
                "poll_cap_seconds",
                "deadline_seconds",
                "dest",
                "shard_size",
            )
            if getattr(self, name) is None
        }
        return self.model_copy(update=defaults)

    def for_day(self, day: date) -> Self:
        """The spec as run on `day`: with `seed_per_day`, the seed moves with the date (once).

        Example:
            >>> RunSpec(seed=1, seed_per_day=True).for_day(date(2026, 1, 2)).seed
            20260103
        """
        if not self.seed_per_day:
            return self
        seed = self.seed + int(day.strftime("%Y%m%d"))
        return self.model_copy(update={"seed": seed, "seed_per_day": False})
