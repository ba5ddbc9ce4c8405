"""WebDataset shards: `webdataset/<split>-NNNNNN.tar`, each at most `max_shard_bytes`.

One sample per image, keyed by its zero-padded COCO image id:

    00000001.rgb.png     the RGB PNG, byte for byte
    00000001.maps.npz    `iseg` (uint16 instance ids), `cseg` (uint8 category ids),
                         `depth` (uint16 millimetres): lossless arrays, so no image
                         decoder can narrow the 16-bit maps to 8 bits
    00000001.json        {"image": <COCO image>, "annotations": [...], "class_names": [...]}

`webdataset`'s default decoders turn `.npz` into a dict of arrays and `.json` into a
dict; decode the RGB with `.decode("pil")` or `"rgb"`. `webdataset/shards.json` lists
each split's shards, so a reader can build URLs for a remote copy (an S3 prefix via
`pipe:aws s3 cp s3://bucket/<dataset>/webdataset/train-000000.tar -`, or presigned
HTTPS URLs). Archives are deterministic (fixed times, owners and order), so
re-exporting the same dataset gives the same bytes. A sample larger than the bound
gets a shard of its own.

Example:
    >>> import webdataset as wds  # doctest: +SKIP
    >>> for sample in wds.WebDataset("datasets/shapes/v1/webdataset/train-000000.tar").decode("pil"):  # doctest: +SKIP
    ...     rgb, depth_mm = sample["rgb.png"], sample["maps.npz"]["depth"]
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prefect_synthdata.dataset.exports.source import Split

FOLDER = "webdataset"
INDEX = "shards.json"
#: Default bound on one shard's size (the usual 100 MB-1 GB range for streaming).
MAX_SHARD_BYTES = 256 * 2**20
MAP_FIELDS = {"iseg": "iseg_file", "cseg": "cseg_file", "depth": "depth_file"}
TAR_BLOCK = 512


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed `.npz` with fixed zip times, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def sample_files(folder: Path, split: Split, image: dict[str, Any]) -> dict[str, bytes]:
    """The members of one image's sample, by extension."""
    maps = {
        name: np.asarray(Image.open(folder / image[field]))
        for name, field in MAP_FIELDS.items()
        if field in image
    }
    record = {
        "image": image,
        "annotations": split.by_image[image["id"]],
        "class_names": split.class_names,
    }
    return {
        "rgb.png": (folder / image["file_name"]).read_bytes(),
        "maps.npz": npz_bytes(maps),
        "json": json.dumps(record, separators=(",", ":")).encode(),
    }


def _stored_size(files: dict[str, bytes]) -> int:
    return sum(TAR_BLOCK + -(-len(data) // TAR_BLOCK) * TAR_BLOCK for data in files.values())


def _samples(folder: Path, split: Split) -> Iterator[tuple[str, dict[str, bytes]]]:
    for image in split.images:
        yield f"{image['id']:08d}", sample_files(folder, split, image)


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    archive.addfile(info, io.BytesIO(data))


def write_split(folder: Path, split: Split, max_shard_bytes: int = MAX_SHARD_BYTES) -> list[Path]:
    """Write one split's shards; each holds whole samples and at most `max_shard_bytes`."""
    # tarfile ends an archive with two zero blocks and pads it to whole records
    limit = max_shard_bytes // tarfile.RECORDSIZE * tarfile.RECORDSIZE - 2 * TAR_BLOCK
    if limit <= 0:
        raise ValueError(f"max_shard_bytes must be at least {tarfile.RECORDSIZE}")
    shards: list[Path] = []
    archive: tarfile.TarFile | None = None
    used = 0
    try:
        for key, files in _samples(folder, split):
            size = _stored_size(files)
            if archive is None or used + size > limit:
                if archive is not None:
                    archive.close()
                shards.append(folder / FOLDER / f"{split.name}-{len(shards):06d}.tar")
                # one shard open at a time: closed when the next starts, or below
                archive = tarfile.open(shards[-1], "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
                used = 0
            for extension, data in files.items():
                _add(archive, f"{key}.{extension}", data)
            used += size
    finally:
        if archive is not None:
            archive.close()
    return shards


def write(folder: Path, splits: list[Split], max_shard_bytes: int = MAX_SHARD_BYTES) -> list[Path]:
    """Write every split's shards and `webdataset/shards.json` into the dataset `folder`."""
    (folder / FOLDER).mkdir(exist_ok=True)
    shards = {split.name: write_split(folder, split, max_shard_bytes) for split in splits}
    index = folder / FOLDER / INDEX
    index.write_text(
        json.dumps(
            {
                name: {"shards": [p.name for p in paths], "samples": len(split.images)}
                for (name, paths), split in zip(shards.items(), splits, strict=True)
            },
            indent=1,
        )
    )
    return [*(p for paths in shards.values() for p in paths), index]
