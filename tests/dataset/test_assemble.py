"""The assembled dataset: COCO-VID / TAO structure, split files, ignore regions, the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pycocotools.coco import COCO

from prefect_synthdata.dataset.assemble import assemble_dataset, split_file
from prefect_synthdata.dataset.quality import QualityGate
from prefect_synthdata.dataset.splits import assign_splits
from prefect_synthdata.engine.render import render_job
from prefect_synthdata.exceptions import DatasetQualityError
from tests.engine.conftest import small_params


def render_jobs(root: Path, generator: str, count: int, **overrides: Any) -> list[tuple[str, Path]]:
    """`count` small jobs of distinct seeds rendered into per-job folders."""
    jobs = []
    for index in range(count):
        folder = root / "jobs" / f"job-{index}"
        render_job(generator, small_params(generator, seed=100 + index, **overrides), False, folder)
        jobs.append((f"job-{index}", folder))
    return jobs


def assemble(jobs: list[tuple[str, Path]], out: Path, **options: Any) -> Any:
    return assemble_dataset(
        jobs, out, name="d", version="1", provider="local", generator="shapes",
        batch_id="b", is_preview=False, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def video_jobs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    """Five 3-frame videos of moving objects."""
    root = tmp_path_factory.mktemp("videos")
    return render_jobs(root, "shapes", 5, frames=3, motion=0.04, min_objects=4, num_objects=6)


def test_videos_are_in_coco_vid_and_tao_form(video_jobs: list, tmp_path: Path) -> None:
    """Checked against the documented formats: COCO-VID (`videos`; images with `video_id`
    and `frame_id`) and TAO (`tracks`; annotations with `video_id` and `track_id`)."""
    assemble(video_jobs, tmp_path)
    coco = json.loads((tmp_path / "annotations.coco.json").read_text())
    videos = {v["id"]: v for v in coco["videos"]}
    assert len(videos) == 5 and all(v["frames"] == 3 for v in videos.values())
    frames: dict[int, list[int]] = {}
    for image in coco["images"]:
        assert image["video_id"] in videos
        frames.setdefault(image["video_id"], []).append(image["frame_id"])
    assert all(sorted(f) == [0, 1, 2] for f in frames.values())
    images = {image["id"]: image for image in coco["images"]}
    tracks = {t["id"]: t for t in coco["tracks"]}
    assert len(tracks) > 5
    seen: dict[int, set[int]] = {}
    for ann in coco["annotations"]:
        track = tracks[ann["track_id"]]
        # a track id belongs to one video and one class in the whole dataset
        assert ann["video_id"] == track["video_id"] == images[ann["image_id"]]["video_id"]
        assert ann["category_id"] == track["category_id"]
        seen.setdefault(ann["track_id"], set()).add(ann["video_id"])
    assert all(len(v) == 1 for v in seen.values())
    # per-job track ids restart at 1 in every video; the dataset's do not
    assert len({t["id"] for t in coco["tracks"]}) == len(coco["tracks"])
    # and pycocotools reads the file as is
    loaded = COCO(str(tmp_path / "annotations.coco.json"))
    assert len(loaded.getImgIds()) == 15


def test_splits_hold_whole_videos_and_are_listed(video_jobs: list, tmp_path: Path) -> None:
    fractions = {"train": 0.6, "val": 0.2, "test": 0.2}
    manifest = assemble(video_jobs, tmp_path, job_splits=assign_splits(5, fractions, "d", 0))
    assert [(s.name, s.file, s.num_jobs) for s in manifest.splits] == [
        ("test", "annotations.test.coco.json", 1),
        ("train", "annotations.train.coco.json", 3),
        ("val", "annotations.val.coco.json", 1),
    ]
    listed = {f.path for f in manifest.files}
    full = json.loads((tmp_path / "annotations.coco.json").read_text())
    video_of = {}
    images = annotations = 0
    for split in manifest.splits:
        assert split.file in listed
        part = COCO(str(tmp_path / split_file(split.name)))
        assert part.dataset["info"]["split"] == split.name
        for image in part.dataset["images"]:
            assert video_of.setdefault(image["video_id"], split.name) == split.name
        assert {a["track_id"] for a in part.dataset["annotations"]} == {
            t["id"] for t in part.dataset["tracks"]
        }
        images += len(part.getImgIds())
        annotations += len(part.getAnnIds())
        assert split.num_images == len(part.getImgIds())
    assert len(video_of) == 5  # every video in exactly one split
    assert (images, annotations) == (len(full["images"]), len(full["annotations"]))


def test_split_assignment_is_by_job_and_repeatable() -> None:
    fractions = {"train": 0.7, "val": 0.2, "test": 0.1}
    first = assign_splits(101, fractions, "shapes", 0)
    assert first == assign_splits(101, fractions, "shapes", 0)
    assert first != assign_splits(101, fractions, "other", 0)
    assert first != assign_splits(101, fractions, "shapes", 1)
    assert {name: first.count(name) for name in fractions} == {"train": 71, "val": 20, "test": 10}


def test_gate_refuses_a_dataset_without_labels(tmp_path: Path) -> None:
    jobs = render_jobs(tmp_path, "tabletop", 2, min_visible_pixels=100000)
    with pytest.raises(DatasetQualityError, match="no labelled objects in 2 images") as info:
        assemble(jobs, tmp_path / "out", quality=QualityGate())
    assert "nothing was published" in str(info.value)
    assert not (tmp_path / "out").exists()  # nothing written, let alone a manifest


def test_gate_refuses_many_unlabelled_objects(tmp_path: Path) -> None:
    jobs = render_jobs(tmp_path, "shapes", 2, min_visibility=0.99, min_objects=12, num_objects=12)
    manifest = assemble(jobs, tmp_path / "loose", quality=QualityGate(max_unlabelled_fraction=1.0))
    share = manifest.num_ignore_regions / (manifest.num_ignore_regions + manifest.num_annotations)
    assert manifest.num_annotations > 0 and share > 0.2
    with pytest.raises(
        DatasetQualityError, match=r"visible objects \(16\+ pixels\) are unlabelled \(\d+%\)"
    ):
        assemble(jobs, tmp_path / "strict", quality=QualityGate(max_unlabelled_fraction=0.2))
    # the default filters leave few objects unlabelled: the default gate passes
    fine = render_jobs(tmp_path / "fine", "shapes", 2)
    assert assemble(fine, tmp_path / "default", quality=QualityGate()).num_annotations > 0


def test_ignore_regions_are_crowd_annotations_pycocotools_skips(tmp_path: Path) -> None:
    jobs = render_jobs(tmp_path, "shapes", 2, min_visible_pixels=200, min_objects=10)
    manifest = assemble(jobs, tmp_path / "out")
    coco = COCO(str(tmp_path / "out" / "annotations.coco.json"))
    crowd = coco.getAnnIds(iscrowd=True)
    assert len(crowd) == manifest.num_ignore_regions > 0
    assert len(coco.getAnnIds(iscrowd=False)) == manifest.num_annotations
    assert all(a["area"] < 200 or a["visibility"] < 0.1 for a in coco.loadAnns(crowd))


def test_bad_split_fractions_are_refused_with_the_request() -> None:
    from pydantic import ValidationError

    from prefect_synthdata.request import GenerationSpec

    with pytest.raises(ValidationError, match=r"must sum to 1, got 0\.9"):
        GenerationSpec(splits={"train": 0.8, "val": 0.1})
    with pytest.raises(ValidationError, match="must be a plain word"):
        GenerationSpec(splits={"../x": 1.0})
