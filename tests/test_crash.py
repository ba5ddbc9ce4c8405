"""SIGKILL the flow process at each phase; the same command started again completes with
exactly one batch and the same dataset, and no reader ever takes a partial version for one."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prefect_synthdata.dataset.manifest import MANIFEST, SUCCESS, Manifest
from prefect_synthdata.storage.local import LocalStore
from prefect_synthdata.storage.publish import list_datasets
from tests.conftest import subprocess_env

# Big enough that each phase lasts long enough to be caught by polling at 5 ms.
ARGS = ["--jobs", "12", "--param", "width=160", "--param", "height=160", "--param", "frames=25",
        "--name", "crash", "--version", "v1"]  # fmt: skip


def _db_rows(home: Path, sql: str) -> list[tuple]:
    db = home / "local" / "jobs.sqlite3"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # schema not created yet
        return []


def _after_submit(home: Path, dest: Path) -> bool:
    return bool(_db_rows(home, "SELECT id FROM batches"))


def _mid_wait(home: Path, dest: Path) -> bool:
    states = [s for (s,) in _db_rows(home, "SELECT state FROM jobs")]
    return bool(states) and 0 < states.count("succeeded") < len(states)


def _mid_download(home: Path, dest: Path) -> bool:
    work = list((home / "work").glob("*/jobs"))
    done = [p for p in work[0].iterdir() if (p / ".downloaded.json").exists()] if work else []
    return 0 < len(done) < 12


def _mid_publish(home: Path, dest: Path) -> bool:
    version = dest / "crash" / "v1"
    return version.is_dir() and any(version.rglob("*.png")) and not (version / SUCCESS).exists()


def _children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(parent) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def _assert_exit(pids: list[int], timeout: float = 15.0) -> None:
    """The processes `pids` end (or are zombies) within `timeout` seconds."""
    deadline = time.monotonic() + timeout

    def alive() -> list[int]:
        live = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                live.append(pid)
        return live

    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(), f"processes of the killed flow still run: {alive()}"


def _run(
    home: Path, dest: Path, kill_when: Callable[[Path, Path], bool] | None
) -> subprocess.Popen:
    from prefect.settings import PREFECT_API_URL

    env = subprocess_env(SYNTHDATA_HOME=str(home), PREFECT_API_URL=str(PREFECT_API_URL.value()))
    cmd = [sys.executable, "-m", "prefect_synthdata.cli", "generate", "--dest", str(dest), *ARGS]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_when is None:
        return proc
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if kill_when(home, dest):
            children = _children(proc.pid)  # render workers and their resource tracker
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            _assert_exit(children)
            return proc
        time.sleep(0.005)
    pytest.fail(
        f"the phase was never observed (exit {proc.poll()}): {proc.communicate()[1][-2000:]}"
    )


def _finish(proc: subprocess.Popen) -> Path:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return Path(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """The same request run once without interruption."""
    base = tmp_path_factory.mktemp("reference")
    uri = _finish(_run(base / "home", base / "out", None))
    return Manifest.model_validate_json((uri / MANIFEST).read_bytes())


@pytest.mark.parametrize(
    "phase", [_after_submit, _mid_wait, _mid_download, _mid_publish], ids=lambda f: f.__name__
)
def test_killed_flow_resumes_to_the_same_dataset(
    tmp_path: Path, phase: Callable[[Path, Path], bool], reference: Manifest
) -> None:
    home, dest = tmp_path / "home", tmp_path / "out"
    killed = _run(home, dest, phase)
    assert killed.returncode == -signal.SIGKILL
    assert "crash" not in list_datasets(LocalStore(dest))  # a partial version is no dataset

    uri = _finish(_run(home, dest, None))

    manifest = Manifest.model_validate_json((uri / MANIFEST).read_bytes())
    assert manifest.content_sha256() == reference.content_sha256()
    manifest.verify(uri)
    assert (uri / SUCCESS).read_text() == manifest.sha256()
    assert len(_db_rows(home, "SELECT id FROM batches")) == 1
    assert list_datasets(LocalStore(dest)) == {"crash": ["v1"]}
    coco = json.loads((uri / "annotations.coco.json").read_text())
    assert len(coco["images"]) == 12 * 25
