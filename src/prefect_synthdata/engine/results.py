"""Where rendered jobs land: a directory, or an S3 prefix shared by render workers anywhere.

One interface, two implementations, chosen once by `open_results`:

- `DirectoryResults`: `<root>/<job_id>/` folders; a worker renders into a scratch folder
  beside it and moves it into place with one atomic rename. With Dask workers on other
  machines the root must be on a shared filesystem.
- `S3Results`: under `s3://bucket/prefix`, two objects per job: its Infinity-layout zip
  at `<job_id>.zip`, then a marker `<job_id>.complete.json` listing the zip's and every
  file's size and sha256 (two requests per job, whatever its frame count). A job without
  the marker (a worker that died mid-upload) is not complete: it is rendered again,
  never served; one whose bytes do not match its marker is refused. Workers write
  with boto3's own credential chain (their environment or profile): no secret ever
  travels with a task. The service reads results through a local cache folder and hands
  out pre-signed URLs of the job zips.

Renders are deterministic and zips are written with fixed timestamps, so a job rendered
twice (its first worker lost after finishing) writes the same bytes both times.

Example:
    >>> import tempfile, pathlib
    >>> results = open_results(None, default=pathlib.Path(tempfile.mkdtemp()))
    >>> scratch = results.scratch("job-1", "host:42")
    >>> scratch.mkdir(); _ = (scratch / "job.json").write_text("{}")
    >>> results.publish("job-1", scratch)
    >>> results.complete("job-1"), sorted(p.name for p in results.local_dir("job-1").iterdir())
    (True, ['job.json'])
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Protocol

from prefect_synthdata.dataset.manifest import sha256_file
from prefect_synthdata.exceptions import ConfigurationError, NotFoundError
from prefect_synthdata.storage.base import Download, Upload
from prefect_synthdata.storage.options import StoreOptions

#: Suffix of the marker object of a complete job on S3 (`<job_id>.complete.json`), written
#: after the job's zip: it lists the zip's and every file's size and sha256.
COMPLETE = ".complete.json"
#: How long a job seen complete on S3 is taken to stay complete without asking again, and
#: how many such jobs are remembered.
SEEN_COMPLETE_SECONDS = 60.0
SEEN_COMPLETE_MAX = 100_000
#: Timestamp of every zip entry, so that a job's zip has the same bytes whoever built it.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class ResultsStore(Protocol):
    """The rendered jobs shared by render workers (which write) and the service (which reads)."""

    location: str

    def scratch(self, job_id: str, renderer: str) -> Path:
        """A private folder for `renderer` (`host:pid`) to render `job_id` into."""
        ...

    def publish(self, job_id: str, scratch: Path) -> None:
        """Make the rendered `scratch` folder the job's result, whole; the scratch is consumed."""
        ...

    def complete(self, job_id: str) -> bool:
        """Whether the job's result is all there."""
        ...

    def local_dir(self, job_id: str) -> Path:
        """A local folder holding the job's files (NotFoundError unless complete)."""
        ...

    def copy_to(self, job_id: str, dest: Path) -> None:
        """Put the job's files in the new folder `dest`, which appears whole or not at all."""
        ...

    def files(self, job_id: str) -> list[tuple[str, int]]:
        """`(name, size)` of each of the job's files, by name (NotFoundError unless complete)."""
        ...

    def zip_url(self, job_id: str, ttl_seconds: int) -> str | None:
        """A pre-signed URL of the job's zip valid for `ttl_seconds`, if this store has one."""
        ...


def write_job_zip(job_id: str, job_dir: Path, path: Path) -> None:
    """The Infinity result zip of one job at `path`: `<job_id>/<file>` for each file of
    `job_dir`, PNGs stored (they are compressed already), the rest deflated; entries carry
    a fixed timestamp, so the same files always make the same bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(job_dir.iterdir()):
            if not file.is_file():
                continue
            info = zipfile.ZipInfo(f"{job_id}/{file.name}", date_time=ZIP_DATE)
            info.compress_type = (
                zipfile.ZIP_STORED if file.name.endswith(".png") else zipfile.ZIP_DEFLATED
            )
            info.external_attr = 0o644 << 16
            with file.open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)


def _scratch_name(job_id: str, renderer: str) -> str:
    return f"{job_id}.partial-{renderer.replace(':', '-')}"


def _matches(path: Path, expected: dict[str, Any]) -> bool:
    return bool(path.stat().st_size == expected["size"] and sha256_file(path) == expected["sha256"])


def _copy_atomically(source: Path, dest: Path) -> None:
    scratch = dest.with_name(dest.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(source, scratch)
    scratch.rename(dest)


class DirectoryResults:
    """Jobs as `<root>/<job_id>/` folders (a shared filesystem path for remote workers)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def scratch(self, job_id: str, renderer: str) -> Path:
        return self.root / _scratch_name(job_id, renderer)

    def publish(self, job_id: str, scratch: Path) -> None:
        """One atomic rename; a job already there (rendered twice) keeps the first result."""
        try:
            os.replace(scratch, self.root / job_id)
        except OSError:  # already rendered by someone else: deterministic, keep theirs
            shutil.rmtree(scratch, ignore_errors=True)

    def complete(self, job_id: str) -> bool:
        return (self.root / job_id).is_dir()

    def local_dir(self, job_id: str) -> Path:
        if not self.complete(job_id):
            raise NotFoundError(f"job {job_id!r} has no result")
        return self.root / job_id

    def copy_to(self, job_id: str, dest: Path) -> None:
        _copy_atomically(self.local_dir(job_id), dest)

    def files(self, job_id: str) -> list[tuple[str, int]]:
        folder = self.local_dir(job_id)
        return [(f.name, f.stat().st_size) for f in sorted(folder.iterdir()) if f.is_file()]

    def zip_url(self, job_id: str, ttl_seconds: int) -> str | None:
        return None  # the service serves its own signed URLs


#: The S3 stores this process opened, by location and options: shared by every task.
_STORES: dict[tuple[str, str], Any] = {}
_STORES_LOCK = threading.Lock()


class S3Results:
    """Jobs under an S3 prefix, through the project's `S3Store` (one client per process).

    The store itself is opened lazily and never pickled: a Dask task carries only the
    URI, the connection options (no secrets) and the service's cache folder name.
    """

    def __init__(self, uri: str, options: StoreOptions, cache_dir: Path) -> None:
        from prefect_synthdata.storage.s3 import parse_s3_uri

        parse_s3_uri(uri)  # ConfigurationError now, not in a worker
        self.location = uri
        self.options = options
        self.cache_dir = Path(cache_dir)
        self._store: Any = None
        self._seen_complete: dict[str, float] = {}  # job id -> when its marker was last seen

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None, "_seen_complete": {}}

    @property
    def store(self) -> Any:
        """The `S3Store` of this location, one per process (a boto3 client takes ~0.1 s to make)."""
        if self._store is None:
            key = (self.location, self.options.model_dump_json())
            with _STORES_LOCK:
                if key not in _STORES:
                    from prefect_synthdata.storage.s3 import S3Store

                    _STORES[key] = S3Store.connect(self.location, self.options)
                self._store = _STORES[key]
        return self._store

    def scratch(self, job_id: str, renderer: str) -> Path:
        return Path(tempfile.gettempdir()) / "synthdata-render" / _scratch_name(job_id, renderer)

    def publish(self, job_id: str, scratch: Path) -> None:
        """Upload the job's zip, then the marker that lists it and every file in it."""
        zip_path = scratch.with_name(scratch.name + ".zip")
        try:
            write_job_zip(job_id, scratch, zip_path)
            whole = Upload(
                zip_path, f"{job_id}.zip", zip_path.stat().st_size, sha256_file(zip_path)
            )
            marker = {
                "zip": {"size": whole.size, "sha256": whole.sha256},
                "files": {
                    path.name: {"size": path.stat().st_size, "sha256": sha256_file(path)}
                    for path in sorted(scratch.iterdir())
                    if path.is_file()
                },
            }
            self.store.upload_files([whole])
            self.store.write_bytes(f"{job_id}{COMPLETE}", json.dumps(marker).encode())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            zip_path.unlink(missing_ok=True)

    def _marker(self, job_id: str) -> dict[str, Any] | None:
        data = self.store.read_bytes(f"{job_id}{COMPLETE}")
        if data is None:
            return None
        marker: dict[str, Any] = json.loads(data)
        return marker

    def complete(self, job_id: str) -> bool:
        """Whether the marker exists; a marker seen in the last `SEEN_COMPLETE_SECONDS` is
        not asked for again (a status read of a big batch would cost one GET per job)."""
        seen = self._seen_complete.get(job_id)
        if seen is not None and time.monotonic() - seen < SEEN_COMPLETE_SECONDS:
            return True
        if self._marker(job_id) is None:
            return False
        if len(self._seen_complete) >= SEEN_COMPLETE_MAX:
            self._seen_complete.clear()
        self._seen_complete[job_id] = time.monotonic()
        return True

    def files(self, job_id: str) -> list[tuple[str, int]]:
        """From the marker alone: one small GET, nothing downloaded."""
        marker = self._marker(job_id)
        if marker is None:
            raise NotFoundError(f"job {job_id!r} has no result")
        return sorted((name, int(meta["size"])) for name, meta in marker["files"].items())

    def copy_to(self, job_id: str, dest: Path) -> None:
        """Download the job's zip, check it against the marker, extract it safely, rename."""
        from prefect_synthdata.providers.archive import extract_zip

        marker = self._marker(job_id)
        if marker is None:
            raise NotFoundError(f"job {job_id!r} has no result")
        scratch = dest.with_name(dest.name + ".partial")
        archive = dest.with_name(dest.name + ".partial.zip")
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            self.store.download_files([Download(f"{job_id}.zip", archive)])
            if not _matches(archive, marker["zip"]):
                raise NotFoundError(f"job {job_id!r}: {job_id}.zip does not match its marker")
            files = extract_zip(archive, scratch, folder=job_id)
            listed = marker["files"]
            if sorted(p.name for p in files) != sorted(listed) or not all(
                _matches(p, listed[p.name]) for p in files
            ):
                raise NotFoundError(f"job {job_id!r}: its files do not match its marker")
            scratch.rename(dest)
        finally:
            archive.unlink(missing_ok=True)
            shutil.rmtree(scratch, ignore_errors=True)

    def local_dir(self, job_id: str) -> Path:
        """The job's files, downloaded once into the cache folder."""
        folder = self.cache_dir / job_id
        if not folder.is_dir():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            try:
                self.copy_to(job_id, folder)
            except OSError:  # another thread put it there first
                if not folder.is_dir():
                    raise
        return folder

    def zip_url(self, job_id: str, ttl_seconds: int) -> str | None:
        """A pre-signed GET of `<job_id>.zip` on the configured endpoint (no request made)."""
        url: str = self.store.presigned_get(f"{job_id}.zip", ttl_seconds)
        return url


def results_location(results_dir: Path | None, results_url: str | None) -> str | Path | None:
    """The one results location of a results directory and a results URL setting, if any.

    Example:
        >>> results_location(None, "s3://renders/farm")
        's3://renders/farm'
    """
    if results_dir is not None and results_url:
        raise ConfigurationError(
            f"give either a results directory ({results_dir}) or a results URL ({results_url}), not both"
        )
    return results_url or results_dir


def open_results(
    location: str | Path | None,
    default: Path,
    options: StoreOptions | None = None,
    cache_dir: Path | None = None,
) -> ResultsStore:
    """The results store at `location`: an `s3://bucket/prefix` URI, a directory, or (None)
    the directory `default`. S3 results are read through `cache_dir` (default: beside
    `default`); connection `options` only apply to S3.

    Example:
        >>> open_results("s3://renders/farm", default=Path("/tmp/r")).location
        's3://renders/farm'
    """
    options = options or StoreOptions()
    text = str(location) if location is not None else ""
    if text.startswith("s3://"):
        return S3Results(text, options, cache_dir or default.with_name(default.name + "-cache"))
    if "://" in text:
        raise ConfigurationError(f"unsupported results location {text!r}: use a path or s3://")
    if options.connection_settings():
        raise ConfigurationError(
            f"{', '.join(options.connection_settings())} only apply to s3:// results, not {text or default}"
        )
    return DirectoryResults(Path(text) if text else default)
