"""Credentials blocks of the HTTP providers, and where a run's provider comes from.

Each credentials block builds the `ProviderConfig` it stands for. A run names its
service with a `ProviderChoice`: a credentials block, `"local"` for the embedded
provider, or nothing. `resolve_provider` turns that into a `ProviderConfig` with one
precedence, the same for flows, blocks and the CLI:

1. an explicit choice: a credentials block (in a form, a reference to a saved one),
   `"local"`, or a `ProviderConfig` built by the caller (CLI flags, Python);
2. a saved credentials block named by the caller (`--credentials-block NAME`);
3. the environment of the process that runs it: `SYNTHDATA_CREDENTIALS_BLOCK`, else
   `SYNTHDATA_PROVIDER` with `SYNTHDATA_PROVIDER_URL`, `SYNTHDATA_TOKEN` and
   `SYNTHDATA_PROJECT` (default: `local`).

Flow parameters are stored by the Prefect API, so forms offer a block reference for
credentials, never a token field (`CredentialsReference`).

Example:
    >>> from prefect_synthdata.settings import SynthDataSettings
    >>> resolve_provider("local", None, SynthDataSettings(credentials_block="prod")).kind
    'local'
    >>> InfinityCredentials(url="http://127.0.0.1:8000", token="t").provider_config().kind
    'infinity'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, Any, Literal, cast

from prefect.blocks.abstract import CredentialsBlock
from prefect.blocks.core import Block
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SecretStr,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema as cs

from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.providers import Provider, ProviderConfig
from prefect_synthdata.providers.trust import (
    SERVICE_URL_PATTERN,
    TOKEN_PATTERN,
    service_url_problem,
    token_problem,
)
from prefect_synthdata.settings import SynthDataSettings


class ProviderCredentials(CredentialsBlock, ABC):
    """Interface of the provider credentials blocks: `get_client()` returns a ready `Provider`.

    A malformed URL or token is refused when the block is created (in Python, or loaded
    after the API stored it): one validation error naming the field, never showing the
    token. The fields' `pattern`s let the UI's form refuse them before saving.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    url: str = Field(
        description="Base URL of the generation service.",
        json_schema_extra={"pattern": SERVICE_URL_PATTERN},
    )
    token: SecretStr = Field(
        description="API token; stored encrypted and never logged.",
        json_schema_extra={"pattern": TOKEN_PATTERN},
    )

    @field_validator("url")
    @classmethod
    def _service_url(cls, url: str) -> str:
        problem = service_url_problem(url)
        if problem:
            raise ValueError(problem)
        return url

    @field_validator("token")
    @classmethod
    def _sendable_token(cls, token: SecretStr) -> SecretStr:
        problem = token_problem(token.get_secret_value())
        if problem:
            raise ValueError(problem)
        return token

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


def _nothing_selected_is_none(value: Any) -> Any:
    """The Prefect UI saves an unselected block field as `{}`: that means no choice."""
    return None if value == {} else value


#: Which service runs a run: a credentials block, "local" (the embedded provider) or None
#: (the environment decides, see `resolve_provider`).
ProviderChoice = Annotated[
    InfinityCredentials | ZpyCredentials | Literal["local"] | None,
    BeforeValidator(_nothing_selected_is_none),
]


class _BlockReferenceOnly:
    """In a flow's parameter schema, show a credentials block as a block selector only.

    The Prefect UI renders a definition with a `block_type_slug` as a selector of saved
    blocks and sends `{"$ref": {"block_document_id": ...}}`; the block's own fields
    (the token) are left out of the schema, and `additionalProperties: false` makes the
    API refuse credentials typed in as values instead of a reference.
    """

    def __get_pydantic_json_schema__(
        self, core_schema: cs.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        for option in schema.get("anyOf", [schema]):
            if "$ref" not in option:
                continue
            definition = handler.resolve_ref_schema(option)
            if "block_type_slug" in definition:
                for key in ("properties", "required", "secret_fields", "block_schema_references"):
                    definition.pop(key, None)
                definition["additionalProperties"] = False
        return schema


#: A `ProviderChoice` as a flow parameter: credentials only by reference to a saved block.
CredentialsReference = Annotated[ProviderChoice, _BlockReferenceOnly()]


def resolve_provider(
    choice: ProviderChoice | ProviderConfig,
    block_name: str | None,
    settings: SynthDataSettings,
) -> ProviderConfig:
    """The provider a run uses: `choice`, else the block `block_name`, else the environment.

    See the module docstring for the precedence. State and cache folders are filled in
    from `settings`, so building the provider later reads no settings.
    """
    if isinstance(choice, ProviderConfig):
        config = choice
    elif isinstance(choice, ProviderCredentials):
        config = choice.provider_config()
    elif choice == "local":
        config = ProviderConfig(kind="local")
    elif block_name is not None:
        config = load_credentials(block_name).provider_config()
    elif settings.credentials_block is not None:
        config = load_credentials(settings.credentials_block).provider_config()
    else:
        config = ProviderConfig.from_settings(settings)
    return config.with_dirs(settings)
