"""What to generate, shared by the flows' requests and the `SynthDataJob` block.

`GenerationSpec` names the generator, the jobs and their parameters and the dataset;
`ProviderChoice` says which service runs them; `PollSettings` says how to wait for the
batch. All are plain pydantic models, so the Prefect UI renders them as forms with
defaults and bounds. Defaults come from `SYNTHDATA_*` settings.

Example:
    >>> spec = GenerationSpec(num_jobs=2, params={"width": 64})
    >>> spec.jobs()
    [{'width': 64}, {'width': 64}]
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, Field, field_validator

from prefect_synthdata import batches
from prefect_synthdata.dataset.exports import check_formats
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.models import BatchRequest
from prefect_synthdata.providers import Provider, ProviderConfig
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage.publish import check_segment

#: How the Prefect API hands back a `SecretStr` flow parameter.
MASKED = "*" * 10


class GenerationSpec(BaseModel):
    """The generator, its jobs' parameters and the dataset's name."""

    generator: str = Field(default="shapes", description="Generator name, e.g. 'shapes'.")
    num_jobs: int = Field(
        default=4, ge=1, le=100_000, description="Jobs to render (ignored with job_params)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters applied to every job."
    )
    job_params: list[dict[str, Any]] | None = Field(
        default=None, description="Per-job parameters (one mapping a job), merged over params."
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
        default="synthetic-shapes", description="Dataset name (also the batch label)."
    )
    version: str | None = Field(
        default=None, description="Dataset version; default: derived from the request."
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
        )

    def dataset_version(self, request: BatchRequest) -> str:
        """The version the dataset is published under: explicit, else derived from the batch
        key (and the exports beyond COCO, which change the content)."""
        if self.version:
            return self.version
        extra = [name for name in self.formats if name != "coco"]
        if not extra:
            return request.key[:12]
        return hashlib.sha256(f"{request.key}|{','.join(extra)}".encode()).hexdigest()[:12]


class PollSettings(BaseModel):
    """How to wait for a batch; defaults come from `SYNTHDATA_POLL_*` and `SYNTHDATA_DEADLINE_SECONDS`."""

    poll_initial_seconds: float = Field(
        default_factory=lambda: SynthDataSettings().poll_initial_seconds,
        gt=0,
        description="First poll interval.",
    )
    poll_cap_seconds: float = Field(
        default_factory=lambda: SynthDataSettings().poll_cap_seconds,
        gt=0,
        description="Longest poll interval.",
    )
    deadline_seconds: float = Field(
        default_factory=lambda: SynthDataSettings().deadline_seconds,
        gt=0,
        description="Give up waiting after this many seconds.",
    )

    def poll_policy(self) -> batches.PollPolicy:
        """The `PollPolicy` these settings describe."""
        return batches.PollPolicy(
            self.poll_initial_seconds, self.poll_cap_seconds, self.deadline_seconds
        )


def _default_provider() -> ProviderConfig:
    settings = SynthDataSettings()
    return ProviderConfig(
        kind=settings.provider,
        url=settings.provider_url,
        token=settings.token,
        project=settings.project,
    )


class ProviderChoice(BaseModel):
    """Which generation service to use: a saved credentials block by name, or an explicit config."""

    provider: ProviderConfig = Field(
        default_factory=_default_provider,
        description="Generation service; defaults from SYNTHDATA_PROVIDER, SYNTHDATA_PROVIDER_URL, SYNTHDATA_TOKEN.",
    )
    credentials_block: str | None = Field(
        default_factory=lambda: SynthDataSettings().credentials_block,
        description="Name of a saved credentials block, loaded at run time; replaces provider. "
        "Deployments use this so that no token is ever a flow parameter.",
    )

    def provider_config(self) -> ProviderConfig:
        """The provider to use: the named credentials block's, else `provider`.

        Loading a block needs Prefect; the import happens only when a block is named.
        """
        if self.credentials_block is None:
            token = self.provider.token
            if token is not None and token.get_secret_value() == MASKED:
                raise ConfigurationError(
                    "provider.token arrived masked: the Prefect API stores flow parameters with secrets "
                    "masked, so save the token in a credentials block and name it in credentials_block"
                )
            return self.provider
        from prefect_synthdata.blocks.credentials import load_credentials

        return load_credentials(self.credentials_block).provider_config()
