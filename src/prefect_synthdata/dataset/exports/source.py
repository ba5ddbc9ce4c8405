"""What every export reads: the assembled dataset folder's COCO files, split by split.

A folder with per-split COCO files (`annotations.<split>.coco.json`, beside the full
`annotations.coco.json`) has those splits; one without them is one split, `train`.
Masks are the annotations' compressed RLEs, decoded with pycocotools.

Example:
    >>> import tempfile, pathlib, json
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "annotations.coco.json").write_text(json.dumps(
    ...     {"images": [], "annotations": [], "categories": [{"id": 1, "name": "star"}]}))
    >>> [(s.name, s.class_names) for s in load_splits(root)]
    [('train', ['star'])]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from prefect_synthdata.dataset.manifest import ANNOTATIONS
from prefect_synthdata.exceptions import ConfigurationError

SPLIT_FILE = re.compile(r"^annotations\.([A-Za-z0-9_-]+)\.coco\.json$")
#: The split a dataset without per-split COCO files is exported as.
DEFAULT_SPLIT = "train"


@dataclass(frozen=True)
class Split:
    """One split's COCO dict, with its annotations grouped by image.

    `class_names[i]` is the name of class index `i` (0-based), the order of the
    dataset's COCO categories by id (the same in every split); `class_index` maps a
    COCO category id to that index.
    """

    name: str
    coco: dict[str, Any]
    categories: list[dict[str, Any]]
    class_names: list[str] = field(init=False)
    class_index: dict[int, int] = field(init=False)
    by_image: dict[int, list[dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        categories = sorted(self.categories, key=lambda c: c["id"])
        object.__setattr__(self, "class_names", [c["name"] for c in categories])
        object.__setattr__(self, "class_index", {c["id"]: i for i, c in enumerate(categories)})
        by_image: dict[int, list[dict[str, Any]]] = {im["id"]: [] for im in self.coco["images"]}
        for ann in self.coco["annotations"]:
            if ann["image_id"] not in by_image:
                raise ConfigurationError(
                    f"split {self.name!r}: annotation {ann.get('id')} names image {ann['image_id']}, "
                    "which the split does not hold"
                )
            by_image[ann["image_id"]].append(ann)
        object.__setattr__(self, "by_image", by_image)

    @property
    def images(self) -> list[dict[str, Any]]:
        return list(self.coco["images"])


def load_splits(folder: Path) -> list[Split]:
    """The splits of the assembled dataset in `folder`, in name order."""
    full = json.loads((folder / ANNOTATIONS).read_text())
    per_split = sorted(
        (match.group(1), path)
        for path in folder.iterdir()
        if (match := SPLIT_FILE.match(path.name)) is not None
    )
    if not per_split:
        return [Split(DEFAULT_SPLIT, full, full["categories"])]
    return [
        Split(name, json.loads(path.read_text()), full["categories"]) for name, path in per_split
    ]


def decode_mask(ann: dict[str, Any], height: int, width: int) -> np.ndarray:
    """The annotation's mask as a bool array of shape (height, width)."""
    rle = dict(ann["segmentation"])
    if isinstance(rle.get("counts"), str):
        rle["counts"] = rle["counts"].encode()
    if list(rle["size"]) != [height, width]:
        raise ConfigurationError(
            f"annotation {ann.get('id')}: mask size {rle['size']} is not the image's {[height, width]}"
        )
    return np.asarray(mask_utils.decode(rle), dtype=bool)


def video_key(image: dict[str, Any]) -> int:
    """Which video an image belongs to: its job (one job renders one video, so sequence
    names match the job folders under `images/`), else its COCO-VID `video_id`."""
    return int(image.get("job_index", image.get("video_id", 0)))


def frame_index(image: dict[str, Any]) -> int:
    """The image's 0-based frame within its video."""
    return int(image.get("frame_id", image.get("frame_number", 0)))
