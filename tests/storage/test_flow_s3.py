"""End to end: the generate flow and the CLI publishing to S3 (moto over HTTP)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from pycocotools.coco import COCO

from prefect_synthdata.cli import main
from prefect_synthdata.exceptions import DestinationError
from prefect_synthdata.flows import (
    GenerateRequest,
    SweepAxis,
    SweepRequest,
    generate_dataset,
    sweep_datasets,
    train_on_dataset,
)
from prefect_synthdata.storage import StoreOptions, open_store
from prefect_synthdata.storage.publish import fetch_dataset, list_datasets

SMALL = {"width": 64, "height": 64}


def _signed_get(url: str) -> httpx.Response:
    """GET `url` signed with the test credentials (the bucket is private, as most are)."""
    request = AWSRequest(method="GET", url=url)
    S3SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(request)
    return httpx.get(url, headers=dict(request.headers), timeout=10)


async def _artifact(flow_run_id: Any, key: str) -> Any:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    (artifact,) = [a for a in found if a.key == key]
    return artifact


def test_generate_flow_publishes_to_s3(
    bucket: str, s3_options: StoreOptions, tmp_path: Path
) -> None:
    request = GenerateRequest(
        num_jobs=2,
        params=SMALL,
        name="shapes-s3",
        dest=f"s3://{bucket}/datasets",
        storage=s3_options,
    )
    state = generate_dataset(request, return_state=True)
    first = state.result()
    assert first.uri == f"s3://{bucket}/datasets/shapes-s3/{first.version}"
    # the link artifact is an http URL on the endpoint that opens the version's manifest,
    # and its description carries the s3:// URI as text
    link = asyncio.run(_artifact(state.state_details.flow_run_id, "dataset-shapes-s3"))
    url = re.search(r"\]\((http[^)]+)\)", str(link.data)).group(1)  # type: ignore[union-attr]
    assert (
        url
        == f"{s3_options.endpoint_url}/{bucket}/datasets/shapes-s3/{first.version}/manifest.json"
    )
    assert _signed_get(url).json()["version"] == first.version  # the object a reader opens
    assert first.uri in (link.description or "")
    assert first.files_uploaded > 0
    store = open_store(request.dest, s3_options)
    assert list_datasets(store) == {"shapes-s3": [first.version]}

    fetch_dataset(store, "shapes-s3", None, tmp_path / "train")
    coco = COCO(str(tmp_path / "train" / "annotations.coco.json"))
    assert len(coco.getImgIds()) == first.num_images
    assert all(
        (tmp_path / "train" / img["file_name"]).is_file() for img in coco.loadImgs(coco.getImgIds())
    )


def test_sweep_and_train_reach_s3_through_store_options(
    bucket: str, s3_options: StoreOptions
) -> None:
    """The sweep's preflight and the train flow's fetch use the endpoint given, not boto3's default."""
    base = GenerateRequest(
        num_jobs=2, params=SMALL, name="sweep-s3", dest=f"s3://{bucket}/sweeps", storage=s3_options
    )
    request = SweepRequest(base=base, axes=[SweepAxis(param="num_objects", values=[2, 4])])
    datasets = sweep_datasets(request)
    assert [d.uri.rsplit("/", 2)[0] for d in datasets] == [f"s3://{bucket}/sweeps"] * 2
    assert sorted(list_datasets(open_store(base.dest, s3_options))) == [d.name for d in datasets]

    report = train_on_dataset(datasets[1].uri, steps=2, storage=s3_options)
    assert report.dataset_uri == datasets[1].uri
    assert report.train_images == datasets[1].num_images == 2
    assert (report.eval_split, report.eval_images) == ("train", 2)  # no val split: scored on train


def test_generate_flow_refuses_a_missing_bucket_before_any_work(
    s3_options: StoreOptions, synthdata_home: Path
) -> None:
    request = GenerateRequest(
        num_jobs=1, params=SMALL, dest="s3://no-such-bucket/ds", storage=s3_options
    )
    with pytest.raises(DestinationError, match="does not exist"):
        generate_dataset(request)
    assert not (synthdata_home / "work").exists()
    assert not (synthdata_home / "local").exists()


def test_cli_generate_ls_and_fetch_on_s3(
    bucket: str, moto_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = f"s3://{bucket}/cli"
    endpoint = ["--endpoint-url", moto_endpoint]
    args = [
        "--jobs",
        "1",
        "--param",
        "width=64",
        "--param",
        "height=64",
        "--name",
        "cli-demo",
        "--version",
        "v1",
    ]
    assert main(["generate", *args, "--dest", dest, *endpoint]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{dest}/cli-demo/v1")

    assert (
        main(["datasets", "fetch", dest, "cli-demo", "--to", str(tmp_path / "data"), *endpoint])
        == 0
    )
    assert "files verified" in capsys.readouterr().out
    assert (tmp_path / "data" / "manifest.json").is_file()

    assert main(["datasets", "ls", dest, "--json", *endpoint]) == 0
    assert [(r["name"], r["version"]) for r in json.loads(capsys.readouterr().out)] == [
        ("cli-demo", "v1")
    ]

    assert main(["datasets", "ls", f"s3://no-such-bucket-{bucket[-8:]}", *endpoint]) == 2
    assert "does not exist" in capsys.readouterr().err
