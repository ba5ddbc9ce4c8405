"""A small CenterNet-style detector: each object is the peak of its class's heatmap.

The backbone reduces the image by 4 (`STRIDE`); per output cell the model predicts one
heatmap logit per class, the box size (log width and height in pixels) and the
sub-cell offset of the centre. Training targets put a Gaussian at each box centre on its
class's heatmap (focal loss, as in Zhou et al., "Objects as Points", 2019) and the size
and offset at the centre cell (L1). Decoding keeps the local maxima of the heatmaps.

Example:
    >>> import torch
    >>> model = CenterNet(num_classes=3)
    >>> out = model(torch.zeros(1, 3, 64, 64))
    >>> tuple(out.shape)
    (1, 7, 16, 16)
    >>> [tuple(d["boxes"].shape) for d in decode(out, max_detections=5)]
    [(5, 4)]
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 4
#: Heatmap bias at start, so the initial scores are about 1% (the paper's prior).
PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class CenterNet(nn.Module):
    """Backbone of strided 3x3 conv blocks down to stride 4, then a 1x1 head of
    `num_classes + 4` channels: heatmap logits, log size (w, h), centre offset (x, y)."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.width = width
        self.backbone = nn.Sequential(
            _block(3, width // 2, 2),
            _block(width // 2, width, 2),
            _block(width, width, 1),
            _block(width, 2 * width, 2),  # stride 8 for context...
            _block(2 * width, 2 * width, 1),
            nn.Upsample(scale_factor=2, mode="nearest"),  # ...back to stride 4
            _block(2 * width, width, 1),
        )
        self.head = nn.Conv2d(width, num_classes + 4, 1)
        bias = self.head.bias
        assert bias is not None  # Conv2d has a bias unless asked not to
        with torch.no_grad():
            bias[:num_classes].fill_(PRIOR_BIAS)
            bias[num_classes:].zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1], H and W multiples of 8 -> (B, C + 4, H / 4, W / 4)."""
        return torch.as_tensor(self.head(self.backbone(images)))


def targets(
    boxes: list[torch.Tensor], labels: list[torch.Tensor], num_classes: int, size: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Training targets of a batch: `boxes[i]` (N, 4) xyxy pixels, `labels[i]` (N,) class
    indices (0-based) of image i, images of `size` (H, W)."""
    height, width = size[0] // STRIDE, size[1] // STRIDE
    batch = len(boxes)
    heatmap = torch.zeros(batch, num_classes, height, width)
    regression = torch.zeros(batch, 4, height, width)
    mask = torch.zeros(batch, height, width, dtype=torch.bool)
    ys = torch.arange(height, dtype=torch.float32)[:, None]
    xs = torch.arange(width, dtype=torch.float32)[None, :]
    for i, (image_boxes, image_labels) in enumerate(zip(boxes, labels, strict=True)):
        for box, label in zip(image_boxes.tolist(), image_labels.tolist(), strict=True):
            x0, y0, x1, y1 = box
            w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
            cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
            col, row = min(int(cx), width - 1), min(int(cy), height - 1)
            sigma = max(min(w, h) / STRIDE / 6, 0.5)
            gaussian = torch.exp(-((xs - col) ** 2 + (ys - row) ** 2) / (2 * sigma**2))
            heatmap[i, label] = torch.maximum(heatmap[i, label], gaussian)
            regression[i, :, row, col] = torch.tensor(
                [math.log(w), math.log(h), cx - col, cy - row]
            )
            mask[i, row, col] = True
    return {"heatmap": heatmap, "regression": regression, "mask": mask}


def loss(output: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
    """Focal loss on the heatmaps (per object) plus L1 on size and offset at the centres."""
    num_classes = target["heatmap"].shape[1]
    scores = torch.sigmoid(output[:, :num_classes]).clamp(1e-4, 1 - 1e-4)
    gt = target["heatmap"]
    positive = gt.eq(1).float()
    focal = -(
        positive * (1 - scores) ** 2 * torch.log(scores)
        + (1 - positive) * (1 - gt) ** 4 * scores**2 * torch.log(1 - scores)
    ).sum()
    mask = target["mask"]
    num_objects = max(int(mask.sum()), 1)
    regression = output[:, num_classes:].permute(0, 2, 3, 1)[mask]
    wanted = target["regression"].permute(0, 2, 3, 1)[mask]
    l1 = F.l1_loss(regression, wanted, reduction="sum")
    return (focal + 0.1 * l1) / num_objects


def decode(output: torch.Tensor, max_detections: int = 100) -> list[dict[str, Any]]:
    """Per image the `max_detections` best local maxima of the heatmaps: `boxes` (K, 4)
    xyxy pixels, `scores` (K,), `labels` (K,) class indices (0-based)."""
    batch, channels, height, width = output.shape
    num_classes = channels - 4
    scores = torch.sigmoid(output[:, :num_classes])
    peaks = scores * (F.max_pool2d(scores, 3, stride=1, padding=1) == scores)
    top, index = peaks.reshape(batch, -1).topk(min(max_detections, peaks[0].numel()))
    labels = index // (height * width)
    cell = index % (height * width)
    rows, cols = cell // width, cell % width
    results = []
    for i in range(batch):
        reg = output[i, num_classes:, rows[i], cols[i]]  # (4, K)
        w, h = reg[0].exp(), reg[1].exp()
        cx = (cols[i] + reg[2]) * STRIDE
        cy = (rows[i] + reg[3]) * STRIDE
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)
        results.append({"boxes": boxes, "scores": top[i], "labels": labels[i]})
    return results
