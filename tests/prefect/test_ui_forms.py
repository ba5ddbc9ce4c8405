"""The deployments driven the way the Prefect UI drives them, against a real `prefect server
start` on 127.0.0.1 serving deployments/: the forms' parameter schemas, a custom run with a
credentials block picked in the form (sent as a block reference), values the form refuses
at Submit, and a SynthDataJob block saved with the UI's default payload.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import BlockDocumentCreate
from prefect.deployments import run_deployment
from prefect.events.worker import EventsWorker
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.utilities.callables import parameter_schema
from pydantic import SecretStr

import prefect_synthdata.flows as flows
from prefect_synthdata.blocks import InfinityCredentials, SynthDataJob, ZpyCredentials
from tests.prefect.conftest import deployments_named, serving_deployments, wait_for_run
from tests.reference_server import ServerProcess, run_reference_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TOKEN = "tok-UI-FORM-5150-recognisable"
DEPLOYMENTS = {"nightly-refresh", "generate", "preview", "sweep", "train"}
SMALL = {"width": 64, "height": 64}


@pytest.fixture(scope="module")
def served(
    prefect_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The deployments served on the real server; the test process talks to that server."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with (
        serving_deployments(prefect_server, log),
        temporary_settings({PREFECT_API_URL: prefect_server["PREFECT_API_URL"]}),
    ):
        asyncio.run(_registered(prefect_server["PREFECT_API_URL"]))
        for block in (InfinityCredentials, ZpyCredentials, SynthDataJob):
            block.register_type_and_schema()
        yield prefect_server
        # Prefect keeps one events worker per client type, whatever its API URL: drain the
        # one made for this server while it runs, so later tests get one for theirs (else
        # their task runs never reach their API and the session's teardown waits forever).
        EventsWorker.drain_all(timeout=30)


async def _registered(api: str) -> None:
    async with PrefectClient(api=api) as client:
        await deployments_named(client, DEPLOYMENTS, 90)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_reference_server(tmp_path_factory.mktemp("ui-ref") / "srv", tokens=[TOKEN]) as srv:
        yield srv


def _secret_fields(schema: Any, path: str = "") -> list[str]:
    """Paths of every property in a JSON schema that could carry a secret."""
    found = []
    if isinstance(schema, dict):
        for name in schema.get("properties", {}):
            if any(word in name.lower() for word in ("token", "secret", "password")):
                found.append(f"{path}.{name}")
        if (
            schema.get("format") == "password"
            or schema.get("writeOnly")
            or "secret_fields" in schema
        ):
            found.append(path)
        for key, value in schema.items():
            found += _secret_fields(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += _secret_fields(value, f"{path}[{index}]")
    return found


def test_no_flow_form_has_a_token_field(served: dict[str, str]) -> None:
    """Regression: the generate, preview and sweep forms offered `provider.token`, which the API
    stored and showed in plain text in the run's parameters."""

    async def schemas() -> dict[str, dict[str, Any]]:
        async with PrefectClient(api=served["PREFECT_API_URL"]) as client:
            return {d.name: d.parameter_openapi_schema for d in await client.read_deployments()}

    deployed = asyncio.run(schemas())
    assert set(deployed) >= DEPLOYMENTS
    every_flow = {
        name: getattr(flows, name)
        for name in flows.__all__
        if name.endswith(("_dataset", "_datasets", "_generator"))
    }
    assert set(every_flow) == {
        "generate_dataset",
        "preview_generator",
        "sweep_datasets",
        "train_on_dataset",
    }
    for name, flow in every_flow.items():
        deployed[f"flow {name}"] = parameter_schema(flow.fn).model_dump()
    for name, schema in deployed.items():
        assert _secret_fields(schema) == [], name
    # the credentials field is a selector of saved blocks (the UI renders `block_type_slug`)
    definitions = deployed["generate"]["definitions"]
    credentials = definitions["GenerateRequest"]["properties"]["credentials"]["anyOf"]
    slugs = [
        definitions[o["$ref"].rsplit("/", 1)[1]]["block_type_slug"]
        for o in credentials
        if "$ref" in o
    ]
    assert slugs == ["synthdata-infinity-credentials", "synthdata-zpy-credentials"]


def test_custom_run_with_a_picked_credentials_block_keeps_the_token_out(
    served: dict[str, str], reference: ServerProcess
) -> None:
    block_id = InfinityCredentials(url=reference.url, token=SecretStr(TOKEN)).save(
        "ui-picked", overwrite=True
    )
    # what the form sends once a block is picked in `credentials`
    request = {
        "name": "ui-picked",
        "num_jobs": 1,
        "params": SMALL,
        "is_preview": True,
        "credentials": {"$ref": {"block_document_id": str(block_id)}},
    }
    run = run_deployment("generate-dataset/generate", parameters={"request": request}, timeout=0)

    async def finished() -> Any:
        async with PrefectClient(api=served["PREFECT_API_URL"]) as client:
            return await wait_for_run(client, run.id, 120)

    done = asyncio.run(finished())
    assert done.state is not None and done.state.is_completed(), done.state
    stored = json.dumps(done.parameters)
    assert TOKEN not in stored
    assert done.parameters["request"]["credentials"] == {
        "$ref": {"block_document_id": str(block_id)}
    }
    published = Path(served["SYNTHDATA_DEST"]) / "ui-picked"
    assert [p for p in published.iterdir() if (p / "_SUCCESS").is_file()]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"credentials": {"url": "http://127.0.0.1:1", "token": TOKEN}}, "credentials"),
        ({"provider": {"kind": "infinity", "token": TOKEN}}, "provider"),
        ({"num_jobs": 0}, "num_jobs"),
        ({"name": "../escape"}, "name"),
        ({"poll_cap_seconds": -1}, "poll_cap_seconds"),
    ],
)
def test_submit_refuses_bad_values_naming_the_field(
    served: dict[str, str], request_fields: dict[str, Any], field: str
) -> None:
    async def submit() -> str:
        async with PrefectClient(api=served["PREFECT_API_URL"]) as client:
            deployment = await client.read_deployment_by_name("generate-dataset/generate")
            with pytest.raises(PrefectHTTPStatusError) as refused:
                await client.create_flow_run_from_deployment(
                    deployment.id, parameters={"request": request_fields}
                )
            runs = await client.read_flow_runs()
            assert all(TOKEN not in json.dumps(r.parameters) for r in runs)
            return refused.value.response.text

    detail = asyncio.run(submit())  # (it may quote the submitter's own values back to them)
    assert f"'request.{field}'" in detail or f"'{field}'" in detail, detail


def _ui_default_payload(schema: dict[str, Any]) -> dict[str, Any]:
    """What the UI's block form saves when nothing is changed: each field's default, `{}` for
    an unselected block and for a nested object without a default."""
    payload: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        if "default" in prop:
            payload[name] = prop["default"]
        elif "$ref" in prop or prop.get("type") == "object":
            payload[name] = {}
    payload["credentials"] = {}
    return payload


def test_a_job_block_saved_with_the_ui_defaults_loads_and_runs(
    served: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the UI saved `credentials: {}`, and SynthDataJob.load failed on it."""
    monkeypatch.setenv("SYNTHDATA_DEST", str(tmp_path / "datasets"))

    async def create() -> None:
        async with PrefectClient(api=served["PREFECT_API_URL"]) as client:
            block_type = await client.read_block_type_by_slug("synthdata-job")
            schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
            assert schema is not None
            data = _ui_default_payload(schema.fields)
            data.update(num_jobs=1, params=SMALL, name="ui-saved")
            await client.create_block_document(
                BlockDocumentCreate(
                    name="ui-saved-job",
                    data=data,
                    block_schema_id=schema.id,
                    block_type_id=block_type.id,
                )
            )

    asyncio.run(create())
    job = SynthDataJob.load("ui-saved-job")
    assert job.credentials is None

    async def run_it() -> Any:
        run = await job.trigger()
        await run.wait_for_completion()
        return await run.fetch_result()

    dataset = asyncio.run(run_it())
    assert (Path(dataset.uri) / "_SUCCESS").is_file() and dataset.num_images == 1
