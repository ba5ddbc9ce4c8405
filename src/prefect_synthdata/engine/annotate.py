"""COCO annotations computed from an instance-id image, so they match the pixels exactly.

Example:
    >>> import numpy as np
    >>> iseg = np.zeros((4, 4), np.uint16); iseg[1:3, 1:4] = 7
    >>> ann = instance_annotations(iseg, {7: 2}, min_visible_pixels=1)[0]
    >>> ann["bbox"], ann["area"], ann["category_id"]
    ([1, 1, 3, 2], 6, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of a boolean mask, with `counts` as a JSON-safe string."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


def instance_annotations(
    iseg: np.ndarray, categories: dict[int, int], min_visible_pixels: int
) -> list[dict[str, Any]]:
    """One annotation per visible instance: tight bbox, visible area, RLE segmentation.

    `categories` maps instance id to category id. Instances with fewer than
    `min_visible_pixels` visible pixels (fully or mostly occluded) are dropped.
    Annotation and image ids are left for the caller to assign.
    """
    annotations = []
    ids, counts = np.unique(iseg, return_counts=True)
    for instance_id, count in zip(ids.tolist(), counts.tolist(), strict=True):
        if instance_id == 0 or count < min_visible_pixels or instance_id not in categories:
            continue
        mask = iseg == instance_id
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        x0, y0 = int(cols[0]), int(rows[0])
        annotations.append(
            {
                "instance_id": instance_id,
                "category_id": categories[instance_id],
                "bbox": [x0, y0, int(cols[-1]) - x0 + 1, int(rows[-1]) - y0 + 1],
                "area": count,
                "segmentation": encode_rle(mask),
                "iscrowd": 0,
            }
        )
    return annotations
