"""Defaults read from `SYNTHDATA_*` environment variables, in Prefect's style.

Example:
    >>> import os; os.environ["SYNTHDATA_POLL_CAP_SECONDS"] = "3"
    >>> SynthDataSettings().poll_cap_seconds
    3.0
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SynthDataSettings(BaseSettings):
    """Process-wide defaults; every value can also be passed explicitly."""

    model_config = SettingsConfigDict(env_prefix="SYNTHDATA_")

    home: Path = Field(
        default=Path.home() / ".prefect-synthdata",
        description="State directory of the local provider (SQLite and rendered results).",
    )
    dest: str = Field(
        default="./datasets", description="Default publish destination (path or s3:// URI)."
    )
    poll_initial_seconds: float = Field(default=0.2, gt=0, description="First poll interval.")
    poll_cap_seconds: float = Field(default=5.0, gt=0, description="Longest poll interval.")
    deadline_seconds: float = Field(
        default=6 * 3600, gt=0, description="Give up waiting after this long."
    )
    shard_size: int = Field(default=200, ge=1, description="Jobs per download task run.")
