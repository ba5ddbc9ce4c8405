"""Exports that training tools load as is, written into the assembled dataset folder.

One module per format; each reads the folder's COCO files split by split
(`source.load_splits`) and writes its files beside the images, which stay where they
are (image lists and metadata select the RGB images, so no tool picks up the
ground-truth maps):

| name | files | loads with |
|---|---|---|
| `coco` | `annotations.coco.json` (always written) | pycocotools, torchvision `CocoDetection` |
| `hf` | `hf/<split>-NNNNN-of-NNNNN.parquet` | `datasets.load_dataset("parquet", data_dir=".../hf")` |
| `yolo` | `yolo/data.yaml`, `yolo/<split>.txt`, `labels/...` | Ultralytics `data=.../yolo/data.yaml` |
| `webdataset` | `webdataset/<split>-NNNNNN.tar`, `webdataset/shards.json` | `webdataset.WebDataset(...)` |
| `mot` | `mot/<split>/<video>/gt/gt.txt`, `seqinfo.ini`, `mot/seqmaps/` | MOTChallenge tools, motmetrics |

`add_exports` runs before publishing: the export files go into the manifest with the
rest, so they share the dataset's checksums, atomicity and idempotency (every writer
is deterministic: the same dataset gives the same bytes).

Example:
    >>> check_formats(["yolo", "coco", "yolo"])
    ['coco', 'yolo']
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from prefect_synthdata.dataset.exports import hf, mot, webdataset, yolo
from prefect_synthdata.dataset.exports.source import Split, load_splits
from prefect_synthdata.dataset.manifest import MANIFEST, Manifest, file_entry
from prefect_synthdata.exceptions import ConfigurationError

Writer = Callable[[Path, list[Split]], list[Path]]

#: Every export by name; `coco` is the dataset's own annotation file, always there.
FORMATS: dict[str, Writer | None] = {
    "coco": None,
    "hf": hf.write,
    "yolo": yolo.write,
    "webdataset": webdataset.write,
    "mot": mot.write,
}


#: Python packages a format needs beyond the core ones, and the extra that installs them.
NEEDS = {"hf": ("pyarrow", "hf")}


def check_formats(formats: list[str]) -> list[str]:
    """The requested formats, known, installable here, in a stable order.

    ConfigurationError names unknown formats, or a missing package and its extra.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ConfigurationError(
            f"unknown export format(s) {', '.join(map(repr, unknown))}; choose from {', '.join(FORMATS)}"
        )
    for name in formats:
        if name in NEEDS and importlib.util.find_spec(NEEDS[name][0]) is None:
            package, extra = NEEDS[name]
            raise ConfigurationError(
                f"the {name} export needs {package}: pip install 'prefect-synthdata[{extra}]'"
            )
    return [name for name in FORMATS if name in formats]


def write_exports(folder: Path, formats: list[str]) -> list[Path]:
    """Write the requested exports into the assembled dataset `folder`; the files written."""
    writers = [FORMATS[name] for name in check_formats(formats)]
    if not any(writers):
        return []
    splits = load_splits(folder)
    return [path for writer in writers if writer is not None for path in writer(folder, splits)]


def add_exports(folder: Path, manifest: Manifest, formats: list[str]) -> Manifest:
    """Write the exports into `folder` and its `manifest.json`; the manifest that lists them."""
    written = write_exports(folder, formats)
    if not written:
        return manifest
    entries = {entry.path: entry for entry in manifest.files}
    for path in written:
        relative = path.relative_to(folder).as_posix()
        entries[relative] = file_entry(path, relative)
    updated = manifest.model_copy(update={"files": [entries[p] for p in sorted(entries)]})
    (folder / MANIFEST).write_bytes(updated.to_bytes())
    return updated
