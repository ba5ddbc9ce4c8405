"""Providers of generation services and the serialisable config that builds them.

Example:
    >>> ProviderConfig(kind="local").create().identity.startswith("local:")
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.providers.base import Provider
from prefect_synthdata.providers.trust import token_problem
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage.options import StoreOptions

ProviderKind = Literal["local", "infinity", "zpy"]


class ProviderConfig(BaseModel):
    """Which service to talk to and how. The token is a `SecretStr` and never logged; one
    that cannot be sent in a header is refused here, without being shown."""

    model_config = ConfigDict(hide_input_in_errors=True)

    kind: ProviderKind = Field(default="local", description="local, infinity or zpy.")
    url: str | None = Field(default=None, description="Server URL of an HTTP provider.")
    token: SecretStr | None = Field(default=None, description="API token of an HTTP provider.")
    project: str | None = Field(default=None, description="zpy project id.")
    state_dir: Path | None = Field(
        default=None, description="State directory of the local provider."
    )
    cache_dir: Path | None = Field(
        default=None, description="Where the zpy provider keeps downloaded dataset zips."
    )
    dask_address: str | None = Field(
        default=None,
        description="The local provider renders on the Dask cluster with this scheduler address.",
    )
    results_dir: Path | None = Field(
        default=None,
        description="Where the local provider's renders land (shared with remote Dask workers).",
    )
    results_url: str | None = Field(
        default=None,
        description="s3://bucket/prefix where the local provider's renders land instead.",
    )
    results_options: StoreOptions | None = Field(
        default=None, description="How to reach results_url (endpoint, region, profile)."
    )

    @classmethod
    def from_settings(cls, settings: SynthDataSettings) -> ProviderConfig:
        """The provider `SYNTHDATA_PROVIDER`, `_PROVIDER_URL`, `_TOKEN` and `_PROJECT` describe."""
        return cls(
            kind=settings.provider,
            url=settings.provider_url,
            token=settings.token,
            project=settings.project,
        ).with_dirs(settings)

    def with_dirs(self, settings: SynthDataSettings) -> ProviderConfig:
        """This config with its folders under `settings.home` and the render executor
        and results store (`SYNTHDATA_DASK_ADDRESS`, `SYNTHDATA_RESULTS_DIR` or
        `SYNTHDATA_RESULTS_URL` and `_RESULTS_ENDPOINT_URL`...) from `settings` where unset."""
        return self.model_copy(
            update={
                "state_dir": self.state_dir or settings.home / "local",
                "cache_dir": self.cache_dir or settings.home / "cache" / "zpy",
                "dask_address": self.dask_address or settings.dask_address,
                "results_dir": self.results_dir or settings.results_dir,
                "results_url": self.results_url or settings.results_url,
                "results_options": self.results_options
                or StoreOptions(
                    endpoint_url=settings.results_endpoint_url,
                    region=settings.results_region,
                    profile=settings.results_profile,
                ),
            }
        )

    @field_validator("token")
    @classmethod
    def _sendable_token(cls, token: SecretStr | None) -> SecretStr | None:
        problem = token_problem(token.get_secret_value()) if token is not None else None
        if problem:
            raise ValueError(problem)
        return token

    def create(self) -> Provider:
        """Build the provider this config describes; ConfigurationError if a setting is missing."""
        if self.state_dir is None or self.cache_dir is None:
            return self.with_dirs(SynthDataSettings()).create()
        if self.kind == "local":
            from prefect_synthdata.engine.results import open_results, results_location
            from prefect_synthdata.providers.local import LocalProvider

            results = open_results(
                results_location(self.results_dir, self.results_url),
                default=self.state_dir / "results",
                options=self.results_options,
            )
            return LocalProvider(self.state_dir, dask_address=self.dask_address, results=results)
        if not self.url or self.token is None or not self.token.get_secret_value():
            raise ConfigurationError(f"provider {self.kind!r} needs a server url and a token")
        if self.kind == "infinity":
            from prefect_synthdata.providers.infinity import InfinityProvider

            return InfinityProvider(self.url, self.token)
        from prefect_synthdata.providers.zpy import ZpyProvider

        return ZpyProvider(self.url, self.token, self.project, self.cache_dir)


__all__ = ["Provider", "ProviderConfig", "ProviderKind"]
