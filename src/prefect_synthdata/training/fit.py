"""A split of a published dataset as tensors, and a bounded training loop over it.

`load_split` reads every image of one split through `SynthDataset` (so the files are
checked against the manifest) into one padded tensor; `train` runs a fixed number of
optimiser steps on random batches of it and returns the loss of every step.

Example:
    >>> split = load_split("datasets/synthetic-shapes/1f0c3b2a9d4e", "train")  # doctest: +SKIP
    >>> model = CenterNet(len(split.class_names))  # doctest: +SKIP
    >>> losses = train(model, split, TrainConfig(steps=100))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from prefect_synthdata.dataset.manifest import Manifest
from prefect_synthdata.dataset.torch_dataset import SynthDataset
from prefect_synthdata.storage import StoreOptions
from prefect_synthdata.training import detector

#: Images are padded (bottom and right) to a multiple of this, what the backbone needs.
PAD_MULTIPLE = 8


@dataclass(frozen=True)
class TrainConfig:
    """How long and how to train: optimiser steps, images per step, AdamW learning rate, seed."""

    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 5e-3
    seed: int = 0


@dataclass
class SplitTensors:
    """One split in memory: images (N, 3, H, W) padded, per-image boxes (xyxy pixels)
    and class indices (0-based; labelled objects only, as `SynthDataset` gives them), the split's COCO dict, the dataset's manifest."""

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    image_ids: list[int]
    class_names: list[str]
    coco: dict[str, Any]
    manifest: Manifest


def load_split(uri: str, split: str, storage: StoreOptions | None = None) -> SplitTensors:
    """Every image of `split` of the published dataset at `uri`, padded to one size."""
    data = SynthDataset(uri, split, storage=storage)
    samples = [data[i] for i in range(len(data))]
    height = max((image.shape[1] for image, _ in samples), default=PAD_MULTIPLE)
    width = max((image.shape[2] for image, _ in samples), default=PAD_MULTIPLE)
    height, width = (-(-s // PAD_MULTIPLE) * PAD_MULTIPLE for s in (height, width))
    images = torch.zeros(len(samples), 3, height, width)
    boxes, labels = [], []
    for i, (image, target) in enumerate(samples):
        images[i, :, : image.shape[1], : image.shape[2]] = image
        boxes.append(target["boxes"])
        labels.append(
            torch.tensor(
                [data.split.class_index[int(c)] for c in target["labels"]], dtype=torch.int64
            )
        )
    return SplitTensors(
        images=images,
        boxes=boxes,
        labels=labels,
        image_ids=[int(t["image_id"]) for _, t in samples],
        class_names=data.class_names,
        coco=data.split.coco,
        manifest=data.manifest,
    )


def _flipped(
    images: torch.Tensor, boxes: list[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    width = images.shape[-1]
    return images.flip(-1), [
        torch.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], 1) for b in boxes
    ]


def seeded_model(num_classes: int, seed: int, width: int = 32) -> detector.CenterNet:
    """A new model whose initial weights depend only on `seed`."""
    torch.manual_seed(seed)
    return detector.CenterNet(num_classes, width)


def train(model: detector.CenterNet, data: SplitTensors, config: TrainConfig) -> list[float]:
    """`config.steps` AdamW steps on random batches (with random horizontal flips) of
    `data`; the loss of every step. Deterministic for a seed."""
    if len(data.images) == 0:
        raise ValueError("the training split has no images")
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=config.steps, pct_start=0.1
    )
    size = (data.images.shape[2], data.images.shape[3])
    model.train()
    losses = []
    for _ in range(config.steps):
        index = torch.randint(len(data.images), (config.batch_size,), generator=generator)
        images = data.images[index]
        boxes = [data.boxes[i] for i in index.tolist()]
        if torch.rand(1, generator=generator).item() < 0.5:
            images, boxes = _flipped(images, boxes)
        wanted = detector.targets(
            boxes, [data.labels[i] for i in index.tolist()], len(data.class_names), size
        )
        step_loss = detector.loss(model(images), wanted)
        optimiser.zero_grad()
        step_loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(step_loss.detach()))
    model.eval()
    return losses


def predict(
    model: detector.CenterNet, images: torch.Tensor, batch_size: int = 32
) -> list[dict[str, Any]]:
    """Decoded detections of every image, in batches, without gradients."""
    model.eval()
    out: list[dict[str, Any]] = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            out.extend(detector.decode(model(images[start : start + batch_size])))
    return out
