"""Every annotation agrees with the pixels of its instance in the iseg map."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from prefect_synthdata.engine.annotate import instance_annotations
from prefect_synthdata.engine.generators import GENERATORS, get_generator
from prefect_synthdata.params import check_job, sample_unspecified
from tests.engine.conftest import read_png, render, small_params

CROWDED = {
    "min_objects": 24,
    "num_objects": 24,
    "frames": 3,
    "motion": 0.05,
    "min_visible_pixels": 1,
    "min_visibility": 0.0,
}


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_rle_bbox_area_match_iseg_pixels(generator: str, tmp_path: Path) -> None:
    labels = render(generator, tmp_path, **CROWDED)
    assert len(labels["images"]) == 3
    by_image: dict[int, list[dict]] = {}
    for ann in labels["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    checked = 0
    for image in labels["images"]:
        iseg = read_png(tmp_path / image["iseg_file"])
        cseg = read_png(tmp_path / image["cseg_file"])
        depth = read_png(tmp_path / image["depth_file"])
        rgb = read_png(tmp_path / image["file_name"])
        assert (iseg.dtype, cseg.dtype, depth.dtype, rgb.dtype) == (
            np.uint16,
            np.uint8,
            np.uint16,
            np.uint8,
        )
        assert rgb.shape == (image["height"], image["width"], 3) == (80, 96, 3)
        annotated = set()
        for ann in by_image.get(image["id"], []):
            mask = mask_utils.decode(ann["segmentation"]).astype(bool)
            expected = iseg == ann["iseg_id"]
            assert np.array_equal(mask, expected)
            ys, xs = np.nonzero(expected)
            bbox = [
                int(xs.min()),
                int(ys.min()),
                int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1),
            ]
            assert ann["bbox"] == bbox
            assert ann["area"] == int(expected.sum()) == int(mask_utils.area(ann["segmentation"]))
            assert ann["iscrowd"] == 0
            assert set(np.unique(cseg[expected]).tolist()) == {ann["category_id"]}
            assert 0 < ann["visibility"] <= 1
            annotated.add(ann["iseg_id"])
            checked += 1
        # with no thresholds, every instance in the map is annotated, and nothing else
        assert annotated == set(np.unique(iseg).tolist()) - {0}
        # the class map is the instance map seen through the categories
        assert np.array_equal(cseg == 0, iseg == 0)
    assert checked > 20


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_pycocotools_loads_labels_and_masks_match(generator: str, tmp_path: Path) -> None:
    labels = render(generator, tmp_path, num_objects=10)
    coco = COCO()
    coco.dataset = labels
    coco.createIndex()
    iseg = read_png(tmp_path / labels["images"][0]["iseg_file"])
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[1])):
        assert np.array_equal(coco.annToMask(ann).astype(bool), iseg == ann["iseg_id"])
    names = [c["name"] for c in labels["categories"]]
    assert names == get_generator(generator).categories


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_barely_visible_instances_become_ignore_regions(generator: str) -> None:
    min_pixels, min_visibility = 30, 0.4
    gen = get_generator(generator)
    params = small_params(generator, min_objects=24, num_objects=24, frames=4, motion=0.05)
    occluded = ignored = 0
    for frame in gen.render_frames(params, is_preview=False):
        annotations = instance_annotations(frame.iseg, frame.instances, min_pixels, min_visibility)
        kept = {a["iseg_id"] for a in annotations if a["iscrowd"] == 0}
        regions = {a["iseg_id"] for a in annotations if a["iscrowd"] == 1}
        for instance_id, instance in frame.instances.items():
            visible = int((frame.iseg == instance_id).sum())
            assert visible <= instance.pixels  # occlusion only removes pixels
            occluded += visible < instance.pixels
            should_keep = visible >= min_pixels and visible / instance.pixels >= min_visibility
            assert (instance_id in kept) == should_keep, (instance_id, visible, instance.pixels)
            # a visible fragment below the filters is marked, so a detector is not punished for it
            assert (instance_id in regions) == (visible > 0 and not should_keep)
            ignored += instance_id in regions
        for ann in annotations:
            if ann["iscrowd"] == 0:
                assert ann["visibility"] >= min_visibility and ann["area"] >= min_pixels
    assert occluded > 0 and ignored > 0  # the scenes really exercise both rules


def test_fully_occluded_instance_gets_no_annotation() -> None:
    from prefect_synthdata.engine.generators.base import Instance

    iseg = np.zeros((10, 10), np.uint16)
    iseg[2:8, 2:8] = 1  # instance 2 was drawn underneath and is completely hidden
    instances = {1: Instance(1, 1, 36, (2, 8, 2, 8)), 2: Instance(2, 2, 9, (3, 6, 3, 6))}
    annotations = instance_annotations(iseg, instances, min_visible_pixels=1, min_visibility=0.0)
    assert [a["iseg_id"] for a in annotations] == [1]
    assert annotations[0]["bbox"] == [2, 2, 6, 6] and annotations[0]["area"] == 36


def test_tabletop_depth_is_metric_and_sky_is_zero(tmp_path: Path) -> None:
    labels = render("tabletop", tmp_path, camera_elevation=20.0, fov=80.0, num_objects=4)
    image = labels["images"][0]
    depth = read_png(tmp_path / image["depth_file"]).astype(np.int64)
    iseg = read_png(tmp_path / image["iseg_file"])
    distance_mm = image["metadata"]["camera"]["position"]
    assert (depth[0] == 0).any()  # at 20 degrees with a wide lens the sky shows at the top
    objects = depth[iseg > 0]
    assert objects.size and (objects > 0).all()
    assert objects.max() < 1000 * 2 * np.linalg.norm(distance_mm)
    # the table recedes: depth grows towards the horizon (up the image) below it
    column = depth[:, 0][depth[:, 0] > 0]
    assert column[0] > column[-1]


@pytest.mark.parametrize("generator", sorted(GENERATORS))
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_randomly_sampled_jobs_stay_exact_and_label_every_visible_object(
    generator: str, seed: int
) -> None:
    spec = get_generator(generator).spec
    params = sample_unspecified(spec, {"width": 64, "height": 48, "frames": 2}, random.Random(seed))
    assert check_job(spec, params)[1] == []
    defaults = spec.defaults()
    assert params["min_visible_pixels"] == defaults["min_visible_pixels"]
    assert params["min_visibility"] == defaults["min_visibility"]
    for frame in get_generator(generator).render_frames(params, is_preview=False):
        assert frame.rgb.shape == (48, 64, 3)
        annotations = instance_annotations(
            frame.iseg, frame.instances, params["min_visible_pixels"], params["min_visibility"]
        )
        for ann in annotations:
            expected = frame.iseg == ann["iseg_id"]
            assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), expected)
            assert ann["area"] == int(expected.sum()) > 0
        labelled = {a["iseg_id"] for a in annotations if a["iscrowd"] == 0}
        for instance_id, instance in frame.instances.items():
            visible = int((frame.iseg == instance_id).sum())
            passes = (
                visible >= params["min_visible_pixels"]
                and visible / instance.pixels >= params["min_visibility"]
            )
            assert (instance_id in labelled) == passes
