"""The zpy provider and the zpy-style API over real HTTP (reference server)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pydantic import SecretStr

from prefect_synthdata import batches
from prefect_synthdata.compat import zpy
from prefect_synthdata.exceptions import (
    AuthenticationError,
    ParameterValidationError,
    UnknownGeneratorError,
)
from prefect_synthdata.providers import ProviderConfig, archive
from prefect_synthdata.providers.http import RetryPolicy
from prefect_synthdata.providers.zpy import ZpyProvider
from tests.providers.conftest import TOKEN
from tests.reference_server import ServerProcess

SMALL = {"width": 64, "height": 64}
POLL = batches.PollPolicy(
    initial_seconds=0.1, cap_seconds=0.5, deadline_seconds=180, transient_retries=20
)


def provider(server: ServerProcess, token: str = TOKEN) -> ZpyProvider:
    created = ProviderConfig(kind="zpy", url=server.url, token=SecretStr(token)).create()
    assert isinstance(created, ZpyProvider)
    return created


def test_provider_round_trip_converts_zumo_to_the_canonical_layout(
    server: ServerProcess, tmp_path: Path
) -> None:
    zpy_provider = provider(server)
    assert zpy_provider.identity.startswith(f"zpy:{server.url}/#project=")
    assert "shapes" in [g.name for g in zpy_provider.list_generators()]
    with pytest.raises(UnknownGeneratorError):
        zpy_provider.describe("no-such-sim")
    with pytest.raises(ParameterValidationError, match="differ only in 'seed'"):
        zpy_provider.validate("shapes", [SMALL, {**SMALL, "width": 96}], False)
    with pytest.raises(ParameterValidationError, match="preview"):
        zpy_provider.validate("shapes", [SMALL], True)

    request = batches.prepare_request(
        zpy_provider, "shapes", [SMALL] * 3, False, "zpy-round-trip", seed=2
    )
    batch, adopted = batches.submit_idempotent(zpy_provider, request)
    assert not adopted and len(batch.job_ids) == 3 and batch.generator == "shapes"
    assert batches.submit_idempotent(provider(server), request) == (batch, True)
    assert batches.poll_until_done(zpy_provider, batch, POLL).succeeded == batch.job_ids

    folders = batches.download_jobs(zpy_provider, batch, batch.job_ids, tmp_path / "jobs")
    seeds = []
    archive = next((zpy_provider.cache_dir).glob("*.zip"))
    with zipfile.ZipFile(archive) as zf:
        for folder in folders:
            job = json.loads((folder / "job.json").read_text())
            assert job["name"] == "shapes"
            seeds.append(job["params"]["seed"])
            coco = COCO(str(folder / "labels.json"))
            original = json.loads(
                zf.read(f"{folder.name}/_annotations.coco.json")
            )  # the engine's own COCO
            assert len(coco.getAnnIds()) == len(original["annotations"])
            assert [a["bbox"] for a in coco.loadAnns(coco.getAnnIds())] == [
                a["bbox"] for a in original["annotations"]
            ]
            for image in coco.loadImgs(coco.getImgIds()):
                for key in ("file_name", "iseg_file", "cseg_file", "depth_file"):
                    assert (folder / image[key]).read_bytes() == zf.read(
                        f"{folder.name}/{image[key]}"
                    )
    assert seeds == [request.jobs[0]["seed"] + i for i in range(3)]  # the server derives run seeds


def test_dataset_zip_is_read_once_for_all_its_simruns(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dataset zip's directory lists every simrun's files: it is read and checked once
    per process, not once per simrun (which made big datasets quadratic to extract)."""
    opened: list[Path] = []

    def counting_open_zip(path: Path) -> zipfile.ZipFile:
        opened.append(path)
        return real_open_zip(path)

    real_open_zip = archive.open_zip
    monkeypatch.setattr(archive, "open_zip", counting_open_zip)
    request = batches.prepare_request(provider(server), "shapes", [SMALL] * 4, False, "zpy-once")
    batch, _ = batches.submit_idempotent(provider(server), request)
    batches.poll_until_done(provider(server), batch, POLL)
    for shard in (batch.job_ids[:2], batch.job_ids[2:]):  # two shards: two task runs' providers
        folders = batches.download_jobs(provider(server), batch, shard, tmp_path / "jobs")
        assert all((folder / "labels.json").is_file() for folder in folders)
    assert len(opened) == 1


def test_bad_token(server: ServerProcess) -> None:
    with pytest.raises(AuthenticationError):
        provider(server, token="not-a-token").list_generators()


def test_faults_one_dataset_each_intact(faulty_server: ServerProcess, tmp_path: Path) -> None:
    """Under injected faults each dataset is created and generated once, and downloads intact."""
    retry = RetryPolicy(attempts=12, initial_seconds=0.05, cap_seconds=1.0)
    zpy_provider = ZpyProvider(faulty_server.url, SecretStr(TOKEN), None, tmp_path / "cache", retry)
    for i in range(10):  # until the dice have hit a create or generate POST with a 503 or 429
        request = batches.prepare_request(
            zpy_provider, "shapes", [SMALL] * 2, False, f"zpy-faulty-{i}", seed=5 + i
        )
        for _ in range(2):
            batch, _ = batches.submit_idempotent(zpy_provider, request)
        assert len(zpy_provider.api.datasets(zpy_provider.project, request.name)) == 1
        assert batches.poll_until_done(zpy_provider, batch, POLL).succeeded == batch.job_ids
        folders = batches.download_jobs(
            zpy_provider, batch, batch.job_ids, tmp_path / batch.batch_id
        )
        for folder in folders:
            assert COCO(str(folder / "labels.json")).getImgIds()
        posts = [
            line for line in faulty_server.log().splitlines() if '"POST /api/v1/datasets/' in line
        ]
        if any(" 503 " in line or " 429 " in line for line in posts):
            break
    else:
        pytest.fail("faults never hit a zpy submission")


def test_zpy_style_api(server: ServerProcess, tmp_path: Path) -> None:
    project = zpy.init(auth_token=TOKEN, base_url=server.url, cache_dir=tmp_path / "cache")
    assert project["id"] and project["name"]
    config = zpy.DatasetConfig("shapes")
    config.set("width", 64)
    config.set("run\\.height", 64)  # gin-style flat key
    config.set("run\\.num_objects", 2)
    config.unset("run\\.num_objects")
    assert config.config == {"width": 64, "run.height": 64}
    dataset = zpy.generate(
        "my dataset", config, num_datapoints=2, materialize=True, download_dir=tmp_path, timeout=120
    )
    assert dataset.state == "READY"
    archive = tmp_path / f"my_dataset-{dataset.id[:8]}.zip"
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        assert len({name.split("/")[0] for name in zf.namelist()}) == 2  # one folder per simrun
    again = zpy.generate("my dataset", config, num_datapoints=2)  # adopted, not generated twice
    assert again.id == dataset.id == zpy.Dataset("my dataset").id
    files = zpy.preview(config, num_samples=2)
    assert files and all(".rgb." in f["path"] and f["url"].startswith(server.url) for f in files)
    with pytest.raises(UnknownGeneratorError):
        zpy.DatasetConfig("no-such-sim")
