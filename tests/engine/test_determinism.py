"""The same generator, parameters and seed give byte-identical files on every run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prefect_synthdata.engine.generators import GENERATORS
from tests.conftest import subprocess_env
from tests.engine.conftest import render, small_params

RENDER_IN_CHILD = """
import json, sys
from pathlib import Path
from prefect_synthdata.engine.render import render_job
for generator, params in json.loads(sys.argv[1]).items():
    render_job(generator, params, False, Path(sys.argv[2]) / generator)
"""


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_rendering_twice_gives_identical_bytes(tmp_path: Path) -> None:
    jobs = {
        g: small_params(g, frames=2, seed=11, blur=0.7, noise_std=5.0) for g in sorted(GENERATORS)
    }
    for generator, params in jobs.items():
        render(generator, tmp_path / "here" / generator, **params)
    # a second run in a fresh interpreter with another hash seed: no process state leaks in
    subprocess.run(
        [sys.executable, "-c", RENDER_IN_CHILD, json.dumps(jobs), str(tmp_path / "child")],
        check=True,
        env=subprocess_env(PYTHONHASHSEED="123"),
        timeout=120,
    )
    for generator in jobs:
        first, second = files(tmp_path / "here" / generator), files(tmp_path / "child" / generator)
        assert sorted(first) == [
            "image.000000.cseg.png", "image.000000.depth.png", "image.000000.iseg.png", "image.000000.rgb.png",
            "image.000001.cseg.png", "image.000001.depth.png", "image.000001.iseg.png", "image.000001.rgb.png",
            "job.json", "labels.json",
        ]  # fmt: skip
        assert first == second


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_another_seed_gives_another_scene(generator: str, tmp_path: Path) -> None:
    render(generator, tmp_path / "a", seed=1)
    render(generator, tmp_path / "b", seed=2)
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a["image.000000.rgb.png"] != b["image.000000.rgb.png"]
    assert a["image.000000.iseg.png"] != b["image.000000.iseg.png"]
