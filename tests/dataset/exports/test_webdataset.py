"""The `webdataset` export, read by the real `webdataset` library, from disk and from S3."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image

from prefect_synthdata.dataset.exports import webdataset as wds_export
from prefect_synthdata.dataset.exports.source import load_splits
from prefect_synthdata.storage import StoreOptions, open_store
from prefect_synthdata.storage.publish import publish
from tests.dataset.exports.conftest import SPLIT_OF_JOB, Exported, GroundTruth
from tests.storage.conftest import s3_client


def _check_samples(truth: GroundTruth, samples: list[dict], split: str) -> None:
    expected = [im for im in truth.coco["images"] if SPLIT_OF_JOB[im["job_index"]] == split]
    assert sorted(s["json"]["image"]["id"] for s in samples) == sorted(im["id"] for im in expected)
    for sample in samples:
        image = sample["json"]["image"]
        assert sample["__key__"] == f"{image['id']:08d}"
        rgb = sample["rgb.png"]
        assert rgb.mode == "RGB"
        assert np.array_equal(
            np.asarray(rgb), np.asarray(Image.open(truth.root / image["file_name"]))
        )
        maps = sample["maps.npz"]
        for name in ("iseg", "cseg", "depth"):  # lossless, 16-bit stays 16-bit
            expected_map = truth.map(image, f"{name}_file")
            assert maps[name].dtype == expected_map.dtype, name
            assert np.array_equal(maps[name], expected_map), name
        assert maps["iseg"].dtype == np.uint16 and maps["depth"].dtype == np.uint16
        assert sample["json"]["annotations"] == truth.annotations(image["id"])
        assert sample["json"]["class_names"] == truth.class_names


def test_shards_decode_to_the_coco_ground_truth(exported: Exported) -> None:
    truth = exported.truth
    index = json.loads((truth.root / "webdataset" / "shards.json").read_text())
    assert index == {
        "train": {"shards": ["train-000000.tar"], "samples": 2},
        "val": {"shards": ["val-000000.tar"], "samples": 3},
    }
    for split, entry in index.items():
        urls = [str(truth.root / "webdataset" / name) for name in entry["shards"]]
        samples = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
        _check_samples(truth, samples, split)


def test_shards_are_bounded_and_deterministic(exported: Exported, tmp_path: Path) -> None:
    truth = exported.truth
    copy = tmp_path / "copy"
    copy.mkdir()
    for entry in ("images", "annotations.coco.json"):
        (copy / entry).symlink_to(truth.root / entry)
    (copy / "webdataset").mkdir()
    splits = load_splits(truth.root)
    val = next(s for s in splits if s.name == "val")
    bound = 3 * 10240
    shards = wds_export.write_split(copy, val, max_shard_bytes=bound)
    assert len(shards) > 1
    assert all(p.stat().st_size <= bound for p in shards)
    samples = list(wds.WebDataset([str(p) for p in shards], shardshuffle=False).decode("pil"))
    _check_samples(truth, samples, "val")
    again = wds_export.write(copy, splits)
    assert [p.read_bytes() for p in again] == [
        (truth.root / "webdataset" / p.name).read_bytes() for p in again
    ]


def test_shards_stream_from_an_s3_prefix(
    exported: Exported, bucket: str, s3_options: StoreOptions
) -> None:
    """Publish the dataset to (moto's) S3, then stream a split's shards over HTTP with
    presigned URLs, which `webdataset` opens with curl, never touching the disk copy."""
    truth, manifest = exported.truth, exported.manifest
    store = open_store(f"s3://{bucket}/datasets", s3_options)
    publish(store, truth.root, manifest)
    client = s3_client(s3_options.endpoint_url)
    urls = [
        client.generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket, "Key": f"datasets/demo/v1/webdataset/{name}"},
            ExpiresIn=300,
        )
        for name in ("val-000000.tar",)
    ]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    _check_samples(truth, samples, "val")
