"""Submit, poll and download against the real local provider (with injected transient faults)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from prefect_synthdata import batches
from prefect_synthdata.exceptions import BatchTimeoutError, TransientError
from prefect_synthdata.models import BatchRef, BatchStatus
from prefect_synthdata.providers.local import LocalProvider, close_job_services

SMALL = {"width": 64, "height": 64}


class FlakyStatus:
    """The real local provider, except that chosen status reads raise TransientError."""

    def __init__(self, provider: LocalProvider, fail_calls: set[int]) -> None:
        self.provider, self.fail_calls, self.calls = provider, fail_calls, 0

    def __getattr__(self, name: str):  # everything else is the real provider
        return getattr(self.provider, name)

    def batch_status(self, batch: BatchRef) -> BatchStatus:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise TransientError(f"injected failure of poll {self.calls}")
        return self.provider.batch_status(batch)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LocalProvider]:
    provider = LocalProvider(tmp_path / "state", workers=1)
    yield provider
    close_job_services(under=tmp_path)


def _submit(provider: LocalProvider, jobs: list[dict], label: str = "t") -> BatchRef:
    request = batches.prepare_request(provider, "shapes", jobs, False, label)
    return batches.submit_idempotent(provider, request)[0]


def test_one_failed_poll_is_not_a_failed_batch(provider: LocalProvider) -> None:
    batch = _submit(provider, [SMALL] * 2)
    flaky = FlakyStatus(provider, fail_calls={1, 2, 4})
    changes: list[dict[str, int]] = []
    policy = batches.PollPolicy(initial_seconds=0.01, cap_seconds=0.05, deadline_seconds=120)
    status = batches.poll_until_done(
        flaky, batch, policy, on_change=lambda s: changes.append(s.counts())
    )
    assert status.done and status.succeeded == batch.job_ids
    assert changes[-1] == {"succeeded": 2}
    assert all(a != b for a, b in itertools.pairwise(changes))  # only changes are reported
    assert flaky.calls > len(changes)


def test_too_many_consecutive_poll_failures_raise(provider: LocalProvider) -> None:
    batch = _submit(provider, [SMALL])
    flaky = FlakyStatus(provider, fail_calls=set(range(1, 100)))
    policy = batches.PollPolicy(initial_seconds=0.001, cap_seconds=0.001, transient_retries=3)
    with pytest.raises(TransientError):
        batches.poll_until_done(flaky, batch, policy)
    assert flaky.calls == 4


def test_deadline_stops_waiting(provider: LocalProvider) -> None:
    batch = _submit(provider, [{"width": 2048, "height": 2048, "frames": 3}])
    policy = batches.PollPolicy(initial_seconds=0.01, cap_seconds=0.02, deadline_seconds=0.2)
    with pytest.raises(BatchTimeoutError, match=r"not finished after 0\.2s"):
        batches.poll_until_done(provider, batch, policy)


def test_download_skips_downloaded_jobs_and_repairs_damaged_ones(
    provider: LocalProvider, tmp_path: Path
) -> None:
    batch = _submit(provider, [SMALL] * 2)
    batches.poll_until_done(provider, batch, batches.PollPolicy(0.01, 0.1, 120))
    work = tmp_path / "work"
    first = batches.download_jobs(provider, batch, batch.job_ids, work)
    assert [f.name for f in first] == batch.job_ids
    record = json.loads((first[1] / batches.DOWNLOADED).read_text())
    # what is recorded is what is checked: sizes (no sha256 that nothing reads)
    assert record["image.000000.rgb.png"] == (first[1] / "image.000000.rgb.png").stat().st_size
    assert "labels.json" in record and all(type(size) is int for size in record.values())
    mtimes = {f: f.stat().st_mtime_ns for f in first}

    damaged = first[1] / "image.000000.rgb.png"
    damaged.write_bytes(b"truncated")
    again = batches.download_jobs(provider, batch, batch.job_ids, work)
    assert again == first
    assert first[0].stat().st_mtime_ns == mtimes[first[0]]  # downloaded: skipped
    assert damaged.stat().st_size == record["image.000000.rgb.png"]  # re-fetched


class ConcurrencyProbe:
    """The real local provider, recording how many fetches run at once."""

    def __init__(self, provider: LocalProvider, local_results: bool) -> None:
        self.provider, self.local_results = provider, local_results
        self.running = self.most = 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str):  # everything else is the real provider
        return getattr(self.provider, name)

    def fetch_job_result(self, batch: BatchRef, job_id: str, dest: Path) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.2)  # long enough for the other threads to start theirs
        self.provider.fetch_job_result(batch, job_id, dest)
        with self.lock:
            self.running -= 1


@pytest.mark.parametrize("local_results", [True, False])
def test_threads_fetch_local_results_one_at_a_time(
    provider: LocalProvider, tmp_path: Path, local_results: bool
) -> None:
    """Local results are file work (threads would only fight over the GIL); HTTP ones overlap."""
    batch = _submit(provider, [SMALL] * 8)
    batches.poll_until_done(provider, batch, batches.PollPolicy(0.01, 0.1, 120))
    probe = ConcurrencyProbe(provider, local_results)
    shards = [batch.job_ids[i::4] for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda s: batches.download_jobs(probe, batch, s, tmp_path), shards))
    assert sorted(f.name for shard in done for f in shard) == sorted(batch.job_ids)
    assert probe.most == 1 if local_results else probe.most > 1


def test_same_request_same_name_and_key(provider: LocalProvider) -> None:
    a = batches.prepare_request(provider, "shapes", [SMALL] * 3, False, "x", seed=7)
    b = batches.prepare_request(provider, "shapes", [SMALL] * 3, False, "x", seed=7)
    c = batches.prepare_request(provider, "shapes", [SMALL] * 3, False, "x", seed=8)
    assert a == b and a.key != c.key
    assert len({job["seed"] for job in a.jobs}) == 3


def test_randomize_samples_within_bounds(provider: LocalProvider) -> None:
    request = batches.prepare_request(
        provider, "shapes", [{}] * 20, True, "r", seed=3, randomize=True
    )
    spec = provider.describe("shapes")
    bounds = {p.name: p.options for p in spec.params}
    for job in request.jobs:
        for name, value in job.items():
            opts = bounds[name]
            if opts.min is not None and value is not None:
                assert opts.min <= value <= opts.max
            if opts.choices:
                assert value in opts.choices
    assert len({job["num_objects"] for job in request.jobs}) > 1


@pytest.mark.parametrize("generator", ["shapes", "tabletop"])
def test_a_randomized_request_labels_every_visible_object(
    provider: LocalProvider, generator: str
) -> None:
    """Randomize draws scenes, never the label filters, frame counts or image size."""
    from prefect_synthdata.engine.annotate import instance_annotations
    from prefect_synthdata.engine.generators import get_generator

    request = batches.prepare_request(
        provider, generator, [{}] * 6, False, "randomized", seed=5, randomize=True
    )
    gen = get_generator(generator)
    defaults = gen.spec.defaults()
    visible = labelled = 0
    for job in request.jobs:
        for name in ("width", "height", "frames", "min_visible_pixels", "min_visibility"):
            assert job[name] == defaults[name]
        for frame in gen.render_frames(job, is_preview=False):
            anns = instance_annotations(frame.iseg, frame.instances, 16, 0.1)  # the defaults
            kept = {a["iseg_id"] for a in anns if a["iscrowd"] == 0}
            for instance_id, instance in frame.instances.items():
                pixels = int((frame.iseg == instance_id).sum())
                if pixels >= 16 and pixels / instance.pixels >= 0.1:
                    visible += 1
                    assert instance_id in kept
            labelled += len(kept)
    assert labelled == visible > 6
