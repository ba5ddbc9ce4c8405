"""Safe extraction of result zips downloaded from a generation service.

Every member name is checked before a byte is written: no absolute paths, no drive
letters or backslashes, no `..`, no name part over 255 bytes, no symbolic links or other special files, no
encrypted or duplicate members, and a bound on the total uncompressed size. The
zip's CRC-32 of each member is checked as it is read. On any failure the
destination folder is removed, so nothing half-extracted is left behind.

Example:
    >>> import io, tempfile, zipfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(tmp / "r.zip", "w") as z:
    ...     z.writestr("job1/labels.json", "{}")
    >>> [p.name for p in extract_zip(tmp / "r.zip", tmp / "out", folder="job1")]
    ['labels.json']
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from prefect_synthdata.exceptions import IntegrityError, UnsafeArchiveError

MAX_TOTAL_BYTES = 8 << 30  # 8 GiB uncompressed per extraction
MAX_NAME_BYTES = 255  # the longest file name common file systems store
CHUNK = 1 << 20


def check_member(info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's relative path, or UnsafeArchiveError saying why it is refused.

    Example:
        >>> check_member(zipfile.ZipInfo("../etc/passwd"))
        Traceback (most recent call last):
        ...
        prefect_synthdata.exceptions.UnsafeArchiveError: zip member '../etc/passwd' escapes the destination
    """
    name = info.filename
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"zip member {name!r} is an absolute or non-POSIX path")
    path = PurePosixPath(name)
    if any(part == ".." for part in path.parts):
        raise UnsafeArchiveError(f"zip member {name!r} escapes the destination")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in path.parts):
        raise UnsafeArchiveError(
            f"zip member {name[:80]!r}... has a name part over {MAX_NAME_BYTES} bytes"
        )
    file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip records no Unix mode
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        kind = "a symbolic link" if file_type == stat.S_IFLNK else "a special file"
        raise UnsafeArchiveError(f"zip member {name!r} is {kind}")
    if info.flag_bits & 0x1:
        raise UnsafeArchiveError(f"zip member {name!r} is encrypted")
    return path


def open_zip(archive: Path) -> zipfile.ZipFile:
    """Open a zip, mapping a corrupt or truncated file to IntegrityError."""
    try:
        return zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntegrityError(f"{archive.name} is not a readable zip: {exc}") from None


class CheckedZip:
    """An open zip whose members have all passed `check_member`, indexed by top-level folder.

    Checking and indexing happen once, so extracting one folder from a zip of thousands
    (a zpy dataset zip holds every simrun) reads only that folder's members.

    Example:
        >>> import tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> with zipfile.ZipFile(tmp / "r.zip", "w") as z:
        ...     z.writestr("b/x", ""); z.writestr("a/y", ""); z.writestr("top.txt", "")
        >>> with CheckedZip(tmp / "r.zip") as checked:
        ...     checked.folders, [p.name for p in checked.extract(tmp / "out", folder="a")]
        (['b', 'a'], ['y'])
    """

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self._zip = open_zip(archive)
        #: Files by top-level folder ("" for files at the top), with their checked paths.
        self._files: dict[str, list[tuple[zipfile.ZipInfo, PurePosixPath]]] = {}
        try:
            seen: set[str] = set()
            for info in self._zip.infolist():
                path = check_member(info)
                if path.as_posix() in seen:
                    raise UnsafeArchiveError(f"zip member {info.filename!r} appears twice")
                seen.add(path.as_posix())
                files = self._files.setdefault(path.parts[0] if len(path.parts) > 1 else "", [])
                if not info.is_dir():
                    files.append((info, path))
        except BaseException:
            self._zip.close()
            raise
        self.folders = [name for name in self._files if name]

    def __enter__(self) -> CheckedZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def extract(
        self, dest: Path, *, folder: str | None = None, max_total_bytes: int = MAX_TOTAL_BYTES
    ) -> list[Path]:
        """Extract the top-level `folder` (its name stripped), or every member, into the
        new folder `dest`; returns the files written. `dest` is removed again on failure."""
        if folder is None:
            selected = [member for files in self._files.values() for member in files]
        else:
            selected = [
                (info, PurePosixPath(*path.parts[1:])) for info, path in self._files.get(folder, [])
            ]
        declared = sum(info.file_size for info, _ in selected)
        if declared > max_total_bytes:
            raise UnsafeArchiveError(
                f"{self.archive.name}: {declared} uncompressed bytes exceed the limit of "
                f"{max_total_bytes}"
            )
        dest.mkdir(parents=True, exist_ok=False)
        try:
            return [_extract_member(self._zip, info, dest, relative) for info, relative in selected]
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise


def extract_zip(
    archive: Path, dest: Path, *, folder: str | None = None, max_total_bytes: int = MAX_TOTAL_BYTES
) -> list[Path]:
    """Extract the top-level `folder` (its name stripped), or every member, into the new
    folder `dest`.

    Every member of the archive is checked, not only those extracted. Returns the
    files written. `dest` must not exist; it is removed again if anything fails.
    """
    with CheckedZip(archive) as checked:
        return checked.extract(dest, folder=folder, max_total_bytes=max_total_bytes)


def _extract_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, relative: PurePosixPath
) -> Path:
    target = dest.joinpath(*relative.parts)
    if not target.resolve().is_relative_to(dest.resolve()):
        raise UnsafeArchiveError(f"zip member {info.filename!r} escapes the destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zf.open(info) as source, target.open("xb") as out:
            shutil.copyfileobj(source, out, CHUNK)
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"zip member {info.filename!r} is corrupt: {exc}") from None
    return target
