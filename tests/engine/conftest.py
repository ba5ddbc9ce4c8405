"""Helpers for the engine tests: small renders and readers of the per-job folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prefect_synthdata.engine.generators import get_generator
from prefect_synthdata.engine.render import render_job


def small_params(generator: str, **overrides: Any) -> dict[str, Any]:
    """A generator's defaults at 96 x 80 pixels, with `overrides`."""
    return {**get_generator(generator).spec.defaults(), "width": 96, "height": 80, **overrides}


def render(generator: str, out: Path, is_preview: bool = False, **overrides: Any) -> dict[str, Any]:
    """Render a small job into `out` and return its labels.json."""
    render_job(generator, small_params(generator, **overrides), is_preview, out)
    labels: dict[str, Any] = json.loads((out / "labels.json").read_text())
    return labels


def read_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def assert_exact(job_dir: Path) -> int:
    """Check a per-job folder: every annotation's RLE equals its instance's pixels in the
    iseg map, its bbox is tight and its area is the pixel count; every instance id in
    a map has an annotation's category in the class map. Returns the annotations checked."""
    from pycocotools import mask as mask_utils

    labels = json.loads((job_dir / "labels.json").read_text())
    checked = 0
    for image in labels["images"]:
        iseg = read_png(job_dir / image["iseg_file"])
        cseg = read_png(job_dir / image["cseg_file"])
        rgb = read_png(job_dir / image["file_name"])
        assert rgb.shape == (image["height"], image["width"], 3) and rgb.dtype == np.uint8
        assert iseg.dtype == np.uint16 and iseg.shape == rgb.shape[:2]
        for ann in (a for a in labels["annotations"] if a["image_id"] == image["id"]):
            expected = iseg == ann["iseg_id"]
            assert np.array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), expected)
            ys, xs = np.nonzero(expected)
            assert ann["bbox"] == [
                int(xs.min()),
                int(ys.min()),
                int(xs.max() - xs.min() + 1),
                int(ys.max() - ys.min() + 1),
            ]
            assert ann["area"] == int(expected.sum()) == int(mask_utils.area(ann["segmentation"]))
            assert set(np.unique(cseg[expected]).tolist()) == {ann["category_id"]}
            checked += 1
    return checked


def file_bytes(job_dir: Path) -> dict[str, bytes]:
    """Every file of a per-job folder by name (for byte-identical re-render checks)."""
    return {p.name: p.read_bytes() for p in sorted(job_dir.iterdir()) if p.is_file()}
