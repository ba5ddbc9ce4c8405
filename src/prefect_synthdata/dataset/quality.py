"""The quality gate a dataset passes before it is published.

A dataset fails when it holds fewer labelled objects than `min_annotations` (default
1: a dataset without labels is never published), or when more than
`max_unlabelled_fraction` of its visible objects are unlabelled. Visible but
unlabelled objects are the ignore regions (`iscrowd` 1) the engine records for
objects below the label filters, counted when they show at least `visible_pixels`
pixels (a 3-pixel sliver is not an object anyone would label); a provider that
records none is judged on its labels alone.

Example:
    >>> coco = {"images": [{"id": 1}], "annotations": [{"image_id": 1, "iscrowd": 0}]}
    >>> QualityGate().check(coco).labelled
    1
    >>> QualityGate().check({"images": [{"id": 1}], "annotations": []})
    Traceback (most recent call last):
    ...
    prefect_synthdata.exceptions.DatasetQualityError: dataset has no labelled objects in 1 images ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from prefect_synthdata.exceptions import DatasetQualityError


@dataclass(frozen=True)
class QualityCounts:
    """What the gate counted: images, labelled objects, ignore regions, images without labels."""

    images: int
    labelled: int
    unlabelled: int
    images_without_labels: int

    @property
    def unlabelled_fraction(self) -> float:
        """Share of visible objects that carry no label (0 when nothing is visible)."""
        visible = self.labelled + self.unlabelled
        return self.unlabelled / visible if visible else 0.0


def count(coco: dict[str, Any], visible_pixels: int = 1) -> QualityCounts:
    """Count labelled objects and ignore regions (of at least `visible_pixels`) of a COCO dict."""
    labelled_images = set()
    labelled = unlabelled = 0
    for ann in coco["annotations"]:
        if ann.get("iscrowd"):
            unlabelled += ann.get("area", visible_pixels) >= visible_pixels
        else:
            labelled += 1
            labelled_images.add(ann["image_id"])
    images = len(coco["images"])
    return QualityCounts(images, labelled, unlabelled, images - len(labelled_images))


class QualityGate(BaseModel):
    """Thresholds a dataset must meet to be published."""

    min_annotations: int = Field(
        default=1, ge=0, description="Fewest labelled objects a publishable dataset holds."
    )
    max_unlabelled_fraction: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Largest share of visible objects left unlabelled by the label filters "
        "(recorded as ignore regions) a publishable dataset may have.",
    )
    visible_pixels: int = Field(
        default=16,
        ge=1,
        description="Pixels an unlabelled object shows before it counts as visible.",
    )

    def check(self, coco: dict[str, Any]) -> QualityCounts:
        """The counts of `coco`; DatasetQualityError naming what is wrong if it fails."""
        counts = count(coco, self.visible_pixels)
        problems = []
        if counts.labelled < self.min_annotations:
            what = (
                "no labelled objects"
                if counts.labelled == 0
                else f"{counts.labelled} labelled objects"
            )
            problems.append(
                f"dataset has {what} in {counts.images} images "
                f"(needs at least {self.min_annotations}; {count(coco).unlabelled} visible objects fell "
                "below the label filters min_visible_pixels / min_visibility)"
            )
        if counts.unlabelled_fraction > self.max_unlabelled_fraction:
            problems.append(
                f"{counts.unlabelled} of {counts.labelled + counts.unlabelled} visible objects "
                f"({self.visible_pixels}+ pixels) are unlabelled ({counts.unlabelled_fraction:.0%}), "
                "more than "
                f"max_unlabelled_fraction={self.max_unlabelled_fraction:g}: loosen the label "
                "filters min_visible_pixels / min_visibility, or raise the threshold"
            )
        if problems:
            raise DatasetQualityError("; ".join(problems) + "; nothing was published")
        return counts
