"""`/api/v1/files/` from SQL: the same records, filters and pages as the folder walk it replaced."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests

from prefect_synthdata.server.files import FILE_FIELDS
from prefect_synthdata.server.filters import apply_filters, sql_filters
from prefect_synthdata.server.store import FILE_COLUMNS
from tests.reference_server import ServerProcess, run_reference_server
from tests.server.conftest import Api, wait_for

ROWS = [
    {"id": "f1", "name": "image.000000.rgb.png", "path": "r1/image.000000.rgb.png",
     "size_bytes": 120, "created_at": "2026-01-01", "simrun": "r1", "sim": "shapes",
     "sim_id": "s-1", "project": "p1"},
    {"id": "f2", "name": "_annotations.zumo.json", "path": "r1/_annotations.zumo.json",
     "size_bytes": 7, "created_at": "2026-01-01", "simrun": "r1", "sim": "shapes",
     "sim_id": "s-1", "project": "p1"},
    {"id": "f3", "name": "IMAGE.000001.RGB.png", "path": "r2/IMAGE.000001.RGB.png",
     "size_bytes": 1200, "created_at": "2026-01-02", "simrun": "r2", "sim": "video",
     "sim_id": "s-2", "project": "p2"},
]  # fmt: skip
FILTERS = [
    [], [("run__sim", "s-1")], [("run", "r2")], [("run__id__in", "r1,zz")],
    [("path__icontains", ".rgb")], [("path__contains", ".rgb")], [("~path__icontains", ".RGB")],
    [("name__startswith", "image")], [("name__istartswith", "image")], [("name__endswith", ".png")],
    [("name__iendswith", "RGB.PNG")], [("name__endswith", "a-name-longer-than-any-file.png")],
    [("size_bytes", "7")], [("size_bytes__in", "7,120")], [("name__iexact", "image.000001.rgb.png")],
    [("run__name", "video-r2")], [("run__name__startswith", "shapes-")], [("run__state", "READY")],
    [("run__project", "p2")], [("id__isnull", "true")], [("~id__isnull", "true")],
    [("run__sim", "s-1"), ("path__icontains", ".rgb"), ("~path__icontains", ".annotated")],
    [("path__icontains", "")], [("name__startswith", "")], [("page", "2"), ("page-size", "1")],
]  # fmt: skip


@pytest.mark.parametrize("filters", FILTERS, ids=str)
def test_sql_filters_select_what_the_python_filters_select(filters: list[tuple[str, str]]) -> None:
    records = [
        {**{k: r[k] for k in ("id", "name", "path", "size_bytes", "created_at")},
         "run": {"id": r["simrun"], "name": f"{r['sim']}-{r['simrun'][:8]}", "sim": r["sim_id"],
                 "state": "READY", "project": r["project"]}}
        for r in ROWS
    ]  # fmt: skip
    expected = [r["id"] for r in apply_filters(records, filters, FILE_FIELDS)]
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE files (id, name, path, size_bytes INTEGER, created, simrun, sim, sim_id, project)"
    )
    db.executemany(
        "INSERT INTO files VALUES (?,?,?,?,?,?,?,?,?)", [tuple(r.values()) for r in ROWS]
    )
    where, args = sql_filters(filters, FILE_FIELDS, FILE_COLUMNS)
    found = [row[0] for row in db.execute(f"SELECT id FROM files WHERE {where} ORDER BY id", args)]
    assert found == expected


def _dataset(api: Api, name: str, amount: int) -> None:
    project = api.get("api/v1/projects/").json()["results"][0]["id"]
    dataset = api.post("api/v1/datasets/", data={"project": project, "name": name}).json()
    config = json.dumps({"width": 32, "height": 32, "seed": 7})
    form = {"project": project, "sim": "shapes", "config": config, "amount": amount}
    assert api.post(f"api/v1/datasets/{dataset['id']}/generate/", data=form).status_code == 200
    wait_for(lambda: api.get(f"api/v1/datasets/{dataset['id']}/").json()["state"] == "READY")


def _all_pages(api: Api, params: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """Every file listed, following `next` links; the `count` of the first page."""
    first = api.get("api/v1/files/", params=params).json()
    records, reply = list(first["results"]), first
    while reply["next"]:
        assert reply["next"].startswith(api.server.url + "/api/v1/files/?")
        reply = api.session.get(reply["next"], timeout=30).json()
        assert reply["previous"] and reply["count"] == first["count"]
        records += reply["results"]
    return first["count"], records


def _on_disk(server: ServerProcess) -> list[str]:
    results = server.data_dir / "engine" / "results"
    return sorted(f"{f.parent.name}/{f.name}" for f in results.glob("*/*") if f.is_file())


@pytest.fixture
def files_server(tmp_path: Path) -> Any:
    with run_reference_server(tmp_path / "srv", tokens=["files-a", "files-b"]) as srv:
        yield srv


def test_listing_pages_filters_and_follows_the_folders(files_server: ServerProcess) -> None:
    api, other = Api(files_server, "files-a"), Api(files_server, "files-b")
    _dataset(api, "three", amount=3)
    count, records = _all_pages(api, {"page-size": 4})
    assert count == len(records) == len(_on_disk(files_server)) > 4
    assert sorted(r["path"] for r in records) == _on_disk(files_server)
    assert len({r["id"] for r in records}) == count
    assert set(records[0]) == {"id", "name", "path", "size_bytes", "run", "created_at", "url"}
    paths = [(r["created_at"], r["run"], r["name"]) for r in records]
    assert paths == sorted(paths)  # simrun order, then by name: stable pages
    one = records[-1]
    assert api.get(f"api/v1/files/{one['id']}/").json()["path"] == one["path"]
    assert (
        requests.get(one["url"], timeout=30).content
        == (files_server.data_dir / "engine" / "results" / one["path"]).read_bytes()
    )
    assert other.get(f"api/v1/files/{one['id']}/").status_code == 404
    assert other.get("api/v1/files/").json()["count"] == 0

    rgb_count, rgb = _all_pages(api, {"path__icontains": ".RGB", "page-size": 1})
    assert rgb_count == 3 and all(r["name"].endswith(".rgb.png") for r in rgb)
    forged = api.get("api/v1/files/", params={"page-size": 1}, headers={"Host": "evil.example"})
    assert forged.json()["next"].startswith(files_server.url)
    assert api.get("api/v1/files/", params={"page": 99}).status_code == 404
    assert api.get("api/v1/files/", params={"nope": 1}).status_code == 400

    gone = records[0]["run"]
    shutil.rmtree(files_server.data_dir / "engine" / "results" / gone)
    count_after, after = _all_pages(api, {"page-size": 4})
    assert gone not in {r["run"] for r in after} and count_after == len(after) < count
    assert api.get(f"api/v1/files/{records[0]['id']}/").status_code == 404


def test_files_of_simruns_finished_before_an_upgrade_are_recorded_at_startup(
    files_server: ServerProcess,
) -> None:
    api = Api(files_server, "files-a")
    _dataset(api, "before upgrade", amount=2)
    before = _all_pages(api, {})
    files_server.stop()
    with sqlite3.connect(files_server.data_dir / "zpy.sqlite3") as db:  # as an older server left it
        db.execute("DROP TABLE files")
        db.execute("DROP TABLE unrecorded_simruns")
    files_server.start()
    with sqlite3.connect(
        files_server.data_dir / "zpy.sqlite3"
    ) as db:  # recorded, before any listing
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == before[0]
    assert _all_pages(api, {})[0] == before[0]
    assert sorted(r["path"] for r in _all_pages(api, {})[1]) == _on_disk(files_server)
