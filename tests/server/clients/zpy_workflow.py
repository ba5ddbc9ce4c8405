"""Run the unchanged `zpy.client` (zpy-zumo 1.4.0) documented workflow against a server.

Usage: python zpy_workflow.py URL TOKEN PROJECT_ID NAME   (in an interpreter that has zpy.client)
Prints one JSON line of what it saw; exits non-zero if the workflow fails.
"""

from __future__ import annotations

import json
import sys
import time
import zipfile
from pathlib import Path

import zpy.client as zpy


def main(url: str, token: str, project: str, name: str) -> None:
    zpy.init(auth_token=token, project_uuid=project, base_url=url)
    config = zpy.DatasetConfig("shapes")
    config.set("width", 64)
    config.set("height", 48)
    config.set("run\\.seed", 11)  # an escaped dot keeps the flat gin key `run.seed`
    zpy.generate(f"{name} warmup", config, 2)
    deadline = time.monotonic() + 120
    while zpy.Dataset(f"{name} warmup").state != "READY":
        assert time.monotonic() < deadline, "warm-up dataset never became READY"
        time.sleep(0.2)
    # same sim and config: its simruns are reused, so materialize downloads without the 60 s wait
    zpy.generate(name, config, 2, materialize=True)
    dataset = zpy.Dataset(name)
    archive = Path("/tmp") / f"{name.replace(' ', '_')}-{dataset.id[:8]}.zip"
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
    archive.unlink()
    files = zpy.preview(config, num_samples=2)
    result = {
        "available_params": [p["name"] for p in config.available_params],
        "state": dataset.state,
        "zip_entries": names,
        "preview_paths": [f["path"] for f in files],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:5])
