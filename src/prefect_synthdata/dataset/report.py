"""A dataset report people look at rather than read: sample images with their masks and
boxes drawn, per-class counts, area and visibility histograms, images without labels.

`report_markdown` renders it as one markdown document with the sample grid embedded as
a PNG data URI, so a Prefect markdown artifact (or any markdown viewer) shows it
without access to the dataset's storage. Ignore regions (`iscrowd` 1) are drawn grey
and counted apart from the labelled objects.

Example:
    >>> import tempfile, pathlib
    >>> from prefect_synthdata.engine.render import render_job
    >>> from prefect_synthdata.engine.generators import get_generator
    >>> from prefect_synthdata.dataset.assemble import assemble_dataset
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> params = {**get_generator("shapes").spec.defaults(), "width": 64, "height": 64}
    >>> _ = render_job("shapes", params, True, tmp / "jobs" / "j1")
    >>> _ = assemble_dataset([("j1", tmp / "jobs" / "j1")], tmp / "ds", name="d", version="1",
    ...     provider="local", generator="shapes", batch_id="b", is_preview=True)
    >>> report_markdown(tmp / "ds", "d 1").startswith("# Dataset report: d 1")
    True
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from prefect_synthdata.dataset.manifest import ANNOTATIONS

#: Distinct colours for categories (RGB); ignore regions are grey.
CLASS_COLOURS = [
    (230, 57, 70), (42, 157, 143), (38, 70, 224), (244, 162, 97),
    (155, 89, 182), (233, 196, 106), (29, 53, 87), (131, 197, 190),
]  # fmt: skip
IGNORE_COLOUR = (128, 128, 128)
COCO_SIZES = (("small", 0, 32**2), ("medium", 32**2, 96**2), ("large", 96**2, math.inf))
BAR_WIDTH = 30


def _draw_sample(
    root: Path, image: dict[str, Any], anns: list[dict[str, Any]], size: int
) -> Image.Image:
    """The image with each object's mask tinted in its class colour and its box outlined."""
    with Image.open(root / image["file_name"]) as source:
        rgb = np.asarray(source.convert("RGB"), np.float32)
    for ann in anns:
        colour = IGNORE_COLOUR if ann.get("iscrowd") else _colour(ann["category_id"])
        rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"]}
        mask = mask_utils.decode(rle).astype(bool)
        rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array(colour, np.float32)
    picture = Image.fromarray(rgb.astype(np.uint8))
    scale = size / max(picture.size)
    picture = picture.resize(
        (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    )
    draw = ImageDraw.Draw(picture)
    for ann in anns:
        if ann.get("iscrowd"):
            continue
        x, y, w, h = (v * scale for v in ann["bbox"])
        draw.rectangle([x, y, x + w, y + h], outline=_colour(ann["category_id"]), width=1)
    return picture


def _colour(category_id: int) -> tuple[int, int, int]:
    return CLASS_COLOURS[(category_id - 1) % len(CLASS_COLOURS)]


def sample_grid(root: Path, coco: dict[str, Any], samples: int = 8, size: int = 192) -> bytes:
    """PNG bytes of up to `samples` images spread evenly over the dataset, in a grid of 4 columns."""
    images = coco["images"]
    if not images:
        return b""
    picks = sorted({round(i * (len(images) - 1) / max(samples - 1, 1)) for i in range(samples)})
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    tiles = [_draw_sample(root, images[i], by_image.get(images[i]["id"], []), size) for i in picks]
    columns = min(4, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    grid = Image.new("RGB", (columns * (size + 4), rows * (size + 4)), (255, 255, 255))
    for index, tile in enumerate(tiles):
        grid.paste(tile, ((index % columns) * (size + 4) + 2, (index // columns) * (size + 4) + 2))
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _histogram(title: str, rows: list[tuple[str, int]]) -> str:
    """A markdown table with one bar per bin."""
    most = max((n for _, n in rows), default=0) or 1
    lines = [f"| {title} | objects | |", "|---|---:|---|"]
    lines += [f"| {label} | {n} | {'█' * round(BAR_WIDTH * n / most)} |" for label, n in rows]
    return "\n".join(lines)


def report_markdown(root: Path, title: str, samples: int = 8) -> str:
    """The markdown report of the assembled dataset folder `root`."""
    coco = json.loads((root / ANNOTATIONS).read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    labelled = [a for a in coco["annotations"] if not a.get("iscrowd")]
    ignored = len(coco["annotations"]) - len(labelled)
    per_class = Counter(a["category_id"] for a in labelled)
    images_per_class = {
        c: len({a["image_id"] for a in labelled if a["category_id"] == c}) for c in names
    }
    with_labels = {a["image_id"] for a in labelled}
    without = [image["file_name"] for image in coco["images"] if image["id"] not in with_labels]

    parts = [f"# Dataset report: {title}", ""]
    parts.append(
        f"{len(coco['images'])} images, {len(labelled)} labelled objects, "
        f"{ignored} ignore regions (visible objects below the label filters, drawn grey), "
        f"{len(without)} images without labels."
    )
    grid = sample_grid(root, coco, samples)
    if grid:
        uri = "data:image/png;base64," + base64.b64encode(grid).decode()
        parts += [
            "",
            "## Samples (masks tinted by class, boxes outlined)",
            "",
            f"![samples]({uri})",
        ]
    parts += [
        "",
        "## Objects per class",
        "",
        "| class | colour | objects | images |",
        "|---|---|---:|---:|",
    ]
    for category_id, name in names.items():
        swatch = "#" + "".join(f"{c:02x}" for c in _colour(category_id))
        parts.append(
            f"| {name} | `{swatch}` | {per_class[category_id]} | {images_per_class[category_id]} |"
        )
    areas = np.array([a["area"] for a in labelled], np.float64)
    size_rows = [
        (f"{label} (COCO)", int(((areas >= lo) & (areas < hi)).sum()))
        for label, lo, hi in COCO_SIZES
    ]
    edges = [0, *(4**k for k in range(3, 9)), math.inf]  # 64, 256, ... 65536 pixels
    area_rows = [
        (
            f"{lo}-{hi} px" if hi < math.inf else f"{lo}+ px",
            int(((areas >= lo) & (areas < hi)).sum()),
        )
        for lo, hi in itertools.pairwise(edges)
    ]
    visibility = np.array([a.get("visibility", 1.0) for a in labelled], np.float64)
    vis_rows = [
        (
            f"{k / 10:.1f}-{(k + 1) / 10:.1f}",
            int(((visibility >= k / 10) & ((visibility < (k + 1) / 10) | (k == 9))).sum()),
        )
        for k in range(10)
    ]
    parts += [
        "",
        "## Object area",
        "",
        _histogram("size", size_rows),
        "",
        _histogram("area", area_rows),
    ]
    parts += [
        "",
        "## Visibility (visible share of each object)",
        "",
        _histogram("visibility", vis_rows),
    ]
    if without:
        shown = ", ".join(f"`{name}`" for name in without[:20])
        more = f" and {len(without) - 20} more" if len(without) > 20 else ""
        parts += ["", f"## Images without labels ({len(without)})", "", shown + more]
    return "\n".join(parts) + "\n"
