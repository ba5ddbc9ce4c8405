"""Preview, sweep and train flows on the local provider, under the harness API."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from pydantic import ValidationError

from prefect_synthdata.engine.generators import get_generator
from prefect_synthdata.exceptions import ConfigurationError, ParameterValidationError
from prefect_synthdata.flows import (
    GenerateRequest,
    PreviewRequest,
    SweepAxis,
    SweepRequest,
    generate_dataset,
    preview_generator,
    sweep_datasets,
)
from prefect_synthdata.storage import open_store
from prefect_synthdata.storage.publish import list_datasets

SMALL = {"width": 64, "height": 64}
SHAPES = get_generator("shapes").spec


@pytest.fixture
def local(synthdata_home: Path) -> Path:
    """The local provider's state folder (under the test's SYNTHDATA_HOME)."""
    return synthdata_home / "local"


def _base(local: Path, dest: Path, **kwargs: object) -> GenerateRequest:
    return GenerateRequest(
        credentials="local", params=SMALL, dest=str(dest), poll_cap_seconds=0.2, **kwargs
    )  # type: ignore[arg-type]


def _batches(local: Path) -> int:
    if not (local / "jobs.sqlite3").is_file():
        return 0
    with sqlite3.connect(local / "jobs.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM batches").fetchone()[0])


def test_preview_renders_frames_with_boxes_as_an_artifact(local: Path) -> None:
    params = {**SMALL, "min_visible_pixels": 1}
    request = PreviewRequest(
        credentials="local", num_frames=3, params=params, thumbnail_size=48, poll_cap_seconds=0.2
    )
    state = preview_generator(request, return_state=True)
    result = state.result()
    assert len(result.frames) == 3 and not result.errors
    for frame in result.frames:
        assert Path(frame.image).is_file()
        assert frame.num_objects == sum(frame.objects.values()) > 0
    # randomize (the default) samples unspecified parameters: frames differ in their parameters
    assert len({json.dumps(f.params, sort_keys=True) for f in result.frames}) == 3

    async def artifact() -> str:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
                )
            )
            (preview,) = [a for a in found if a.key == "preview-shapes"]
            return str(preview.data)

    markdown = asyncio.run(artifact())
    assert markdown.count("](data:image/png;base64,") == 3
    assert f"| 0 | {result.frames[0].num_objects} |" in markdown


def test_sweep_axes_grid_zip_and_linspace() -> None:
    grid = SweepRequest(
        axes=[
            SweepAxis(param="num_objects", start=2, stop=5, num=3),
            SweepAxis(param="noise_std", values=[0, 8]),
        ]
    )
    assert grid.points(SHAPES) == [
        {"num_objects": 2, "noise_std": 0},
        {"num_objects": 2, "noise_std": 8},
        {"num_objects": 4, "noise_std": 0},  # linspace 2, 3.5, 5 rounded for an int parameter
        {"num_objects": 4, "noise_std": 8},
        {"num_objects": 5, "noise_std": 0},
        {"num_objects": 5, "noise_std": 8},
    ]
    zipped = grid.model_copy(update={"mode": "zip"})
    with pytest.raises(ConfigurationError, match="zip needs axes of equal length"):
        zipped.points(SHAPES)
    with pytest.raises(ConfigurationError, match="has no parameter"):
        SweepRequest(axes=[SweepAxis(param="colour", values=[1])]).points(SHAPES)
    with pytest.raises(ValidationError, match="give either values or start, stop and num"):
        SweepAxis(param="noise_std", start=0)
    with pytest.raises(ValidationError, match="not both"):
        SweepAxis(param="noise_std", values=[1], num=2)


async def _batch_events(batch_ids: list[str], timeout: float = 30) -> list[Any]:
    """The batch events of `batch_ids` in the order they occurred, once all have arrived."""
    event_filter = EventFilter(
        event=EventNameFilter(prefix=["prefect-synthdata.batch."]),
        resource=EventResourceFilter(id=[f"prefect-synthdata.batch.{b}" for b in batch_ids]),
    )
    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while True:
            events = (await client.read_events(filter=event_filter, limit=50)).events
            if len(events) >= 2 * len(batch_ids) or time.monotonic() > deadline:
                return sorted(events, key=lambda e: e.occurred)
            await asyncio.sleep(0.5)


def test_sweep_publishes_one_dataset_per_point(local: Path, tmp_path: Path) -> None:
    request = SweepRequest(
        base=_base(local, tmp_path / "ds", name="sw", num_jobs=1),
        axes=[
            SweepAxis(param="num_objects", start=1, stop=3, num=2),
            SweepAxis(param="noise_std", values=[9.0]),
        ],
    )
    datasets = sweep_datasets(request)
    assert [d.name for d in datasets] == [
        "sw-000-num_objects-1-noise_std-9.0",
        "sw-001-num_objects-3-noise_std-9.0",
    ]
    assert sorted(list_datasets(open_store(str(tmp_path / "ds")))) == [d.name for d in datasets]
    # fan-out: both batches were submitted before the first one completed
    names = [
        e.event.rsplit(".", 1)[1]
        for e in asyncio.run(_batch_events([d.batch_id for d in datasets]))
    ]
    assert names == ["submitted", "submitted", "completed", "completed"]
    for dataset, (objects, noise) in zip(datasets, [(1, 9.0), (3, 9.0)], strict=True):
        params = json.loads((Path(dataset.uri) / "manifest.json").read_text())["job_params"]
        assert [(p["num_objects"], p["noise_std"]) for p in params] == [(objects, noise)]


def test_sweep_combined_and_state_pass_through(local: Path, tmp_path: Path) -> None:
    origin = generate_dataset(_base(local, tmp_path / "origin", name="origin", num_jobs=1))
    earlier = json.loads((Path(origin.uri) / "manifest.json").read_text())["job_ids"][0]
    request = SweepRequest(
        base=_base(local, tmp_path / "ds", name="combined", num_jobs=2),
        axes=[
            SweepAxis(param="state", values=[None, earlier]),
            SweepAxis(param="num_objects", values=[2, 5]),
        ],
        mode="zip",
        output="combined",
    )
    (dataset,) = sweep_datasets(request)
    assert dataset.num_images == 4
    params = json.loads((Path(dataset.uri) / "manifest.json").read_text())["job_params"]
    assert [(p["state"], p["num_objects"]) for p in params] == [
        (None, 2),
        (None, 2),
        (earlier, 5),
        (earlier, 5),
    ]


def test_sweep_checks_every_point_before_submitting(local: Path, tmp_path: Path) -> None:
    before = _batches(local)
    request = SweepRequest(
        base=_base(local, tmp_path / "ds"), axes=[SweepAxis(param="num_objects", values=[4, 999])]
    )
    with pytest.raises(ParameterValidationError, match="'num_objects' must be <= 64"):
        sweep_datasets(request)
    assert _batches(local) == before  # the valid point was not submitted either


def test_seed_per_day_moves_with_the_date_only() -> None:
    request = GenerateRequest(seed=5, seed_per_day=True)
    assert request.for_day(date(2026, 11, 21)).seed == 20261126
    assert request.for_day(date(2026, 11, 22)).seed == 20261127
    assert GenerateRequest(seed=5).for_day(date(2026, 11, 21)).seed == 5


def test_sweep_with_seed_per_day_pays_once_per_point(local: Path, tmp_path: Path) -> None:
    """Regression: each point was submitted by the sweep, then again by its sub-flow with the
    day's seed (another request key), so every point was paid twice."""
    request = SweepRequest(
        base=_base(
            local,
            tmp_path / "ds",
            name="daily",
            num_jobs=1,
            seed_per_day=True,
            # today's date picks the scene, which may hold no labelled object: this test
            # counts payments, so the quality gate is opened
            quality={"min_annotations": 0, "max_unlabelled_fraction": 1.0},
        ),
        axes=[SweepAxis(param="num_objects", values=[1, 2])],
    )
    datasets = sweep_datasets(request)
    assert len(datasets) == 2 and _batches(local) == 2
    seeds = {
        json.loads((Path(d.uri) / "manifest.json").read_text())["job_params"][0]["seed"]
        for d in datasets
    }
    assert len(seeds) == 1  # both points drew their scene from the same day's seed
