"""The embedded-default pipeline end to end: real local provider, real Prefect API."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from uuid import UUID

import numpy as np
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State, TaskRun
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from prefect_synthdata import GenerateRequest, generate_dataset
from prefect_synthdata.dataset.manifest import MANIFEST, SUCCESS, Manifest
from prefect_synthdata.flows.generate import generate_dataset as flow

SMALL = {"width": 96, "height": 80, "num_objects": 5}


def _batches(home: Path) -> int:
    with sqlite3.connect(home / "local" / "jobs.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM batches").fetchone()[0])


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_dataset_is_valid_coco_with_matching_masks(tmp_path: Path) -> None:
    result = generate_dataset(
        GenerateRequest(num_jobs=3, dest=str(tmp_path / "out"), params=SMALL, name="demo")
    )

    root = Path(result.uri)
    assert root == tmp_path / "out" / "demo" / result.version
    assert (root / SUCCESS).read_text() == result.manifest_sha256
    coco = COCO(str(root / "annotations.coco.json"))
    assert len(coco.getImgIds()) == result.num_images == 3
    assert len(coco.getAnnIds(iscrowd=False)) == result.num_annotations > 0
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == result.categories
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        decoded = mask_utils.decode(ann["segmentation"]).astype(bool)
        assert decoded.any() and decoded.sum() == ann["area"]
        iseg = np.asarray(Image.open(root / image["iseg_file"]))
        assert np.array_equal(decoded, iseg == ann["iseg_id"])
        assert Image.open(root / image["file_name"]).size == (SMALL["width"], SMALL["height"])
    ids = [a["id"] for a in coco.loadAnns(coco.getAnnIds())]
    assert len(set(ids)) == len(ids)


def test_manifest_checks_out_against_files(tmp_path: Path) -> None:
    result = generate_dataset(GenerateRequest(num_jobs=2, dest=str(tmp_path), params=SMALL))
    root = Path(result.uri)
    manifest = Manifest.model_validate_json((root / MANIFEST).read_bytes())
    manifest.verify(root)
    listed = {f.path for f in manifest.files}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert on_disk - listed == {MANIFEST, SUCCESS}
    assert manifest.batch_id == result.batch_id and manifest.num_jobs == 2
    assert (
        len(manifest.job_params) == 2
        and manifest.job_params[0]["seed"] != manifest.job_params[1]["seed"]
    )


def task_runs_by_task(state: State) -> dict[str, list[TaskRun]]:
    """The task runs of a finished flow run, read from the API, by task name."""

    async def read() -> list[TaskRun]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )

    runs: dict[str, list[TaskRun]] = {}
    for run in asyncio.run(read()):
        runs.setdefault(run.task_key.rsplit("-", 1)[0], []).append(run)
    return runs


def test_task_graph_links_every_step_to_its_inputs(tmp_path: Path) -> None:
    """Large inputs are passed `opaque`; the UI's graph still shows where each came from."""
    request = GenerateRequest(num_jobs=3, shard_size=1, dest=str(tmp_path), params=SMALL)
    state = flow(request, return_state=True)
    state.result()
    runs = task_runs_by_task(state)

    def sources(run: TaskRun, parameter: str) -> set[UUID]:
        return {getattr(i, "id", None) for i in run.task_inputs.get(parameter, [])}

    (submit,), (wait,), (build,), (publish,) = (
        runs[name]
        for name in ("submit_batch", "wait_for_batch", "build_dataset", "publish_dataset")
    )
    downloads = runs["download_batch"]
    assert len(downloads) == 3
    assert sources(wait, "batch") == {submit.id}
    assert all(sources(d, "batch") == {submit.id} for d in downloads)
    assert sources(build, "batch") == {submit.id}
    assert sources(build, "wait_for") == {d.id for d in downloads}
    assert sources(publish, "manifest") == {build.id}


def test_rerun_is_a_cache_hit(tmp_path: Path, synthdata_home: Path) -> None:
    request = GenerateRequest(num_jobs=2, dest=str(tmp_path / "out"), params=SMALL)
    first = generate_dataset(request)
    before = _snapshot(tmp_path / "out")
    jobs_dir = synthdata_home / "work"
    downloaded = _snapshot(jobs_dir)

    state = flow(request, return_state=True)
    second = state.result()
    (submit,) = task_runs_by_task(state)["submit_batch"]
    assert submit.state is not None and submit.state.name == "Cached"

    assert second.batch_id == first.batch_id and second.uri == first.uri
    assert _batches(synthdata_home) == 1
    assert second.files_uploaded == 0 and first.files_uploaded > 0
    assert _snapshot(tmp_path / "out") == before
    job_files = {k: v for k, v in downloaded.items() if "/jobs/" in f"/{k}"}
    assert job_files and {k: _snapshot(jobs_dir)[k] for k in job_files} == job_files


def test_submit_adopts_existing_batch_when_cache_is_gone(
    tmp_path: Path, synthdata_home: Path
) -> None:
    """The server-side lookup is the second line of idempotency: a new seed label shares nothing,
    but the same request under a fresh Prefect cache still finds its batch by name."""
    request = GenerateRequest(num_jobs=1, dest=str(tmp_path), params=SMALL, name="adopt")
    first = generate_dataset(request)
    from prefect_synthdata import batches
    from prefect_synthdata.providers import ProviderConfig

    provider = ProviderConfig().create()
    again = batches.prepare_request(provider, "shapes", request.jobs(), False, "adopt", 0)
    batch, adopted = batches.submit_idempotent(provider, again)
    assert adopted and batch.batch_id == first.batch_id
    assert _batches(synthdata_home) == 1


def test_different_parameters_make_a_new_version(tmp_path: Path) -> None:
    a = generate_dataset(GenerateRequest(num_jobs=1, dest=str(tmp_path), params=SMALL, seed=1))
    b = generate_dataset(GenerateRequest(num_jobs=1, dest=str(tmp_path), params=SMALL, seed=2))
    assert a.version != b.version and a.batch_id != b.batch_id
    latest = (tmp_path / "synthetic-shapes" / "LATEST").read_text()
    assert latest == b.version
    labels = json.loads((Path(b.uri) / "annotations.coco.json").read_text())
    assert (
        labels["images"][0]["metadata"]["seed"]
        != json.loads((Path(a.uri) / "annotations.coco.json").read_text())["images"][0]["metadata"][
            "seed"
        ]
    )


def test_cached_batch_gone_from_provider_is_submitted_again(
    tmp_path: Path, synthdata_home: Path
) -> None:
    import shutil

    from prefect_synthdata.providers.local import close_job_services

    request = GenerateRequest(num_jobs=1, dest=str(tmp_path / "out"), params=SMALL, name="wiped")
    first = generate_dataset(request)
    close_job_services(under=synthdata_home)
    shutil.rmtree(synthdata_home)  # the provider forgets everything; Prefect's cache does not

    second = generate_dataset(request)
    assert second.batch_id != first.batch_id
    assert second.content_sha256 == first.content_sha256 and second.files_uploaded == 0


def test_a_dataset_without_labels_fails_and_publishes_nothing(tmp_path: Path) -> None:
    import pytest

    from prefect_synthdata.exceptions import DatasetQualityError

    request = GenerateRequest(
        num_jobs=2, dest=str(tmp_path / "out"), params={**SMALL, "min_visible_pixels": 100000}
    )
    with pytest.raises(DatasetQualityError, match="no labelled objects in 2 images"):
        generate_dataset(request)
    assert not list((tmp_path / "out").rglob(SUCCESS)) and not list((tmp_path / "out").rglob("*"))


def test_datasets_of_different_names_share_no_scene(tmp_path: Path) -> None:
    def published(name: str) -> tuple[set[int], set[str]]:
        result = generate_dataset(
            GenerateRequest(num_jobs=3, dest=str(tmp_path), params=SMALL, name=name)
        )
        manifest = Manifest.model_validate_json((Path(result.uri) / MANIFEST).read_text())
        seeds = {params["seed"] for params in manifest.job_params}
        rgb = {f.sha256 for f in manifest.files if f.path.endswith(".rgb.png")}
        return seeds, rgb

    train_seeds, train_images = published("shapes-train")
    test_seeds, test_images = published("shapes-test")
    assert not train_seeds & test_seeds and not train_images & test_images
    assert published("shapes-train") == (train_seeds, train_images)  # a re-run repeats


def test_splits_are_published_as_separate_coco_files(tmp_path: Path) -> None:
    fractions = {"train": 0.5, "val": 0.25, "test": 0.25}
    result = generate_dataset(
        GenerateRequest(num_jobs=4, dest=str(tmp_path), params=SMALL, splits=fractions)
    )
    root = Path(result.uri)
    manifest = Manifest.model_validate_json((root / MANIFEST).read_text())
    assert {(s.name, s.num_jobs) for s in manifest.splits} == {
        ("train", 2),
        ("val", 1),
        ("test", 1),
    }
    videos: dict[int, str] = {}
    for split in manifest.splits:
        for image in COCO(str(root / split.file)).dataset["images"]:
            assert videos.setdefault(image["video_id"], split.name) == split.name
    assert len(videos) == 4
