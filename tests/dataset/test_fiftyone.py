"""FiftyOne's COCO parser accepts the annotation file as is.

fiftyone is too heavy for the test extras (about 60 packages, a bundled MongoDB, and a
starlette Prefect's server cannot run with), so its parser runs only in an interpreter
named by `SYNTHDATA_FIFTYONE_PYTHON` (a venv made with `pip install fiftyone`), without
its database: `fiftyone.utils.coco.load_coco_detection_annotations`, then
`COCOObject.to_detection` (with masks), which builds and validates each `Detection`.

The always-on test checks the file against what that parser does: every annotation key
that is not a COCO key becomes a `Detection` attribute, so none may be a name FiftyOne
1.22 reserves on `Detection`: its read-only properties (`instance_id` among them, which
the engine's files used to carry) and its fields.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import subprocess_env
from tests.dataset.test_assemble import assemble, render_jobs

FIFTYONE_PYTHON = os.environ.get("SYNTHDATA_FIFTYONE_PYTHON")
COCO_KEYS = {"id", "image_id", "category_id", "bbox", "segmentation", "keypoints", "score",
             "area", "iscrowd"}  # fmt: skip
DETECTION_RESERVED = {
    "instance_id", "_id", "field_names", "has_mask",  # read-only properties
    "id", "tags", "label", "bounding_box", "mask", "mask_path", "confidence", "index",
    "attributes", "_cls",  # fields (`attributes` is also merged into the others on load)
}  # fmt: skip

PARSE = """
import json, sys
import fiftyone.core.labels as fol
import fiftyone.utils.coco as fouc

info, classes, supercategories, images, annotations = fouc.load_coco_detection_annotations(sys.argv[1])
detections, attributes = 0, set()
for image_id, objects in annotations.items():
    image = images[image_id]
    found = [o.to_detection((image["width"], image["height"]), classes, supercategories,
                            load_segmentation=True) for o in objects]
    fol.Detections(detections=found).validate()
    detections += len(found)
    for d in found:
        attributes.update(name for name, _ in d.iter_attributes())
print(json.dumps({"detections": detections, "attributes": sorted(attributes)}))
"""


@pytest.fixture(scope="module")
def coco_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small assembled video dataset with ignore regions."""
    root = tmp_path_factory.mktemp("fiftyone")
    jobs = render_jobs(root, "shapes", 2, frames=2, min_visible_pixels=100, min_objects=8)
    assemble(jobs, root / "ds")
    return root / "ds" / "annotations.coco.json"


def test_no_annotation_key_is_reserved_by_fiftyone(coco_file: Path) -> None:
    coco = json.loads(coco_file.read_text())
    extra = {key for ann in coco["annotations"] for key in ann} - COCO_KEYS
    assert extra == {"track_id", "video_id", "iseg_id", "visibility"}
    assert not extra & DETECTION_RESERVED
    assert {ann["iscrowd"] for ann in coco["annotations"]} == {0, 1}


@pytest.mark.skipif(not FIFTYONE_PYTHON, reason="set SYNTHDATA_FIFTYONE_PYTHON to run FiftyOne")
def test_fiftyone_parses_every_annotation(coco_file: Path) -> None:
    assert FIFTYONE_PYTHON is not None
    result = subprocess.run(
        [FIFTYONE_PYTHON, "-c", PARSE, str(coco_file)],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(FIFTYONE_DO_NOT_TRACK="true"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["detections"] == len(json.loads(coco_file.read_text())["annotations"])
    assert {"track_id", "video_id", "iseg_id", "visibility", "iscrowd"} <= set(parsed["attributes"])
