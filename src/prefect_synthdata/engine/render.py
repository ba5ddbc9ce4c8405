"""Render one job to a folder: images, ground-truth maps, `labels.json` and `job.json`.

This is the per-job result layout every provider hands to the dataset builder:

    <job dir>/job.json                      {"name", "params", "is_preview", "frames"}
    <job dir>/labels.json                   COCO for this job (file names relative to the dir)
    <job dir>/image.NNNNNN.rgb.png          RGB
    <job dir>/image.NNNNNN.iseg.png         instance ids, 16-bit (0 = background)
    <job dir>/image.NNNNNN.cseg.png         category ids, 8-bit (0 = background)
    <job dir>/image.NNNNNN.depth.png        depth along the optical axis in millimetres, 16-bit
    <job dir>/image.NNNNNN.normal.png       camera-space normals, 8-bit RGB (generators that
                                            offer them; `Frame` says how they are encoded)

`labels.json` images carry `frame_number`, the map file names and `metadata`
(camera, lighting, seed); annotations carry `track_id` (stable across a video's
frames, MOT-style), `iseg_id` (the value in the iseg map) and `visibility`.
Nothing time-dependent is written, so a job renders to the same bytes every time.
A render asked to stop (`should_stop`, checked between frames) raises RenderStopped.
Each frame is checked against the generator contract (`contract.check_frame`) before
anything of it is written; a broken frame fails the job with GeneratorContractError.

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "job"
    >>> params = {**get_generator("shapes").spec.defaults(), "width": 64, "height": 64}
    >>> render_job("shapes", params, is_preview=True, out_dir=out)["images"]
    1
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect_synthdata.engine import png
from prefect_synthdata.engine.annotate import instance_annotations
from prefect_synthdata.engine.generators import get_generator
from prefect_synthdata.engine.generators.contract import check_frame, requested_size


class RenderStopped(Exception):
    """The render was asked to stop (its job was cancelled) before its last frame."""


def render_job(
    generator_name: str,
    params: dict[str, Any],
    is_preview: bool,
    out_dir: Path,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Render every frame of a job into `out_dir`; returns image and annotation counts.

    `should_stop` is asked between frames; once it says True, RenderStopped.
    """
    generator = get_generator(generator_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    min_pixels = int(params.get("min_visible_pixels", 1))
    min_visibility = float(params.get("min_visibility", 0.0))
    size = requested_size(params)
    for index, frame in enumerate(generator.render_frames(params, is_preview)):
        if should_stop is not None and should_stop():
            raise RenderStopped(f"stopped before frame {index}")
        check_frame(generator_name, frame, len(generator.categories), size)
        stem = f"image.{index:06d}"
        png.write_png(out_dir / f"{stem}.rgb.png", frame.rgb, png.RGB)
        png.write_png(out_dir / f"{stem}.iseg.png", frame.iseg, png.INSTANCES)
        png.write_png(out_dir / f"{stem}.cseg.png", frame.cseg, png.CATEGORIES)
        png.write_png(out_dir / f"{stem}.depth.png", frame.depth, png.DEPTH)
        height, width = frame.iseg.shape
        image_id = index + 1
        maps = {}
        if frame.normals is not None:
            png.write_png(out_dir / f"{stem}.normal.png", frame.normals, png.NORMALS)
            maps["normal_file"] = f"{stem}.normal.png"
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
                **maps,
                "metadata": frame.metadata,
            }
        )
        for ann in instance_annotations(frame.iseg, frame.instances, min_pixels, min_visibility):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
    labels = {
        "info": {
            "description": f"prefect-synthdata {generator_name}",
            "version": generator.spec.version,
        },
        "categories": [
            {"id": i + 1, "name": name, "supercategory": generator.supercategory}
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
