"""COCOeval scoring of detections and the centre-box baseline."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from prefect_synthdata.training import evaluate  # noqa: E402


def ground_truth(annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "images": [{"id": 1, "width": 64, "height": 64}, {"id": 2, "width": 64, "height": 32}],
        "categories": [{"id": 3, "name": "circle"}, {"id": 7, "name": "star"}],
        "annotations": annotations,
    }


ANNS = [
    {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
    {"id": 2, "image_id": 2, "category_id": 7, "bbox": [30, 4, 10, 20], "area": 200, "iscrowd": 0},
]


def test_exact_detections_score_one_and_misplaced_ones_zero() -> None:
    exact = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in ANNS
    ]
    score = evaluate.coco_map(ground_truth(ANNS), exact)
    assert (score.map, score.map50) == (pytest.approx(1.0), pytest.approx(1.0))
    shifted = [{**d, "bbox": [d["bbox"][0] + 30, *d["bbox"][1:]]} for d in exact]
    assert evaluate.coco_map(ground_truth(ANNS), shifted) == evaluate.Score(0.0, 0.0)
    wrong_class = [{**d, "category_id": 10 - d["category_id"]} for d in exact]
    assert evaluate.coco_map(ground_truth(ANNS), wrong_class).map == 0.0


def test_no_detections_score_zero_and_no_objects_score_none() -> None:
    assert evaluate.coco_map(ground_truth(ANNS), []) == evaluate.Score(0.0, 0.0)
    crowd_only = [{**ANNS[0], "iscrowd": 1}]
    assert evaluate.coco_map(ground_truth(crowd_only), []) == evaluate.Score(None, None)


def test_detections_of_turns_xyxy_and_class_indices_into_coco_results() -> None:
    predictions = [
        {
            "boxes": torch.tensor([[10.0, 10.0, 30.0, 30.0]]),
            "scores": torch.tensor([0.5]),
            "labels": torch.tensor([1]),
        }
    ]
    (row,) = evaluate.detections_of(predictions, image_ids=[2], category_ids=[3, 7])
    assert row == {"image_id": 2, "category_id": 7, "bbox": [10.0, 10.0, 20.0, 20.0], "score": 0.5}


def test_centre_baseline_puts_each_class_mean_box_at_every_image_centre() -> None:
    boxes = [
        torch.tensor([[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 30.0, 40.0]]),
        torch.tensor([[5.0, 5.0, 9.0, 9.0]]),
    ]
    labels = [torch.tensor([0, 0]), torch.tensor([1])]
    rows = evaluate.centre_baseline(boxes, labels, ground_truth([])["images"], category_ids=[3, 7])
    by_key = {(r["image_id"], r["category_id"]): r for r in rows}
    assert len(rows) == 4
    assert by_key[1, 3]["bbox"] == [22.0, 17.0, 20.0, 30.0] and by_key[1, 3][
        "score"
    ] == pytest.approx(2 / 3)
    assert by_key[2, 7]["bbox"] == [30.0, 14.0, 4.0, 4.0] and by_key[2, 7][
        "score"
    ] == pytest.approx(1 / 3)
    # scored exactly like the model: a centred box that matches an object counts
    centred = [
        {"id": 1, "image_id": 2, "category_id": 7, "bbox": [30, 14, 4, 4], "area": 16, "iscrowd": 0}
    ]
    on_image_2 = [r for r in rows if r["image_id"] == 2]
    assert evaluate.coco_map(ground_truth(centred), on_image_2).map == pytest.approx(1.0)
