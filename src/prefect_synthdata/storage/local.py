"""A local-directory `ObjectStore`. Files are written to a temporary name and renamed.

Example:
    >>> import tempfile
    >>> store = LocalStore(tempfile.mkdtemp())
    >>> store.write_bytes("a/b.txt", b"hi"); store.read_bytes("a/b.txt")
    b'hi'
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from prefect_synthdata.dataset.manifest import sha256_file
from prefect_synthdata.exceptions import DestinationError
from prefect_synthdata.storage.base import Download, Upload


def replace_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Call `write(scratch)` on a scratch file beside `target`, then rename it over `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(scratch)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)


class LocalStore:
    """Datasets under a directory on this machine."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self._real_root = self.root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if key and not path.is_relative_to(self._real_root):
            raise DestinationError(f"key {key!r} escapes the destination {self.root}")
        return path

    def uri(self, key: str = "") -> str:
        return str(self._path(key)) if key else str(self.root)

    def check_writable(self) -> None:
        """Probe the destination (or its nearest existing ancestor) without leaving anything behind."""
        existing = self.root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise DestinationError(
                f"destination {self.root} is not writable: {existing} is not a directory"
            )
        probe = existing / f".write-probe-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise DestinationError(
                f"destination {self.root} is not writable: {exc.strerror or exc}"
            ) from exc

    def _holds(self, upload: Upload) -> bool:
        path = self._path(upload.key)
        return (
            path.is_file()
            and path.stat().st_size == upload.size
            and sha256_file(path) == upload.sha256
        )

    def missing(self, uploads: list[Upload]) -> list[Upload]:
        return [upload for upload in uploads if not self._holds(upload)]

    def upload_files(self, uploads: list[Upload]) -> None:
        for upload in uploads:
            replace_atomically(self._path(upload.key), partial(shutil.copyfile, upload.path))

    def write_bytes(self, key: str, data: bytes) -> None:
        replace_atomically(self._path(key), lambda tmp: tmp.write_bytes(data))

    def create_bytes(self, key: str, data: bytes) -> bool:
        """Written to a scratch file, then hard-linked to `key`: `link` fails if `key`
        exists, so of concurrent callers exactly one succeeds, and readers never see a
        partial object."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            scratch.write_bytes(data)
            os.link(scratch, target)
            return True
        except FileExistsError:
            return False
        finally:
            scratch.unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> list[str]:
        path = self._path(prefix)
        if not path.is_dir():
            return []
        return sorted(  # not the hidden scratch files of writes in flight
            p.relative_to(self.root).as_posix()
            for p in path.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def delete_keys(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def read_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def modified_at(self, key: str) -> datetime | None:
        path = self._path(key)
        return datetime.fromtimestamp(path.stat().st_mtime, UTC) if path.is_file() else None

    def list_dirs(self, prefix: str) -> list[str]:
        path = self._path(prefix) if prefix else self.root
        if not path.is_dir():
            return []
        return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))

    def download_files(self, downloads: list[Download]) -> None:
        for download in downloads:
            replace_atomically(download.path, partial(shutil.copyfile, self._path(download.key)))
