"""Safe extraction on crafted zips: every escape is refused and nothing is left behind."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from prefect_synthdata.exceptions import IntegrityError, UnsafeArchiveError
from prefect_synthdata.providers.archive import CheckedZip, extract_zip


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def test_extracts_one_folder_and_strips_its_name(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "r.zip", [("j1/job.json", b"{}"), ("j1/sub/a.png", b"x"), ("j2/b", b"y")]
    )
    files = extract_zip(archive, tmp_path / "out", folder="j1")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == [
        "job.json",
        "sub/a.png",
    ]
    assert (tmp_path / "out" / "sub" / "a.png").read_bytes() == b"x"
    with CheckedZip(archive) as checked:
        assert checked.folders == ["j1", "j2"]


def symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("../evil.txt", "escapes"),
        ("j1/../../evil.txt", "escapes"),
        ("/etc/evil", "absolute"),
        ("C:/evil", "absolute"),
        ("j1\\..\\evil", "non-POSIX"),
        (symlink_member("j1/link"), "symbolic link"),
    ],
)
def test_refuses_unsafe_members(
    tmp_path: Path, member: str | zipfile.ZipInfo, message: str
) -> None:
    archive = make_zip(tmp_path / "r.zip", [("j1/ok.txt", b"fine"), (member, b"/etc/passwd")])
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_zip(archive, tmp_path / "out", folder="j1")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_refuses_more_than_the_size_bound(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("j1/zeros", b"\0" * 2_000_000)  # compresses to a few KB
    assert archive.stat().st_size < 50_000
    with pytest.raises(UnsafeArchiveError, match="exceed the limit"):
        extract_zip(archive, tmp_path / "out", max_total_bytes=1_000_000)
    assert not (tmp_path / "out").exists()


def test_refuses_duplicate_members(tmp_path: Path) -> None:
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("j1/a", b"1")
        zf.writestr("j1/a", b"2")
    with pytest.raises(UnsafeArchiveError, match="twice"):
        extract_zip(archive, tmp_path / "out")


def test_crc_mismatch_is_an_integrity_error_and_leaves_nothing(tmp_path: Path) -> None:
    payload = b"0123456789abcdef" * 64
    archive = make_zip(tmp_path / "r.zip", [("j1/first.txt", b"ok"), ("j1/data.bin", payload)])
    raw = bytearray(archive.read_bytes())
    offset = raw.index(payload)  # stored uncompressed: flip one byte of the data
    raw[offset + 10] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="corrupt"):
        extract_zip(archive, tmp_path / "out", folder="j1")
    assert not (tmp_path / "out").exists()


def test_truncated_zip_is_an_integrity_error(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "r.zip", [("j1/a", b"x" * 1000)])
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(IntegrityError, match="not a readable zip"):
        extract_zip(archive, tmp_path / "out")
