"""`formats` from the surfaces users touch: the flow's request, the CLI and the job block."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from prefect_synthdata.blocks import SynthDataJob
from prefect_synthdata.cli import main
from prefect_synthdata.dataset.manifest import Manifest
from prefect_synthdata.flows import GenerateRequest, generate_dataset

SMALL = {"width": 64, "height": 64}


def _published(uri: str) -> Manifest:
    return Manifest.model_validate_json((Path(uri) / "manifest.json").read_bytes())


def test_flow_publishes_the_requested_exports_in_the_version(tmp_path: Path) -> None:
    base = {"credentials": "local", "params": SMALL, "num_jobs": 2, "dest": str(tmp_path / "out")}
    plain = generate_dataset(GenerateRequest(**base, poll_cap_seconds=0.2))  # type: ignore[arg-type]
    exported = generate_dataset(
        GenerateRequest(**base, formats=["yolo", "mot"], poll_cap_seconds=0.2)  # type: ignore[arg-type]
    )
    # the same batch (nothing rendered twice), another version: the content differs
    assert exported.batch_id == plain.batch_id
    assert exported.version != plain.version
    paths = {f.path for f in _published(exported.uri).files}
    assert {"yolo/data.yaml", "yolo/train.txt", "mot/seqmaps/train.txt"} <= paths
    assert not any(p.startswith(("hf/", "webdataset/")) for p in paths)
    assert not any(
        p.startswith(("yolo/", "labels/")) for p in {f.path for f in _published(plain.uri).files}
    )
    again = generate_dataset(
        GenerateRequest(**base, formats=["mot", "yolo"], poll_cap_seconds=0.2)  # type: ignore[arg-type]
    )
    assert (again.version, again.files_uploaded) == (exported.version, 0)


def test_unknown_format_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown export format"):
        GenerateRequest(formats=["tfrecord"], dest=str(tmp_path))


def test_cli_format_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["generate", "--jobs", "1", "--param", "width=64", "--param", "height=64"]
    common += ["--dest", str(tmp_path), "--name", "cli-exports", "--provider", "local"]
    assert main([*common, "--format", "parquet"]) == 2
    assert "unknown export format(s) 'parquet'" in capsys.readouterr().err
    assert not (tmp_path / "cli-exports").exists()
    assert main([*common, "--format", "webdataset", "--format", "hf"]) == 0
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    paths = {f.path for f in _published(uri).files}
    assert {"webdataset/train-000000.tar", "hf/train-00000-of-00001.parquet"} <= paths


def test_job_block_writes_its_formats(tmp_path: Path) -> None:
    job = SynthDataJob(
        num_jobs=1,
        params=SMALL,
        dest=str(tmp_path / "out"),
        formats=["yolo"],
        poll_cap_seconds=0.2,
    )

    async def run() -> str:
        started = await job.trigger()
        await started.wait_for_completion()
        return (await started.fetch_result()).uri

    uri = asyncio.run(run())
    assert "yolo/data.yaml" in {f.path for f in _published(uri).files}
