"""Example downstream stage: open a published dataset and learn something real from it.

`train_on_dataset` fetches a published version (verifying every file against its
manifest), computes per-class statistics of the COCO annotations and fits a
nearest-centroid classifier that tells shapes apart from their box geometry (fill
ratio, aspect ratio, size), scored on a held-out split against the majority-class
baseline. `deployments/prefect.yaml` runs it whenever a dataset is published.

Example:
    >>> from prefect_synthdata.flows.train import train_on_dataset
    >>> report = train_on_dataset("./datasets/synthetic-shapes/1f0c3b2a9d4e")  # doctest: +SKIP
    >>> report.classes[0].name  # doctest: +SKIP
    'circle'
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pycocotools.coco import COCO
from pydantic import BaseModel, Field

from prefect_synthdata.artifacts import artifact_key, call_sync
from prefect_synthdata.dataset.manifest import ANNOTATIONS
from prefect_synthdata.destinations import open_destination
from prefect_synthdata.settings import SynthDataSettings
from prefect_synthdata.storage import StoreOptions
from prefect_synthdata.storage.publish import fetch_dataset, split_uri


class ClassStats(BaseModel):
    """Statistics of one category's instances."""

    name: str
    instances: int
    images: int
    mean_area: float
    mean_fill: float = Field(description="Mean of mask area / box area.")
    mean_aspect: float = Field(description="Mean of box width / height.")


class TrainReport(BaseModel):
    """What the train stage learnt from a dataset."""

    dataset_uri: str
    num_images: int
    num_annotations: int
    classes: list[ClassStats]
    test_instances: int
    accuracy: float | None = Field(description="Nearest-centroid accuracy on the held-out images.")
    baseline_accuracy: float | None = Field(
        description="Accuracy of always guessing the commonest class."
    )


def features(ann: dict[str, Any]) -> list[float]:
    """Shape features of one instance: fill ratio, log aspect ratio, log area."""
    _, _, w, h = ann["bbox"]
    return [
        ann["area"] / max(w * h, 1.0),
        math.log(max(w, 1.0) / max(h, 1.0)),
        math.log(max(ann["area"], 1.0)),
    ]


def class_stats(coco: COCO) -> list[ClassStats]:
    """Per-category counts and geometry means; a category with no instances is listed with zeros."""
    out = []
    for cat in coco.loadCats(coco.getCatIds()):
        anns = coco.loadAnns(coco.getAnnIds(catIds=[cat["id"]], iscrowd=False))
        if not anns:
            out.append(
                ClassStats(
                    name=cat["name"],
                    instances=0,
                    images=0,
                    mean_area=0.0,
                    mean_fill=0.0,
                    mean_aspect=0.0,
                )
            )
            continue
        feats = np.array([features(a) for a in anns])
        out.append(
            ClassStats(
                name=cat["name"],
                instances=len(anns),
                images=len({a["image_id"] for a in anns}),
                mean_area=float(np.mean([a["area"] for a in anns])),
                mean_fill=float(feats[:, 0].mean()),
                mean_aspect=float(np.exp(feats[:, 1]).mean()),
            )
        )
    return out


def held_out(image_id: int, fraction: float) -> bool:
    """A deterministic split by image: the same image is always on the same side."""
    return zlib.crc32(str(image_id).encode()) % 1000 < fraction * 1000


def fit_and_score(coco: COCO, holdout_fraction: float) -> tuple[int, float | None, float | None]:
    """Fit per-class feature centroids on training images; score on held-out images.

    Returns (test instances, accuracy, majority-class baseline accuracy).
    """
    anns = coco.loadAnns(coco.getAnnIds(iscrowd=False))  # ignore regions are not objects
    train = [a for a in anns if not held_out(a["image_id"], holdout_fraction)]
    test = [a for a in anns if held_out(a["image_id"], holdout_fraction)]
    if not train or not test:
        return len(test), None, None
    x_train = np.array([features(a) for a in train])
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    labels = sorted({a["category_id"] for a in train})
    centroids = np.array(
        [
            ((x_train[[a["category_id"] == c for a in train]] - mean) / std).mean(axis=0)
            for c in labels
        ]
    )
    x_test = (np.array([features(a) for a in test]) - mean) / std
    predicted = [
        labels[i]
        for i in np.argmin(((x_test[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)
    ]
    truth = [a["category_id"] for a in test]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    commonest = Counter(a["category_id"] for a in train).most_common(1)[0][0]
    baseline = float(np.mean([t == commonest for t in truth]))
    return len(test), accuracy, baseline


@flow(name="train-on-dataset", log_prints=False)
def train_on_dataset(
    dataset_uri: str,
    holdout_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.25,
    storage: StoreOptions | None = None,
) -> TrainReport:
    """Fetch and verify a published dataset, compute class statistics and fit a small classifier.

    Args:
        dataset_uri: URI of a published dataset version, as in the dataset-published event.
        holdout_fraction: Share of the images held out to score the classifier.
        storage: How to reach an s3:// dataset (endpoint, credentials...); by default
            boto3's own chain.
    """
    logger = get_run_logger()
    root, name, version = split_uri(dataset_uri)
    local = SynthDataSettings().home / "train" / name / version
    manifest = fetch_dataset(open_destination(root, storage), name, version, local)
    coco = COCO(str(Path(local) / ANNOTATIONS))
    stats = class_stats(coco)
    tested, accuracy, baseline = fit_and_score(coco, holdout_fraction)
    report = TrainReport(
        dataset_uri=dataset_uri,
        num_images=manifest.num_images,
        num_annotations=manifest.num_annotations,
        classes=stats,
        test_instances=tested,
        accuracy=accuracy,
        baseline_accuracy=baseline,
    )
    call_sync(
        create_table_artifact,
        [s.model_dump() for s in stats],
        key=artifact_key("class-stats", name),
        description=f"Classes of {dataset_uri}",
    )
    score = (
        "n/a (too few images to hold some out)"
        if accuracy is None
        else f"{accuracy:.1%} (baseline {baseline:.1%})"
    )
    call_sync(
        create_markdown_artifact,
        f"# Trained on `{name}` version `{version}`\n\n{manifest.num_images} images, "
        f"{manifest.num_annotations} annotations, {len(stats)} classes.\n\n"
        f"Nearest-centroid shape classifier on {tested} held-out instances: **{score}**\n",
        key=artifact_key("train", name),
        description=f"Train stage on {dataset_uri}",
    )
    logger.info("trained on %s: %d classes, accuracy %s", dataset_uri, len(stats), score)
    return report
