"""Checks of a generate request made before Prefect starts: every problem once, with suggestions."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_synthdata.params import GeneratorSpec, ParamOptions, ParamSpec
from prefect_synthdata.preflight import (
    PreflightError,
    check_generate,
    group_by_jobs,
    job_problems,
    suggestion,
)
from prefect_synthdata.providers import ProviderConfig
from prefect_synthdata.request import GenerationSpec
from prefect_synthdata.storage import StoreOptions

SPEC = GeneratorSpec(
    name="g",
    preview=False,
    params=[
        ParamSpec(name="width", type="int", default_value=64, options=ParamOptions(min=32)),
        ParamSpec(name="height", type="int", default_value=64, options=ParamOptions(min=32)),
    ],
)


def test_suggestion_names_the_closest_known_name_only_when_close() -> None:
    assert suggestion("widht", ["width", "height"]) == " (did you mean 'width'?)"
    assert suggestion("colour", ["width", "height"]) == ""


def test_a_problem_of_every_job_is_reported_once() -> None:
    assert job_problems(SPEC, [{"widht": 256}] * 50, is_preview=False) == [
        "unknown parameter 'widht' (did you mean 'width'?)"
    ]


def test_a_problem_of_some_jobs_names_them() -> None:
    jobs = [{"width": 1}, {}, {"width": 1}, {"height": 1}]
    assert job_problems(SPEC, jobs, is_preview=False) == [
        "jobs 0, 2: 'width' must be >= 32, got 1",
        "job 3: 'height' must be >= 32, got 1",
    ]


def test_many_jobs_are_counted_not_listed() -> None:
    assert group_by_jobs({"p": list(range(8))}, num_jobs=10) == ["jobs 0, 1, 2, 3, 4 and 3 more: p"]


def test_previews_of_a_generator_without_them() -> None:
    assert job_problems(SPEC, [{}], is_preview=True) == ["generator 'g' does not support previews"]


def test_every_problem_of_a_request_in_one_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    generation = GenerationSpec(name="bad/name", num_jobs=3, params={"widht": 2, "height": 1})
    with pytest.raises(PreflightError) as caught:
        check_generate(generation, ProviderConfig(), str(not_a_dir / "out"), StoreOptions())
    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("dataset name 'bad/name' must match")
    assert "is not a directory" in problems[1]
    assert problems[2:] == [
        "unknown parameter 'widht' (did you mean 'width'?)",
        "'height' must be >= 32, got 1",
    ]
    assert not (not_a_dir / "out").exists()


def test_unknown_generator_with_suggestion(tmp_path: Path) -> None:
    with pytest.raises(
        PreflightError, match=r"unknown generator 'shapez' \(did you mean 'shapes'\?\)"
    ):
        check_generate(
            GenerationSpec(generator="shapez"), ProviderConfig(), str(tmp_path), StoreOptions()
        )


def test_a_good_request_passes_and_a_block_provider_is_left_to_later(tmp_path: Path) -> None:
    check_generate(
        GenerationSpec(params={"width": 64}), ProviderConfig(), str(tmp_path), StoreOptions()
    )
    check_generate(GenerationSpec(generator="not-checked"), None, str(tmp_path), StoreOptions())


def test_aws_block_of_the_wrong_type(tmp_path: Path) -> None:
    options = StoreOptions(aws_block="gcs-bucket/x")
    with pytest.raises(PreflightError, match="--aws-block 'gcs-bucket/x' must be one of"):
        check_generate(GenerationSpec(), None, "s3://bucket/prefix", options)
