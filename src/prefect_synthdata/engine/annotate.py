"""COCO annotations computed from an instance-id image, so they match the pixels exactly.

Each visible instance gets a tight bbox from its visible mask, `area` equal to its
visible pixel count and a compressed RLE of that mask. Instances that are fully
occluded get nothing. Visible instances below the label filters (fewer than
`min_visible_pixels` pixels, or a visible fraction of their unoccluded in-frame area
below `min_visibility`) are kept as *ignore regions*: `iscrowd` 1, which COCOeval
treats as "neither a hit nor a miss" and torchvision's and detectron2's training
loaders skip. Work per instance is bounded by the region the generator drew it in.

Beyond the COCO keys, each annotation carries `track_id` (the object, stable across a
video's frames), `iseg_id` (its value in the instance map) and `visibility`.

Example:
    >>> import numpy as np
    >>> from prefect_synthdata.engine.generators.base import Instance
    >>> iseg = np.zeros((4, 4), np.uint16); iseg[1:3, 1:4] = 7
    >>> ann = instance_annotations(iseg, {7: Instance(2, 1, 6, (0, 4, 0, 4))}, 1, 0.5)[0]
    >>> ann["bbox"], ann["area"], ann["category_id"], ann["visibility"], ann["iscrowd"]
    ([1, 1, 3, 2], 6, 2, 1.0, 0)
    >>> instance_annotations(iseg, {7: Instance(2, 1, 6, (0, 4, 0, 4))}, 10, 0.5)[0]["iscrowd"]
    1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from prefect_synthdata.engine.generators.base import Instance


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of a boolean mask, with `counts` as a JSON-safe string."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


def instance_annotations(
    iseg: np.ndarray,
    instances: Mapping[int, Instance],
    min_visible_pixels: int,
    min_visibility: float,
) -> list[dict[str, Any]]:
    """One annotation per visible instance, in instance-id order: labelled (`iscrowd` 0)
    if it passes the filters, else an ignore region (`iscrowd` 1).

    Annotation and image ids are left for the caller to assign.
    """
    height, width = iseg.shape
    annotations = []
    for instance_id in sorted(instances):
        instance = instances[instance_id]
        y0, y1, x0, x1 = instance.region
        local = iseg[y0:y1, x0:x1] == instance_id
        area = int(np.count_nonzero(local))
        visibility = area / instance.pixels if instance.pixels else 0.0
        if area == 0:
            continue
        labelled = area >= min_visible_pixels and visibility >= min_visibility
        rows = np.flatnonzero(local.any(axis=1))
        cols = np.flatnonzero(local.any(axis=0))
        full = np.zeros((height, width), np.uint8, order="F")
        full[y0:y1, x0:x1] = local
        annotations.append(
            {
                "iseg_id": instance_id,
                "track_id": instance.track_id,
                "category_id": instance.category_id,
                "bbox": [
                    x0 + int(cols[0]),
                    y0 + int(rows[0]),
                    int(cols[-1] - cols[0]) + 1,
                    int(rows[-1] - rows[0]) + 1,
                ],
                "area": area,
                "segmentation": encode_rle(full),
                "iscrowd": 0 if labelled else 1,
                "visibility": round(min(visibility, 1.0), 4),
            }
        )
    return annotations
