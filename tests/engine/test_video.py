"""Video jobs move objects and keep track ids; previews render one frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_synthdata.engine.generators import GENERATORS
from tests.engine.conftest import render


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_video_tracks_are_consistent_across_frames(generator: str, tmp_path: Path) -> None:
    labels = render(generator, tmp_path, frames=6, motion=0.03, num_objects=6, min_visibility=0.0)
    assert [image["frame_number"] for image in labels["images"]] == list(range(6))
    assert [image["metadata"]["frame"] for image in labels["images"]] == list(range(6))
    tracks: dict[int, list[dict]] = {}
    for image in labels["images"]:
        in_frame = [a for a in labels["annotations"] if a["image_id"] == image["id"]]
        ids = [a["track_id"] for a in in_frame]
        assert len(ids) == len(set(ids))  # one box per track per frame
        for ann in in_frame:
            assert ann["track_id"] == ann["iseg_id"]
            tracks.setdefault(ann["track_id"], []).append(ann)
    assert len(tracks) >= 3
    moved = 0
    for boxes in tracks.values():
        assert len({b["category_id"] for b in boxes}) == 1  # a track never changes class
        moved += len({tuple(b["bbox"]) for b in boxes}) > 1
    assert moved >= 3  # objects really move


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_still_scene_keeps_boxes_still(generator: str, tmp_path: Path) -> None:
    labels = render(generator, tmp_path, frames=3, motion=0.0)
    by_frame = [
        sorted(
            (a["track_id"], a["bbox"])
            for a in labels["annotations"]
            if a["image_id"] == image["id"]
        )
        for image in labels["images"]
    ]
    assert by_frame[0] == by_frame[1] == by_frame[2] and by_frame[0]


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_preview_renders_one_frame(generator: str, tmp_path: Path) -> None:
    labels = render(generator, tmp_path, is_preview=True, frames=5)
    assert len(labels["images"]) == 1
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "image.000000.cseg.png", "image.000000.depth.png", "image.000000.iseg.png", "image.000000.rgb.png",
    ]  # fmt: skip
    job = (tmp_path / "job.json").read_text()
    assert '"frames": 1' in job and '"is_preview": true' in job
