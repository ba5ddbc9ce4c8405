"""A broken state file stops `synthdata serve` with one line naming it, never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import subprocess_env
from tests.reference_server import free_port, run_reference_server


def _garbage(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a SQLite database, " * 200)


def _truncated(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * 4000 + data[4100:])  # header kept, pages smashed


CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("engine/jobs.sqlite3", _garbage, "is not a usable SQLite database (file is not a database)"),
    ("zpy.sqlite3", _garbage, "is not a usable SQLite database (file is not a database)"),
    ("zpy.sqlite3", _truncated, "is not a usable SQLite database (database disk image is malformed)"),
    ("zpy.sqlite3", lambda p: p.mkdir(parents=True), "cannot be opened (unable to open database file)"),
    ("signing.key", lambda p: p.write_text("zz-not-hex"), "is unreadable (non-hexadecimal number"),
    ("signing.key", lambda p: p.write_text("abcd"), "holds 2 bytes, not 32 (hex)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "break_it", "words"), CASES, ids=lambda c: str(c)[:40])
def test_broken_state_file_is_named_in_one_line(
    tmp_path: Path, name: str, break_it: Callable[[Path], None], words: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    path = data_dir / name
    break_it(path)
    command = [sys.executable, "-m", "prefect_synthdata.cli", "serve", "--data-dir", str(data_dir),
               "--token", "t", "--port", str(free_port()), "--workers", "1"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=subprocess_env()
    )
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("synthdata serve: ") and str(path) in lines[0]
    assert words in lines[0] and lines[0].endswith("move it away or point --data-dir elsewhere")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file")
    command = [sys.executable, "-m", "prefect_synthdata.cli", "serve", "--data-dir",
               str(tmp_path / "data"), "--token", "t", "--port", str(free_port())]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=subprocess_env()
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert f"data dir {tmp_path / 'data'} cannot be made" in done.stderr


def test_state_files_of_an_earlier_start_are_reused(tmp_path: Path) -> None:
    with run_reference_server(tmp_path / "data") as server:
        key = (server.data_dir / "signing.key").read_text()
    with run_reference_server(tmp_path / "data"):
        assert (tmp_path / "data" / "signing.key").read_text() == key
