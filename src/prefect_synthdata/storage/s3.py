"""An S3 (or S3-compatible) `ObjectStore` on boto3's managed transfers.

Uploads stream from files through a `TransferManager`: multipart above a threshold,
at most `max_concurrency` requests in flight and a bounded window of pending transfers,
so memory stays flat whatever the dataset size. Every object carries its sha256 twice:
as `ChecksumSHA256`, which S3 checks against the bytes it receives (per part for
multipart uploads), and as the `x-amz-meta-sha256` metadata that `missing` compares
with one LIST per 1,000 keys plus one HEAD per same-sized object, never a download.

Errors from S3 become `DestinationError`s that say what is wrong (no such bucket,
unknown access key, wrong secret, access denied, unreachable endpoint) and never
carry credentials.

Example:
    >>> parse_s3_uri("s3://my-bucket/datasets/cv/")
    ('my-bucket', 'datasets/cv')
    >>> store = S3Store.connect("s3://my-bucket/datasets", StoreOptions(endpoint_url="http://127.0.0.1:5000"))
    >>> store.uri("demo/v1/manifest.json")
    's3://my-bucket/datasets/demo/v1/manifest.json'
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import posixpath
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
)

from prefect_synthdata.exceptions import ConfigurationError, DestinationError
from prefect_synthdata.storage.base import Download, Upload
from prefect_synthdata.storage.options import MIB, StoreOptions

SHA256_META = "sha256"
PREFLIGHT_KEY = ".synthdata-preflight"
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: Transfers submitted but not yet collected, per active request: bounds memory for any file count.
WINDOW_PER_REQUEST = 8
#: How often a conditional write that meets another one in flight (409) is tried.
CONDITIONAL_ATTEMPTS = 5
T = TypeVar("T", Upload, Download)
#: The longest a SigV4 pre-signed URL may be valid.
MAX_PRESIGNED_SECONDS = 7 * 24 * 3600


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> `("bucket", "some/prefix")`; ConfigurationError if malformed."""
    if not uri.startswith("s3://"):
        raise ConfigurationError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise ConfigurationError(
            f"bad S3 URI {uri!r}: {bucket!r} is not a bucket name "
            "(3-63 characters: lowercase letters, digits, '.', '-')"
        )
    prefix = prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ConfigurationError(
            f"bad S3 URI {uri!r}: the prefix has an empty, '.' or '..' segment"
        )
    return bucket, prefix


def _b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _listing_prefix(keys: set[str]) -> str:
    """The narrowest prefix to LIST that covers every key: their common folder, with its '/'."""
    common = posixpath.commonpath(keys)
    if common in keys or not common:
        return common
    return f"{common}/"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def explain(exc: Exception, bucket: str) -> str:
    """A one-line, credential-free reason for an S3 failure."""
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (set them in the environment, pass a profile or a prefect-aws block)"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach the S3 endpoint ({exc.kwargs.get('endpoint_url', 'unknown')})"
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket", "404") and exc.operation_name in (
            "HeadBucket",
            "ListObjectsV2",
        ):
            return f"bucket {bucket!r} does not exist"
        if code == "InvalidAccessKeyId":
            return "the access key id is not known to this S3 endpoint (wrong credentials)"
        if code == "SignatureDoesNotMatch":
            return "the request signature does not match (wrong secret access key)"
        if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
            return "the session token is expired or invalid"
        if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
            return f"access denied ({exc.operation_name} on bucket {bucket!r}): the credentials lack permission"
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{exc.operation_name} failed: {code or status} {message}".strip()
    return f"{type(exc).__name__}: {exc}"


def _credentials_session(credentials: Any) -> tuple[boto3.Session, dict[str, Any]]:
    """The boto3 session and client parameters of a prefect-aws credentials or S3Bucket block."""
    # An S3Bucket block holds its credentials block.
    block = getattr(credentials, "credentials", credentials)
    if not hasattr(block, "get_boto3_session"):
        raise ConfigurationError(
            f"{type(credentials).__name__} cannot supply AWS credentials: pass a prefect-aws "
            "AwsCredentials, MinIOCredentials or S3Bucket block"
        )
    client_parameters = getattr(block, "aws_client_parameters", None)
    params = dict(client_parameters.get_params_override()) if client_parameters is not None else {}
    return block.get_boto3_session(), params


def make_client(options: StoreOptions, credentials: Any = None) -> Any:
    """An S3 client for `options`: from a prefect-aws block if given, else boto3's default chain."""
    if credentials is not None and options.profile:
        raise ConfigurationError(
            "give either an AWS profile or a prefect-aws credentials block, not both"
        )
    try:
        if credentials is not None:
            session, params = _credentials_session(credentials)
        else:
            session, params = boto3.Session(profile_name=options.profile), {}
    except ProfileNotFound as exc:
        raise ConfigurationError(f"AWS profile {options.profile!r} not found") from exc
    block_endpoint = params.pop("endpoint_url", None)
    endpoint_url = options.endpoint_url or block_endpoint
    config = Config(
        max_pool_connections=options.max_concurrency + 2,
        retries={"mode": "standard", "max_attempts": options.max_attempts},
        s3={"addressing_style": "path"} if endpoint_url else {},
        signature_version="s3v4",  # pre-signed URLs too (SigV2 is refused by newer regions)
    )
    if params.get("config") is not None:
        config = params.pop("config").merge(config)
    region = options.region or session.region_name or "us-east-1"
    return session.client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config, **params
    )


class S3Store:
    """Datasets under `s3://bucket/prefix`, written through one boto3 S3 client."""

    def __init__(
        self, client: Any, bucket: str, prefix: str = "", options: StoreOptions | None = None
    ) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.options = options or StoreOptions()
        self.transfer = TransferConfig(
            multipart_threshold=self.options.multipart_threshold_mb * MIB,
            multipart_chunksize=self.options.multipart_chunksize_mb * MIB,
            max_concurrency=self.options.max_concurrency,
            use_threads=True,
            preferred_transfer_client="classic",
        )

    @classmethod
    def connect(
        cls, uri: str, options: StoreOptions | None = None, credentials: Any = None
    ) -> S3Store:
        """The store at `uri`, with a client built from `options` and optional prefect-aws block."""
        options = options or StoreOptions()
        bucket, prefix = parse_s3_uri(uri)
        block_bucket = getattr(credentials, "bucket_name", None)
        if block_bucket is not None and block_bucket != bucket:
            raise ConfigurationError(
                f"the S3Bucket block is for bucket {block_bucket!r}, not {bucket!r} of {uri}"
            )
        return cls(make_client(options, credentials), bucket, prefix, options)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix and key else key or self.prefix

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}".rstrip("/")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise DestinationError(f"{doing}: {explain(exc, self.bucket)}") from exc

    def check_writable(self) -> None:
        """List, then HEAD an absent key (read permission), then PUT and delete a probe object."""
        with self._errors(f"cannot list {self.uri()}"):
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1)
        with self._errors(f"cannot read objects under {self.uri()}"):
            self._head(PREFLIGHT_KEY + ".absent")
        probe = self._key(PREFLIGHT_KEY)
        with self._errors(f"cannot write to {self.uri()}"):
            self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"")
        # Publishing never deletes, so a store without delete permission is fine.
        with suppress(ClientError, BotoCoreError):
            self.client.delete_object(Bucket=self.bucket, Key=probe)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(
                Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            )
            return head
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _holds(self, upload: Upload) -> bool:
        with self._errors(f"cannot inspect {self.uri(upload.key)}"):
            head = self._head(upload.key)
        if head is None or head["ContentLength"] != upload.size:
            return False
        if head.get("Metadata", {}).get(SHA256_META) != upload.sha256:
            return False
        checksum = head.get("ChecksumSHA256")
        whole_object = "-" not in head.get("ETag", "") and checksum and "-" not in checksum
        return not whole_object or checksum == _b64(upload.sha256)

    def _sizes_under(self, prefix: str) -> dict[str, int]:
        sizes = {}
        with self._errors(f"cannot list {self.uri(prefix)}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            ):
                for item in page.get("Contents", []):
                    sizes[item["Key"]] = item["Size"]
        return sizes

    def missing(self, uploads: list[Upload]) -> list[Upload]:
        if not uploads:
            return []
        sizes = self._sizes_under(_listing_prefix({u.key for u in uploads}))
        candidates = [u for u in uploads if sizes.get(self._key(u.key)) == u.size]
        with ThreadPoolExecutor(self.options.max_concurrency) as pool:
            held = {
                u.key
                for u, ok in zip(candidates, pool.map(self._holds, candidates), strict=True)
                if ok
            }
        return [u for u in uploads if u.key not in held]

    def _put_args(self, upload: Upload) -> dict[str, Any]:
        args: dict[str, Any] = {
            "Metadata": {SHA256_META: upload.sha256},
            "ContentType": _content_type(upload.key),
            "ChecksumAlgorithm": "SHA256",
        }
        if upload.size < self.transfer.multipart_threshold:
            args["ChecksumSHA256"] = _b64(upload.sha256)  # S3 checks the manifest's own digest
        return args

    def _transfer(
        self, items: list[T], submit: Callable[[Any, T], Any], describe: Callable[[T], str]
    ) -> None:
        """Run `submit(manager, item)` for every item, collecting results in a bounded window."""
        window = self.options.max_concurrency * WINDOW_PER_REQUEST
        with create_transfer_manager(self.client, self.transfer) as manager:
            pending: deque[tuple[T, Any]] = deque()
            for item in items:
                pending.append((item, submit(manager, item)))
                if len(pending) >= window:
                    self._wait(*pending.popleft(), describe)
            while pending:
                self._wait(*pending.popleft(), describe)

    def _wait(self, item: T, future: Any, describe: Callable[[T], str]) -> None:
        with self._errors(describe(item)):
            future.result()

    def upload_files(self, uploads: list[Upload]) -> None:
        self._transfer(
            uploads,
            lambda manager, u: manager.upload(
                str(u.path), self.bucket, self._key(u.key), extra_args=self._put_args(u)
            ),
            lambda u: f"upload of {u.path} to {self.uri(u.key)} failed",
        )

    def write_bytes(self, key: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        with self._errors(f"cannot write {self.uri(key)}"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType=_content_type(key),
                Metadata={SHA256_META: digest},
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=_b64(digest),
            )

    def create_bytes(self, key: str, data: bytes) -> bool:
        """A conditional PutObject (`If-None-Match: *`): S3 refuses it with 412 once the
        key exists, so of concurrent callers exactly one succeeds (moto's server does the
        same over HTTP). A 409 (another conditional write to the key in flight) is retried."""
        with self._errors(f"cannot write {self.uri(key)}"):
            for _ in range(CONDITIONAL_ATTEMPTS):
                try:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=self._key(key),
                        Body=data,
                        ContentType=_content_type(key),
                        IfNoneMatch="*",
                    )
                    return True
                except ClientError as exc:
                    if _error_code(exc) in ("PreconditionFailed", "412"):
                        return False
                    if _error_code(exc) not in ("ConditionalRequestConflict", "409"):
                        raise
                time.sleep(0.1)
        raise DestinationError(f"cannot write {self.uri(key)}: conditional writes keep conflicting")

    def list_keys(self, prefix: str) -> list[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        return sorted(key.removeprefix(root) for key in self._sizes_under(f"{prefix}/"))

    def delete_keys(self, keys: list[str]) -> None:
        with self._errors(f"cannot delete under {self.uri()}"):
            for start in range(0, len(keys), 1000):
                batch = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})

    def read_bytes(self, key: str) -> bytes | None:
        with self._errors(f"cannot read {self.uri(key)}"):
            try:
                body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))[
                    "Body"
                ].read()
                return body
            except ClientError as exc:
                if _error_code(exc) in ("NoSuchKey", "404"):
                    return None
                raise

    def modified_at(self, key: str) -> datetime | None:
        with self._errors(f"cannot inspect {self.uri(key)}"):
            head = self._head(key)
        return None if head is None else head["LastModified"]

    def list_dirs(self, prefix: str) -> list[str]:
        root = self._key(prefix)
        root = f"{root}/" if root else ""
        names = []
        with self._errors(f"cannot list {self.uri(prefix)}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root, Delimiter="/"
            ):
                names += [
                    p["Prefix"][len(root) :].rstrip("/") for p in page.get("CommonPrefixes", [])
                ]
        return sorted(n for n in names if n and not n.startswith("."))

    def presigned_get(self, key: str, ttl_seconds: int) -> str:
        """A pre-signed (SigV4) GET URL of `key` on this store's endpoint, valid
        `ttl_seconds` but at most the 7 days SigV4 allows; no request is made."""
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=min(ttl_seconds, MAX_PRESIGNED_SECONDS),
        )
        return url

    def download_files(self, downloads: list[Download]) -> None:
        for download in downloads:
            download.path.parent.mkdir(parents=True, exist_ok=True)
        self._transfer(
            downloads,
            lambda manager, d: manager.download(self.bucket, self._key(d.key), str(d.path)),
            lambda d: f"download of {self.uri(d.key)} failed",
        )
