"""The generate flow end to end against a faulty reference server (infinity and zpy dialects).

The server injects 20% 5xx, 10% 429 with Retry-After, 5% dropped connections and 5%
truncated result bodies (seeded dice). The flow still completes, the server holds
exactly one submission for the logical request (a re-run adds none), and the
published dataset equals that of a fault-free run of the same request.

The same server restarted without faults, downloading the same batch afresh, gives a
byte-identical `manifest.json` (equal `manifest_sha256`). A clean server on the same port
(so the provider identity, hence the batch key and the dataset version, is the same)
renders the request anew: its manifest differs only in the server-assigned `batch_id`
and `job_ids`, which is checked field by field, and every data file is byte-identical
(`content_sha256`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from prefect_synthdata.blocks import InfinityCredentials, ZpyCredentials
from prefect_synthdata.dataset.manifest import PublishedDataset
from prefect_synthdata.flows import GenerateRequest, generate_dataset
from prefect_synthdata.providers import ProviderKind
from prefect_synthdata.providers.infinity import InfinityProvider
from prefect_synthdata.providers.zpy import ZpyProvider
from tests.reference_server import ServerProcess, free_port, run_reference_server

pytestmark = pytest.mark.timeout(180)

TOKEN = "proof-faults-token"
FAULTS = {
    "error_rate": 0.2,
    "throttle_rate": 0.1,
    "retry_after": 1,
    "drop_rate": 0.05,
    "truncate_rate": 0.05,
}
#: Dice seeds under which the first submission POST meets a 503 (an ambiguous failure the
#: provider must resolve without submitting twice) followed soon by a 429: infinity's third
#: request is `POST /api/batch/`, zpy's sixth is `POST /api/v1/datasets/`.
SEEDS = {"infinity": 40, "zpy": 135}
SUBMIT_PATH = {"infinity": '"POST /api/batch/ ', "zpy": '"POST /api/v1/datasets/ '}
NUM_JOBS = 3
#: Manifest fields a server assigns; everything else must be equal across servers.
SERVER_ASSIGNED = {"batch_id", "job_ids"}


def _request(kind: ProviderKind, url: str, dest: Path) -> GenerateRequest:
    return GenerateRequest(
        credentials=(InfinityCredentials if kind == "infinity" else ZpyCredentials)(
            url=url, token=SecretStr(TOKEN)
        ),
        name=f"faults-{kind}",
        num_jobs=NUM_JOBS,
        params={"width": 64, "height": 64},
        seed=42,
        dest=str(dest),
        poll_initial_seconds=0.1,
        poll_cap_seconds=0.5,
        deadline_seconds=150,
    )


def _submissions(kind: ProviderKind, server: ServerProcess, name: str) -> int:
    """How many submissions of batch `name` the server holds (read through a retrying client)."""
    if kind == "infinity":
        infinity = InfinityProvider(server.url, SecretStr(TOKEN))
        now = datetime.now(UTC)
        listed = infinity.api.batches(now - timedelta(days=1), now + timedelta(minutes=1))
        return sum(1 for batch in listed if batch["name"] == name)
    zpy = ZpyProvider(server.url, SecretStr(TOKEN), None, server.data_dir.parent / "zpy-cache")
    datasets = zpy.api.datasets(zpy.project, name)
    runs = sum(zpy.api.count("simruns/", datasets=str(d["id"])) for d in datasets)
    assert runs == NUM_JOBS * len(datasets)  # generated once: one simrun per job, no more
    return len(datasets)


def _run(
    kind: ProviderKind,
    server: ServerProcess,
    dest: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[PublishedDataset, dict[str, Any]]:
    monkeypatch.setenv("SYNTHDATA_HOME", str(home))  # no download shared between the two runs
    dataset = generate_dataset(_request(kind, server.url, dest))
    manifest = json.loads((Path(dataset.uri) / "manifest.json").read_text())
    return dataset, manifest


@pytest.mark.parametrize("kind", ["infinity", "zpy"])
def test_flow_under_faults_submits_once_and_publishes_the_fault_free_dataset(
    kind: ProviderKind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    with run_reference_server(
        tmp_path / "faulty", tokens=[TOKEN], port=port, faults={**FAULTS, "seed": SEEDS[kind]}
    ) as faulty:
        dataset, manifest = _run(kind, faulty, tmp_path / "ds-faulty", tmp_path / "h1", monkeypatch)
        request_name = _batch_name(kind, faulty, dataset)
        assert _submissions(kind, faulty, request_name) == 1
        again = generate_dataset(_request(kind, faulty.url, tmp_path / "ds-faulty"))
        assert (again.batch_id, again.files_uploaded) == (dataset.batch_id, 0)
        assert _submissions(kind, faulty, request_name) == 1
        log = faulty.log()
    posts = [line for line in log.splitlines() if SUBMIT_PATH[kind] in line]
    assert " 503 " in posts[0], f"the seed no longer hits the submission: {posts}"
    assert " 429 " in log

    # the same server restarted without faults: a fresh download of the same batch gives
    # the same manifest, byte for byte
    with run_reference_server(tmp_path / "faulty", tokens=[TOKEN], port=port) as restarted:
        refetched, _ = _run(kind, restarted, tmp_path / "ds-refetch", tmp_path / "h3", monkeypatch)
    assert refetched.batch_id == dataset.batch_id
    assert refetched.manifest_sha256 == dataset.manifest_sha256

    # a clean server renders the same request anew
    with run_reference_server(tmp_path / "clean", tokens=[TOKEN], port=port) as clean:
        reference, reference_manifest = _run(
            kind, clean, tmp_path / "ds-clean", tmp_path / "h2", monkeypatch
        )
        assert _submissions(kind, clean, request_name) == 1

    assert dataset.content_sha256 == reference.content_sha256
    assert dataset.num_images == reference.num_images == NUM_JOBS
    assert dataset.batch_id != reference.batch_id  # two servers, two batches...
    same = {k: v for k, v in manifest.items() if k not in SERVER_ASSIGNED}
    assert same == {k: v for k, v in reference_manifest.items() if k not in SERVER_ASSIGNED}
    faulty_files = sorted(p.relative_to(dataset.uri) for p in Path(dataset.uri).rglob("*"))
    assert faulty_files == sorted(
        p.relative_to(reference.uri) for p in Path(reference.uri).rglob("*")
    )
    for relative in faulty_files:  # ...and every data file byte for byte the same
        if (
            relative.name not in ("manifest.json", "_SUCCESS")
            and (Path(dataset.uri) / relative).is_file()
        ):
            assert (Path(dataset.uri) / relative).read_bytes() == (
                Path(reference.uri) / relative
            ).read_bytes()


def _batch_name(kind: ProviderKind, server: ServerProcess, dataset: PublishedDataset) -> str:
    """The batch (infinity) or dataset (zpy) name the flow gave its submission."""
    if kind == "infinity":
        infinity = InfinityProvider(server.url, SecretStr(TOKEN))
        return str(infinity.api.batch(dataset.batch_id)["name"])
    zpy = ZpyProvider(server.url, SecretStr(TOKEN), None, server.data_dir.parent / "zpy-cache")
    return str(zpy.api.dataset(dataset.batch_id)["name"])
