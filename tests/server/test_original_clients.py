"""The unchanged original clients against the server, when they are available here.

Neither installs from the package index in a usable way (infinity-core is not
published there; zpy-zumo 1.4.0 pins numpy 1.19 and is GPL and Blender-bound), so
these run only when pointed at an external copy:

- `SYNTHDATA_INFINITY_CORE_PATH`: a folder holding the `infinity_core` package;
- `SYNTHDATA_ZPY_PYTHON`: an interpreter where `import zpy.client` works, e.g. a venv
  made with `pip install --no-deps zpy-zumo==1.4.0` plus `gin-config scikit-image
  shapely pyzmq pydash click tqdm pyyaml table-logger requests`.

The wire-level tests in test_infinity.py and test_zpy.py make the same requests
and always run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import subprocess_env
from tests.reference_server import ServerProcess

CLIENTS = Path(__file__).parent / "clients"
INFINITY_CORE = os.environ.get("SYNTHDATA_INFINITY_CORE_PATH")
ZPY_PYTHON = os.environ.get("SYNTHDATA_ZPY_PYTHON")


def _run(command: list[str], env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.skipif(
    not INFINITY_CORE, reason="set SYNTHDATA_INFINITY_CORE_PATH to run infinity-core itself"
)
def test_infinity_core_client_workflow(server: ServerProcess, tmp_path: Path) -> None:
    env = subprocess_env(PYTHONPATH=str(INFINITY_CORE))
    token = server.tokens[0]
    seen = _run(
        [sys.executable, str(CLIENTS / "infinity_workflow.py"), server.url, token, str(tmp_path)],
        env,
    )
    assert seen["estimate"] == [2, 2]
    assert seen["completed"] == seen["job_ids"] == seen["from_api_jobs"]
    assert seen["downloaded"] == sorted([*seen["job_ids"], "batch_id.txt"])  # type: ignore[list-item]
    assert seen["batch_id_txt"] == seen["batch_id"]
    assert "original client" in seen["recent_batches"]  # type: ignore[operator]
    assert seen["errors"] == {
        "shapes": "Invalid token",
        "no-such-generator": "Invalid generator name no-such-generator",
    }
    for job_id in seen["job_ids"]:  # type: ignore[union-attr]
        assert (tmp_path / job_id / "labels.json").is_file()


@pytest.mark.skipif(
    not ZPY_PYTHON, reason="set SYNTHDATA_ZPY_PYTHON to an interpreter with zpy.client"
)
def test_zpy_client_workflow(server: ServerProcess) -> None:
    project = requests.get(
        f"{server.url}/api/v1/projects/", headers=server.headers(), timeout=30
    ).json()
    name = f"original client {uuid.uuid4().hex[:6]}"
    command = [str(ZPY_PYTHON), str(CLIENTS / "zpy_workflow.py"), server.url, server.tokens[0],
               project["results"][0]["id"], name]  # fmt: skip
    seen = _run(command, {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert seen["state"] == "READY"
    assert "width" in seen["available_params"]  # type: ignore[operator]
    entries = seen["zip_entries"]
    assert sum(e.endswith("_annotations.zumo.json") for e in entries) == 2  # type: ignore[union-attr]
    assert sum(e.endswith(".rgb.png") for e in entries) == 2  # type: ignore[union-attr]
    assert seen["preview_paths"] and all(p.endswith(".rgb.png") for p in seen["preview_paths"])  # type: ignore[union-attr]
