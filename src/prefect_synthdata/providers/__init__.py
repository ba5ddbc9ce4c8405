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
        """This config with its state and cache folders under `settings.home` where unset."""
        return self.model_copy(
            update={
                "state_dir": self.state_dir or settings.home / "local",
                "cache_dir": self.cache_dir or settings.home / "cache" / "zpy",
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
            from prefect_synthdata.providers.local import LocalProvider

            return LocalProvider(self.state_dir)
        if not self.url or self.token is None or not self.token.get_secret_value():
            raise ConfigurationError(f"provider {self.kind!r} needs a server url and a token")
        if self.kind == "infinity":
            from prefect_synthdata.providers.infinity import InfinityProvider

            return InfinityProvider(self.url, self.token)
        from prefect_synthdata.providers.zpy import ZpyProvider

        return ZpyProvider(self.url, self.token, self.project, self.cache_dir)


__all__ = ["Provider", "ProviderConfig", "ProviderKind"]
