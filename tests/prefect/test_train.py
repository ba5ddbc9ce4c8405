"""The train stage through the real flow on a published dataset with splits (tiny size)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

from prefect_synthdata.dataset.manifest import MANIFEST, Manifest
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.flows import GenerateRequest, generate_dataset, train_on_dataset
from prefect_synthdata.training import evaluate, fit
from prefect_synthdata.training.lineage import load_model, read_lineage

pytest.importorskip("torch")

SPLITS = {"train": 0.6, "val": 0.4}


@pytest.fixture
def published_with_splits(synthdata_home: Path, tmp_path: Path) -> str:
    """A published 64x64 shapes dataset of 10 images, split train/val by job."""
    request = GenerateRequest(
        credentials="local",  # type: ignore[arg-type]
        params={"width": 64, "height": 64, "num_objects": 3},
        dest=str(tmp_path / "datasets"),
        poll_cap_seconds=0.2,
        name="train-tiny",
        num_jobs=10,
        splits=SPLITS,
    )
    return generate_dataset(request).uri


async def _artifacts(flow_run_id: object) -> dict[str, Any]:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {str(a.key): a for a in found}


async def _materializations(asset_key: str) -> list[Any]:
    """The materialization events of an asset (they reach the API asynchronously)."""
    events: list[Any] = []
    async with get_client() as client:
        for _ in range(50):
            page = await client.read_events(
                EventFilter(
                    event=EventNameFilter(name=["prefect.asset.materialization.succeeded"]),
                    resource=EventResourceFilter(id=[asset_key]),
                ),
                limit=10,
            )
            events = page.events
            if events:
                break
            await asyncio.sleep(0.2)
    return events


def test_train_stage_trains_scores_saves_and_records_lineage(
    published_with_splits: str, tmp_path: Path
) -> None:
    uri = published_with_splits
    state = train_on_dataset(
        uri, steps=6, batch_size=4, models_dir=str(tmp_path / "models"), return_state=True
    )
    report = state.result()
    manifest = Manifest.model_validate_json((Path(uri) / MANIFEST).read_text())

    # model + lineage beside it, naming the dataset it came from
    folder = Path(report.model_dir)
    assert folder == tmp_path / "models" / "train-tiny" / Path(uri).name
    lineage = read_lineage(folder)
    assert lineage.dataset_uri == uri and lineage.manifest_sha256 == manifest.sha256()
    assert (lineage.train_split, lineage.eval_split, lineage.steps) == ("train", "val", 6)
    saved = json.loads((folder / "lineage.json").read_text())
    assert saved["map"] == report.map and saved["baseline_map"] == report.baseline_map
    model = load_model(folder)

    # the scores are COCOeval's, on the val split, for the model and the baseline alike
    train_split = fit.load_split(uri, "train")
    val = fit.load_split(uri, "val")
    assert report.eval_split == "val" and report.eval_images == len(val.images) > 0
    assert report.train_images == len(train_split.images) > 0
    assert report.map is not None and 0.0 <= report.map <= 1.0
    category_ids = [c["id"] for c in val.coco["categories"]]
    again = evaluate.coco_map(
        val.coco,
        evaluate.detections_of(fit.predict(model, val.images), val.image_ids, category_ids),
    )
    assert again.map == pytest.approx(report.map)  # the saved weights are the scored ones
    baseline = evaluate.coco_map(
        val.coco,
        evaluate.centre_baseline(
            train_split.boxes, train_split.labels, val.coco["images"], category_ids
        ),
    )
    assert report.baseline_map == baseline.map and 0.0 <= baseline.map <= 1.0  # type: ignore[operator]

    # artifacts, and the model's materialization with the dataset upstream
    model_key = folder.absolute().as_uri()
    artifacts = asyncio.run(_artifacts(state.state_details.flow_run_id))
    events = asyncio.run(_materializations(model_key))
    markdown = artifacts["train-train-tiny"].data
    assert uri in markdown and manifest.sha256() in markdown
    assert "![loss curve](data:image/png;base64," in markdown
    assert len(artifacts["train-loss-train-tiny"].data) > 0
    assert events, "no materialization event for the model"
    dataset_key = Path(uri).absolute().as_uri()
    assert {r.id for r in events[0].related if r.role == "asset"} == {dataset_key}
    # ...and the dataset's own materialization, recorded when it was published
    (published,) = asyncio.run(_materializations(dataset_key))
    assert published.payload["manifest_sha256"] == manifest.sha256()


def test_train_stage_without_a_val_split_scores_on_train(
    synthdata_home: Path, tmp_path: Path
) -> None:
    request = GenerateRequest(
        credentials="local",  # type: ignore[arg-type]
        params={"width": 64, "height": 64},
        dest=str(tmp_path / "datasets"),
        poll_cap_seconds=0.2,
        name="no-splits",
        num_jobs=2,
    )
    uri = generate_dataset(request).uri
    report = train_on_dataset(uri, steps=2, batch_size=2)
    assert report.eval_split == "train" and report.eval_images == 2
    assert read_lineage(Path(report.model_dir)).eval_split == "train"


def test_train_stage_names_the_extra_when_torch_is_missing(
    published_with_splits: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in [m for m in sys.modules if m.startswith("prefect_synthdata.training")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(ConfigurationError, match=r"prefect-synthdata\[torch\]"):
        train_on_dataset(published_with_splits, steps=1)


def test_train_stage_refuses_a_uri_that_is_not_a_dataset_version() -> None:
    with pytest.raises(ConfigurationError, match="not a dataset version URI"):
        train_on_dataset("nowhere", steps=1)
