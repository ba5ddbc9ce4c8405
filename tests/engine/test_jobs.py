"""The job service: durable state, adoption of orphaned jobs, a process pool, `state` re-runs."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefect_synthdata.batches import (
    PollPolicy,
    poll_until_done,
    prepare_request,
    submit_idempotent,
)
from prefect_synthdata.engine.jobs import MAX_RENDERS, JobService, default_workers
from prefect_synthdata.engine.render import render_job
from prefect_synthdata.exceptions import ParameterValidationError
from prefect_synthdata.models import BatchRef, JobState
from prefect_synthdata.providers.local import LocalProvider
from tests.engine.conftest import small_params

SMALL = {"width": 64, "height": 48}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProvider]:
    """One provider (and one pool of two workers) shared by this module's tests."""
    provider = LocalProvider(tmp_path_factory.mktemp("local") / "state", workers=2)
    yield provider
    provider.service.close()


def run(provider: LocalProvider, generator: str, jobs: list[dict], label: str) -> BatchRef:
    request = prepare_request(provider, generator, jobs, False, label, seed=0)
    batch, _ = submit_idempotent(provider, request)
    status = poll_until_done(
        provider, batch, PollPolicy(initial_seconds=0.05, deadline_seconds=120)
    )
    assert status.failed == []
    return batch


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_renders_in_worker_processes_scaled_to_cores(provider: LocalProvider) -> None:
    run(provider, "shapes", [SMALL, SMALL, SMALL], "pool")
    pids = provider.service.worker_pids()
    assert pids and os.getpid() not in pids and len(pids) <= 2


def test_the_pool_defaults_to_one_worker_per_usable_core(tmp_path: Path) -> None:
    service = JobService(tmp_path)  # the pool itself starts with the first job
    try:
        assert service.workers == default_workers() == len(os.sched_getaffinity(0))
    finally:
        service.close()


def test_a_new_service_sees_earlier_batches_and_results(tmp_path: Path) -> None:
    first = JobService(tmp_path, workers=1)
    batch = first.submit("me", "b1", "shapes", [small_params("shapes")], is_preview=False)
    assert first.wait(batch.batch_id, timeout=120).succeeded == batch.job_ids
    first.close()

    second = JobService(tmp_path, workers=1)
    try:
        assert second.find_batch("me", "b1") == batch
        assert second.batch_status("me", batch.batch_id).succeeded == batch.job_ids
        assert (second.result_dir(batch.job_ids[0]) / "labels.json").is_file()
    finally:
        second.close()


def test_a_job_leased_by_a_dead_process_is_adopted_and_finished(tmp_path: Path) -> None:
    first = JobService(tmp_path, workers=1)
    batch = first.submit("me", "b1", "tabletop", [small_params("tabletop")], is_preview=False)
    first.wait(batch.batch_id, timeout=120)
    first.close()
    job_id = batch.job_ids[0]
    original = files(tmp_path / "results" / job_id)
    # pretend a process leased the job and died mid-render
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
        db.execute(
            "UPDATE jobs SET state='running', runner=?, finished=NULL WHERE id=?",
            (dead.pid, job_id),
        )
    for path in (tmp_path / "results" / job_id).iterdir():
        path.unlink()
    (tmp_path / "results" / job_id).rmdir()

    second = JobService(tmp_path, workers=1)  # adopts on open
    try:
        status = second.wait(batch.batch_id, timeout=120)
        assert status.jobs[0].state == JobState.SUCCEEDED
        assert files(second.result_dir(job_id)) == original
        with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
            runner, attempts = db.execute(
                "SELECT runner, attempts FROM jobs WHERE id=?", (job_id,)
            ).fetchone()
        assert (runner, attempts) == (os.getpid(), 2)
    finally:
        second.close()


def test_state_rerun_without_overrides_is_byte_identical(provider: LocalProvider) -> None:
    original = run(provider, "tabletop", [{**SMALL, "frames": 2, "noise_std": 6.0}], "original")
    job_id = original.job_ids[0]
    rerun = run(provider, "tabletop", [{"state": job_id}], "rerun")
    a = files(provider.service.result_dir(job_id))
    b = files(provider.service.result_dir(rerun.job_ids[0]))
    assert {k: v for k, v in a.items() if k != "job.json"} == {
        k: v for k, v in b.items() if k != "job.json"
    }
    params_a = provider.service.job_params(job_id)
    params_b = provider.service.job_params(rerun.job_ids[0])
    assert params_b == {**params_a, "state": job_id}  # the same job, and it says where it came from


def test_state_rerun_with_an_override_changes_only_what_it_touches(provider: LocalProvider) -> None:
    original = run(provider, "shapes", [{**SMALL, "noise_std": 8.0, "seed": 5}], "original")
    job_id = original.job_ids[0]
    rerun = run(provider, "shapes", [{"state": job_id, "noise_std": 0.0}], "quiet")
    a = files(provider.service.result_dir(job_id))
    b = files(provider.service.result_dir(rerun.job_ids[0]))
    changed = sorted(name for name in a if a[name] != b[name])
    assert changed == ["image.000000.rgb.png", "job.json"]  # same scene, same labels, no noise
    assert provider.service.job_params(rerun.job_ids[0])["noise_std"] == 0.0
    assert provider.service.job_params(rerun.job_ids[0])["seed"] == 5


def test_state_errors_name_the_job_and_come_with_the_other_problems(
    provider: LocalProvider,
) -> None:
    shapes_job = run(provider, "shapes", [SMALL], "original").job_ids[0]
    missing = "6f1c2a3e-0000-4000-8000-000000000000"
    with pytest.raises(ParameterValidationError) as info:
        provider.validate(
            "tabletop", [{"state": missing}, {"state": shapes_job, "fov": 500}], False
        )
    assert info.value.problems == [
        f"job 0: 'state' cannot be resolved: job '{missing}' not found",
        f"job 1: 'state' cannot be resolved: job '{shapes_job}' was rendered by generator 'shapes', not 'tabletop'",
        "job 1: 'fov' must be <= 100, got 500.0",
    ]


def test_failed_and_result_less_jobs_are_rendered_again_in_the_same_batch(
    provider: LocalProvider,
) -> None:
    batch = run(provider, "shapes", [SMALL, SMALL, SMALL], "recover")
    service = provider.service
    lost, failed, kept = batch.job_ids
    before = files(service.result_dir(kept))
    shutil.rmtree(service.results.root / lost)  # a finished job whose result folder is gone
    db = sqlite3.connect(service.state_dir / "jobs.sqlite3")
    with db:  # a job that failed for a passing reason (a full disk)
        db.execute(
            "UPDATE jobs SET state='failed', error='No space left on device' WHERE id=?", (failed,)
        )
    db.close()
    assert provider.batch_status(batch).counts() == {"succeeded": 2, "failed": 1}

    request = prepare_request(provider, "shapes", [SMALL, SMALL, SMALL], False, "recover", seed=0)
    again, adopted = submit_idempotent(provider, request)  # the next run of the same request
    assert adopted and again == batch
    assert provider.render_again(again, request) == 2
    status = poll_until_done(
        provider, again, PollPolicy(initial_seconds=0.05, deadline_seconds=120)
    )
    assert status.succeeded == batch.job_ids
    assert all((service.results.root / job).is_dir() for job in batch.job_ids)
    assert files(service.result_dir(kept)) == before  # untouched
    assert provider.render_again(again, request) == 0  # nothing broken any more


def test_a_job_that_keeps_failing_is_rendered_again_a_bounded_number_of_times(
    provider: LocalProvider,
) -> None:
    batch = run(provider, "shapes", [SMALL], "recover-bounded")
    service = provider.service
    (job,) = batch.job_ids
    for _ in range(MAX_RENDERS):
        shutil.rmtree(service.results.root / job)  # lost again and again
        broken = service.broken_jobs(batch.batch_id)
        assert (broken.again, broken.given_up) == ([job], [])
        assert service.render_again(broken) == 1
        service.wait(batch.batch_id, timeout=120)
    shutil.rmtree(service.results.root / job)
    broken = service.broken_jobs(batch.batch_id)
    assert (broken.again, broken.given_up) == ([], [job])  # permanent: left as it is
    assert service.render_again(broken) == 0
    assert provider.batch_status(batch).jobs[0].state == JobState.SUCCEEDED  # but result-less


def test_jobs_of_a_cancelled_batch_are_not_rendered_again(provider: LocalProvider) -> None:
    batch = run(provider, "shapes", [SMALL, SMALL], "recover-cancelled")
    service = provider.service
    db = sqlite3.connect(service.state_dir / "jobs.sqlite3")
    with db:
        db.execute("UPDATE jobs SET state='failed' WHERE id=?", (batch.job_ids[0],))
        db.execute("UPDATE jobs SET state='cancelled' WHERE id=?", (batch.job_ids[1],))
    db.close()
    assert service.broken_jobs(batch.batch_id).again == []


def wait_until(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return result


def test_cancel_drops_queued_jobs_and_stops_the_running_render(tmp_path: Path) -> None:
    service = JobService(tmp_path, workers=1)
    try:
        slow = small_params("shapes", width=512, height=512, frames=60)
        batch = service.submit("me", "slow", "shapes", [slow] * 3, is_preview=False)
        wait_until(lambda: list((tmp_path / "results").glob("*.partial-*")))  # one is rendering
        renderer = service.worker_pids()
        assert service.frames_submitted("me") == 180

        started = time.monotonic()
        assert sorted(service.cancel("me", batch.batch_id)) == sorted(batch.job_ids)
        wait_until(lambda: not any(_alive(pid) for pid in renderer), timeout=5)
        assert time.monotonic() - started < 5  # the render process is gone within seconds

        status = service.batch_status("me", batch.batch_id)
        assert status.done and status.cancelled == batch.job_ids
        assert service.cancel("me", batch.batch_id) == []  # idempotent
        assert service.find_batch("me", "slow") is None  # never adopted again
        assert service.frames_submitted("me") == 0  # cancelled frames are not charged
        assert not [p for p in (tmp_path / "results").iterdir() if "." not in p.name]

        again = service.submit("me", "after", "shapes", [small_params("shapes")], False)
        assert service.wait(again.batch_id, timeout=120).succeeded == again.job_ids
    finally:
        service.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").read_text().count("State:\tZ")


def _attempts(state_dir: Path, batch_id: str) -> dict[str, int]:
    with sqlite3.connect(state_dir / "jobs.sqlite3") as db:
        rows = db.execute("SELECT id, attempts FROM jobs WHERE batch_id=?", (batch_id,))
        return dict(rows.fetchall())


def _scratch_job(tmp_path: Path, job_ids: list[str]) -> bool:
    return any(p.name.split(".")[0] in job_ids for p in (tmp_path / "results").glob("*.partial-*"))


def test_cancel_stops_only_that_batch_and_others_render_on_untouched(tmp_path: Path) -> None:
    service = JobService(tmp_path, workers=2)
    try:
        slow = small_params("shapes", width=512, height=512, frames=200)
        medium = [
            small_params("shapes", width=256, height=192, frames=12, seed=s) for s in (1, 2, 3)
        ]
        doomed = service.submit("me", "doomed", "shapes", [slow], is_preview=False)
        other = service.submit("me", "other", "shapes", medium, is_preview=False)
        # one process renders the doomed job while the other renders the other batch's first
        wait_until(
            lambda: _scratch_job(tmp_path, doomed.job_ids) and _scratch_job(tmp_path, other.job_ids)
        )
        before = set(service.worker_pids())
        assert len(before) == 2

        service.cancel("me", doomed.batch_id)
        wait_until(lambda: len(set(service.worker_pids()) & before) == 1, timeout=5)
        survivor = set(service.worker_pids()) & before  # the other batch's process lives on

        status = service.wait(other.batch_id, timeout=120)
        assert status.succeeded == other.job_ids
        assert _attempts(tmp_path, other.batch_id) == dict.fromkeys(other.job_ids, 1)  # no restart
        renderers = {
            int(str(r).rsplit(":", 1)[1]) for r in service.rendered_by(other.batch_id).values()
        }
        assert survivor <= renderers  # it went on rendering the other batch
        for job_id, params in zip(other.job_ids, medium, strict=True):
            reference = tmp_path / "reference" / job_id
            render_job("shapes", params, False, reference)  # an undisturbed render
            assert files(service.result_dir(job_id)) == files(reference)
        assert service.batch_status("me", doomed.batch_id).cancelled == doomed.job_ids
        assert not list((tmp_path / "results").glob("*.partial-*"))  # the killed scratch is gone
    finally:
        service.close()


def test_a_render_process_that_dies_is_replaced_and_its_job_rendered_again(tmp_path: Path) -> None:
    service = JobService(tmp_path, workers=1)
    try:
        params = small_params("shapes", width=512, height=512, frames=40)
        batch = service.submit("me", "crash", "shapes", [params], is_preview=False)
        wait_until(lambda: _scratch_job(tmp_path, batch.job_ids))
        (victim,) = service.worker_pids()
        os.kill(victim, signal.SIGKILL)  # not a cancel: an out-of-memory kill, say

        assert service.wait(batch.batch_id, timeout=120).succeeded == batch.job_ids
        assert _attempts(tmp_path, batch.batch_id) == {batch.job_ids[0]: 2}
        assert victim not in service.worker_pids()
        reference = tmp_path / "reference"
        render_job("shapes", params, False, reference)
        assert files(service.result_dir(batch.job_ids[0])) == files(reference)
        assert not list((tmp_path / "results").glob("*.partial-*"))  # its scratch is gone
    finally:
        service.close()
