"""The infinity provider and the seed-compatible Session/Batch over real HTTP (reference server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pydantic import SecretStr

from prefect_synthdata import batches
from prefect_synthdata.exceptions import (
    AuthenticationError,
    ParameterValidationError,
    UnknownGeneratorError,
)
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.providers.http import RetryPolicy
from prefect_synthdata.providers.infinity import InfinityProvider
from tests.providers.conftest import OTHER_TOKEN, TOKEN
from tests.reference_server import ServerProcess

SMALL = {"width": 64, "height": 64}
POLL = batches.PollPolicy(initial_seconds=0.1, cap_seconds=0.5, deadline_seconds=180)


def provider(server: ServerProcess, token: str = TOKEN) -> InfinityProvider:
    created = ProviderConfig(kind="infinity", url=server.url, token=SecretStr(token)).create()
    assert isinstance(created, InfinityProvider)
    return created


def check_job_folder(folder: Path) -> None:
    """The canonical per-job layout, loadable by pycocotools."""
    job = json.loads((folder / "job.json").read_text())
    assert job["name"] == "shapes"
    coco = COCO(str(folder / "labels.json"))
    assert coco.getImgIds()
    for image in coco.loadImgs(coco.getImgIds()):
        for key in ("file_name", "iseg_file", "cseg_file", "depth_file"):
            assert (folder / image[key]).is_file()


def test_provider_round_trip(server: ServerProcess, tmp_path: Path) -> None:
    infinity = provider(server)
    assert infinity.identity == f"infinity:{server.url}/"
    assert "shapes" in [g.name for g in infinity.list_generators()]
    with pytest.raises(UnknownGeneratorError):
        infinity.describe("no-such-generator")
    with pytest.raises(ParameterValidationError, match="width"):
        infinity.validate("shapes", [{"width": -5}], False)
    assert infinity.estimate("shapes", [SMALL, {**SMALL, "frames": 3}], False) == [1, 3]

    request = batches.prepare_request(
        infinity, "shapes", [SMALL, SMALL], False, "round-trip", seed=3
    )
    assert infinity.find_batch(request.name) is None
    batch, adopted = batches.submit_idempotent(infinity, request)
    assert not adopted and len(batch.job_ids) == 2
    assert batches.submit_idempotent(infinity, request) == (batch, True)

    status = batches.poll_until_done(infinity, batch, POLL)
    assert status.succeeded == batch.job_ids
    per_job = [
        line
        for line in server.log().splitlines()
        if "/api/job_runs/" in line or "/api/job_previews/" in line
    ]
    assert per_job == []  # polling reads the batch summary only, never one call per job
    folders = batches.download_jobs(infinity, batch, batch.job_ids, tmp_path / "jobs")
    for folder, params in zip(folders, request.jobs, strict=True):
        check_job_folder(folder)
        assert json.loads((folder / "job.json").read_text())["params"] == params
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == sorted(
        batch.job_ids
    )  # no zips left


def test_bad_token_and_other_accounts(server: ServerProcess) -> None:
    with pytest.raises(AuthenticationError) as info:
        provider(server, token="wrong-token-value").list_generators()
    assert "wrong-token-value" not in str(info.value)
    mine = provider(server)
    request = batches.prepare_request(mine, "shapes", [SMALL], True, "accounts", seed=1)
    batches.submit_idempotent(mine, request)
    assert provider(server, OTHER_TOKEN).find_batch(request.name) is None


def test_submits_exactly_once_and_downloads_intact_under_faults(
    faulty_server: ServerProcess, tmp_path: Path
) -> None:
    """20% 5xx, 10% 429, 5% dropped connections (and cut-short downloads): one batch each, intact results."""
    retry = RetryPolicy(attempts=12, initial_seconds=0.05, cap_seconds=1.0)
    infinity = InfinityProvider(faulty_server.url, SecretStr(TOKEN), retry)
    policy = batches.PollPolicy(
        initial_seconds=0.1, cap_seconds=0.5, deadline_seconds=300, transient_retries=20
    )
    requests, submitted = [], []
    for i in range(
        20
    ):  # until the dice have hit a submission with a 503 or 429 (at least 4 batches)
        request = batches.prepare_request(
            infinity, "shapes", [SMALL] * 2, False, f"faulty-{i}", seed=i
        )
        for _ in range(2):  # a re-run (or a retried task) adopts, never re-submits
            batch, _ = batches.submit_idempotent(infinity, request)
        requests.append(request)
        submitted.append(batch)
        posts = [line for line in faulty_server.log().splitlines() if '"POST /api/batch/ ' in line]
        if i >= 3 and any(" 503 " in line or " 429 " in line for line in posts):
            break
    else:
        pytest.fail("faults never hit a submission")

    now = datetime.now(UTC)  # the server is faulty: read its batch list through our retrying client
    names = [b["name"] for b in infinity.api.batches(now - timedelta(days=1), now)]
    faulty = sorted(n for n in names if n.startswith("faulty-"))
    assert faulty == sorted(r.name for r in requests)  # each exactly once

    engine_results = faulty_server.data_dir / "engine" / "results"
    for batch in submitted:
        assert batches.poll_until_done(infinity, batch, policy).succeeded == batch.job_ids
        folders = batches.download_jobs(infinity, batch, batch.job_ids, tmp_path / batch.batch_id)
        for folder in folders:  # intact: byte for byte what the server rendered
            check_job_folder(folder)
            for file in (engine_results / folder.name).iterdir():
                assert (folder / file.name).read_bytes() == file.read_bytes()
