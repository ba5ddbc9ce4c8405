"""`ProviderConfig(kind="infinity" | "zpy")` builds the HTTP providers; quotas surface as QuotaExceededError."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from prefect_synthdata import batches
from prefect_synthdata.exceptions import ConfigurationError, QuotaExceededError
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.zpy import ZpyProvider
from tests.reference_server import run_reference_server

SECRET = "config-secret-token"


@pytest.mark.parametrize(("kind", "cls"), [("infinity", InfinityProvider), ("zpy", ZpyProvider)])
def test_config_builds_http_providers_without_leaking_the_token(kind: str, cls: type) -> None:
    config = ProviderConfig(
        kind=kind, url="http://127.0.0.1:9", token=SecretStr(SECRET), project="p1"
    )  # type: ignore[arg-type]
    provider = config.create()
    assert isinstance(provider, cls)
    assert SECRET not in repr(config) + config.model_dump_json() + repr(provider)
    if kind == "zpy":
        assert provider.identity == "zpy:http://127.0.0.1:9/#project=p1"  # no request needed


@pytest.mark.parametrize(
    "settings",
    [
        {"url": "http://127.0.0.1:9"},
        {"token": SecretStr("t")},
        {"url": "ftp://x", "token": SecretStr("t")},
    ],
)
def test_config_rejects_incomplete_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ProviderConfig(kind="infinity", **settings).create()  # type: ignore[arg-type]


def test_quota_exceeded_over_http(tmp_path: Path) -> None:
    with run_reference_server(tmp_path / "srv", tokens=["quota-token"], quota=2) as server:
        for kind in ("infinity", "zpy"):
            config = ProviderConfig(kind=kind, url=server.url, token=SecretStr("quota-token"))  # type: ignore[arg-type]
            provider = config.create()
            request = batches.prepare_request(
                provider, "shapes", [{"width": 64, "height": 64}] * 3, False, f"q-{kind}"
            )
            with pytest.raises(QuotaExceededError, match="quota"):
                batches.submit_idempotent(provider, request)
