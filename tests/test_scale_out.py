"""The generate flow runs unchanged on a local Dask cluster with two worker processes."""

from __future__ import annotations

from pathlib import Path

from prefect_dask import DaskTaskRunner
from pycocotools.coco import COCO

from prefect_synthdata import GenerateRequest
from prefect_synthdata.flows.generate import generate_dataset


def test_generate_on_dask_with_two_workers(tmp_path: Path) -> None:
    runner = DaskTaskRunner(
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True}
    )
    request = GenerateRequest(
        num_jobs=6,
        shard_size=2,
        params={"width": 64, "height": 64},
        dest=str(tmp_path),
        name="dask",
    )
    result = generate_dataset.with_options(task_runner=runner)(request)
    assert result.num_images == 6
    coco = COCO(str(Path(result.uri) / "annotations.coco.json"))
    assert (
        len(coco.getImgIds()) == 6 and len(coco.getAnnIds(iscrowd=False)) == result.num_annotations
    )
