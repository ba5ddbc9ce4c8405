"""Hugging Face `datasets`: Parquet shards in `hf/`, one row per RGB image.

    hf/<split>-NNNNN-of-NNNNN.parquet    at most `max_shard_bytes` of images each

`datasets.load_dataset("parquet", data_dir="<dataset>/hf")` (or `load_dataset("<dataset>/hf")`)
gives one split per dataset split (`val` is named `validation` there) with these columns,
typed by the `datasets` features stored in the Parquet schema:

- `image` (RGB), `iseg` and `depth` (16-bit PNGs, decoded as PIL mode `I;16`, lossless;
  depth in millimetres), `cseg` (8-bit category ids): `datasets.Image` features;
- `image_id` (the COCO id), `width`, `height`;
- `objects`: per instance `id`, `bbox` (COCO `[x, y, width, height]` in pixels),
  `category` (a `ClassLabel` holding the class names), `area`, `iscrowd`.

Why not `imagefolder` over the dataset folder: it assigns files to splits by their names,
so the per-split COCO files and the other exports (`yolo/train.txt`, ...) would take
the rows' place, and its metadata may not point outside its own folder. The Parquet
files carry the image bytes (a second copy of the PNGs); `pyarrow` writes them
(`pip install prefect-synthdata[hf]`).

Example:
    >>> import datasets  # doctest: +SKIP
    >>> ds = datasets.load_dataset("parquet", data_dir="datasets/shapes/v1/hf")  # doctest: +SKIP
    >>> ds["train"].features["objects"]["category"].feature.names  # doctest: +SKIP
    ['circle', 'ellipse', 'rectangle', 'triangle', 'star', 'ring']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect_synthdata.dataset.exports.source import Split

FOLDER = "hf"
#: Default bound on the image bytes in one Parquet file.
MAX_SHARD_BYTES = 256 * 2**20
ROW_GROUP = 64
MAP_COLUMNS = {"iseg": "iseg_file", "cseg": "cseg_file", "depth": "depth_file"}


def _value(dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "_type": "Value"}


def _list(feature: dict[str, Any]) -> dict[str, Any]:
    return {"feature": feature, "_type": "List"}


def features(class_names: list[str], columns: list[str]) -> dict[str, Any]:
    """The `datasets` features of the rows (`Features.to_dict()` form), stored in the schema."""
    images = {name: {"_type": "Image"} for name in ["image", *columns]}
    return {
        **images,
        "image_id": _value("int64"),
        "width": _value("int64"),
        "height": _value("int64"),
        "objects": {
            "id": _list(_value("int64")),
            "bbox": _list(_list(_value("float64"))),
            "category": _list({"names": class_names, "_type": "ClassLabel"}),
            "area": _list(_value("float64")),
            "iscrowd": _list(_value("int64")),
        },
    }


def schema(columns: list[str], metadata: dict[str, str] | None = None) -> Any:
    """The Arrow schema of the rows (explicit, so a shard without objects has the same types)."""
    import pyarrow as pa

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    objects = pa.struct(
        [
            ("id", pa.list_(pa.int64())),
            ("bbox", pa.list_(pa.list_(pa.float64()))),
            ("category", pa.list_(pa.int64())),
            ("area", pa.list_(pa.float64())),
            ("iscrowd", pa.list_(pa.int64())),
        ]
    )
    fields = [(name, image) for name in ["image", *columns]]
    fields += [("image_id", pa.int64()), ("width", pa.int64()), ("height", pa.int64())]
    return pa.schema([*fields, ("objects", objects)], metadata=metadata)


def row(folder: Path, split: Split, image: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """One image's row, image files inlined."""
    anns = split.by_image[image["id"]]
    files = {"image": image["file_name"]} | {c: image[MAP_COLUMNS[c]] for c in columns}
    return {
        **{c: {"bytes": (folder / path).read_bytes(), "path": path} for c, path in files.items()},
        "image_id": image["id"],
        "width": image["width"],
        "height": image["height"],
        "objects": {
            "id": [a["id"] for a in anns],
            "bbox": [[float(v) for v in a["bbox"]] for a in anns],
            "category": [split.class_index[a["category_id"]] for a in anns],
            "area": [float(a["area"]) for a in anns],
            "iscrowd": [int(a.get("iscrowd", 0)) for a in anns],
        },
    }


def _shards(folder: Path, split: Split, max_shard_bytes: int) -> list[list[dict[str, Any]]]:
    """The split's images in groups of at most `max_shard_bytes` of image files (at least one each)."""
    groups: list[list[dict[str, Any]]] = [[]]
    used = 0
    for image in split.images:
        size = sum(
            (folder / image[f]).stat().st_size
            for f in ("file_name", *MAP_COLUMNS.values())
            if f in image
        )
        if groups[-1] and used + size > max_shard_bytes:
            groups.append([])
            used = 0
        groups[-1].append(image)
        used += size
    return groups


def write(folder: Path, splits: list[Split], max_shard_bytes: int = MAX_SHARD_BYTES) -> list[Path]:
    """Write every split's Parquet shards into `folder/hf/`."""
    import pyarrow as pa  # the `hf` extra; `check_formats` asks for it up front
    import pyarrow.parquet as pq

    (folder / FOLDER).mkdir(exist_ok=True)
    written = []
    for split in splits:
        columns = [c for c, f in MAP_COLUMNS.items() if split.images and f in split.images[0]]
        metadata = {
            "huggingface": json.dumps({"info": {"features": features(split.class_names, columns)}})
        }
        groups = _shards(folder, split, max_shard_bytes)
        for index, group in enumerate(groups):
            rows = [row(folder, split, im, columns) for im in group]
            table = pa.Table.from_pylist(rows, schema=schema(columns, metadata))
            path = folder / FOLDER / f"{split.name}-{index:05d}-of-{len(groups):05d}.parquet"
            pq.write_table(table, path, row_group_size=ROW_GROUP)
            written.append(path)
    return written
