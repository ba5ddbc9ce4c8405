"""The one publish algorithm, against a local directory and against S3 (moto over HTTP)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_synthdata.dataset.manifest import MANIFEST, SUCCESS
from prefect_synthdata.exceptions import (
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    VersionConflictError,
)
from prefect_synthdata.storage import ObjectStore, Upload
from prefect_synthdata.storage.publish import (
    LATEST,
    PublishResult,
    fetch_dataset,
    latest_version,
    list_datasets,
    publish,
)
from tests.storage.conftest import WriteCounter, image_files, make_dataset


class CrashAfter:
    """A store that dies after writing `after` data files, as a killed publisher would."""

    def __init__(self, store: ObjectStore, after: int) -> None:
        self.store, self.after = store, after

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def upload_files(self, uploads: list[Upload]) -> None:
        self.store.upload_files(uploads[: self.after])
        raise KeyboardInterrupt("publisher killed")


def test_publish_then_list_and_fetch(store: ObjectStore, tmp_path: Path) -> None:
    files = {**image_files(5), "annotations.coco.json": b'{"images": []}'}
    manifest = make_dataset(tmp_path / "ds", files)
    result = publish(store, tmp_path / "ds", manifest)
    assert (result.files_uploaded, result.files_skipped) == (6, 0)
    assert result.uri == store.uri("demo/v1")
    assert list_datasets(store) == {"demo": ["v1"]}
    assert latest_version(store, "demo") == "v1"
    assert store.read_bytes(f"demo/v1/{SUCCESS}") == manifest.sha256().encode()

    fetched = fetch_dataset(store, "demo", None, tmp_path / "fetched")
    assert fetched == manifest
    for relative, data in files.items():
        assert (tmp_path / "fetched" / relative).read_bytes() == data


def test_identical_republish_writes_nothing(
    store: ObjectStore, tmp_path: Path, count_writes: Callable[[ObjectStore], WriteCounter]
) -> None:
    manifest = make_dataset(tmp_path / "ds", image_files(8))
    publish(store, tmp_path / "ds", manifest)
    counter = count_writes(store)
    again = publish(store, tmp_path / "ds", manifest)
    assert (again.files_uploaded, again.files_skipped) == (0, 8)
    assert counter.writes == 0


def test_interrupted_publish_is_invisible_then_resumes(
    store: ObjectStore, tmp_path: Path, count_writes: Callable[[ObjectStore], WriteCounter]
) -> None:
    manifest = make_dataset(tmp_path / "ds", image_files(10))
    with pytest.raises(KeyboardInterrupt):
        publish(CrashAfter(store, 4), tmp_path / "ds", manifest)  # type: ignore[arg-type]
    assert store.read_bytes(f"demo/v1/{MANIFEST}") is None
    assert store.read_bytes(f"demo/v1/{SUCCESS}") is None
    assert store.read_bytes(f"demo/{LATEST}") is None
    assert list_datasets(store) == {}
    with pytest.raises(NotFoundError):
        fetch_dataset(store, "demo", "v1", tmp_path / "fetched")

    counter = count_writes(store)
    resumed = publish(store, tmp_path / "ds", manifest)
    assert (resumed.files_uploaded, resumed.files_skipped) == (6, 4)
    assert counter.writes == 6 + 3  # the missing data files, manifest.json, _SUCCESS, LATEST
    assert fetch_dataset(store, "demo", "v1", tmp_path / "fetched") == manifest


def test_different_content_for_a_published_version_is_refused(
    store: ObjectStore, tmp_path: Path
) -> None:
    original = make_dataset(tmp_path / "a", image_files(3, seed="a"))
    publish(store, tmp_path / "a", original)
    other = make_dataset(tmp_path / "b", image_files(3, seed="b"))
    with pytest.raises(VersionConflictError, match="already holds a different dataset"):
        publish(store, tmp_path / "b", other)
    assert fetch_dataset(store, "demo", "v1", tmp_path / "fetched") == original


def test_half_published_other_content_is_replaced_once_its_lease_ends(
    store: ObjectStore, tmp_path: Path
) -> None:
    first = make_dataset(tmp_path / "a", image_files(6, seed="a"))
    with pytest.raises(KeyboardInterrupt):  # killed: its claim is no longer renewed
        publish(CrashAfter(store, 5), tmp_path / "a", first, lease_seconds=0.5)  # type: ignore[arg-type]
    second = make_dataset(tmp_path / "b", image_files(3, seed="b"))
    with pytest.raises(VersionConflictError, match="being published with different content"):
        publish(store, tmp_path / "b", second)  # the lease is still live: maybe not dead
    time.sleep(0.6)
    assert publish(store, tmp_path / "b", second).files_uploaded == 3
    assert fetch_dataset(store, "demo", "v1", tmp_path / "fetched") == second
    left = [k.split("/", 2)[2] for k in store.list_keys("demo/v1")]
    images = sorted(k for k in left if k.startswith("images/"))
    assert images == sorted(f.path for f in second.files)  # the killed publish's extra files went
    assert sorted(k for k in left if not k.startswith("images/")) == sorted([MANIFEST, SUCCESS])


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_publishers_of_different_content_one_wins(
    store: ObjectStore, tmp_path: Path, round_: int
) -> None:
    contents = {
        seed: make_dataset(tmp_path / seed, image_files(20, seed=f"{seed}{round_}"))
        for seed in ("a", "b")
    }
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def publisher(seed: str) -> None:
        start.wait()
        try:
            outcomes[seed] = publish(store, tmp_path / seed, contents[seed])
        except VersionConflictError as exc:
            outcomes[seed] = exc

    threads = [threading.Thread(target=publisher, args=(seed,)) for seed in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [seed for seed, outcome in outcomes.items() if isinstance(outcome, PublishResult)]
    losers = [
        seed for seed, outcome in outcomes.items() if isinstance(outcome, VersionConflictError)
    ]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    fetched = fetch_dataset(store, "demo", "v1", tmp_path / "fetched")  # every file verified
    assert fetched == contents[winners[0]]
    published = sorted(k.split("/", 2)[2] for k in store.list_keys("demo/v1"))
    assert [k for k in published if k.startswith("images/")] == [f.path for f in fetched.files]


def test_latest_moves_only_after_a_complete_version(store: ObjectStore, tmp_path: Path) -> None:
    publish(
        store, tmp_path / "a", make_dataset(tmp_path / "a", image_files(2, seed="a"), version="v1")
    )
    v2 = make_dataset(tmp_path / "b", image_files(4, seed="b"), version="v2")
    with pytest.raises(KeyboardInterrupt):
        publish(CrashAfter(store, 2), tmp_path / "b", v2)  # type: ignore[arg-type]
    assert latest_version(store, "demo") == "v1"
    publish(store, tmp_path / "b", v2)
    assert latest_version(store, "demo") == "v2"
    assert list_datasets(store) == {"demo": ["v1", "v2"]}


def test_fetch_keeps_good_files_and_repairs_bad_ones(store: ObjectStore, tmp_path: Path) -> None:
    files = image_files(4)
    publish(store, tmp_path / "ds", make_dataset(tmp_path / "ds", files))
    target = tmp_path / "fetched"
    fetch_dataset(store, "demo", "v1", target)
    damaged = target / next(iter(files))
    damaged.write_bytes(b"x" * len(files[next(iter(files))]))  # same size, wrong bytes
    fetch_dataset(store, "demo", "v1", target)
    assert damaged.read_bytes() == files[next(iter(files))]


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden"])
def test_bad_dataset_names_are_refused_before_writing(
    store: ObjectStore, tmp_path: Path, name: str
) -> None:
    manifest = make_dataset(tmp_path / "ds", image_files(1), name=name)
    with pytest.raises(ConfigurationError, match="must match"):
        publish(store, tmp_path / "ds", manifest)
    assert list_datasets(store) == {}


def test_a_tampered_manifest_is_refused(store: ObjectStore, tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "ds", image_files(2))
    publish(store, tmp_path / "ds", manifest)
    escaping = manifest.model_copy(
        update={"files": [manifest.files[0].model_copy(update={"path": "../../evil"})]}
    )
    store.write_bytes(f"demo/v1/{MANIFEST}", escaping.to_bytes())
    with pytest.raises(IntegrityError, match="does not match _SUCCESS"):
        fetch_dataset(store, "demo", "v1", tmp_path / "fetched")
    store.write_bytes(f"demo/v1/{SUCCESS}", escaping.sha256().encode())
    with pytest.raises(IntegrityError, match="outside the dataset"):
        fetch_dataset(store, "demo", "v1", tmp_path / "fetched")
    assert not (tmp_path / "evil").exists()


def test_fetch_refuses_bad_names(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="dataset name"):
        fetch_dataset(store, "../demo", None, tmp_path / "fetched")
    with pytest.raises(ConfigurationError, match="dataset version"):
        fetch_dataset(store, "demo", "v1/../../x", tmp_path / "fetched")
