"""Blocks: Prefect's block standards on every block, credentials that never leak their token,
`prefect block register -m prefect_synthdata`, and the SynthDataJob/SynthDataJobRun pair."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import httpx
import jsonschema
import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pycocotools.coco import COCO
from pydantic import ValidationError

import prefect_synthdata
from prefect_synthdata.blocks import (
    InfinityCredentials,
    SynthDataJob,
    ZpyCredentials,
    load_credentials,
)
from prefect_synthdata.blocks.credentials import resolve_provider
from prefect_synthdata.exceptions import ConfigurationError, ParameterValidationError
from prefect_synthdata.flows import GenerateRequest
from prefect_synthdata.settings import SynthDataSettings
from tests.conftest import subprocess_env

#: Packages of optional extras: modules that need them are not importable without the extra.
OPTIONAL_EXTRA_PACKAGES = {"bpy", "torch"}


def _package_blocks() -> list[type[Block]]:
    """Every concrete block class defined anywhere in prefect_synthdata."""
    found: dict[str, type[Block]] = {}
    for info in pkgutil.walk_packages(prefect_synthdata.__path__, "prefect_synthdata."):
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if exc.name in OPTIONAL_EXTRA_PACKAGES:
                continue
            raise
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, Block)
                and cls.__module__.startswith("prefect_synthdata")
                and not inspect.isabstract(cls)
            ):
                found[cls.__qualname__] = cls
    return sorted(found.values(), key=lambda c: c.__name__)


BLOCKS = _package_blocks()


def test_every_block_is_found_and_exported() -> None:
    assert [b.__name__ for b in BLOCKS] == ["InfinityCredentials", "SynthDataJob", "ZpyCredentials"]
    assert all(getattr(prefect_synthdata, b.__name__) is b for b in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.__name__)
class TestBlockStandards(BlockStandardTestSuite):
    """Prefect's own block standards (description, field descriptions, code example)."""

    @pytest.fixture
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        return request.param  # type: ignore[no-any-return]

    @pytest.mark.skip(reason="no public documentation site yet")
    def test_has_a_documentation_url(self, block: type[Block]) -> None: ...

    @pytest.mark.skip(reason="no logo yet; the standard check downloads it (no network here)")
    def test_has_a_valid_image(self, block: type[Block]) -> None: ...

    def test_code_example_is_written_not_generated(self, block: type[Block]) -> None:
        assert block.get_code_example() != block._generate_code_example()


def test_block_register_from_the_command_line() -> None:
    env = subprocess_env(PREFECT_API_URL=str(PREFECT_API_URL.value()))
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "prefect_synthdata"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    async def slugs() -> set[str]:
        async with get_client() as client:
            return {t.slug for t in await client.read_block_types()}

    assert {b.get_block_type_slug() for b in BLOCKS} <= asyncio.run(slugs())


def test_credentials_are_stored_masked_and_build_provider_configs() -> None:
    InfinityCredentials(url="http://127.0.0.1:1", token="inf-secret-1").save(
        "creds-a", overwrite=True
    )
    ZpyCredentials(url="http://127.0.0.1:2", token="zpy-secret-2", project="p1").save(
        "creds-b", overwrite=True
    )

    async def stored() -> str:
        async with get_client() as client:
            doc = await client.read_block_document_by_name(
                "creds-a", "synthdata-infinity-credentials", include_secrets=False
            )
            assert doc.block_schema is not None
            assert doc.block_schema.fields["secret_fields"] == ["token"]
            return json.dumps(doc.data)

    assert "inf-secret-1" not in asyncio.run(stored())
    loaded = load_credentials("creds-a")
    assert "inf-secret-1" not in repr(loaded)
    config = loaded.provider_config()
    assert (config.kind, config.url, config.token.get_secret_value()) == (
        "infinity",
        "http://127.0.0.1:1",
        "inf-secret-1",
    )  # type: ignore[union-attr]
    zpy = load_credentials("synthdata-zpy-credentials/creds-b").provider_config()
    assert (zpy.kind, zpy.project) == ("zpy", "p1")

    request = GenerateRequest(credentials=load_credentials("creds-b"))
    assert (
        resolve_provider(request.credentials, None, SynthDataSettings()).url == "http://127.0.0.1:2"
    )
    assert "zpy-secret-2" not in request.model_dump_json()


def test_credentials_lookup_errors_name_the_problem() -> None:
    InfinityCredentials(url="http://127.0.0.1:1", token="t").save("twin", overwrite=True)
    ZpyCredentials(url="http://127.0.0.1:2", token="t").save("twin", overwrite=True)
    with pytest.raises(ConfigurationError, match="more than one credentials block named 'twin'"):
        load_credentials("twin")
    with pytest.raises(ConfigurationError, match="no credentials block named 'nope'"):
        load_credentials("nope")
    with pytest.raises(ConfigurationError, match="not provider credentials"):
        SynthDataJob().save("a-job", overwrite=True)
        load_credentials("synthdata-job/a-job")


def test_job_block_triggers_waits_and_publishes(tmp_path: Path) -> None:
    SynthDataJob(
        name="job-block",
        num_jobs=2,
        params={"width": 64, "height": 64},
        dest=str(tmp_path / "ds"),
        poll_cap_seconds=0.2,
    ).save("shapes-job", overwrite=True)
    job = SynthDataJob.load("shapes-job")

    async def run_it() -> tuple[str, str, object]:
        first = await job.trigger()
        with pytest.raises(ConfigurationError, match="await wait_for_completion"):
            await first.fetch_result()
        await first.wait_for_completion()
        dataset = await first.fetch_result()
        again = await job.trigger()  # same configuration: the same batch is adopted
        return first.batch_id, again.batch_id, dataset

    first_id, second_id, dataset = asyncio.run(run_it())
    assert first_id == second_id
    root = Path(dataset.uri)  # type: ignore[attr-defined]
    assert (root / "_SUCCESS").is_file()
    coco = COCO(str(root / "annotations.coco.json"))
    assert len(coco.getImgIds()) == 2 == dataset.num_images  # type: ignore[attr-defined]
    # the same pipeline steps as the flows: outside a flow, each step is a flow run of its own
    steps = asyncio.run(_task_names_by_flow("synthdata-job-"))
    assert steps["synthdata-job-trigger"] == {"submit_batch"}
    assert steps["synthdata-job-wait"] == {"render_again", "wait_for_batch"}
    assert steps["synthdata-job-fetch"] == {
        "download_batch",
        "build_dataset",
        "publish_dataset",
        "record_asset_materialization",  # the published dataset as a Prefect asset
    }


async def _task_names_by_flow(prefix: str) -> dict[str, set[str]]:
    """Task names of the flow runs whose flow name starts with `prefix`, by flow name."""
    async with get_client() as client:
        flows = {f.id: f.name for f in await client.read_flows() if f.name.startswith(prefix)}
        found: dict[str, set[str]] = {}
        for run in await client.read_flow_runs():
            if run.flow_id in flows:
                tasks = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
                )
                names = found.setdefault(flows[run.flow_id], set())
                names.update(t.task_key.rsplit("-", 1)[0] for t in tasks)
        return found


def test_job_block_applies_the_quality_gate_and_splits(tmp_path: Path) -> None:
    from prefect_synthdata.exceptions import DatasetQualityError

    def run(**fields: object) -> object:
        fields = {"params": {"width": 64, "height": 64}, **fields}
        job = SynthDataJob(num_jobs=2, dest=str(tmp_path / "ds"), poll_cap_seconds=0.2, **fields)

        async def run_it() -> object:
            started = await job.trigger()
            await started.wait_for_completion()
            return await started.fetch_result()

        return asyncio.run(run_it())

    with pytest.raises(DatasetQualityError, match="no labelled objects"):
        run(name="unlabelled", params={"width": 64, "height": 64, "min_visible_pixels": 100000})
    assert not (tmp_path / "ds" / "unlabelled").exists()
    dataset = run(name="split", splits={"train": 0.5, "test": 0.5})
    root = Path(dataset.uri)  # type: ignore[attr-defined]
    assert (root / "annotations.train.coco.json").is_file()
    assert (root / "annotations.test.coco.json").is_file()


def test_job_block_rejects_bad_parameters_before_submitting() -> None:
    job = SynthDataJob(params={"width": 5})
    with pytest.raises(ParameterValidationError, match="'width' must be >= 32"):
        asyncio.run(job.trigger())
    with pytest.raises(ConfigurationError, match="dataset name"):
        asyncio.run(SynthDataJob(name="../up").trigger())


def test_environment_supplies_provider_and_wait_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHDATA_PROVIDER", "zpy")
    monkeypatch.setenv("SYNTHDATA_PROVIDER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SYNTHDATA_TOKEN", "env-token-9")
    monkeypatch.setenv("SYNTHDATA_PROJECT", "p9")
    monkeypatch.setenv("SYNTHDATA_POLL_CAP_SECONDS", "1.5")
    monkeypatch.setenv("SYNTHDATA_DEADLINE_SECONDS", "60")
    settings = SynthDataSettings()
    request = GenerateRequest()
    config = resolve_provider(request.credentials, None, settings)
    assert (config.kind, config.url, config.project) == ("zpy", "http://127.0.0.1:9", "p9")
    assert config.token is not None and config.token.get_secret_value() == "env-token-9"
    assert "env-token-9" not in repr(request) + request.model_dump_json()
    policy = request.with_defaults(settings).poll_policy()
    assert (policy.cap_seconds, policy.deadline_seconds) == (1.5, 60)


def test_provider_precedence_explicit_then_named_block_then_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: with SYNTHDATA_CREDENTIALS_BLOCK set, an explicit 'local' ran on the block's service."""
    InfinityCredentials(url="http://127.0.0.1:8", token="t").save("env-default", overwrite=True)
    ZpyCredentials(url="http://127.0.0.1:7", token="t").save("named", overwrite=True)
    monkeypatch.setenv("SYNTHDATA_PROVIDER", "zpy")
    monkeypatch.setenv("SYNTHDATA_PROVIDER_URL", "http://127.0.0.1:6")
    monkeypatch.setenv("SYNTHDATA_TOKEN", "env-token")
    settings = SynthDataSettings()
    assert resolve_provider(None, None, settings).url == "http://127.0.0.1:6"
    monkeypatch.setenv("SYNTHDATA_CREDENTIALS_BLOCK", "env-default")
    settings = SynthDataSettings()
    explicit = InfinityCredentials(url="http://127.0.0.1:5", token="t")
    assert resolve_provider(None, None, settings).url == "http://127.0.0.1:8"
    assert resolve_provider(None, "named", settings).url == "http://127.0.0.1:7"
    assert resolve_provider(explicit, "named", settings).url == "http://127.0.0.1:5"
    assert resolve_provider("local", "named", settings).kind == "local"


def test_a_block_saved_with_the_ui_defaults_loads() -> None:
    """Regression: the UI stores an unselected credentials block as `{}`, which failed to load."""
    assert SynthDataJob.model_validate({"credentials": {}}).credentials is None
    assert GenerateRequest.model_validate({"credentials": {}}).credentials is None


def test_job_block_with_seed_per_day_renders_the_day_of_its_trigger() -> None:
    from datetime import UTC, datetime

    day = int(datetime.now(UTC).strftime("%Y%m%d"))
    small = {"width": 64, "height": 64}
    daily = SynthDataJob(name="daily", num_jobs=1, params=small, seed=5, seed_per_day=True)
    fixed = SynthDataJob(name="daily", num_jobs=1, params=small, seed=5 + day)
    first, second = asyncio.run(daily.trigger()), asyncio.run(fixed.trigger())
    assert first.batch_id == second.batch_id  # the same request: the day's seed was applied


SECRET = "s3cret-token"
MALFORMED = {
    "token": {"url": "http://127.0.0.1:8000", "token": SECRET + "\n"},
    "url": {"url": "127.0.0.1:8000", "token": SECRET},
}


@pytest.mark.parametrize("field", list(MALFORMED))
@pytest.mark.parametrize("block", [InfinityCredentials, ZpyCredentials])
def test_credentials_refuse_a_malformed_field_when_saved_naming_it_never_the_token(
    block: type[InfinityCredentials | ZpyCredentials], field: str
) -> None:
    name = f"bad-{field}-{block.get_block_type_slug()}"
    with pytest.raises(ValidationError) as refused:
        block(**MALFORMED[field]).save(name)
    assert [e["loc"] for e in refused.value.errors()] == [(field,)]
    assert SECRET not in str(refused.value) and "input_value" not in str(refused.value)

    async def saved() -> list[str]:
        async with get_client() as client:
            docs = await client.read_block_documents()
            return [d.name for d in docs if d.name]

    assert name not in asyncio.run(saved())  # nothing was stored


def test_credentials_saved_through_the_api_as_the_ui_does_are_checked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The UI's form validates against the block schema (the `pattern`s refuse both
    fields); the API itself stores what it is sent, and loading it then refuses it."""
    InfinityCredentials.register_type_and_schema()

    async def schema_and_ids() -> tuple[dict, str, str]:  # type: ignore[type-arg]
        async with get_client() as client:
            block_type = await client.read_block_type_by_slug("synthdata-infinity-credentials")
            schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
            assert schema is not None
            return schema.fields, str(block_type.id), str(schema.id)

    fields, type_id, schema_id = asyncio.run(schema_and_ids())
    validator = jsonschema.Draft202012Validator(fields)
    good = {"url": "http://127.0.0.1:8000", "token": SECRET}
    assert list(validator.iter_errors(good)) == []
    for field, data in MALFORMED.items():
        (error,) = validator.iter_errors(data)
        assert list(error.path) == [field] and error.validator == "pattern"

    payload = {"name": "ui-bad-token", "block_type_id": type_id, "block_schema_id": schema_id,
               "data": MALFORMED["token"]}  # fmt: skip
    api = str(PREFECT_API_URL.value())
    assert httpx.post(f"{api}/block_documents/", json=payload, timeout=30).status_code == 201
    with pytest.raises(RuntimeError, match="due to failed validation") as refused:
        InfinityCredentials.load("ui-bad-token")  # Prefect wraps our ValidationError
    cause = refused.value.__cause__
    assert isinstance(cause, ValidationError)
    assert [e["loc"] for e in cause.errors()] == [("token",)]
    assert SECRET not in str(refused.value) + str(cause) + caplog.text
