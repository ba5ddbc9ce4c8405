"""Publish an assembled dataset folder to a store, atomically for readers; read it back.

Order of writes under `<name>/<version>/`: a claim `_CLAIM.<generation>`, data files,
then `manifest.json`, then `_SUCCESS` (holding the manifest's sha256), then the
`<name>/LATEST` pointer. A version without `_SUCCESS` is not a dataset. Files that
already hold the right bytes are not written again, so an identical re-publish writes
nothing and an interrupted one resumes where it stopped.

One winner per version: a claim names the content's sha256 and a lease expiry, and is
created with the store's create-if-absent write (a hard link locally, a conditional
`PutObject` with `If-None-Match: *` on S3, which moto's server also honours), so of two
publishers of different content exactly one claims a generation; the other gets
`VersionConflictError` before it writes anything, and no `_SUCCESS` ever vouches for
files of other content. Publishers of the same content share a claim. The holder renews
its lease while it writes; a claim whose lease ran out (its publisher was killed) is
taken over by creating the next generation, and the new holder deletes every object of
the version its manifest does not list before writing `manifest.json` and `_SUCCESS`.
Once `_SUCCESS` is written the claims are removed: a complete version guards itself.

Example:
    >>> import tempfile, pathlib
    >>> from prefect_synthdata.storage.local import LocalStore
    >>> store = LocalStore(tempfile.mkdtemp())
    >>> list_datasets(store)
    {}
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prefect_synthdata.dataset.manifest import MANIFEST, SUCCESS, FileEntry, Manifest, sha256_file
from prefect_synthdata.exceptions import (
    ConfigurationError,
    IntegrityError,
    NotFoundError,
    VersionConflictError,
)
from prefect_synthdata.storage.base import Download, ObjectStore, Upload

LATEST = "LATEST"
CLAIM = "_CLAIM"
#: How long a publisher's claim on a version lasts unless renewed (it is renewed every third).
CLAIM_LEASE_SECONDS = 60.0
SAFE_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_segment(kind: str, value: str) -> str:
    """A dataset name or version must be one plain path segment.

    Example:
        >>> check_segment("name", "../etc")
        Traceback (most recent call last):
        ...
        prefect_synthdata.exceptions.ConfigurationError: dataset name '../etc' must match ...
    """
    if not SAFE_SEGMENT.fullmatch(value):
        raise ConfigurationError(
            f"dataset {kind} {value!r} must match {SAFE_SEGMENT.pattern} "
            "(letters, digits, '.', '_', '-'; no slashes)"
        )
    return value


def split_uri(uri: str) -> tuple[str, str, str]:
    """`<root>/<name>/<version>` into its store root, dataset name and version.

    Example:
        >>> split_uri("s3://bucket/datasets/shapes/v1")
        ('s3://bucket/datasets', 'shapes', 'v1')
    """
    parts = uri.rstrip("/").rsplit("/", 2)
    if len(parts) != 3 or not parts[0]:
        raise ConfigurationError(
            f"{uri!r} is not a dataset version URI (<destination>/<name>/<version>)"
        )
    return parts[0], check_segment("name", parts[1]), check_segment("version", parts[2])


@dataclass(frozen=True)
class PublishResult:
    """What a publish did: the version's URI and how many data files it wrote."""

    uri: str
    files_uploaded: int
    files_skipped: int


def _is_plain_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def read_manifest(store: ObjectStore, name: str, version: str) -> Manifest | None:
    """The manifest of a complete (`_SUCCESS`) version, else None.

    IntegrityError if `manifest.json` is not the one `_SUCCESS` vouches for, or lists
    a path that would land outside the dataset folder.
    """
    prefix = f"{name}/{version}"
    marker = store.read_bytes(f"{prefix}/{SUCCESS}")
    if marker is None:
        return None
    raw = store.read_bytes(f"{prefix}/{MANIFEST}")
    if raw is None or hashlib.sha256(raw).hexdigest() != marker.decode().strip():
        raise IntegrityError(
            f"{store.uri(prefix)}: {MANIFEST} is missing or does not match {SUCCESS}"
        )
    manifest = Manifest.model_validate_json(raw)
    unsafe = [f.path for f in manifest.files if not _is_plain_relative(f.path)]
    if unsafe:
        raise IntegrityError(
            f"{store.uri(prefix)}: {MANIFEST} lists a path outside the dataset: {unsafe[0]!r}"
        )
    return manifest


def _point_latest(store: ObjectStore, name: str, version: str) -> None:
    if store.read_bytes(f"{name}/{LATEST}") != version.encode():
        store.write_bytes(f"{name}/{LATEST}", version.encode())


def publish(
    store: ObjectStore,
    folder: Path,
    manifest: Manifest,
    lease_seconds: float = CLAIM_LEASE_SECONDS,
) -> PublishResult:
    """Publish the assembled `folder` as `<manifest.name>/<manifest.version>/`.

    An identical version already there makes this a no-op (nothing is written);
    a different one is a VersionConflictError. Data files the store already holds
    (same size and sha256) are skipped, so a publish that was interrupted resumes.
    """
    prefix = f"{check_segment('name', manifest.name)}/{check_segment('version', manifest.version)}"
    done = _published_already(store, prefix, manifest)
    if done is not None:
        return done
    with claimed(store, prefix, manifest.content_sha256(), lease_seconds) as claim:
        done = _published_already(store, prefix, manifest)  # finished while we claimed
        if done is not None:
            return done
        kept = {f"{prefix}/{f.path}" for f in manifest.files} | {claim}
        store.delete_keys([key for key in store.list_keys(prefix) if key not in kept])
        pending = store.missing(
            [
                Upload(folder / f.path, f"{prefix}/{f.path}", f.size, f.sha256)
                for f in manifest.files
            ]
        )
        store.upload_files(pending)
        if _claims(store, prefix)[-1] != claim:
            raise VersionConflictError(f"{store.uri(prefix)} was taken over while publishing")
        manifest_bytes = manifest.to_bytes()  # `_SUCCESS` holds its sha256 (`Manifest.sha256`)
        store.write_bytes(f"{prefix}/{MANIFEST}", manifest_bytes)
        store.write_bytes(
            f"{prefix}/{SUCCESS}", hashlib.sha256(manifest_bytes).hexdigest().encode()
        )
    store.delete_keys(_claims(store, prefix))  # complete: `_SUCCESS` now guards the version
    _point_latest(store, manifest.name, manifest.version)
    return PublishResult(store.uri(prefix), len(pending), len(manifest.files) - len(pending))


def _published_already(store: ObjectStore, prefix: str, manifest: Manifest) -> PublishResult | None:
    """The no-op result when this content is published at `prefix` (LATEST pointed at it);
    VersionConflictError when other content is; None when the version is not complete."""
    existing = read_manifest(store, manifest.name, manifest.version)
    if existing is None:
        return None
    if existing.content_sha256() != manifest.content_sha256():
        raise VersionConflictError(
            f"{store.uri(prefix)} already holds a different dataset; choose another version"
        )
    _point_latest(store, manifest.name, manifest.version)
    return PublishResult(store.uri(prefix), 0, len(manifest.files))


def _claims(store: ObjectStore, prefix: str) -> list[str]:
    """The claim keys of a version, oldest generation first."""
    return sorted(k for k in store.list_keys(prefix) if k.rsplit("/", 1)[-1].startswith(CLAIM))


def _claim_key(prefix: str, generation: int) -> str:
    return f"{prefix}/{CLAIM}.{generation:06d}"


def _lease(content_sha256: str, lease_seconds: float) -> bytes:
    return json.dumps({"content": content_sha256, "expires": time.time() + lease_seconds}).encode()


@contextmanager
def claimed(
    store: ObjectStore, prefix: str, content_sha256: str, lease_seconds: float
) -> Iterator[str]:
    """Hold a claim on the version `prefix` for this content while the block runs,
    renewing its lease; yields the claim's key. VersionConflictError if a live claim is
    for other content."""
    key = _take_claim(store, prefix, content_sha256, lease_seconds)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_seconds / 3):
            store.write_bytes(key, _lease(content_sha256, lease_seconds))

    renewer = threading.Thread(target=renew, name="publish-claim-lease", daemon=True)
    renewer.start()
    try:
        yield key
    finally:
        stop.set()
        renewer.join()


def _take_claim(store: ObjectStore, prefix: str, content_sha256: str, lease_seconds: float) -> str:
    """Share the newest claim if it is for this content, else create the next generation
    when there is none or it expired; VersionConflictError when it is live and other."""
    for _ in range(8):
        claims = _claims(store, prefix)
        generation = 0
        if claims:
            newest = claims[-1]
            try:
                holder = json.loads(store.read_bytes(newest) or b"{}")
            except ValueError:
                holder = {}
            if holder.get("content") == content_sha256:
                return newest
            if float(holder.get("expires", 0)) > time.time():
                raise VersionConflictError(
                    f"{store.uri(prefix)} is being published with different content; "
                    "choose another version"
                )
            generation = int(newest.rsplit(".", 1)[-1]) + 1
        key = _claim_key(prefix, generation)
        if store.create_bytes(key, _lease(content_sha256, lease_seconds)):
            return key
    raise VersionConflictError(f"{store.uri(prefix)}: could not claim the version")


def list_datasets(store: ObjectStore) -> dict[str, list[str]]:
    """Every dataset name under the store with its complete versions."""
    out = {}
    for name in store.list_dirs(""):
        versions = [
            v
            for v in store.list_dirs(name)
            if store.read_bytes(f"{name}/{v}/{SUCCESS}") is not None
        ]
        if versions:
            out[name] = versions
    return out


def latest_version(store: ObjectStore, name: str) -> str:
    """The version `<name>/LATEST` points at; NotFoundError if none was published."""
    raw = store.read_bytes(f"{name}/{LATEST}")
    if raw is None:
        raise NotFoundError(f"no published dataset named {name!r} under {store.uri()}")
    return raw.decode().strip()


def _holds(path: Path, entry: FileEntry) -> bool:
    return (
        path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256
    )


def fetch_dataset(store: ObjectStore, name: str, version: str | None, dest: Path) -> Manifest:
    """Download a complete version to `dest` and verify every file against its manifest.

    `version=None` means the latest one. Files already present and correct are kept,
    so a training stage can call this on every start and pay only for what changed.

    Example:
        >>> from prefect_synthdata.storage import open_store
        >>> fetch_dataset(open_store("s3://bucket/datasets"), "demo", None, Path("data"))  # doctest: +SKIP
    """
    version = check_segment(
        "version", version or latest_version(store, check_segment("name", name))
    )
    manifest = read_manifest(store, name, version)
    if manifest is None:
        raise NotFoundError(f"{store.uri(f'{name}/{version}')} is not a complete dataset")
    stale = [entry for entry in manifest.files if not _holds(dest / entry.path, entry)]
    store.download_files(
        [Download(f"{name}/{version}/{entry.path}", dest / entry.path) for entry in stale]
    )
    bad = [entry.path for entry in stale if not _holds(dest / entry.path, entry)]
    if bad:
        raise IntegrityError(
            f"dataset {name}/{version} fetched to {dest}: {len(bad)} file(s) do not match the manifest, "
            f"e.g. {bad[0]}"
        )
    (dest / MANIFEST).write_bytes(manifest.to_bytes())
    return manifest
