"""Exports in the published version: listed in the manifest, published and fetched with it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from prefect_synthdata.dataset.exports import FORMATS, add_exports, check_formats
from prefect_synthdata.dataset.manifest import MANIFEST, Manifest
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.storage import ObjectStore
from prefect_synthdata.storage.publish import fetch_dataset, publish
from tests.dataset.exports.conftest import Exported, build
from tests.storage.conftest import store

__all__ = ["store"]


def test_every_export_file_is_in_the_manifest(exported: Exported) -> None:
    root, manifest = exported.truth.root, exported.manifest
    on_disk = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST
    )
    assert [f.path for f in manifest.files] == on_disk
    assert Manifest.model_validate_json((root / MANIFEST).read_bytes()) == manifest
    manifest.verify(root)
    for expected in (
        "hf/train-00000-of-00001.parquet",
        "yolo/data.yaml",
        "labels/000001/image.000002.rgb.txt",
        "webdataset/val-000000.tar",
        "mot/val/video-000001/gt/gt.txt",
    ):
        assert expected in on_disk


def test_exports_publish_fetch_and_republish_as_one_dataset(
    exported: Exported, store: ObjectStore, tmp_path: Path
) -> None:
    root, manifest = exported.truth.root, exported.manifest
    first = publish(store, root, manifest)
    assert first.files_uploaded == len(manifest.files)
    fetched = fetch_dataset(store, "demo", None, tmp_path / "fetched")
    assert fetched == manifest
    assert (tmp_path / "fetched" / "yolo" / "data.yaml").read_bytes() == (
        root / "yolo" / "data.yaml"
    ).read_bytes()
    # built again from the same jobs, the exports are byte-identical: nothing to write
    again_root, again = build(tmp_path / "again", split=True)
    again = add_exports(again_root, again, list(FORMATS))
    assert again.content_sha256() == manifest.content_sha256()
    assert publish(store, again_root, again).files_uploaded == 0


def test_without_split_files_everything_is_one_train_split(tmp_path: Path) -> None:
    root, manifest = build(tmp_path, split=False)
    manifest = add_exports(root, manifest, ["yolo", "mot", "webdataset"])
    assert sorted(p.name for p in (root / "yolo").iterdir()) == ["data.yaml", "train.txt"]
    assert '"val": "train.txt"' in (root / "yolo" / "data.yaml").read_text()
    assert len((root / "yolo" / "train.txt").read_text().splitlines()) == 5
    assert (root / "mot" / "seqmaps" / "train.txt").read_text().splitlines()[1:] == [
        "video-000000",
        "video-000001",
        "video-000002",
    ]
    manifest.verify(root)


def test_coco_alone_changes_nothing(tmp_path: Path) -> None:
    root, manifest = build(tmp_path, split=False)
    before = (root / MANIFEST).read_bytes()
    assert add_exports(root, manifest, ["coco"]) is manifest
    assert (root / MANIFEST).read_bytes() == before


def test_bad_formats_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_formats(["mot", "hf", "coco"]) == ["coco", "hf", "mot"]
    with pytest.raises(
        ConfigurationError, match=r"unknown export format\(s\) 'parquet', 'tfrecord'"
    ):
        check_formats(["tfrecord", "yolo", "parquet"])
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    with pytest.raises(ConfigurationError, match=r"pip install 'prefect-synthdata\[hf\]'"):
        check_formats(["hf"])
