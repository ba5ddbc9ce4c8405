"""Render one job to a folder: images, ground-truth maps, `labels.json` and `job.json`.

This is the per-job result layout every provider hands to the dataset builder:

    <job dir>/job.json                      {"name", "params", "is_preview", "frames"}
    <job dir>/labels.json                   COCO for this job (file names relative to the dir)
    <job dir>/image.NNNNNN.rgb.png          RGB
    <job dir>/image.NNNNNN.iseg.png         instance ids, 16-bit
    <job dir>/image.NNNNNN.cseg.png         category ids, 8-bit
    <job dir>/image.NNNNNN.depth.png        depth in millimetres, 16-bit

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "job"
    >>> params = {**get_generator("shapes").spec.defaults(), "width": 64, "height": 64}
    >>> render_job("shapes", params, is_preview=True, out_dir=out)["images"]
    1
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prefect_synthdata.engine.annotate import instance_annotations
from prefect_synthdata.engine.generators import get_generator

PNG_LEVEL = 1  # fast compression; PNG stays lossless


def _save_png(array: np.ndarray, path: Path) -> None:
    image = Image.fromarray(array)
    image.save(path, format="PNG", compress_level=PNG_LEVEL)


def render_job(
    generator_name: str, params: dict[str, Any], is_preview: bool, out_dir: Path
) -> dict[str, int]:
    """Render every frame of a job into `out_dir`; returns image and annotation counts."""
    generator = get_generator(generator_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    min_visible = int(params.get("min_visible_pixels", 1))
    for index, frame in enumerate(generator.render_frames(params, is_preview)):
        stem = f"image.{index:06d}"
        _save_png(frame.rgb, out_dir / f"{stem}.rgb.png")
        _save_png(frame.iseg, out_dir / f"{stem}.iseg.png")
        _save_png(frame.cseg, out_dir / f"{stem}.cseg.png")
        _save_png(frame.depth, out_dir / f"{stem}.depth.png")
        height, width = frame.iseg.shape
        image_id = index + 1
        images.append(
            {
                "id": image_id,
                "file_name": f"{stem}.rgb.png",
                "width": width,
                "height": height,
                "frame_number": index,
                "iseg_file": f"{stem}.iseg.png",
                "cseg_file": f"{stem}.cseg.png",
                "depth_file": f"{stem}.depth.png",
                "metadata": frame.metadata,
            }
        )
        categories = {k: v[0] for k, v in frame.instances.items()}
        for ann in instance_annotations(frame.iseg, categories, min_visible):
            ann["id"] = len(annotations) + 1
            ann["image_id"] = image_id
            ann["track_id"] = frame.instances[ann["instance_id"]][1]
            annotations.append(ann)
    labels = {
        "info": {
            "description": f"prefect-synthdata {generator_name}",
            "version": generator.spec.version,
        },
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"}
            for i, name in enumerate(generator.categories)
        ],
        "images": images,
        "annotations": annotations,
    }
    (out_dir / "labels.json").write_text(json.dumps(labels, separators=(",", ":")))
    job = {
        "name": generator_name,
        "params": params,
        "is_preview": is_preview,
        "frames": len(images),
    }
    (out_dir / "job.json").write_text(json.dumps(job, sort_keys=True))
    return {"images": len(images), "annotations": len(annotations)}
