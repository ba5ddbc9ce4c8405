"""The `yolo` export, checked and loaded by Ultralytics' own dataset code.

Ultralytics is installed without its CUDA torch (`.ci/run`: CPU torch plus
`ultralytics --no-deps`); its dataset checker (`check_det_dataset`) and dataset
class (`YOLODataset`, which parses and verifies every label file) need no
torchvision. Training itself is not run here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from prefect_synthdata.dataset.exports.outline import outline
from tests.dataset.exports.conftest import SPLIT_OF_JOB, Exported


@pytest.fixture
def ultralytics_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Ultralytics' data utilities with their settings under the test's folder and no
    font download (`check_det_dataset` fetches a plotting font; no network here)."""
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo-config"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    data_utils = pytest.importorskip("ultralytics.data.utils")
    monkeypatch.setattr(data_utils, "check_font", lambda *_: None)
    return data_utils


def _yolo_dataset(data: dict[str, Any], split: str, task: str) -> Any:
    from ultralytics.data.dataset import YOLODataset

    return YOLODataset(
        img_path=data[split], data=data, task=task, imgsz=96, augment=False, cache=False
    )


def test_data_yaml_passes_the_checker_and_lists_only_rgb_images(
    exported: Exported, ultralytics_offline: Any
) -> None:
    truth = exported.truth
    data = ultralytics_offline.check_det_dataset(str(truth.root / "yolo" / "data.yaml"))
    assert data["names"] == dict(enumerate(truth.class_names))
    assert data["nc"] == len(truth.class_names)
    for split in ("train", "val"):
        dataset = _yolo_dataset(data, split, "detect")
        files = sorted(
            Path(f).resolve().relative_to(truth.root).as_posix() for f in dataset.im_files
        )
        expected = sorted(
            im["file_name"] for im in truth.coco["images"] if SPLIT_OF_JOB[im["job_index"]] == split
        )
        assert files == expected
        assert all(f.endswith(".rgb.png") for f in files)


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_labels_match_the_coco_boxes_classes_and_masks(
    exported: Exported, ultralytics_offline: Any, task: str
) -> None:
    truth = exported.truth
    data = ultralytics_offline.check_det_dataset(str(truth.root / "yolo" / "data.yaml"))
    by_index = {
        i: c["id"] for i, c in enumerate(sorted(truth.coco["categories"], key=lambda c: c["id"]))
    }
    seen = 0
    for split in ("train", "val"):
        for label in _yolo_dataset(data, split, task).labels:
            file_name = Path(label["im_file"]).resolve().relative_to(truth.root).as_posix()
            image = truth.image(file_name)
            anns = [a for a in truth.annotations(image["id"]) if not a.get("iscrowd", 0)]
            width, height = image["width"], image["height"]
            assert label["shape"] == (height, width)
            assert [by_index[int(c)] for c in label["cls"][:, 0]] == [
                a["category_id"] for a in anns
            ]
            # boxes: normalised xywh centre, exactly the COCO box (up to the 6 decimals written)
            for box, ann in zip(label["bboxes"], anns, strict=True):
                x, y, w, h = ann["bbox"]
                expected = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
                assert np.allclose(box, expected, atol=2e-6), (file_name, ann["id"])
            if task == "segment":
                assert len(label["segments"]) == len(anns)
                for segment, ann in zip(label["segments"], anns, strict=True):
                    polygon = [(float(px) * width, float(py) * height) for px, py in segment]
                    mask = truth.mask(ann)
                    # filled at pixel centres, the polygon is the COCO mask, holes included
                    assert np.array_equal(_fill(polygon, width, height), mask), ann["id"]
                    # Ultralytics' rasteriser (cv2.fillPoly) also fills the pixels its
                    # edges touch, so its mask holds the COCO mask and a rim around it
                    drawn = ultralytics_offline.polygon2mask(
                        (height, width), [np.asarray(polygon).reshape(-1)], color=1
                    ).astype(bool)
                    assert (drawn | ~mask).all()
            seen += len(anns)
    assert seen == sum(1 for a in truth.coco["annotations"] if not a.get("iscrowd", 0)) > 0


def _fill(polygon: list[tuple[float, float]], width: int, height: int) -> np.ndarray:
    """Rasterise a corner-lattice polygon: pixel (r, c) is in if its centre is inside."""
    scale = 4  # draw at 4x so pixel centres fall between lattice lines
    canvas = Image.new("1", (width * scale, height * scale))
    ImageDraw.Draw(canvas).polygon([(x * scale, y * scale) for x, y in polygon], fill=1)
    return np.asarray(canvas)[scale // 2 :: scale, scale // 2 :: scale]


def test_outline_covers_exactly_the_mask_with_pieces_and_holes() -> None:
    mask = np.zeros((12, 14), bool)
    mask[1:5, 2:9] = True
    mask[2:4, 4:6] = False  # a hole
    mask[6:11, 9:13] = True  # a second piece
    mask[5, 1] = True  # a piece touching nothing
    polygon = outline(mask)
    xs, ys = [x for x, _ in polygon], [y for _, y in polygon]
    assert (min(xs), min(ys), max(xs), max(ys)) == (1, 1, 13, 11)
    assert np.array_equal(_fill([(float(x), float(y)) for x, y in polygon], 14, 12), mask)
    assert outline(np.zeros((3, 3), bool)) == []
