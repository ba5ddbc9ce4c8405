"""Result zips, built once, atomically, and kept with their size and sha256.

- Infinity: one zip per job, top folder `<job_id>/` holding the engine's job folder
  (`job.json`, `labels.json` COCO, images and ground-truth maps), written by
  `engine.results.write_job_zip` (the same bytes a worker uploads to S3 results).
- zpy: one zip per dataset, one folder per simrun in the zumo layout (`server.zumo`).

PNGs are stored, not deflated (they are compressed already); JSON is deflated.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "job1").mkdir(); _ = (root / "job1" / "job.json").write_text("{}")
    >>> archive = ArchiveStore(root / "archives").job_zip("job1", root / "job1")
    >>> archive.path.name, archive.size == archive.path.stat().st_size
    ('job1.zip', True)
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefect_synthdata.dataset.manifest import sha256_file
from prefect_synthdata.engine.results import write_job_zip
from prefect_synthdata.server.zumo import zumo_annotations


@dataclass(frozen=True)
class Archive:
    """A finished zip on disk."""

    path: Path
    size: int
    sha256: str


class ArchiveStore:
    """Builds zips under `root` on first request and serves the cached copy afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for stale in root.glob("*/*.zip.partial-*"):  # left by a process that died mid-build
            stale.unlink(missing_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _build(self, name: str, write: Callable[[Path], None]) -> Archive:
        path = self.root / f"{name}.zip"
        checksum = path.with_suffix(".sha256")
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if not (path.is_file() and checksum.is_file()):
                path.parent.mkdir(parents=True, exist_ok=True)
                scratch = path.with_name(
                    f"{path.name}.partial-{os.getpid()}-{threading.get_ident()}"
                )
                write(scratch)
                digest = sha256_file(scratch)
                os.replace(scratch, path)
                checksum.write_text(digest)
            return Archive(path=path, size=path.stat().st_size, sha256=checksum.read_text().strip())

    def job_zip(self, job_id: str, job_dir: Path) -> Archive:
        """The Infinity result zip of one job: `<job_id>/<file>` for every file of `job_dir`."""
        return self._build(f"jobs/{job_id}", lambda path: write_job_zip(job_id, job_dir, path))

    def dataset_zip(self, dataset_id: str, runs: list[tuple[str, Path]]) -> Archive:
        """The zpy zip of a dataset: one zumo folder per `(simrun id, job dir)`."""

        def write(path: Path) -> None:
            with zipfile.ZipFile(path, "w") as archive:
                for run_id, job_dir in runs:
                    for file in sorted(job_dir.glob("image.*.png")):
                        archive.write(file, f"{run_id}/{file.name}", zipfile.ZIP_STORED)
                    zumo = zumo_annotations(job_dir, run_id)
                    archive.writestr(
                        f"{run_id}/_annotations.zumo.json", json.dumps(zumo), zipfile.ZIP_DEFLATED
                    )
                    archive.write(
                        job_dir / "labels.json",
                        f"{run_id}/_annotations.coco.json",
                        zipfile.ZIP_DEFLATED,
                    )

        return self._build(f"datasets/{dataset_id}", write)
