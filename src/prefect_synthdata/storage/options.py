"""How to reach a publish destination: the settings of an `s3://` store, as one typed record.

Flows take it as a parameter (the Prefect UI renders it as a form) and the CLI builds it
from `--endpoint-url`, `--region`, `--profile`, `--aws-block` and `--max-concurrency`. It
holds no secrets: credentials come from boto3's default chain, a named profile, or a
saved prefect-aws block referred to by name.

Example:
    >>> StoreOptions(endpoint_url="http://127.0.0.1:9000").connection_settings()
    ['endpoint_url']
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

MIB = 1024 * 1024


class StoreOptions(BaseModel):
    """Connection and transfer settings of an `s3://` destination.

    Connection settings given with a local destination are refused as a likely mistake.
    """

    endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint, e.g. http://127.0.0.1:9000 (default: AWS).",
    )
    region: str | None = Field(
        default=None, description="AWS region (default: the profile's, else us-east-1)."
    )
    profile: str | None = Field(default=None, description="AWS profile from ~/.aws/config.")
    aws_block: str | None = Field(
        default=None,
        description=(
            "Saved prefect-aws block with the credentials: 'aws-credentials/NAME', "
            "'minio-credentials/NAME' or 's3-bucket/NAME' (a bare NAME means aws-credentials)."
        ),
    )
    max_concurrency: int = Field(
        default=10, ge=1, le=128, description="S3 requests in flight at once."
    )
    multipart_threshold_mb: int = Field(
        default=8, ge=5, description="Files this large (MiB) or larger go up as multipart uploads."
    )
    multipart_chunksize_mb: int = Field(
        default=8, ge=5, description="Part size (MiB) of multipart uploads."
    )
    max_attempts: int = Field(
        default=4, ge=1, le=10, description="Tries per S3 request (botocore's standard retry mode)."
    )

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"endpoint_url must start with http:// or https://, got {value!r}")
        return value

    def connection_settings(self) -> list[str]:
        """Names of the connection settings given (they only make sense for `s3://`)."""
        return [
            name
            for name in ("endpoint_url", "region", "profile", "aws_block")
            if getattr(self, name)
        ]
