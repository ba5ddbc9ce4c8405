"""The results store: a directory or an S3 prefix (moto's server over real HTTP).

A job on S3 is complete only once its marker is written, after every other object; a
half-written job is rendered again, never served. The job zip is pre-signed on the
store's endpoint and downloads through the HTTP providers' bounded download path.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from pydantic import SecretStr

from prefect_synthdata.engine.jobs import JobService
from prefect_synthdata.engine.render import render_job
from prefect_synthdata.engine.results import (
    COMPLETE,
    DirectoryResults,
    S3Results,
    open_results,
    results_location,
    write_job_zip,
)
from prefect_synthdata.exceptions import ConfigurationError, NotFoundError, ServerResponseError
from prefect_synthdata.providers.http import HttpClient, RetryPolicy
from prefect_synthdata.providers.infinity import download_job
from prefect_synthdata.storage import StoreOptions
from tests.engine.conftest import small_params
from tests.storage.conftest import aws_env, bucket, moto_endpoint, s3_client  # noqa: F401


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def s3_results(bucket: str, moto_endpoint: str, tmp_path: Path) -> S3Results:  # noqa: F811
    results = open_results(
        f"s3://{bucket}/renders", tmp_path / "results", StoreOptions(endpoint_url=moto_endpoint)
    )
    assert isinstance(results, S3Results)
    return results


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """One small job rendered into a folder (the bytes every store must give back)."""
    out = tmp_path / "rendered" / "job-1"
    render_job("shapes", small_params("shapes", frames=2), False, out)
    return out


def publish_copy(results: S3Results | DirectoryResults, job_id: str, source: Path) -> None:
    scratch = results.scratch(job_id, "host:1")
    scratch.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, scratch)
    results.publish(job_id, scratch)
    assert not scratch.exists()  # the scratch is consumed


def test_s3_results_round_trip_byte_identical(
    s3_results: S3Results,
    rendered: Path,
    bucket: str,  # noqa: F811
    moto_endpoint: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert not s3_results.complete("job-1")
    publish_copy(s3_results, "job-1", rendered)

    assert s3_results.complete("job-1")
    keys = {o["Key"] for o in s3_client(moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"renders/job-1.zip", f"renders/job-1{COMPLETE}"}  # two objects a job
    s3_results.copy_to("job-1", tmp_path / "copy")
    assert files(tmp_path / "copy") == files(rendered)
    assert s3_results.files("job-1") == [(n, len(b)) for n, b in files(rendered).items()]
    cached = s3_results.local_dir("job-1")
    assert files(cached) == files(rendered) and s3_results.local_dir("job-1") == cached

    url = s3_results.zip_url("job-1", ttl_seconds=60)
    assert url is not None and urlsplit(url).netloc == urlsplit(moto_endpoint).netloc
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60&" in url  # SigV4, the given TTL
    expected_zip = tmp_path / "expected.zip"
    write_job_zip("job-1", rendered, expected_zip)
    assert requests.get(url, timeout=10).content == expected_zip.read_bytes()


def test_a_pre_signed_url_downloads_through_the_bounded_client_path(
    s3_results: S3Results, rendered: Path, tmp_path: Path
) -> None:
    publish_copy(s3_results, "job-1", rendered)
    url = s3_results.zip_url("job-1", ttl_seconds=60)
    assert url is not None
    server = "http://127.0.0.1:1/"  # the API server: a different origin, so no token is sent
    download_job(HttpClient(server, SecretStr("tok")), url, "job-1", tmp_path / "job-1")
    assert files(tmp_path / "job-1") == files(rendered)

    tight = HttpClient(server, SecretStr("tok"), retry=RetryPolicy(max_download_bytes=1000))
    with pytest.raises(
        ServerResponseError, match=r"announces \d+ bytes where 1000 bytes were the most allowed"
    ):
        tight.download(url, tmp_path / "too-big.zip")
    assert not list(tmp_path.glob("too-big.zip*"))


def test_a_half_written_job_is_rendered_again_never_served(
    s3_results: S3Results,
    rendered: Path,
    bucket: str,  # noqa: F811
    moto_endpoint: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    service = JobService(tmp_path / "state", workers=1, results=s3_results)
    try:
        params = small_params("shapes", frames=2)
        batch = service.submit("me", "b", "shapes", [params], is_preview=False)
        job_id = batch.job_ids[0]
        assert service.wait(batch.batch_id, timeout=120).succeeded == [job_id]
        s3_client(moto_endpoint).delete_object(
            Bucket=bucket, Key=f"renders/{job_id}{COMPLETE}"
        )  # a worker that died before its last write
        assert not s3_results.complete(job_id)
        with pytest.raises(NotFoundError):
            s3_results.copy_to(job_id, tmp_path / "never")
        assert not (tmp_path / "never").exists()

        assert service.render_again(service.broken_jobs(batch.batch_id)) == 1
        assert service.wait(batch.batch_id, timeout=120).succeeded == [job_id]
        service.copy_result(job_id, tmp_path / "again")
        assert files(tmp_path / "again") == files(rendered)
    finally:
        service.close()


def test_a_zip_that_does_not_match_its_marker_is_refused(
    s3_results: S3Results,
    rendered: Path,
    bucket: str,  # noqa: F811
    moto_endpoint: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    publish_copy(s3_results, "job-1", rendered)
    client = s3_client(moto_endpoint)
    tampered = tmp_path / "tampered.zip"
    (rendered / "labels.json").write_text("{}")
    write_job_zip("job-1", rendered, tampered)
    client.put_object(Bucket=bucket, Key="renders/job-1.zip", Body=tampered.read_bytes())
    with pytest.raises(NotFoundError, match=r"job-1\.zip does not match its marker"):
        s3_results.copy_to("job-1", tmp_path / "copy")
    assert not list(tmp_path.glob("copy*"))  # nothing half-written


def test_s3_results_travel_to_workers_without_a_client(s3_results: S3Results) -> None:
    assert s3_results.store is not None  # opened here
    clone = pickle.loads(pickle.dumps(s3_results))
    assert clone._store is None and clone.location == s3_results.location


def test_directory_results_keep_the_first_of_two_renders(rendered: Path, tmp_path: Path) -> None:
    results = DirectoryResults(tmp_path / "results")
    publish_copy(results, "job-1", rendered)
    (rendered / "extra.txt").write_text("second")
    publish_copy(results, "job-1", rendered)
    assert "extra.txt" not in files(results.local_dir("job-1"))
    assert results.zip_url("job-1", 60) is None


@pytest.mark.parametrize(
    ("location", "options", "problem"),
    [
        ("s3://Bad_Bucket/x", StoreOptions(), "not a bucket name"),
        ("gs://bucket/x", StoreOptions(), "use a path or s3://"),
        ("/some/dir", StoreOptions(endpoint_url="http://127.0.0.1:9"), "only apply to s3://"),
    ],
)
def test_bad_results_locations_are_refused(
    location: str, options: StoreOptions, problem: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        open_results(location, tmp_path, options)


def test_a_results_dir_and_a_results_url_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        results_location(tmp_path, "s3://bucket/x")
