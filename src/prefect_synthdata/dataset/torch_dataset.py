"""A torch `Dataset` over a published dataset, local or on S3, checked against its manifest.

`SynthDataset("<dest>/<name>/<version>", split="train")` opens a complete version
(`_SUCCESS` vouches for `manifest.json`), checks every file against the manifest (an S3
version is fetched to a local cache first, files already there and correct are kept),
and yields `(image, target)` pairs the way torchvision's detection models take them:

- `image`: float32 tensor (3, H, W) in [0, 1], the RGB image;
- `target["boxes"]`: float32 (N, 4) `x0, y0, x1, y1` pixels; `labels`: int64 (N,) COCO
  category ids (from 1, so 0 stays free for the background); `masks`: uint8 (N, H, W);
  `area`, `track_id`, `image_id`; ignore regions (`iscrowd` 1) are left out, as
  torchvision's detection references leave them out;
- `target["depth"]`: float32 (H, W) metres along the optical axis (0 where the
  generator saw no surface); `target["intrinsics"]`: float32 (3, 3) pinhole `K` in
  pixels, or None for an orthographic camera (`shapes`).

An image without labelled objects gives `boxes` of shape (0, 4) and empty `labels`/`masks`,
which torchvision's detectors accept. `split` names a per-split COCO file
(`annotations.<split>.coco.json`); without split files the whole dataset is `train`.
Needs the `torch` extra (`pip install 'prefect-synthdata[torch]'`).

Example:
    >>> from torch.utils.data import DataLoader  # doctest: +SKIP
    >>> data = SynthDataset("datasets/synthetic-shapes/1f0c3b2a9d4e", split="train")  # doctest: +SKIP
    >>> loader = DataLoader(data, batch_size=4, shuffle=True, collate_fn=collate)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from prefect_synthdata.dataset.exports.source import DEFAULT_SPLIT, Split, decode_mask, load_splits
from prefect_synthdata.dataset.manifest import Manifest
from prefect_synthdata.exceptions import ConfigurationError, NotFoundError
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage import LocalStore, StoreOptions, open_store
from prefect_synthdata.storage.publish import fetch_dataset, read_manifest, split_uri

Target = dict[str, Any]


def open_published(
    uri: str, cache_dir: Path | None = None, storage: StoreOptions | None = None
) -> tuple[Path, Manifest]:
    """A complete published version as a local folder checked against its manifest.

    A local version is checked in place; any other is fetched (and checked) into
    `cache_dir` (default `$SYNTHDATA_HOME/cache/datasets/<name>/<version>`).
    """
    root, name, version = split_uri(uri)
    store = open_store(root, storage)
    if isinstance(store, LocalStore):
        manifest = read_manifest(store, name, version)
        if manifest is None:
            raise NotFoundError(f"{uri} is not a complete dataset (no _SUCCESS)")
        folder = store.root / name / version
        manifest.verify(folder)
        return folder, manifest
    folder = cache_dir or SynthDataSettings().home / "cache" / "datasets" / name / version
    return folder, fetch_dataset(store, name, version, folder)


def collate(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """Batch detection samples as lists (images differ in size, targets in length)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


class SynthDataset(Dataset[tuple[torch.Tensor, Target]]):
    """One split of a published dataset as (image, target) pairs; see the module docstring."""

    def __init__(
        self,
        uri: str,
        split: str = DEFAULT_SPLIT,
        *,
        cache_dir: Path | None = None,
        storage: StoreOptions | None = None,
    ) -> None:
        self.root, self.manifest = open_published(uri, cache_dir, storage)
        splits = {s.name: s for s in load_splits(self.root)}
        if split not in splits:
            raise ConfigurationError(
                f"{uri} has no split {split!r}; its splits: {', '.join(sorted(splits))}"
            )
        self.split: Split = splits[split]
        self.images = self.split.images
        self.class_names = self.split.class_names

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        image = self.images[index]
        height, width = image["height"], image["width"]
        rgb = np.asarray(Image.open(self.root / image["file_name"]).convert("RGB"))
        anns = [a for a in self.split.by_image[image["id"]] if not a.get("iscrowd", 0)]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        masks = np.stack([decode_mask(a, height, width) for a in anns]) if anns else None
        camera = image.get("metadata", {}).get("camera", {})
        target: Target = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
            "masks": (
                torch.from_numpy(masks.astype(np.uint8))
                if masks is not None
                else torch.zeros((0, height, width), dtype=torch.uint8)
            ),
            "area": torch.tensor([a["area"] for a in anns], dtype=torch.float32),
            "track_id": torch.tensor([a.get("track_id", 0) for a in anns], dtype=torch.int64),
            "image_id": image["id"],
            "depth": self._depth_metres(image),
            "intrinsics": (
                torch.tensor(camera["K"], dtype=torch.float32) if "K" in camera else None
            ),
        }
        tensor = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div_(255.0)
        return tensor, target

    def _depth_metres(self, image: dict[str, Any]) -> torch.Tensor | None:
        if "depth_file" not in image:
            return None
        millimetres = np.asarray(Image.open(self.root / image["depth_file"]), dtype=np.float32)
        return torch.from_numpy(millimetres / 1000.0)
