"""The zpy dialect over HTTP, driven with exactly the requests `zpy.client` 1.4.0 makes.

(`tests/server/clients/` runs the unchanged client itself when it is installed.)
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
import requests
from pycocotools.coco import COCO

from tests.server.conftest import Api, wait_for

CONFIG = {"width": 64, "height": 48, "num_objects": 3, "run.seed": 100}


def _form_post(api: Api, path: str, data: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, data=data)  # form-encoded, as zpy.client sends it
    assert response.status_code == 200, response.text  # the client treats anything else as an error
    return dict(response.json())


def _project(api: Api) -> dict[str, Any]:
    project = api.get("api/v1/projects/").json()["results"][0]
    return dict(api.get(f"api/v1/projects/{project['id']}").json())  # init(): no trailing slash


def _sim(api: Api, project_id: str) -> dict[str, Any]:
    sims = api.get("api/v1/sims/", params={"project": project_id, "name": "shapes"}).json()[
        "results"
    ]
    assert len(sims) == 1
    return dict(sims[0])


def _generate(api: Api, name: str, config: dict[str, Any], amount: int) -> dict[str, Any]:
    project = _project(api)
    dataset = _form_post(api, "api/v1/datasets/", {"project": project["id"], "name": name})
    assert dataset["state"] == "CREATED" and dataset["name"] == name
    _form_post(
        api,
        f"api/v1/datasets/{dataset['id']}/generate/",
        {"project": project["id"], "sim": "shapes", "config": json.dumps(config), "amount": amount},
    )
    return dataset


def _ready(api: Api, dataset_id: str) -> dict[str, Any]:
    finished = ("READY", "CANCELLED", "PACKAGING_FAILED", "GENERATING_FAILED")
    dataset = wait_for(
        lambda: (d := api.get(f"api/v1/datasets/{dataset_id}/").json())["state"] in finished and d
    )
    assert dataset["state"] == "READY", dataset
    return dict(dataset)


@pytest.fixture(scope="module")
def generated(alice: Api) -> dict[str, Any]:
    dataset = _generate(alice, "street scenes", CONFIG, 3)
    return _ready(alice, dataset["id"])


def test_project_and_sim_lookup(alice: Api, bob: Api) -> None:
    project = _project(alice)
    assert set(project) >= {"id", "name"} and len(project["id"]) == 36
    sim = _sim(alice, project["id"])
    assert sim["name"] == "shapes" and sim["state"] == "READY"
    kwargs = {k["name"]: k for k in sim["run_kwargs"]}
    assert kwargs["width"]["type"] == "int" and kwargs["width"]["default"] == 512
    assert bob.get(f"api/v1/projects/{project['id']}").status_code == 404
    others = bob.get("api/v1/sims/", params={"project": project["id"], "name": "shapes"}).json()
    assert others["count"] == 0


def test_generate_poll_and_download(alice: Api, generated: dict[str, Any], tmp_path: Path) -> None:
    runs = alice.get("api/v1/simruns/", params={"datasets": generated["id"]}).json()
    ready = alice.get(
        "api/v1/simruns/", params={"datasets": generated["id"], "state": "READY"}
    ).json()
    assert runs["count"] == ready["count"] == 3
    link = alice.get(f"api/v1/datasets/{generated['id']}/download/").json()
    with urlopen(link["redirect_link"]) as response:  # the client's download_url: plain urlopen
        length = int(response.info()["Content-Length"])
        body = response.read()
    assert length == len(body) == link["size_bytes"]
    assert hashlib.sha256(body).hexdigest() == link["sha256"]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = archive.namelist()
        folders = sorted({n.split("/")[0] for n in names})
        assert folders == sorted(r["id"] for r in runs["results"])
        for folder in folders:
            for style in ("rgb", "iseg", "cseg", "depth"):
                assert f"{folder}/image.000000.{style}.png" in names
            zumo = json.loads(archive.read(f"{folder}/_annotations.zumo.json"))
            assert set(zumo) == {"metadata", "categories", "images", "annotations"}
            assert zumo["metadata"]["save_path"] == folder
            styles = {img["style"] for img in zumo["images"].values()}
            assert styles == {"default", "segmentation", "depth"}
            for ann in zumo["annotations"]:
                x, y, w, h = ann["bbox"]
                xs, ys = ann["segmentation"][0][0::2], ann["segmentation"][0][1::2]
                assert (min(xs), min(ys), max(xs), max(ys)) == (x, y, x + w, y + h)
                assert str(ann["category_id"]) in zumo["categories"]
            archive.extract(f"{folder}/_annotations.coco.json", tmp_path)
    coco = COCO(str(tmp_path / folders[0] / "_annotations.coco.json"))
    assert len(coco.dataset["images"]) == 1


def test_dataset_lookup_by_name(alice: Api, bob: Api, generated: dict[str, Any]) -> None:
    project = _project(alice)
    found = alice.get(
        "api/v1/datasets/", params={"project": project["id"], "name": "street scenes"}
    ).json()
    assert [d["id"] for d in found["results"]] == [generated["id"]]
    assert found["results"][0]["state"] == "READY"
    assert bob.get(f"api/v1/datasets/{generated['id']}/").status_code == 404
    assert bob.get(f"api/v1/datasets/{generated['id']}/download/").status_code == 404


def test_same_config_reuses_simruns_and_is_ready_at_once(
    alice: Api, generated: dict[str, Any]
) -> None:
    dataset = _generate(alice, "street scenes again", CONFIG, 3)
    now = alice.get(f"api/v1/datasets/{dataset['id']}/").json()
    assert now["state"] == "READY"  # zpy.generate(materialize=True) downloads without waiting
    first = {
        r["id"]
        for r in alice.get("api/v1/simruns/", params={"datasets": generated["id"]}).json()[
            "results"
        ]
    }
    second = {
        r["id"]
        for r in alice.get("api/v1/simruns/", params={"datasets": dataset["id"]}).json()["results"]
    }
    assert first == second


def test_preview_queries(alice: Api, generated: dict[str, Any]) -> None:
    project = _project(alice)
    sim = _sim(alice, project["id"])
    config = "width:64,height:48,num_objects:3,run.seed:100"  # to_query_param_value(config)
    params = {
        "project": project["id"],
        "sim": sim["id"],
        "state": "READY",
        "page-size": 2,
        "config": config,
    }
    simruns = alice.get("api/v1/simruns/", params=params).json()
    assert simruns["count"] == 1 and len(simruns["results"]) == 1
    assert simruns["results"][0]["config"]["seed"] == 100
    pages = alice.get("api/v1/simruns/", params={**params, "config": "width:64"}).json()
    assert pages["count"] == 3 and len(pages["results"]) == 2 and pages["next"]
    assert (
        len(
            requests.get(pages["next"], headers=alice.session.headers, timeout=30).json()["results"]
        )
        == 1
    )
    files = alice.get(
        "api/v1/files/",
        params={"run__sim": sim["id"], "path__icontains": ".rgb", "~path__icontains": ".annotated"},
    ).json()["results"]
    assert len(files) == 3 and all(f["path"].endswith(".rgb.png") for f in files)
    image = requests.get(files[0]["url"], timeout=30)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    none = alice.get(
        "api/v1/files/", params={"run__sim": sim["id"], "~path__icontains": ".png"}
    ).json()
    assert all(not f["path"].endswith(".png") for f in none["results"])


def test_generate_errors_are_400_json(alice: Api) -> None:
    project = _project(alice)
    dataset = _form_post(alice, "api/v1/datasets/", {"project": project["id"], "name": "broken"})
    url = f"api/v1/datasets/{dataset['id']}/generate/"
    cases = [
        ({"sim": "nope", "config": "{}", "amount": 1}, "nope"),
        ({"sim": "shapes", "config": "{not json", "amount": 1}, "config"),
        ({"sim": "shapes", "config": "[1]", "amount": 1}, "config"),
        ({"sim": "shapes", "config": json.dumps({"colour": 1}), "amount": 1}, "colour"),
        ({"sim": "shapes", "config": json.dumps({"width": 5}), "amount": 1}, "width"),
        ({"sim": "shapes", "config": "{}", "amount": -1}, "amount"),
        ({"sim": "shapes", "config": "{}", "amount": 10**12}, "amount"),
        ({"sim": "shapes", "config": "{}", "amount": 1, "extra": "x"}, "extra"),
    ]
    for form, word in cases:
        response = alice.post(url, data={"project": project["id"], **form})
        assert response.status_code == 400, (form, response.text)
        assert word in response.json()["detail"], (form, response.json())
    duplicate = alice.post("api/v1/datasets/", data={"project": project["id"], "name": "broken"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["detail"]
    assert alice.get(f"api/v1/datasets/{dataset['id']}/").json()["state"] == "CREATED"
    not_ready = alice.get(f"api/v1/datasets/{dataset['id']}/download/")
    assert not_ready.status_code == 400 and "CREATED" in not_ready.json()["detail"]


def test_lowercase_token_scheme_and_filters(alice: Api, server: Any) -> None:
    headers = {"Authorization": f"token {server.tokens[0]}"}  # the zpy CLI's spelling
    listed = requests.get(
        f"{server.url}/api/v1/datasets/", params={"name__startswith": "street"}, headers=headers
    )
    assert listed.status_code == 200 and listed.json()["count"] >= 1
    bad = requests.get(
        f"{server.url}/api/v1/datasets/", params={"colour__iexact": "x"}, headers=headers
    )
    assert bad.status_code == 400 and "colour" in bad.json()["detail"]
    state = alice.get("api/v1/datasets/", params={"state__iexact": "ready"}).json()
    assert state["count"] >= 1 and all(d["state"] == "READY" for d in state["results"])
