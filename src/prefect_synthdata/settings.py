"""Defaults read from `SYNTHDATA_*` environment variables, in Prefect's style.

Every value can also be passed explicitly (to a flow's request, a block or the CLI);
the environment only supplies defaults, so a worker or `serve` process can be
pointed at a provider and a destination without touching deployment parameters.

Example:
    >>> import os; os.environ["SYNTHDATA_POLL_CAP_SECONDS"] = "3"
    >>> SynthDataSettings().poll_cap_seconds
    3.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SynthDataSettings(BaseSettings):
    """Process-wide defaults; every value can also be passed explicitly."""

    model_config = SettingsConfigDict(env_prefix="SYNTHDATA_")

    home: Path = Field(
        default=Path.home() / ".prefect-synthdata",
        description="State directory of the local provider (SQLite and rendered results).",
    )
    provider: Literal["local", "infinity", "zpy"] = Field(
        default="local", description="Default provider kind (SYNTHDATA_PROVIDER)."
    )
    provider_url: str | None = Field(
        default=None, description="Default server URL of an HTTP provider."
    )
    token: SecretStr | None = Field(
        default=None, description="Default API token of an HTTP provider."
    )
    project: str | None = Field(default=None, description="Default zpy project id.")
    credentials_block: str | None = Field(
        default=None,
        description="Name of a saved credentials block (e.g. 'infinity-credentials/prod') used by default.",
    )
    dest: str = Field(
        default="./datasets", description="Default publish destination (path or s3:// URI)."
    )
    poll_initial_seconds: float = Field(default=0.25, gt=0, description="First poll interval.")
    poll_cap_seconds: float = Field(default=1.0, gt=0, description="Longest poll interval.")
    deadline_seconds: float = Field(
        default=6 * 3600, gt=0, description="Give up waiting after this long."
    )
    shard_size: int = Field(default=200, ge=1, description="Jobs per download task run.")
    dask_address: str | None = Field(
        default=None,
        description="Scheduler address of a Dask cluster the local provider renders on "
        "(e.g. tcp://10.0.0.5:8786); default: a process pool on this machine.",
    )
    results_dir: Path | None = Field(
        default=None,
        description="Where the local provider's rendered jobs go; with Dask workers on other "
        "machines, a shared filesystem path they can all write (default: under home).",
    )
    results_url: str | None = Field(
        default=None,
        description="An s3://bucket/prefix where the local provider's rendered jobs go instead "
        "of a directory, so that Dask workers anywhere can write them (not with results_dir).",
    )
    results_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint of results_url (default: AWS)."
    )
    results_region: str | None = Field(default=None, description="AWS region of results_url.")
    results_profile: str | None = Field(
        default=None,
        description="AWS profile for results_url (default: boto3's chain: AWS_* variables...).",
    )
