"""Example downstream stage: train a small detector on a published dataset and score it.

`train_on_dataset` reads the dataset's train split through `SynthDataset` (every file
checked against the manifest), trains the plain-torch CenterNet of
`prefect_synthdata.training` for a bounded number of steps, scores it with COCOeval on
the val split next to a baseline that never looks at the pixels, and saves the weights
beside `lineage.json` (dataset URI, manifest sha256, settings, scores). The loss curve
and the scores are artifacts; the model is recorded as a Prefect asset whose upstream is
the dataset. `deployments/prefect.yaml` runs it whenever a dataset is published.
Needs the `torch` extra.

Example:
    >>> from prefect_synthdata.flows.train import train_on_dataset
    >>> report = train_on_dataset("./datasets/synthetic-shapes/1f0c3b2a9d4e", steps=300)  # doctest: +SKIP
    >>> report.map, report.baseline_map  # doctest: +SKIP
    (0.41, 0.02)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, Field

from prefect_synthdata import assets
from prefect_synthdata.artifacts import artifact_key, call_sync
from prefect_synthdata.exceptions import ConfigurationError
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage import StoreOptions
from prefect_synthdata.storage.publish import split_uri

if TYPE_CHECKING:
    from prefect_synthdata.training.lineage import Lineage

TORCH_MISSING = (
    "the train stage needs torch: pip install 'prefect-synthdata[torch]' (a CPU build is enough)"
)


class TrainReport(BaseModel):
    """What the train stage made of a dataset."""

    dataset_uri: str
    model_dir: str
    train_images: int
    eval_split: str
    eval_images: int
    steps: int
    seconds: float
    final_loss: float | None
    map: float | None = Field(description="COCO box mAP@[.5:.95] on the eval split.")
    map50: float | None
    baseline_map: float | None = Field(
        description="The same mAP of one mean-size box per class at the image centre."
    )
    baseline_map50: float | None


def _fmt(value: float | None) -> str:
    return "n/a (no objects)" if value is None else f"{value:.3f}"


def _report_markdown(report: TrainReport, lineage: Lineage, curve_uri: str) -> str:
    rows = [
        ("Dataset", f"`{report.dataset_uri}`"),
        ("Manifest sha256", f"`{lineage.manifest_sha256}`"),
        ("Model", f"`{report.model_dir}` (weights sha256 `{lineage.weights_sha256[:16]}...`)"),
        ("Trained on", f"split `{lineage.train_split}`, {report.train_images} images"),
        ("Steps", f"{report.steps} x {lineage.batch_size} images in {report.seconds:.1f} s"),
        ("Scored on", f"split `{report.eval_split}`, {report.eval_images} images"),
        ("mAP@[.5:.95] / mAP@.5", f"**{_fmt(report.map)}** / {_fmt(report.map50)}"),
        ("Baseline (centre box)", f"{_fmt(report.baseline_map)} / {_fmt(report.baseline_map50)}"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (
        f"# Detector trained on `{lineage.dataset_name}` version `{lineage.dataset_version}`"
        f"\n\n| | |\n|---|---|\n{table}\n\n## Loss\n\n![loss curve]({curve_uri})\n"
    )


@flow(name="train-on-dataset", log_prints=False)
def train_on_dataset(
    dataset_uri: str,
    steps: Annotated[int, Field(ge=1, le=100_000)] = 300,
    batch_size: Annotated[int, Field(ge=1, le=256)] = 16,
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 5e-3,
    seed: Annotated[int, Field(ge=0)] = 0,
    train_split: str = "train",
    eval_split: str = "val",
    models_dir: str | None = None,
    storage: StoreOptions | None = None,
) -> TrainReport:
    """Train a small detector on a published dataset and score it with COCOeval.

    Args:
        dataset_uri: URI of a published dataset version, as in the dataset-published event.
        steps: Optimiser steps (batches) to train for.
        batch_size: Images per step.
        learning_rate: Peak AdamW learning rate (one-cycle schedule).
        seed: Seed of the weights' initialisation and of the batches.
        train_split: Split to train on.
        eval_split: Split to score on; a dataset without it is scored on `train_split`
            (and the artifacts say so).
        models_dir: Where models go, as `<models_dir>/<name>/<version>/`; default
            `$SYNTHDATA_HOME/models`.
        storage: How to reach an s3:// dataset (endpoint, credentials...); by default
            boto3's own chain.
    """
    try:
        from prefect_synthdata.training import evaluate, fit
        from prefect_synthdata.training.curve import data_uri, loss_curve_png
        from prefect_synthdata.training.lineage import Lineage, save_model
    except ImportError as error:
        if error.name is None or error.name.split(".")[0] != "torch":
            raise
        raise ConfigurationError(TORCH_MISSING) from None

    logger = get_run_logger()
    _, name, version = split_uri(dataset_uri)
    train_data = fit.load_split(dataset_uri, train_split, storage)
    try:
        eval_data = fit.load_split(dataset_uri, eval_split, storage)
    except ConfigurationError:
        logger.warning("%s has no split %r: scoring on %r", dataset_uri, eval_split, train_split)
        eval_split, eval_data = train_split, train_data
    config = fit.TrainConfig(steps, batch_size, learning_rate, seed)
    model = fit.seeded_model(len(train_data.class_names), seed)
    started = time.perf_counter()
    losses = fit.train(model, train_data, config)
    seconds = time.perf_counter() - started

    category_ids = [c["id"] for c in train_data.coco["categories"]]
    found = evaluate.detections_of(
        fit.predict(model, eval_data.images), eval_data.image_ids, category_ids
    )
    score = evaluate.coco_map(eval_data.coco, found)
    baseline = evaluate.coco_map(
        eval_data.coco,
        evaluate.centre_baseline(
            train_data.boxes, train_data.labels, eval_data.coco["images"], category_ids
        ),
    )
    manifest = train_data.manifest
    folder = Path(models_dir) if models_dir else SynthDataSettings().home / "models"
    folder = folder / name / version
    lineage = save_model(
        model,
        Lineage(
            dataset_uri=dataset_uri,
            dataset_name=name,
            dataset_version=version,
            manifest_sha256=manifest.sha256(),
            train_split=train_split,
            eval_split=eval_split,
            steps=steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            map=score.map,
            map50=score.map50,
            baseline_map=baseline.map,
            final_loss=losses[-1] if losses else None,
        ),
        folder,
    )
    report = TrainReport(
        dataset_uri=dataset_uri,
        model_dir=str(folder),
        train_images=len(train_data.images),
        eval_split=eval_split,
        eval_images=len(eval_data.images),
        steps=steps,
        seconds=seconds,
        final_loss=lineage.final_loss,
        map=score.map,
        map50=score.map50,
        baseline_map=baseline.map,
        baseline_map50=baseline.map50,
    )
    _record(report, lineage, data_uri(loss_curve_png(losses)), losses)
    logger.info(
        "trained on %s: mAP %s (baseline %s), model in %s",
        dataset_uri,
        _fmt(score.map),
        _fmt(baseline.map),
        folder,
    )
    return report


def _record(report: TrainReport, lineage: Lineage, curve_uri: str, losses: list[float]) -> None:
    """The artifacts of a train run, and the model as an asset downstream of its dataset."""
    name = lineage.dataset_name
    call_sync(
        create_markdown_artifact,
        _report_markdown(report, lineage, curve_uri),
        key=artifact_key("train", name),
        description=f"Detector trained on {report.dataset_uri}",
    )
    every = max(len(losses) // 50, 1)
    call_sync(
        create_table_artifact,
        [{"step": i + 1, "loss": round(v, 5)} for i, v in enumerate(losses) if i % every == 0],
        key=artifact_key("train-loss", name),
        description=f"Training loss every {every} steps on {report.dataset_uri}",
    )
    dataset = assets.asset(report.dataset_uri, f"{name} {lineage.dataset_version}", "dataset")
    model = assets.asset(
        report.model_dir, f"detector on {name}", "CenterNet weights + lineage.json"
    )
    if dataset is not None and model is not None:
        assets.record_materialization(
            model,
            {"map": report.map, "manifest_sha256": lineage.manifest_sha256},
            upstream=[dataset],
        )
