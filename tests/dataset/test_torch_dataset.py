"""`SynthDataset` over a published dataset, local and on (moto's) S3."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prefect_synthdata.exceptions import ConfigurationError, IntegrityError
from prefect_synthdata.storage import ObjectStore
from prefect_synthdata.storage.publish import publish
from tests.dataset.exports.conftest import SPLIT_OF_JOB, GroundTruth, build
from tests.storage.conftest import aws_env, bucket, moto_endpoint, s3_options, store

torch = pytest.importorskip("torch")
from prefect_synthdata.dataset.torch_dataset import SynthDataset, collate  # noqa: E402

__all__ = ["aws_env", "bucket", "moto_endpoint", "s3_options", "store"]


def test_yields_the_coco_ground_truth_as_tensors(
    store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root, manifest = build(tmp_path / "built", split=True)
    uri = publish(store, root, manifest).uri
    options = request.getfixturevalue("s3_options") if uri.startswith("s3://") else None
    truth = GroundTruth(
        root, __import__("json").loads((root / "annotations.coco.json").read_text())
    )
    seen = 0
    for split in ("train", "val"):
        data = SynthDataset(uri, split, cache_dir=tmp_path / "cache", storage=options)
        expected = [im for im in truth.coco["images"] if SPLIT_OF_JOB[im["job_index"]] == split]
        assert len(data) == len(expected)
        assert data.class_names == truth.class_names
        for image_tensor, target in data:
            image = next(im for im in truth.coco["images"] if im["id"] == target["image_id"])
            rgb = np.asarray(Image.open(root / image["file_name"]))
            assert image_tensor.shape == (3, image["height"], image["width"])
            assert torch.equal(
                (image_tensor * 255).round().byte().permute(1, 2, 0), torch.from_numpy(rgb.copy())
            )
            anns = [a for a in truth.annotations(image["id"]) if not a["iscrowd"]]
            assert target["boxes"].shape == (len(anns), 4)
            for box, ann in zip(target["boxes"].tolist(), anns, strict=True):
                x, y, w, h = ann["bbox"]
                assert box == [x, y, x + w, y + h]
            assert target["labels"].tolist() == [a["category_id"] for a in anns]
            assert target["masks"].shape == (len(anns), image["height"], image["width"])
            for mask, ann in zip(target["masks"], anns, strict=True):
                assert np.array_equal(mask.numpy().astype(bool), truth.mask(ann))
            assert target["track_id"].tolist() == [a["track_id"] for a in anns]
            depth_mm = truth.map(image, "depth_file")
            assert target["depth"].dtype == torch.float32
            assert np.allclose(target["depth"].numpy() * 1000.0, depth_mm, atol=1e-3)
            assert target["intrinsics"] is None  # shapes: orthographic camera
            seen += 1
    assert seen == 5
    train = SynthDataset(uri, "train", cache_dir=tmp_path / "cache", storage=options)
    empty = [t for _, t in train if len(t["labels"]) == 0]
    assert len(empty) == 1 and empty[0]["boxes"].shape == (0, 4) and empty[0]["masks"].shape[0] == 0
    images, targets = collate([train[0], train[1]])
    assert len(images) == len(targets) == 2


def test_refuses_a_tampered_or_incomplete_dataset(tmp_path: Path) -> None:
    root, manifest = build(tmp_path / "built", split=False)
    from prefect_synthdata.storage import LocalStore

    uri = publish(LocalStore(tmp_path / "pub"), root, manifest).uri
    assert len(SynthDataset(uri)) == 5
    with pytest.raises(ConfigurationError, match="no split 'val'; its splits: train"):
        SynthDataset(uri, "val")
    victim = Path(uri) / "images" / "000000" / "image.000000.depth.png"
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError, match=r"image\.000000\.depth\.png"):
        SynthDataset(uri)
    (Path(uri) / "_SUCCESS").unlink()
    with pytest.raises(Exception, match="not a complete dataset"):
        SynthDataset(uri)


def test_tabletop_gives_pinhole_intrinsics_and_metric_depth(tmp_path: Path) -> None:
    from prefect_synthdata.dataset.assemble import assemble_dataset
    from prefect_synthdata.engine.generators import get_generator
    from prefect_synthdata.engine.render import render_job
    from prefect_synthdata.storage import LocalStore

    params = {**get_generator("tabletop").spec.defaults(), "width": 64, "height": 48}
    render_job("tabletop", params, False, tmp_path / "job")
    (tmp_path / "job" / "job.json").write_text(json.dumps({"params": params}))
    manifest = assemble_dataset(
        [("job", tmp_path / "job")],
        tmp_path / "ds",
        name="tt",
        version="v1",
        provider="local",
        generator="tabletop",
        batch_id="b",
        is_preview=False,
    )
    uri = publish(LocalStore(tmp_path / "pub"), tmp_path / "ds", manifest).uri
    _, target = SynthDataset(uri)[0]
    labels = json.loads((tmp_path / "job" / "labels.json").read_text())
    K = labels["images"][0]["metadata"]["camera"]["K"]
    assert np.allclose(target["intrinsics"].numpy(), np.array(K), rtol=1e-6)
    assert target["depth"].max() > 0.1  # metres, not millimetres
