"""Credentials blocks of the HTTP providers; each one builds the `ProviderConfig` it stands for.

Deployments name a saved block (`GenerateRequest.credentials_block`) instead of carrying
a token in their parameters, which the Prefect API stores. The `local` provider needs
no credentials.

Example:
    >>> InfinityCredentials(url="http://127.0.0.1:8000", token="t").provider_config().kind
    'infinity'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, cast

from prefect.blocks.abstract import CredentialsBlock
from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.providers import Provider, ProviderConfig


class ProviderCredentials(CredentialsBlock, ABC):
    """Interface of the provider credentials blocks: `get_client()` returns a ready `Provider`."""

    url: str = Field(description="Base URL of the generation service.")
    token: SecretStr = Field(description="API token; stored encrypted and never logged.")

    @abstractmethod
    def provider_config(self) -> ProviderConfig:
        """The serialisable provider config these credentials describe."""

    def get_client(self) -> Provider:
        """The provider, ready to list generators and submit batches."""
        return self.provider_config().create()


class InfinityCredentials(ProviderCredentials):
    """Credentials of a service that speaks the Infinity API (server URL and API token).

    Example:
        Load saved credentials and list the service's generators:
        ```python
        from prefect_synthdata.blocks import InfinityCredentials

        credentials = InfinityCredentials.load("BLOCK_NAME")
        print([g.name for g in credentials.get_client().list_generators()])
        ```
    """

    _block_type_name = "SynthData Infinity Credentials"
    _block_type_slug = "synthdata-infinity-credentials"

    def provider_config(self) -> ProviderConfig:
        """The serialisable provider config these credentials describe."""
        return ProviderConfig(kind="infinity", url=self.url, token=self.token)


class ZpyCredentials(ProviderCredentials):
    """Credentials of a service that speaks the zpy (Zumo Labs) API: URL, token and project.

    Example:
        Load saved credentials and list the service's generators:
        ```python
        from prefect_synthdata.blocks import ZpyCredentials

        credentials = ZpyCredentials.load("BLOCK_NAME")
        print([g.name for g in credentials.get_client().list_generators()])
        ```
    """

    _block_type_name = "SynthData Zpy Credentials"
    _block_type_slug = "synthdata-zpy-credentials"

    project: str | None = Field(
        default=None, description="Project id to work in; default: the token's first project."
    )

    def provider_config(self) -> ProviderConfig:
        """The serialisable provider config these credentials describe."""
        return ProviderConfig(kind="zpy", url=self.url, token=self.token, project=self.project)


CREDENTIALS_BLOCKS: tuple[type[ProviderCredentials], ...] = (InfinityCredentials, ZpyCredentials)


def load_credentials(reference: str) -> ProviderCredentials:
    """Load a saved credentials block by `"<block type slug>/<name>"` or by its bare name.

    A bare name is looked up among every credentials block type; it must match exactly one.
    """
    if "/" in reference:
        block = cast(Block, cast(Any, Block.load)(reference, _sync=True))
        if not isinstance(block, ProviderCredentials):
            raise ConfigurationError(
                f"block {reference!r} is a {type(block).__name__}, not provider credentials"
            )
        return block
    found = []
    for block_type in CREDENTIALS_BLOCKS:
        try:
            found.append(
                cast(ProviderCredentials, cast(Any, block_type.load)(reference, _sync=True))
            )
        except ValueError:  # Prefect's "Unable to find block document named ..."
            continue
    if len(found) != 1:
        slugs = ", ".join(f"{b.get_block_type_slug()}/{reference}" for b in CREDENTIALS_BLOCKS)
        problem = "no credentials block" if not found else "more than one credentials block"
        raise ConfigurationError(f"{problem} named {reference!r}; use one of: {slugs}")
    return found[0]
