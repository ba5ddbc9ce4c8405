"""A small real dataset (rendered, assembled, split in two) for the export tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prefect_synthdata.dataset.assemble import assemble_dataset
from prefect_synthdata.dataset.exports import FORMATS, add_exports
from prefect_synthdata.dataset.exports.source import decode_mask
from prefect_synthdata.dataset.manifest import ANNOTATIONS, MANIFEST, Manifest, file_entry
from prefect_synthdata.engine.generators import get_generator
from prefect_synthdata.engine.render import render_job
from tests.storage.conftest import aws_env, bucket, moto_endpoint, s3_options

__all__ = ["aws_env", "bucket", "moto_endpoint", "s3_options"]

#: Job parameters: a still, a 3-frame video, and a still whose objects are all filtered out.
JOBS: list[dict[str, Any]] = [
    {"seed": 11},
    {"seed": 12, "frames": 3},
    {"seed": 13, "min_visible_pixels": 100_000},
]
SPLIT_OF_JOB = {0: "train", 1: "val", 2: "train"}


def build(folder: Path, split: bool) -> tuple[Path, Manifest]:
    """Render JOBS (96 x 80 shapes), assemble them into `folder/dataset`, and (with
    `split`) write per-split COCO files the way the data-quality work names them."""
    jobs = []
    for index, overrides in enumerate(JOBS):
        params = {**get_generator("shapes").spec.defaults(), "width": 96, "height": 80, **overrides}
        out = folder / "jobs" / f"job{index}"
        render_job("shapes", params, False, out)
        (out / "job.json").write_text(json.dumps({"params": params}))
        jobs.append((f"job{index}", out))
    root = folder / "dataset"
    manifest = assemble_dataset(
        jobs,
        root,
        name="demo",
        version="v1",
        provider="local",
        generator="shapes",
        batch_id="b1",
        is_preview=False,
    )
    if split:
        coco = json.loads((root / ANNOTATIONS).read_text())
        for name in ("train", "val"):
            images = [im for im in coco["images"] if SPLIT_OF_JOB[im["job_index"]] == name]
            ids = {im["id"] for im in images}
            part = dict(
                coco,
                images=images,
                annotations=[a for a in coco["annotations"] if a["image_id"] in ids],
            )
            (root / f"annotations.{name}.coco.json").write_text(json.dumps(part))
        files = [
            *manifest.files,
            *(file_entry(p, p.name) for p in root.glob("annotations.*.coco.json")),
        ]
        manifest = manifest.model_copy(update={"files": sorted(files, key=lambda f: f.path)})
        (root / MANIFEST).write_bytes(manifest.to_bytes())
    return root, manifest


@dataclass(frozen=True)
class GroundTruth:
    """The dataset's COCO file, read directly: what every export must reproduce."""

    root: Path
    coco: dict[str, Any]

    def image(self, file_name: str) -> dict[str, Any]:
        return next(im for im in self.coco["images"] if im["file_name"] == file_name)

    def annotations(self, image_id: int) -> list[dict[str, Any]]:
        return [a for a in self.coco["annotations"] if a["image_id"] == image_id]

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in sorted(self.coco["categories"], key=lambda c: c["id"])]

    def mask(self, ann: dict[str, Any]) -> np.ndarray:
        return decode_mask(ann, ann["segmentation"]["size"][0], ann["segmentation"]["size"][1])

    def map(self, image: dict[str, Any], field: str) -> np.ndarray:
        return np.asarray(Image.open(self.root / image[field]))


@dataclass(frozen=True)
class Exported:
    """A split dataset with every export written, and the manifest that lists them."""

    truth: GroundTruth
    manifest: Manifest


@pytest.fixture
def exported(tmp_path: Path) -> Exported:
    """Per test: consumers such as Ultralytics write caches into the dataset folder."""
    root, manifest = build(tmp_path / "exported", split=True)
    manifest = add_exports(root, manifest, list(FORMATS))
    return Exported(GroundTruth(root, json.loads((root / ANNOTATIONS).read_text())), manifest)
