"""Recovery on the reference server, both dialects, as the next run of a request drives it.

Jobs fail for real on a server process (its results folder replaced by a file: every
render fails writing, as on a full or read-only disk; a dataset's zip folder blocked
the same way; a result folder deleted on disk). The cause is fixed, the request is run
again: the same batch or dataset is adopted and repaired, its jobs are byte-identical to
a clean server's, and the frame quota (exactly one clean run per account) is charged once.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.client.schemas.objects import State
from pydantic import SecretStr

from prefect_synthdata import batches
from prefect_synthdata.compat import zpy
from prefect_synthdata.dataset.manifest import MANIFEST, Manifest, PublishedDataset
from prefect_synthdata.exceptions import BatchFailedError, QuotaExceededError
from prefect_synthdata.flows.generate import GenerateRequest
from prefect_synthdata.flows.generate import generate_dataset as generate_flow
from prefect_synthdata.models import BatchRef, BatchRequest, BatchStatus
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.providers.base import Provider
from prefect_synthdata.providers.infinity import InfinityProvider
from tests.providers import hostile
from tests.providers.scripted_server import Reply, scripted_server
from tests.reference_server import ServerProcess, run_reference_server
from tests.test_pipeline import task_runs_by_task

pytestmark = pytest.mark.timeout(300)

SMALL = {"width": 64, "height": 64}
JOBS = 3  # one frame each
QUOTA = JOBS  # one clean run per account: anything charged twice is refused
POLL = batches.PollPolicy(initial_seconds=0.1, cap_seconds=0.5, deadline_seconds=120)
#: One account per test and dialect, so that each has its own quota.
TOKENS = [f"recovery-{case}-{kind}" for case in ("failed", "lost", "packaging", "flow", "compat") for kind in ("infinity", "zpy")]  # fmt: skip


@pytest.fixture(scope="module")
def broken_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("recovery") / "data"
    with run_reference_server(data, tokens=TOKENS, quota=QUOTA) as srv:
        yield srv


@pytest.fixture(scope="module")
def clean_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("clean") / "data"
    with run_reference_server(data, tokens=TOKENS) as srv:
        yield srv


def provider(server: ServerProcess, kind: str, case: str) -> Provider:
    token = SecretStr(f"recovery-{case}-{kind}")
    return ProviderConfig(kind=kind, url=server.url, token=token).create()


@contextmanager
def blocked(folder: Path) -> Iterator[None]:
    """`folder` is a file while inside: whatever the server writes under it fails, as on a
    full or read-only disk."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.write_text("not a folder")
    try:
        yield
    finally:
        folder.unlink()
        folder.mkdir()


def run_once(service: Provider, label: str) -> tuple[BatchRef, BatchStatus]:
    """One run of the request: adopt or submit, repair what an earlier run left, wait."""
    request = batches.prepare_request(service, "shapes", [SMALL] * JOBS, False, label, seed=5)
    batch, _ = batches.submit_idempotent(service, request)
    service.render_again(batch, request)
    return batch, batches.poll_until_done(service, batch, POLL)


def job_files(service: Provider, batch: BatchRef, work: Path) -> list[dict[str, bytes]]:
    folders = batches.download_jobs(service, batch, batch.job_ids, work)
    return [
        {p.name: p.read_bytes() for p in sorted(f.iterdir()) if p.name != ".downloaded.json"}
        for f in folders
    ]


def assert_charged_once(service: Provider) -> None:
    """The account has used exactly `QUOTA` frames: one more is refused."""
    request = batches.prepare_request(service, "shapes", [SMALL], False, "one-more", seed=99)
    with pytest.raises(QuotaExceededError, match=f"{QUOTA} of {QUOTA} frames used"):
        service.submit(request)


def assert_like_a_clean_run(
    service: Provider,
    batch: BatchRef,
    clean_server: ServerProcess,
    kind: str,
    case: str,
    work: Path,
) -> None:
    """Every job's files are byte-identical to those of the same request on a clean server."""
    clean = provider(clean_server, kind, case)
    clean_batch, status = run_once(clean, f"recover-{case}")
    assert len(status.succeeded) == JOBS
    assert job_files(service, batch, work / "recovered") == job_files(
        clean, clean_batch, work / "clean"
    )


@pytest.mark.parametrize("kind", ["infinity", "zpy"])
def test_failed_renders_are_rendered_again_in_the_same_batch_and_charged_once(
    kind: str, broken_server: ServerProcess, clean_server: ServerProcess, tmp_path: Path
) -> None:
    service = provider(broken_server, kind, "failed")
    with blocked(broken_server.data_dir / "engine" / "results"):  # every render fails
        first, status = run_once(service, "recover-failed")
    assert len(status.failed) == JOBS, status
    with pytest.raises(BatchFailedError):
        batches.raise_for_failures(status)  # how the first run ends

    again, status = run_once(provider(broken_server, kind, "failed"), "recover-failed")
    assert (again.batch_id, again.job_ids) == (first.batch_id, first.job_ids)
    assert status.succeeded == again.job_ids
    assert_like_a_clean_run(service, again, clean_server, kind, "failed", tmp_path)
    assert_charged_once(service)  # credited when they failed, charged again once
    request = batches.prepare_request(
        service, "shapes", [SMALL] * JOBS, False, "recover-failed", seed=5
    )
    assert service.render_again(again, request) == 0  # nothing is broken any more


def test_a_job_whose_result_was_lost_is_rendered_again_without_charging_it_twice(
    broken_server: ServerProcess, clean_server: ServerProcess, tmp_path: Path
) -> None:
    service = provider(broken_server, "infinity", "lost")
    first, status = run_once(service, "recover-lost")
    assert status.succeeded == first.job_ids
    lost = first.job_ids[1]
    shutil.rmtree(broken_server.data_dir / "engine" / "results" / lost)
    status = service.batch_status(first)
    assert [j.job_id for j in status.failed] == [lost]  # no result URL is offered for it
    assert "result was lost" in (status.failed[0].error or "")

    again, status = run_once(provider(broken_server, "infinity", "lost"), "recover-lost")
    assert again.batch_id == first.batch_id and status.succeeded == again.job_ids
    assert_like_a_clean_run(service, again, clean_server, "infinity", "lost", tmp_path)
    assert_charged_once(service)


def test_a_dataset_whose_packaging_failed_is_packaged_again(
    broken_server: ServerProcess, clean_server: ServerProcess, tmp_path: Path
) -> None:
    service = provider(broken_server, "zpy", "packaging")
    with blocked(broken_server.data_dir / "archives" / "datasets"):
        first, status = run_once(service, "recover-packaging")
    assert len(status.failed) == JOBS and "PACKAGING_FAILED" in (status.failed[0].error or "")

    again, status = run_once(provider(broken_server, "zpy", "packaging"), "recover-packaging")
    assert again.batch_id == first.batch_id and status.succeeded == again.job_ids
    assert_like_a_clean_run(service, again, clean_server, "zpy", "packaging", tmp_path)
    assert_charged_once(service)


def test_a_server_without_render_again_is_logged_and_left_as_it_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    summary = {"job_runs": [hostile.job(in_progress=False, result_url=None)]}
    batch = BatchRef(batch_id="b1", name=hostile.NAME, generator="shapes", job_ids=["j1"])
    request = BatchRequest(
        generator="shapes", jobs=[SMALL], is_preview=False, key="k", name=hostile.NAME
    )
    with scripted_server() as (state, url), caplog.at_level(logging.WARNING):
        state.script("/api/batch/b1/summary/", Reply(200, hostile.body(summary)))
        state.script("/api/batch/b1/", Reply(200, hostile.body({"id": "b1", "job_runs": []})))
        state.script("/api/batch/b1/render-again/", Reply(405, b'{"detail": "Method Not Allowed"}'))
        assert hostile.infinity(url).render_again(batch, request) == 0
    assert "cannot render jobs again (no POST api/batch/<id>/render-again/)" in caplog.text
    assert "1 failed or result-less job(s) of batch b1 stay so" in caplog.text


def test_a_zpy_server_that_refuses_to_generate_again_is_logged(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    batch = BatchRef(batch_id="d1", name=hostile.NAME, generator="shapes", job_ids=["r1"])
    request = BatchRequest(
        generator="shapes", jobs=[SMALL], is_preview=False, key="k", name=hostile.NAME
    )
    with scripted_server() as (state, url), caplog.at_level(logging.WARNING):
        state.script(
            "/api/v1/datasets/d1/",
            Reply(200, hostile.body({"id": "d1", "state": "GENERATING_FAILED"})),
        )
        state.script(
            "/api/v1/datasets/d1/generate/", Reply(400, b'{"detail": "already generated"}')
        )
        assert hostile.zpy(url, tmp_path).render_again(batch, request) == 0
        assert len(state.calls("/api/v1/datasets/d1/generate/")) == 1
    assert (
        "cannot generate dataset d1 again" in caplog.text
        and "stays GENERATING_FAILED" in caplog.text
    )


def test_the_generate_flow_recovers_its_cached_batch_on_the_next_run(
    broken_server: ServerProcess,
    clean_server: ServerProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second run's `submit_batch` is a cache hit (it never looks the batch up); the
    pipeline's `render_again` step repairs the batch before waiting on it."""
    request = GenerateRequest(num_jobs=JOBS, params=SMALL, name="flow-recovery", seed=5)
    monkeypatch.setenv("SYNTHDATA_PROVIDER", "infinity")
    monkeypatch.setenv("SYNTHDATA_TOKEN", "recovery-flow-infinity")

    def run(server: ServerProcess, dest: Path) -> State:
        monkeypatch.setenv("SYNTHDATA_PROVIDER_URL", server.url)
        return generate_flow(request.model_copy(update={"dest": str(dest)}), return_state=True)

    with blocked(broken_server.data_dir / "engine" / "results"):
        failed = run(broken_server, tmp_path / "out")
    assert failed.is_failed() and "jobs failed" in str(failed.message)
    state = run(broken_server, tmp_path / "out")
    recovered = state.result()
    tasks = task_runs_by_task(state)
    (submit,), (again,) = tasks["submit_batch"], tasks["render_again"]
    assert submit.state is not None and submit.state.name == "Cached"
    assert again.state is not None and again.state.is_completed()
    service = provider(broken_server, "infinity", "flow")
    assert isinstance(service, InfinityProvider)
    now = datetime.now(UTC)
    listed = service.api.batches(now - timedelta(hours=1), now + timedelta(minutes=5))
    assert [b["id"] for b in listed if b["name"].startswith("flow-recovery")] == [
        recovered.batch_id
    ]  # the failed run's batch, repaired: no second batch
    assert_charged_once(service)

    clean = run(clean_server, tmp_path / "clean").result()
    assert files_of(recovered) == files_of(clean)


def files_of(dataset: PublishedDataset) -> list[tuple[str, str]]:
    manifest = Manifest.model_validate_json((Path(dataset.uri) / MANIFEST).read_bytes())
    return [(f.path, f.sha256) for f in manifest.files]


def test_the_zpy_style_generate_recovers_a_failed_dataset_of_the_same_name(
    broken_server: ServerProcess, tmp_path: Path
) -> None:
    """`compat.zpy.generate` adopts a dataset by name; a failed one is generated again."""
    zpy.init("recovery-compat-zpy", base_url=broken_server.url, cache_dir=tmp_path / "cache")
    config = zpy.DatasetConfig("shapes")
    config.set("width", 64)
    config.set("height", 64)
    with blocked(broken_server.data_dir / "engine" / "results"):
        failed = zpy.generate("compat recovery", config, num_datapoints=JOBS)
        with pytest.raises(BatchFailedError, match="GENERATING_FAILED"):
            failed.wait(timeout=60, polling_interval=0.2)
    again = zpy.generate("compat recovery", config, num_datapoints=JOBS, materialize=True,
                         download_dir=tmp_path, timeout=120)  # fmt: skip
    assert again.id == failed.id and again.state == "READY"
    assert_charged_once(provider(broken_server, "zpy", "compat"))
