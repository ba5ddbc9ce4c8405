"""COCO mAP (pycocotools' COCOeval) of detections on a split, and a trivial baseline.

`coco_map` scores detections in COCO's result format against a split's COCO dict;
`detections_of` turns a model's decoded output into that format and `centre_baseline`
is what a model that never looks at the pixels would answer: per class, one box of the
class's mean training size at the image centre, scored by the class's frequency.

Example:
    >>> gt = {"images": [{"id": 1, "width": 8, "height": 8}], "categories": [{"id": 1, "name": "a"}],
    ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 4, 4],
    ...                        "area": 16, "iscrowd": 0}]}
    >>> round(coco_map(gt, [{"image_id": 1, "category_id": 1, "bbox": [2, 2, 4, 4], "score": 1.0}]).map, 6)
    1.0
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


@dataclass(frozen=True)
class Score:
    """COCO box AP: `map` averaged over IoU 0.50:0.95, `map50` at IoU 0.50; None when the
    split has no objects to find."""

    map: float | None
    map50: float | None


def coco_map(ground_truth: dict[str, Any], detections: list[dict[str, Any]]) -> Score:
    """Box mAP of `detections` ({image_id, category_id, bbox xywh, score}) on `ground_truth`."""
    if not any(not a.get("iscrowd", 0) for a in ground_truth.get("annotations", [])):
        return Score(None, None)
    if not detections:
        return Score(0.0, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress
        gt = COCO()
        gt.dataset = {"info": {}, **ground_truth}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(detections), iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return Score(max(float(evaluation.stats[0]), 0.0), max(float(evaluation.stats[1]), 0.0))


def detections_of(
    predictions: list[dict[str, Any]], image_ids: list[int], category_ids: list[int]
) -> list[dict[str, Any]]:
    """Decoded predictions (xyxy boxes, 0-based labels) in COCO's result format."""
    out = []
    for image_id, found in zip(image_ids, predictions, strict=True):
        for box, score, label in zip(
            found["boxes"].tolist(), found["scores"].tolist(), found["labels"].tolist(), strict=True
        ):
            x0, y0, x1, y1 = box
            out.append(
                {
                    "image_id": image_id,
                    "category_id": category_ids[label],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": score,
                }
            )
    return out


def centre_baseline(
    train_boxes: list[torch.Tensor],
    train_labels: list[torch.Tensor],
    images: list[dict[str, Any]],
    category_ids: list[int],
) -> list[dict[str, Any]]:
    """Per image and class seen in training: one box of the class's mean training size at
    the image centre, scored by the class's share of the training objects."""
    boxes = torch.cat([b.reshape(-1, 4) for b in train_boxes]) if train_boxes else torch.zeros(0, 4)
    labels = torch.cat(train_labels) if train_labels else torch.zeros(0, dtype=torch.int64)
    out = []
    for label in labels.unique().tolist():
        mine = boxes[labels == label]
        w, h = (mine[:, 2] - mine[:, 0]).mean().item(), (mine[:, 3] - mine[:, 1]).mean().item()
        share = len(mine) / len(boxes)
        for image in images:
            cx, cy = image["width"] / 2, image["height"] / 2
            out.append(
                {
                    "image_id": image["id"],
                    "category_id": category_ids[label],
                    "bbox": [cx - w / 2, cy - h / 2, w, h],
                    "score": share,
                }
            )
    return out
