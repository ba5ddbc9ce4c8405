"""CenterNet targets, decoding and loss: what is encoded decodes back to the same boxes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from prefect_synthdata.training import detector  # noqa: E402

BOXES = [
    torch.tensor([[4.0, 6.0, 30.0, 20.0], [40.0, 33.0, 61.0, 60.0]]),
    torch.tensor([[10.0, 10.0, 22.0, 50.0]]),
]
LABELS = [torch.tensor([0, 2]), torch.tensor([1])]


def perfect_output(wanted: dict[str, torch.Tensor]) -> torch.Tensor:
    """What a perfect model would output for `wanted`: the heatmaps' logits, the regression."""
    heat = wanted["heatmap"].clamp(1e-6, 1 - 1e-6)
    return torch.cat([torch.log(heat / (1 - heat)), wanted["regression"]], dim=1)


def test_targets_decode_back_to_the_boxes_and_labels() -> None:
    wanted = detector.targets(BOXES, LABELS, num_classes=3, size=(64, 64))
    assert wanted["heatmap"].shape == (2, 3, 16, 16) and int(wanted["mask"].sum()) == 3
    assert wanted["heatmap"].max() == 1.0
    for found, boxes, labels in zip(
        detector.decode(perfect_output(wanted), max_detections=len(BOXES[0])),
        BOXES,
        LABELS,
        strict=True,
    ):
        assert found["scores"].shape == (2,)
        strong = found["scores"] > 0.99
        order = torch.argsort(found["labels"][strong])
        assert found["labels"][strong][order].tolist() == sorted(labels.tolist())
        expected = boxes[torch.argsort(labels)]
        assert torch.allclose(found["boxes"][strong][order], expected, atol=1e-3)


def test_loss_is_lowest_for_the_perfect_output_and_has_gradients() -> None:
    wanted = detector.targets(BOXES, LABELS, num_classes=3, size=(64, 64))
    perfect = detector.loss(perfect_output(wanted), wanted)
    model = detector.CenterNet(num_classes=3)
    output = model(torch.rand(2, 3, 64, 64))
    untrained = detector.loss(output, wanted)
    untrained.backward()
    assert float(perfect) < 0.1 < float(untrained.detach())
    assert all(p.grad is not None for p in model.parameters())


def test_an_image_without_objects_has_empty_targets() -> None:
    wanted = detector.targets([torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.int64)], 2, (32, 32))
    assert wanted["heatmap"].sum() == 0 and not wanted["mask"].any()
    loss = detector.loss(detector.CenterNet(2)(torch.rand(1, 3, 32, 32)), wanted)
    assert torch.isfinite(loss)
