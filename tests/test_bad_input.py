"""Bad input fails before anything is submitted, and nothing is written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from prefect_synthdata import GenerateRequest, generate_dataset
from prefect_synthdata.exceptions import (
    ConfigurationError,
    DestinationError,
    ParameterValidationError,
    UnknownGeneratorError,
)


def _submitted(home: Path) -> int:
    db = home / "local" / "jobs.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0])


@pytest.mark.parametrize(
    ("overrides", "error", "words"),
    [
        ({"generator": "nope"}, UnknownGeneratorError, ["'nope'", "shapes"]),
        ({"params": {"colour": 3}}, ParameterValidationError, ["unknown parameter 'colour'"]),
        ({"params": {"width": 5}}, ParameterValidationError, ["'width' must be >= 32"]),
        ({"params": {"width": "wide"}}, ParameterValidationError, ["'width' must be int"]),
        ({"params": {"width": 64.5}}, ParameterValidationError, ["'width' must be an int"]),
        (
            {"params": {"background": "plaid"}},
            ParameterValidationError,
            ["'background' must be one of"],
        ),
        ({"params": {"state": "not-a-uuid"}}, ParameterValidationError, ["'state' must be a uuid"]),
        ({"name": "../escape"}, ConfigurationError, ["dataset name '../escape'"]),
        ({"version": "a/b"}, ConfigurationError, ["dataset version 'a/b'"]),
        ({"dest": "ftp://host/x"}, ConfigurationError, ["unsupported destination"]),
    ],
)
def test_bad_request_fails_before_submission(
    tmp_path: Path, synthdata_home: Path, overrides: dict, error: type, words: list[str]
) -> None:
    request = GenerateRequest(**{"num_jobs": 2, "dest": str(tmp_path / "out"), **overrides})
    with pytest.raises(error) as info:
        generate_dataset(request)
    for word in words:
        assert word in str(info.value)
    assert _submitted(synthdata_home) == 0
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_every_problem_of_every_job_is_reported(tmp_path: Path, synthdata_home: Path) -> None:
    request = GenerateRequest(
        job_params=[{"width": 1}, {"height": 99999, "bogus": True}, {"noise_std": "loud"}],
        dest=str(tmp_path),
    )
    with pytest.raises(ParameterValidationError) as info:
        generate_dataset(request)
    assert info.value.problems == [
        "job 0: 'width' must be >= 32, got 1",
        "job 1: unknown parameter 'bogus'",
        "job 1: 'height' must be <= 2048, got 99999",
        "job 2: 'noise_std' must be float, got 'loud'",
    ]
    assert _submitted(synthdata_home) == 0


@pytest.mark.parametrize("count", [0, -3])
def test_job_count_must_be_positive(count: int) -> None:
    with pytest.raises(ValidationError, match="num_jobs"):
        GenerateRequest(num_jobs=count)


def test_unwritable_destination(tmp_path: Path, synthdata_home: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory must go")
    with pytest.raises(DestinationError, match="not writable"):
        generate_dataset(GenerateRequest(num_jobs=1, dest=str(blocker / "out")))
    assert _submitted(synthdata_home) == 0
    assert blocker.read_text() == "a file where a directory must go"


def test_preview_on_generator_without_previews_is_rejected() -> None:
    from prefect_synthdata.params import GeneratorSpec, ParamSpec, validate_jobs

    spec = GeneratorSpec(
        name="video-only", params=[ParamSpec(name="n", type="int", default_value=1)], preview=False
    )
    with pytest.raises(ParameterValidationError, match="does not support previews"):
        validate_jobs(spec, [{}], is_preview=True)


def test_corrupt_local_state_database_is_named(synthdata_home: Path) -> None:
    from prefect_synthdata.exceptions import StateFileError
    from prefect_synthdata.providers.local import LocalProvider

    database = synthdata_home / "local" / "jobs.sqlite3"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"not a database at all " * 300)
    with pytest.raises(StateFileError) as info:
        LocalProvider(synthdata_home / "local", workers=1)
    message = str(info.value)
    assert str(database) in message and "file is not a database" in message
    assert "move it away or use another state directory" in message
    assert "\n" not in message and not info.value.retryable
    assert database.read_bytes().startswith(b"not a database")  # left as it was
