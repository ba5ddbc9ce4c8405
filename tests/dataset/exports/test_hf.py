"""The `hf` export, loaded by the real `datasets` library."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from prefect_synthdata.dataset.exports import hf
from prefect_synthdata.dataset.exports.source import load_splits
from tests.dataset.exports.conftest import SPLIT_OF_JOB, Exported


@pytest.fixture
def hf_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`datasets` caches under the test's folder and never asks the Hub."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-home" / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_load_dataset_gives_the_splits_rgb_rows_and_coco_labels(
    exported: Exported, hf_offline: None
) -> None:
    truth = exported.truth
    ds = datasets.load_dataset("parquet", data_dir=str(truth.root / "hf"))

    assert set(ds) == {"train", "validation"}
    split_of = {"train": "train", "validation": "val"}
    assert sum(len(part) for part in ds.values()) == len(truth.coco["images"]) == 5
    names = ds["train"].features["objects"]["category"].feature.names
    assert names == truth.class_names
    by_id = {c["id"]: c["name"] for c in truth.coco["categories"]}
    for split, part in ds.items():
        for row in part:
            image = next(im for im in truth.coco["images"] if im["id"] == row["image_id"])
            assert SPLIT_OF_JOB[image["job_index"]] == split_of[split]
            assert row["image"].mode == "RGB"
            rgb = np.asarray(Image.open(truth.root / image["file_name"]))
            assert np.array_equal(np.asarray(row["image"]), rgb)
            anns = truth.annotations(image["id"])
            objects = row["objects"]
            assert objects["id"] == [a["id"] for a in anns]
            assert objects["bbox"] == [[float(v) for v in a["bbox"]] for a in anns]
            assert [names[c] for c in objects["category"]] == [
                by_id[a["category_id"]] for a in anns
            ]
            for column in ("iseg", "depth", "cseg"):  # the 16-bit maps arrive unchanged
                expected = truth.map(image, f"{column}_file")
                got = np.asarray(row[column])
                assert got.dtype == expected.dtype, column
                assert np.array_equal(got, expected), column
    # the still whose objects were all filtered out holds ignore regions only
    assert any(row["objects"]["id"] and all(row["objects"]["iscrowd"]) for row in ds["train"])


def test_shards_are_bounded_and_deterministic(exported: Exported, tmp_path: Path) -> None:
    splits = load_splits(exported.truth.root)
    again = tmp_path / "again"
    (again).mkdir()
    for entry in ("images", "annotations.coco.json"):
        (again / entry).symlink_to(exported.truth.root / entry)
    small = hf.write(again, splits[:1], max_shard_bytes=1)  # one image per shard
    assert [p.name for p in small] == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    rows = datasets.load_dataset("parquet", data_files=[str(p) for p in small], split="train")
    assert sorted(rows["image_id"]) == sorted(im["id"] for im in splits[0].images)
    first = hf.write(again, splits)
    assert [p.read_bytes() for p in first] == [
        (exported.truth.root / "hf" / p.name).read_bytes() for p in first
    ]
