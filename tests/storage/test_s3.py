"""S3 specifics against moto's server over HTTP: URIs, checksums, multipart, preflight
errors (moto checks credentials and IAM policies in a process started with auth on),
and prefect-aws blocks.

moto with auth on rejects the signature of any request whose query string holds a
'/' (e.g. a LIST under `name/version/`), so the authenticated server is used for the
preflight (which lists a one-segment prefix) and a full publish proves the block's
keys by the signatures it sends.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.awsrequest import AWSPreparedRequest
from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket
from pydantic import SecretStr

from prefect_synthdata.destinations import open_destination
from prefect_synthdata.exceptions import ConfigurationError, DestinationError
from prefect_synthdata.storage import ObjectStore, StoreOptions, Upload, open_store
from prefect_synthdata.storage.publish import SUCCESS, fetch_dataset, list_datasets, publish
from prefect_synthdata.storage.s3 import S3Store, parse_s3_uri
from tests.conftest import subprocess_env
from tests.storage.conftest import AuthServer, WriteCounter, image_files, make_dataset, s3_client


@pytest.mark.parametrize(
    "uri",
    [
        "s3://",
        "s3://ab/x",
        "s3://Upper-Case/x",
        "s3://bucket_underscore",
        "s3://bucket/a//b",
        "s3://bucket/../x",
    ],
)
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(ConfigurationError, match="bad S3 URI"):
        open_store(uri)


def test_uri_prefix_is_normalised() -> None:
    assert parse_s3_uri("s3://my-bucket") == ("my-bucket", "")
    assert parse_s3_uri("s3://my-bucket/a/b/") == ("my-bucket", "a/b")


def test_s3_settings_with_a_local_destination_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="endpoint_url only apply to s3://"):
        open_store(str(tmp_path), StoreOptions(endpoint_url="http://127.0.0.1:9"))


def test_objects_carry_sha256_checksum_and_metadata(
    bucket: str, s3_options: StoreOptions, moto_endpoint: str, tmp_path: Path
) -> None:
    big = os.urandom(11 * 1024 * 1024)  # three 5 MiB-or-less parts: a multipart upload
    files = {**image_files(2), "big.bin": big}
    manifest = make_dataset(tmp_path / "ds", files)
    publish(open_store(f"s3://{bucket}/root", s3_options), tmp_path / "ds", manifest)
    client = s3_client(moto_endpoint)
    for entry in manifest.files:
        head = client.head_object(
            Bucket=bucket, Key=f"root/demo/v1/{entry.path}", ChecksumMode="ENABLED"
        )
        assert head["ContentLength"] == entry.size
        assert head["Metadata"]["sha256"] == entry.sha256
        assert head["ChecksumSHA256"]  # S3 computed and kept a SHA-256 checksum
        if entry.path == "big.bin":
            assert "-3" in head["ETag"]  # it did go up in three parts
        else:
            assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(entry.sha256)).decode()
            assert head["ContentType"] == "image/png"


def test_multipart_objects_are_recognised_on_resume(
    bucket: str,
    s3_options: StoreOptions,
    tmp_path: Path,
    count_writes: Callable[[ObjectStore], WriteCounter],
) -> None:
    manifest = make_dataset(
        tmp_path / "ds", {**image_files(1), "big.bin": os.urandom(6 * 1024 * 1024)}
    )
    store = open_store(f"s3://{bucket}", s3_options)
    publish(store, tmp_path / "ds", manifest)
    s3_client(s3_options.endpoint_url or "").delete_object(Bucket=bucket, Key=f"demo/v1/{SUCCESS}")
    counter = count_writes(store)
    again = publish(store, tmp_path / "ds", manifest)
    assert again.files_uploaded == 0
    # the publish claim, then manifest.json and _SUCCESS again; LATEST already right
    assert counter.writes == 3


def test_an_object_with_other_bytes_is_uploaded_again(
    bucket: str, s3_options: StoreOptions, moto_endpoint: str, tmp_path: Path
) -> None:
    files = image_files(3)
    manifest = make_dataset(tmp_path / "ds", files)
    store = open_store(f"s3://{bucket}", s3_options)
    publish(store, tmp_path / "ds", manifest)
    client = s3_client(moto_endpoint)
    victim = manifest.files[0]
    # Same size, different bytes, and even the right metadata: the S3 checksum tells.
    client.put_object(
        Bucket=bucket,
        Key=f"demo/v1/{victim.path}",
        Body=b"\0" * victim.size,
        Metadata={"sha256": victim.sha256},
        ChecksumAlgorithm="SHA256",
    )
    client.delete_object(Bucket=bucket, Key=f"demo/v1/{SUCCESS}")
    assert publish(store, tmp_path / "ds", manifest).files_uploaded == 1
    assert fetch_dataset(store, "demo", "v1", tmp_path / "fetched") == manifest


def test_preflight_passes_and_leaves_nothing(
    bucket: str, s3_options: StoreOptions, moto_endpoint: str
) -> None:
    open_store(f"s3://{bucket}/x", s3_options).check_writable()
    keys = s3_client(moto_endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [k["Key"] for k in keys] == []


def test_preflight_missing_bucket(s3_options: StoreOptions) -> None:
    with pytest.raises(DestinationError, match="bucket 'no-such-bucket' does not exist"):
        open_store("s3://no-such-bucket/x", s3_options).check_writable()


def test_preflight_unreachable_endpoint() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    options = StoreOptions(endpoint_url=closed, max_attempts=1)
    with pytest.raises(DestinationError, match="cannot reach the S3 endpoint"):
        open_store("s3://some-bucket", options).check_writable()


def _keys_store(server: AuthServer, key: str, secret: str, prefix: str = "p") -> ObjectStore:
    block = AwsCredentials(
        aws_access_key_id=key, aws_secret_access_key=SecretStr(secret), region_name="us-east-1"
    )
    return open_store(
        f"s3://{server.bucket}/{prefix}", StoreOptions(endpoint_url=server.endpoint), block
    )


def test_preflight_with_valid_credentials(auth_server: AuthServer) -> None:
    _keys_store(auth_server, *auth_server.writer).check_writable()


def test_preflight_unknown_access_key(auth_server: AuthServer) -> None:
    with pytest.raises(DestinationError, match="access key id is not known") as info:
        _keys_store(auth_server, "AKIAUNKNOWN000000000", "whatever").check_writable()
    assert "whatever" not in str(info.value)


def test_preflight_wrong_secret(auth_server: AuthServer) -> None:
    with pytest.raises(DestinationError, match="wrong secret access key") as info:
        _keys_store(auth_server, auth_server.writer[0], "not-the-secret").check_writable()
    assert "not-the-secret" not in str(info.value)


def test_preflight_read_only_credentials(auth_server: AuthServer) -> None:
    with pytest.raises(DestinationError, match=r"cannot write to .*access denied"):
        _keys_store(auth_server, *auth_server.reader).check_writable()


def test_publish_signs_with_the_blocks_credentials(
    bucket: str, s3_options: StoreOptions, tmp_path: Path
) -> None:
    block = AwsCredentials(
        aws_access_key_id="AKIABLOCKKEY", aws_secret_access_key=SecretStr("block-secret")
    )
    store = open_store(f"s3://{bucket}/with-block", s3_options, block)
    signers: list[str] = []

    def record(request: AWSPreparedRequest, **_: object) -> None:
        signers.append(str(request.headers["Authorization"]).split("Credential=")[1].split("/")[0])

    store.client.meta.events.register("before-send.s3", record)  # type: ignore[attr-defined]
    manifest = make_dataset(tmp_path / "ds", image_files(3))
    assert publish(store, tmp_path / "ds", manifest).files_uploaded == 3
    assert signers and set(signers) == {"AKIABLOCKKEY"}


def test_saved_blocks_by_name(auth_server: AuthServer) -> None:
    key, secret = auth_server.writer
    credentials = AwsCredentials(
        aws_access_key_id=key,
        aws_secret_access_key=SecretStr(secret),
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=auth_server.endpoint),
    )
    credentials.save("synthdata-writer", overwrite=True)
    S3Bucket(bucket_name=auth_server.bucket, credentials=credentials).save(
        "synthdata-bucket", overwrite=True
    )
    uri = f"s3://{auth_server.bucket}/saved"
    for name in (
        "synthdata-writer",
        "aws-credentials/synthdata-writer",
        "s3-bucket/synthdata-bucket",
    ):
        open_destination(
            uri, StoreOptions(aws_block=name)
        ).check_writable()  # endpoint from the block


def test_block_mistakes_are_configuration_errors(auth_server: AuthServer) -> None:
    with pytest.raises(
        ConfigurationError, match="no saved prefect-aws block 'aws-credentials/nope'"
    ):
        open_destination("s3://some-bucket", StoreOptions(aws_block="nope"))
    with pytest.raises(ConfigurationError, match="must be one of"):
        open_destination("s3://some-bucket", StoreOptions(aws_block="secret/x"))
    other = S3Bucket(bucket_name="other-bucket", credentials=AwsCredentials())
    with pytest.raises(ConfigurationError, match="block is for bucket 'other-bucket'"):
        open_store(f"s3://{auth_server.bucket}", StoreOptions(), other)
    with pytest.raises(ConfigurationError, match="AWS profile 'missing' not found"):
        open_store("s3://some-bucket", StoreOptions(profile="missing"))


def test_reader_credentials_may_fetch(auth_server: AuthServer, tmp_path: Path) -> None:
    writer = _keys_store(auth_server, *auth_server.writer, prefix="shared")
    manifest = make_dataset(tmp_path / "ds", image_files(2))
    writer.upload_files(  # the LIST-free part of a publish, as the writer
        [
            Upload(tmp_path / "ds" / f.path, f"demo/v1/{f.path}", f.size, f.sha256)
            for f in manifest.files
        ]
    )
    writer.write_bytes("demo/v1/manifest.json", manifest.to_bytes())
    writer.write_bytes(f"demo/v1/{SUCCESS}", manifest.sha256().encode())
    writer.write_bytes("demo/LATEST", b"v1")
    reader = _keys_store(auth_server, *auth_server.reader, prefix="shared")
    assert fetch_dataset(reader, "demo", None, tmp_path / "fetched") == manifest
    assert isinstance(reader, S3Store)
    assert auth_server.reader[1] not in repr(reader.options)


PUBLISHER = """
import sys
from pathlib import Path
from prefect_synthdata.dataset.manifest import Manifest
from prefect_synthdata.storage import StoreOptions, open_store
from prefect_synthdata.storage.publish import publish

uri, endpoint, folder = sys.argv[1:]
manifest = Manifest.model_validate_json((Path(folder) / "manifest.json").read_bytes())
publish(open_store(uri, StoreOptions(endpoint_url=endpoint, max_concurrency=1)), Path(folder), manifest)
"""


def test_a_killed_publisher_leaves_no_dataset_and_the_next_publish_resumes(
    bucket: str, s3_options: StoreOptions, moto_endpoint: str, tmp_path: Path
) -> None:
    manifest = make_dataset(tmp_path / "ds", image_files(200, size=4 * 1024))
    (tmp_path / "ds" / "manifest.json").write_bytes(manifest.to_bytes())
    client = s3_client(moto_endpoint)
    uri = f"s3://{bucket}/killed"
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, uri, moto_endpoint, str(tmp_path / "ds")],
        env=subprocess_env(),
    )
    try:
        deadline = time.monotonic() + 120
        while client.list_objects_v2(Bucket=bucket, Prefix="killed/").get("KeyCount", 0) < 15:
            assert publisher.poll() is None and time.monotonic() < deadline, (
                "publisher ended too early"
            )
            time.sleep(0.02)
        publisher.send_signal(signal.SIGKILL)
    finally:
        publisher.wait(timeout=30)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="killed/")
    landed = [item["Key"] for page in pages for item in page.get("Contents", [])]
    assert 15 <= len(landed) < len(manifest.files)
    # no manifest.json, _SUCCESS or LATEST: data files and the publisher's claim only
    assert all("/images/" in key or "/_CLAIM." in key for key in landed)
    store = open_store(uri, s3_options)
    assert list_datasets(store) == {}

    data = [key for key in landed if "/images/" in key]
    resumed = publish(store, tmp_path / "ds", manifest)
    assert (resumed.files_uploaded, resumed.files_skipped) == (
        len(manifest.files) - len(data),
        len(data),
    )
    assert list_datasets(store) == {"demo": ["v1"]}


def test_a_refused_upload_names_the_file_and_the_reason(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    manifest = make_dataset(tmp_path / "ds", image_files(3))
    reader = _keys_store(auth_server, *auth_server.reader, prefix="refused")
    uploads = [
        Upload(tmp_path / "ds" / f.path, f"demo/v1/{f.path}", f.size, f.sha256)
        for f in manifest.files
    ]
    with pytest.raises(
        DestinationError,
        match=r"upload of .*image\.00000\d\.rgb\.png to s3://.* failed: access denied",
    ):
        reader.upload_files(uploads)
