"""The training loop learns, saved weights come back with their lineage, the curve is a PNG."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from prefect_synthdata.training import fit  # noqa: E402
from prefect_synthdata.training.curve import data_uri, loss_curve_png  # noqa: E402
from prefect_synthdata.training.detector import CenterNet  # noqa: E402
from prefect_synthdata.training.lineage import Lineage, load_model, read_lineage, save_model  # noqa: E402


def squares(n: int) -> fit.SplitTensors:
    """Black images with one white square each, at a different place."""
    images = torch.zeros(n, 3, 32, 32)
    boxes = []
    for i in range(n):
        x, y = 2 + 3 * i, 20 - 2 * i
        images[i, :, y : y + 8, x : x + 8] = 1.0
        boxes.append(torch.tensor([[float(x), float(y), x + 8.0, y + 8.0]]))
    return fit.SplitTensors(
        images=images,
        boxes=boxes,
        labels=[torch.tensor([0])] * n,
        image_ids=list(range(1, n + 1)),
        class_names=["square"],
        coco={},
        manifest=None,  # type: ignore[arg-type]
    )


def test_training_lowers_the_loss_and_is_deterministic() -> None:
    config = fit.TrainConfig(steps=40, batch_size=4, learning_rate=1e-2, seed=3)
    model = fit.seeded_model(1, seed=3, width=16)
    losses = fit.train(model, squares(6), config)
    assert len(losses) == 40 and sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    again = fit.train(fit.seeded_model(1, seed=3, width=16), squares(6), config)
    assert again == losses
    found = fit.predict(model, squares(6).images[:2])
    assert [tuple(f["boxes"].shape) for f in found] == [(64, 4), (64, 4)]  # every cell of 8x8


def test_saved_weights_load_back_with_their_lineage(tmp_path: Path) -> None:
    model = CenterNet(2, width=8).eval()
    lineage = Lineage(
        dataset_uri="s3://bucket/cv/shapes/v1", dataset_name="shapes", dataset_version="v1",
        manifest_sha256="ab" * 32, train_split="train", eval_split="val", steps=1, batch_size=1,
        learning_rate=0.1, seed=0, map=0.5, map50=0.7, baseline_map=0.01, final_loss=1.0,
    )  # fmt: skip
    saved = save_model(model, lineage, tmp_path / "m")
    assert read_lineage(tmp_path / "m") == saved and len(saved.weights_sha256) == 64
    loaded = load_model(tmp_path / "m")
    image = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded(image), model(image))


def test_loss_curve_is_a_png_data_uri() -> None:
    png = loss_curve_png([5.0 / (i + 1) for i in range(100)])
    assert Image.open(io.BytesIO(png)).size == (480, 240)
    assert data_uri(png).startswith("data:image/png;base64,iVBOR")
    assert loss_curve_png([])[:4] == b"\x89PNG"
