"""Ultralytics YOLO: `yolo/data.yaml`, RGB-only image lists per split, and `labels/`.

Written into the dataset folder:

    yolo/data.yaml                     class names; train/val/test = the lists below
    yolo/<split>.txt                   one RGB image a line (`./../images/...`), so the
                                       iseg/cseg/depth PNGs beside them are never trained on
    labels/<job>/image.NNNNNN.rgb.txt  one line per instance: `class x1 y1 x2 y2 ...`

Ultralytics finds a label file by replacing the last `/images/` of the image path with
`/labels/`, so `labels/` sits beside `images/`. Each line is the instance's outline
(`outline.outline`: pixel corners normalised by the image size, pieces and holes joined
into one polygon), which serves both tasks: `task=segment` reads the polygon, which
filled at pixel centres is exactly the COCO mask (Ultralytics' rasteriser also fills
the pixels its edges touch, a one-pixel rim); `task=detect` takes its extent, which is
exactly the COCO box. Crowd/ignore annotations (`iscrowd` 1) are left out. A dataset
without a `val` split uses its first split for validation too.

Example:
    >>> from ultralytics import YOLO  # doctest: +SKIP
    >>> YOLO("yolo11n-seg.yaml").train(data="datasets/shapes/v1/yolo/data.yaml", epochs=1)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from prefect_synthdata.dataset.exports.outline import outline
from prefect_synthdata.dataset.exports.source import Split, decode_mask

FOLDER = "yolo"
DATA_YAML = "data.yaml"
#: data.yaml keys Ultralytics reads, by the split names that fill them.
YAML_KEYS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def label_path(image_file: str) -> str:
    """Where Ultralytics looks for the label file of a dataset-relative image path.

    Example:
        >>> label_path("images/000000/image.000000.rgb.png")
        'labels/000000/image.000000.rgb.txt'
    """
    path = PurePosixPath(image_file)
    if path.parts[0] != "images":
        raise ValueError(f"{image_file!r} is not under images/")
    return str(PurePosixPath("labels", *path.parts[1:]).with_suffix(".txt"))


def label_lines(split: Split, image: dict[str, Any]) -> list[str]:
    """The label file's lines for one image."""
    width, height = image["width"], image["height"]
    lines = []
    for ann in split.by_image[image["id"]]:
        if ann.get("iscrowd", 0):
            continue
        polygon = outline(decode_mask(ann, height, width))
        coords = " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in polygon)
        lines.append(f"{split.class_index[ann['category_id']]} {coords}")
    return lines


def data_yaml(splits: list[Split]) -> str:
    """The text of `data.yaml` (JSON is YAML, so no YAML writer is needed)."""
    lists = {YAML_KEYS.get(s.name, s.name): f"{s.name}.txt" for s in splits}
    if "val" not in lists and splits:
        lists["val"] = f"{splits[0].name}.txt"
    names = splits[0].class_names if splits else []
    return json.dumps({**lists, "nc": len(names), "names": names}, indent=1) + "\n"


def write(folder: Path, splits: list[Split]) -> list[Path]:
    """Write the label files, image lists and `data.yaml` into the dataset `folder`."""
    written = []
    (folder / FOLDER).mkdir(exist_ok=True)
    for split in splits:
        for image in split.images:
            target = folder / label_path(image["file_name"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(line + "\n" for line in label_lines(split, image)))
            written.append(target)
        listing = folder / FOLDER / f"{split.name}.txt"
        listing.write_text("".join(f"./../{image['file_name']}\n" for image in split.images))
        written.append(listing)
    (folder / FOLDER / DATA_YAML).write_text(data_yaml(splits))
    return [*written, folder / FOLDER / DATA_YAML]
