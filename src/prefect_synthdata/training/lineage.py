"""Weights saved beside a JSON that names the dataset they were trained on.

`save_model` writes `<folder>/model.pt` (the state dict and what rebuilds the model)
and `<folder>/lineage.json`: the dataset's URI, name, version and manifest sha256, the
split trained on and evaluated on, the training settings, the scores and the weights'
own sha256, so a model found later says where it came from.

Example:
    >>> lineage = read_lineage(Path("models/synthetic-shapes/1f0c3b2a9d4e"))  # doctest: +SKIP
    >>> lineage.manifest_sha256  # doctest: +SKIP
    '9d3f...'
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import BaseModel

from prefect_synthdata.dataset.manifest import sha256_file
from prefect_synthdata.training.detector import CenterNet

WEIGHTS = "model.pt"
LINEAGE = "lineage.json"


class Lineage(BaseModel):
    """Where a model came from and how good it is."""

    dataset_uri: str
    dataset_name: str
    dataset_version: str
    manifest_sha256: str
    train_split: str
    eval_split: str
    steps: int
    batch_size: int
    learning_rate: float
    seed: int
    map: float | None
    map50: float | None
    baseline_map: float | None
    final_loss: float | None
    weights_sha256: str = ""
    torch_version: str = torch.__version__


def save_model(model: CenterNet, lineage: Lineage, folder: Path) -> Lineage:
    """Write the weights, then the lineage with their sha256; returns that lineage."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"num_classes": model.num_classes, "width": model.width, "state_dict": model.state_dict()},
        folder / WEIGHTS,
    )
    lineage = lineage.model_copy(update={"weights_sha256": sha256_file(folder / WEIGHTS)})
    (folder / LINEAGE).write_text(lineage.model_dump_json(indent=2) + "\n")
    return lineage


def load_model(folder: Path) -> CenterNet:
    """The model saved in `folder`, in eval mode."""
    saved = torch.load(folder / WEIGHTS, weights_only=True)
    model = CenterNet(saved["num_classes"], saved["width"])
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def read_lineage(folder: Path) -> Lineage:
    """The lineage saved beside the weights in `folder`."""
    return Lineage.model_validate_json((folder / LINEAGE).read_text())
