"""The seed-compatible `Session`/`Batch` API over real HTTP (reference server)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from prefect_synthdata.compat.infinity import Batch, DownloadError, Session
from prefect_synthdata.exceptions import (
    AuthenticationError,
    BatchTimeoutError,
    NotFoundError,
    ParameterValidationError,
    UnknownGeneratorError,
)
from tests.providers.conftest import TOKEN
from tests.reference_server import ServerProcess


@pytest.fixture
def session(server: ServerProcess) -> Session:
    return Session(token=TOKEN, generator="shapes", server=server.url)


def test_session_describes_and_validates(session: Session, server: ServerProcess) -> None:
    info = session.parameter_info
    assert info["width"]["type"] == "int" and "min" in info["width"]["options"]
    assert session.default_job == {name: p["default_value"] for name, p in info.items()}
    random_job = session.randomize_unspecified_params({"width": 64})
    assert random_job["width"] == 64 and set(random_job) == set(info)
    errors = session.validate_job_params([{"width": 64}, {"width": "wide", "bogus": 1}])
    assert errors[0] is None and "bogus" in errors[1] and "width" in errors[1]
    with pytest.raises(ParameterValidationError, match="job 1"):
        session.submit([{"width": 64}, {"bogus": 1}])
    assert session.estimate_samples([{"frames": 2}, {}]) == [2, 1]
    assert TOKEN not in repr(session) and TOKEN not in repr(session.provider)
    with pytest.raises(AuthenticationError):
        Session(token="bad-token", generator="shapes", server=server.url)
    with pytest.raises(UnknownGeneratorError):
        Session(token=TOKEN, generator="nope", server=server.url)


def test_submit_await_download_with_a_dataframe(session: Session, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([{"width": 64, "height": 64, "seed": 1}, {"width": 96, "height": 64}])
    batch = session.submit(frame, is_preview=True, batch_name="session-demo")
    assert batch.num_jobs == 2 and len(batch.job_ids) == 2
    assert [p["width"] for p in batch.job_params] == [64, 96]  # floats from the frame became ints
    assert isinstance(batch.job_params[0]["width"], int)
    completed = batch.await_completion(polling_interval=0.2, timeout=120)
    assert sorted(j.job_id for j in completed) == sorted(batch.job_ids)
    assert batch.get_num_jobs_remaining() == 0
    summary = batch.get_job_summary_data(batch.job_ids[0])
    assert summary["in_progress"] is False and summary["result_url"]
    with pytest.raises(NotFoundError):
        batch.get_job_summary_data("not-a-job")

    out = tmp_path / "out"
    batch.download(out)
    assert (out / "batch_id.txt").read_text() == batch.batch_id
    for job_id, params in batch.jobs.items():
        assert json.loads((out / job_id / "job.json").read_text())["params"] == params
    first = out / batch.job_ids[0] / "job.json"
    first.write_text("kept")
    batch.download(out)  # already downloaded jobs are skipped
    assert first.read_text() == "kept"
    batch.download(out, overwrite=True)
    assert first.read_text() != "kept"

    rerun = session.submit(batch.get_job_params_seeded_for_rerun(), is_preview=True)
    assert [p["state"] for p in rerun.job_params] == batch.job_ids
    assert [p["width"] for p in rerun.job_params] == [
        64,
        96,
    ]  # the server re-used the earlier jobs' params

    rebuilt = session.batch_from_api(batch.batch_id)
    assert (rebuilt.batch_id, rebuilt.jobs, rebuilt.is_preview) == (
        batch.batch_id,
        batch.jobs,
        True,
    )
    listed = session.get_batches_last_n_days(1)
    assert any(
        b["batch_id"] == batch.batch_id and isinstance(b["created"], datetime) for b in listed
    )
    usage = session.get_usage_stats_last_n_days(1)
    assert {"counts_by_generator", "start_time", "end_time"} <= set(usage)

    other = Batch.from_api(session.provider, session.submit([{}], is_preview=True).batch_id)
    with pytest.raises(DownloadError, match="holds batch"):
        other.download(out)  # a folder of another batch is refused


def test_await_completion_times_out(session: Session) -> None:
    batch = session.submit([{"width": 256, "height": 256, "frames": 30}])
    with pytest.raises(BatchTimeoutError):  # one status read, then the deadline has passed
        batch.await_completion(polling_interval=0.1, timeout=0.01)
