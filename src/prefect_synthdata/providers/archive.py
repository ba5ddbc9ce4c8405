"""Safe extraction of result zips downloaded from a generation service.

Every member name is checked before a byte is written: no absolute paths, no drive
letters or backslashes, no `..`, no symbolic links or other special files, no
encrypted or duplicate members, and a bound on the total uncompressed size. The
zip's CRC-32 of each member is checked as it is read. On any failure the
destination folder is removed, so nothing half-extracted is left behind.

Example:
    >>> import io, tempfile, zipfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(tmp / "r.zip", "w") as z:
    ...     z.writestr("job1/labels.json", "{}")
    >>> [p.name for p in extract_zip(tmp / "r.zip", tmp / "out", prefix="job1/")]
    ['labels.json']
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from prefect_synthdata.exceptions import IntegrityError, UnsafeArchiveError

MAX_TOTAL_BYTES = 8 << 30  # 8 GiB uncompressed per extraction
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


def top_level_folders(archive: Path) -> list[str]:
    """Names of the top-level folders of a zip, in first-seen order.

    Example:
        >>> import tempfile, pathlib
        >>> tmp = pathlib.Path(tempfile.mkdtemp()) / "r.zip"
        >>> with zipfile.ZipFile(tmp, "w") as z:
        ...     z.writestr("b/x", ""); z.writestr("a/y", ""); z.writestr("top.txt", "")
        >>> top_level_folders(tmp)
        ['b', 'a']
    """
    with open_zip(archive) as zf:
        names = [PurePosixPath(i.filename).parts for i in zf.infolist()]
    return list(dict.fromkeys(parts[0] for parts in names if len(parts) > 1))


def extract_zip(
    archive: Path, dest: Path, *, prefix: str = "", max_total_bytes: int = MAX_TOTAL_BYTES
) -> list[Path]:
    """Extract the members under `prefix` (stripped) into the new folder `dest`.

    Every member of the archive is checked, not only those extracted. Returns the
    files written. `dest` must not exist; it is removed again if anything fails.
    """
    with open_zip(archive) as zf:
        infos = zf.infolist()
        seen: set[str] = set()
        selected: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for info in infos:
            path = check_member(info)
            key = path.as_posix()
            if key in seen:
                raise UnsafeArchiveError(f"zip member {info.filename!r} appears twice")
            seen.add(key)
            if prefix and not info.filename.startswith(prefix):
                continue
            relative = PurePosixPath(info.filename[len(prefix) :])
            if not info.is_dir() and relative.parts:
                selected.append((info, relative))
        declared = sum(info.file_size for info, _ in selected)
        if declared > max_total_bytes:
            raise UnsafeArchiveError(
                f"{archive.name}: {declared} uncompressed bytes exceed the limit of {max_total_bytes}"
            )
        dest.mkdir(parents=True, exist_ok=False)
        try:
            return [_extract_member(zf, info, dest, relative) for info, relative in selected]
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise


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
