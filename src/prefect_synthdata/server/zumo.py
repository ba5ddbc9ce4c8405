"""The zpy "zumo" annotation layout, made from an engine job folder (see `engine.render`).

A zumo run folder holds `image.%06d.{rgb,iseg,cseg,depth}.png` (the engine's own file
names) plus `_annotations.zumo.json` and `_annotations.coco.json`. Zumo segmentations
are polygons: each is the convex hull of the instance's visible pixels, and the exact
mask travels alongside as `segmentation_rle` (COCO RLE).

Example:
    >>> import tempfile, pathlib
    >>> from prefect_synthdata.engine.generators import get_generator
    >>> from prefect_synthdata.engine.render import render_job
    >>> job = pathlib.Path(tempfile.mkdtemp()) / "job"
    >>> _ = render_job("shapes", {**get_generator("shapes").spec.defaults(), "width": 64, "height": 64}, True, job)
    >>> sorted(zumo_annotations(job, "run-1")["images"]["1"])[:3]
    ['frame', 'height', 'id']
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

STYLES = (("rgb", "default", "file_name"), ("iseg", "segmentation", "iseg_file"),
          ("cseg", "segmentation", "cseg_file"), ("depth", "depth", "depth_file"))  # fmt: skip
PALETTE = [(0.90, 0.10, 0.29), (0.24, 0.71, 0.29), (0.00, 0.51, 0.78), (0.96, 0.51, 0.19),
           (0.57, 0.12, 0.71), (0.27, 0.94, 0.94), (0.94, 0.20, 0.90), (0.82, 0.96, 0.24)]  # fmt: skip


def _cross(o: tuple[int, int], a: tuple[int, int], b: tuple[int, int]) -> int:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def hull_polygon(mask: np.ndarray) -> list[float]:
    """Convex hull of a boolean mask's pixel squares as a flat COCO polygon `[x0, y0, x1, y1, ...]`.

    Example:
        >>> m = np.zeros((4, 4), bool); m[1:3, 1:3] = True
        >>> hull_polygon(m)
        [1.0, 1.0, 3.0, 1.0, 3.0, 3.0, 1.0, 3.0]
    """
    rows = np.flatnonzero(mask.any(axis=1))
    points: set[tuple[int, int]] = set()
    for y in rows.tolist():
        cols = np.flatnonzero(mask[y])
        for x in (int(cols[0]), int(cols[-1]) + 1):
            points.update({(x, y), (x, y + 1)})
    ordered = sorted(points)
    if len(ordered) < 3:
        return [float(v) for p in ordered for v in p]
    lower: list[tuple[int, int]] = []
    upper: list[tuple[int, int]] = []
    for p in ordered:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(ordered):
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    # start at the top-left corner, clockwise in image coordinates (y grows downwards)
    start = hull.index(min(hull, key=lambda p: (p[1], p[0])))
    hull = hull[start:] + hull[:start]
    return [float(v) for p in hull for v in p]


def zumo_annotations(job_dir: Path, save_path: str) -> dict[str, Any]:
    """The `_annotations.zumo.json` body of one rendered job folder."""
    labels = json.loads((job_dir / "labels.json").read_text())
    counts: dict[int, int] = {}
    for ann in labels["annotations"]:
        if not ann.get("iscrowd"):
            counts[ann["category_id"]] = counts.get(ann["category_id"], 0) + 1
    categories = {
        str(c["id"]): {
            "id": c["id"],
            "name": c["name"],
            "supercategories": [c["supercategory"]] if c.get("supercategory") else [],
            "subcategories": [],
            "color": list(PALETTE[(c["id"] - 1) % len(PALETTE)]),
            "count": counts.get(c["id"], 0),
        }
        for c in labels["categories"]
    }
    frames = labels["images"]
    images: dict[str, dict[str, Any]] = {}
    for offset, (_, style, key) in enumerate(STYLES):
        for image in frames:
            image_id = image["id"] + offset * len(frames)  # rgb images keep their COCO ids
            images[str(image_id)] = {
                "id": image_id,
                "name": image[key],
                "style": style,
                "output_path": f"{save_path}/{image[key]}",
                "relative_path": image[key],
                "frame": image["frame_number"],
                "width": image["width"],
                "height": image["height"],
            }
    annotations = []
    for ann in labels["annotations"]:
        rle = {
            "size": ann["segmentation"]["size"],
            "counts": ann["segmentation"]["counts"].encode(),
        }
        mask = mask_utils.decode(rle).astype(bool)
        annotations.append(
            {
                "id": ann["id"],
                "image_id": ann["image_id"],
                "category_id": ann["category_id"],
                "bbox": ann["bbox"],
                "area": ann["area"],
                "iscrowd": int(ann.get("iscrowd", 0)),
                "segmentation": [hull_polygon(mask)],
                "segmentation_rle": ann["segmentation"],
            }
        )
    now = datetime.now(UTC)
    return {
        "metadata": {
            "description": labels["info"].get("description", ""),
            "contributor": "prefect-synthdata reference server",
            "url": "",
            "year": str(now.year),
            "date_created": now.strftime("%Y%m%d_%H%M%S"),
            "save_path": save_path,
        },
        "categories": categories,
        "images": images,
        "annotations": annotations,
    }
