"""S3 fixtures: moto's server on 127.0.0.1 (real HTTP), buckets, and both store kinds."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from prefect_synthdata.dataset.manifest import Manifest, file_entry
from prefect_synthdata.storage import LocalStore, ObjectStore, StoreOptions, open_store
from tests.conftest import subprocess_env

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Test credentials for boto3's default chain; no ~/.aws files, no ambient endpoint."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server in a thread on a free 127.0.0.1 port (accepts any credentials)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(endpoint: str, key: str = "testing", secret: str = "testing") -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    """A new empty bucket on the moto server."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_options(moto_endpoint: str) -> StoreOptions:
    return StoreOptions(
        endpoint_url=moto_endpoint, multipart_threshold_mb=5, multipart_chunksize_mb=5
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The same publish behaviour is checked against both store kinds."""
    if request.param == "local":
        return LocalStore(tmp_path / "published")
    bucket_name = request.getfixturevalue("bucket")
    return open_store(f"s3://{bucket_name}/datasets", request.getfixturevalue("s3_options"))


def make_dataset(
    folder: Path, files: dict[str, bytes], name: str = "demo", version: str = "v1"
) -> Manifest:
    """Write `files` under `folder` and return their manifest."""
    for relative, data in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    return Manifest(
        name=name,
        version=version,
        provider="test",
        generator="shapes",
        batch_id="batch-1",
        is_preview=False,
        num_jobs=1,
        num_images=len(files),
        num_annotations=0,
        categories=[],
        job_params=[],
        files=[file_entry(folder / relative, relative) for relative in sorted(files)],
    )


def image_files(count: int, seed: str = "a", size: int = 2048) -> dict[str, bytes]:
    """`count` deterministic pseudo-image files of `size` bytes."""
    out = {}
    for index in range(count):
        block = hashlib.sha256(f"{seed}:{index}".encode()).digest()
        out[f"images/000000/image.{index:06d}.rgb.png"] = (block * (size // 32 + 1))[:size]
    return out


@dataclass
class WriteCounter:
    """Counts the write requests a store sends (S3) or the files it touches (local)."""

    store: ObjectStore
    s3_writes: int = 0

    def __post_init__(self) -> None:
        self.before = self._snapshot()
        client = getattr(self.store, "client", None)
        if client is not None:
            for op in (
                "PutObject",
                "CreateMultipartUpload",
                "UploadPart",
                "CompleteMultipartUpload",
                "DeleteObject",
            ):
                client.meta.events.register(f"before-call.s3.{op}", self._count)

    def _count(self, **_: Any) -> None:
        self.s3_writes += 1

    def _snapshot(self) -> dict[str, int]:
        if isinstance(self.store, LocalStore) and self.store.root.exists():
            return {str(p): p.stat().st_mtime_ns for p in self.store.root.rglob("*") if p.is_file()}
        return {}

    @property
    def writes(self) -> int:
        after = self._snapshot()
        touched = sum(1 for path, mtime in after.items() if self.before.get(path) != mtime)
        return self.s3_writes + touched


@pytest.fixture
def count_writes() -> Callable[[ObjectStore], WriteCounter]:
    return WriteCounter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class AuthServer:
    """A moto server process that checks credentials and IAM policies."""

    endpoint: str
    bucket: str
    writer: tuple[str, str]
    reader: tuple[str, str]


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """moto in its own process with authentication on: a writer (s3:*) and a reader
    (s3:GetObject + s3:ListBucket only) user, and one bucket."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("moto-auth") / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(**AWS_ENV),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        setup = {"endpoint_url": endpoint, "region_name": "us-east-1", **_lower_keys(AWS_ENV)}
        iam = boto3.client("iam", **setup)

        def user(name: str, actions: list[str]) -> tuple[str, str]:
            iam.create_user(UserName=name)
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }
            iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            return key["AccessKeyId"], key["SecretAccessKey"]

        writer = user("writer", ["s3:*"])
        reader = user("reader", ["s3:GetObject", "s3:ListBucket"])
        boto3.client("s3", **setup).create_bucket(Bucket="auth-bucket")
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=5).raise_for_status()
        yield AuthServer(endpoint, "auth-bucket", writer, reader)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _lower_keys(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
