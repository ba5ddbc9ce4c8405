"""`list_versions`: counts, size, publish time and LATEST of every complete version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prefect_synthdata.dataset.manifest import Manifest, file_entry
from prefect_synthdata.exceptions import NotFoundError
from prefect_synthdata.storage.catalog import list_versions
from prefect_synthdata.storage.local import LocalStore
from prefect_synthdata.storage.publish import publish


def _publish(store: LocalStore, folder: Path, version: str, images: int) -> None:
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"x" * 100 * images)
    manifest = Manifest(
        name="demo", version=version, provider="local:x", generator="shapes", batch_id="b",
        is_preview=False, num_jobs=images, num_images=images, num_annotations=3 * images,
        categories=["circle"], job_params=[], files=[file_entry(folder / "a.bin", "a.bin")],
    )  # fmt: skip
    publish(store, folder, manifest)


def test_versions_with_counts_size_time_and_latest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "dest")
    _publish(store, tmp_path / "one", "v1", 2)
    os.utime(tmp_path / "dest" / "demo" / "v1" / "_SUCCESS", (1_000_000_000, 1_000_000_000))
    _publish(store, tmp_path / "two", "v2", 3)
    (tmp_path / "dest" / "demo" / "half").mkdir()  # no _SUCCESS: not listed
    rows = list_versions(store)
    assert [(r.version, r.num_images, r.num_annotations, r.latest) for r in rows] == [
        ("v1", 2, 6, False),
        ("v2", 3, 9, True),
    ]
    assert rows[1].size == 300 + 0 and rows[0].created is not None
    assert rows[0].created.timestamp() == 1_000_000_000
    assert rows[1].to_json()["created"].endswith("+00:00")


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        list_versions(LocalStore(tmp_path / "nope"))
