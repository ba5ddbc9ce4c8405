"""Concurrent runs of one logical request pay for one batch: on the local job service
(which enforces it in SQLite) and on an HTTP service (which cannot: a Prefect concurrency
lease keyed by the request key serialises find-or-submit)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL
from pydantic import SecretStr

from prefect_synthdata import batches
from prefect_synthdata.models import BatchRef
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.local import LocalProvider
from tests.conftest import subprocess_env
from tests.prefect.conftest import running_prefect_server
from tests.reference_server import ServerProcess, run_reference_server

TOKEN = "one-batch-token"
SMALL = {"width": 64, "height": 64}
RUNS = 4


@pytest.fixture(scope="module")
def lease_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_reference_server(tmp_path_factory.mktemp("lease") / "srv", tokens=[TOKEN]) as srv:
        yield srv


def at_once(count: int, call: Callable[[], Any]) -> list[Any]:
    """Run `call` in `count` threads released together; their results (or errors)."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = call()
        except Exception as exc:  # reported by the assertion below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


#: One flow run in its own process: wait for the go file, then submit the request once.
#: The service is made slow to answer `find_batch` (5 s), so that every run looks before
#: any has submitted; only the lease keeps them from each paying for a batch.
RUN = """
import sys, time
from pathlib import Path
from pydantic import SecretStr
from prefect import flow
from prefect_synthdata.models import BatchRequest
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.tasks import submit_batch

url, token, request_file, ready, go = sys.argv[1:6]
real_find = InfinityProvider.find_batch

def slow_find(self, name):
    found = real_find(self, name)
    time.sleep(5.0)
    return found

InfinityProvider.find_batch = slow_find
config = ProviderConfig(kind="infinity", url=url, token=SecretStr(token))
request = BatchRequest.model_validate_json(Path(request_file).read_text())

@flow(name="submit-once")
def submit_once():
    return submit_batch(config, request)

Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
print(submit_once().batch_id)
"""


def test_four_concurrent_runs_of_one_request_submit_one_http_batch(
    lease_server: ServerProcess, tmp_path: Path
) -> None:
    config = ProviderConfig(kind="infinity", url=lease_server.url, token=SecretStr(TOKEN))
    request = batches.prepare_request(
        config.create(), "shapes", [SMALL] * 2, True, "lease-demo", seed=11
    )
    (tmp_path / "request.json").write_text(request.model_dump_json())
    env = subprocess_env(PREFECT_API_URL=str(PREFECT_API_URL.value()))
    go = tmp_path / "go"
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RUN,
                lease_server.url,
                TOKEN,
                str(tmp_path / "request.json"),
                str(tmp_path / f"ready-{i}"),
                str(go),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(RUNS)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready-{i}").exists() for i in range(RUNS)):
            assert time.monotonic() < deadline and all(r.poll() is None for r in runs)
            time.sleep(0.05)
        go.touch()
        outputs = [run.communicate(timeout=120)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()
    assert [run.returncode for run in runs] == [0] * RUNS, outputs
    assert len({out.strip().splitlines()[-1] for out in outputs}) == 1, outputs
    infinity = InfinityProvider(lease_server.url, SecretStr(TOKEN))
    now = datetime.now(UTC)
    listed = infinity.api.batches(now - timedelta(hours=1), now + timedelta(minutes=5))
    assert [b["name"] for b in listed].count(request.name) == 1


def test_local_job_service_keeps_one_batch_per_name_across_services(tmp_path: Path) -> None:
    state = tmp_path / "local"
    request = batches.prepare_request(
        LocalProvider(state), "shapes", [SMALL], True, "local-once", seed=3
    )
    # submit without find_batch first: the job service alone must keep the name unique
    refs = at_once(RUNS, lambda: LocalProvider(state).submit(request))
    assert all(isinstance(ref, BatchRef) for ref in refs), refs
    assert len({ref.batch_id for ref in refs}) == 1


#: A flow run that submits `request` once; with a `holding` path, its `find_batch` (run
#: under the submit lease) touches that file and hangs, so it can be killed mid-lease.
SUBMIT_OR_HANG = """
import sys, time
from pathlib import Path
from pydantic import SecretStr
from prefect import flow
from prefect_synthdata.models import BatchRequest
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.tasks import submit_batch

url, token, request_file, holding = sys.argv[1:5]
if holding != "-":
    def hang(self, name):
        Path(holding).touch()
        time.sleep(3600)

    InfinityProvider.find_batch = hang
config = ProviderConfig(kind="infinity", url=url, token=SecretStr(token))
request = BatchRequest.model_validate_json(Path(request_file).read_text())

@flow(name="submit-or-hang")
def submit_once():
    return submit_batch(config, request)

print(submit_once().batch_id)
"""


def test_a_killed_lease_holder_delays_the_next_runs_only_until_its_lease_lapses(
    lease_server: ServerProcess, tmp_path: Path
) -> None:
    """On a real `prefect server start`: the holder is SIGKILLed inside find-or-submit; two
    live runs wait for its lease to lapse (Prefect's 60 s minimum, reclaimed by the
    server's repossessor), then submit one batch between them."""
    config = ProviderConfig(kind="infinity", url=lease_server.url, token=SecretStr(TOKEN))
    request = batches.prepare_request(
        config.create(), "shapes", [SMALL], True, "lease-killed", seed=12
    )
    (tmp_path / "request.json").write_text(request.model_dump_json())
    with running_prefect_server(
        tmp_path, PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS="1"
    ) as env:

        def start(holding: str) -> subprocess.Popen[str]:
            args = [lease_server.url, TOKEN, str(tmp_path / "request.json"), holding]
            return subprocess.Popen(
                [sys.executable, "-c", SUBMIT_OR_HANG, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )

        holder = start(str(tmp_path / "holding"))
        try:
            deadline = time.monotonic() + 120
            while not (tmp_path / "holding").exists():
                assert time.monotonic() < deadline and holder.poll() is None
                time.sleep(0.1)
        finally:
            holder.kill()  # SIGKILL: no release, no renewal
            holder.wait()
        killed = time.monotonic()
        live = [start("-"), start("-")]
        try:
            outputs = [run.communicate(timeout=240)[0] for run in live]
        finally:
            for run in live:
                run.kill()
        waited = time.monotonic() - killed
    assert [run.returncode for run in live] == [0, 0], outputs
    assert len({out.strip().splitlines()[-1] for out in outputs}) == 1, outputs
    assert not any("not granted" in out for out in outputs), outputs  # the lease was granted
    assert 20 < waited < 120, waited  # held until the killed lease lapsed, not given up on
    infinity = InfinityProvider(lease_server.url, SecretStr(TOKEN))
    now = datetime.now(UTC)
    listed = infinity.api.batches(now - timedelta(hours=1), now + timedelta(minutes=5))
    assert [b["name"] for b in listed].count(request.name) == 1
