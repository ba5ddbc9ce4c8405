"""Prefect blocks of prefect-synthdata: provider credentials and the `SynthDataJob` job block.

`prefect block register -m prefect_synthdata` registers every block type defined here.

Example:
    >>> from prefect_synthdata.blocks import SynthDataJob
    >>> SynthDataJob.get_block_type_slug()
    'synthdata-job'
"""

from prefect_synthdata.blocks.credentials import (
    InfinityCredentials,
    ProviderCredentials,
    ZpyCredentials,
    load_credentials,
)
from prefect_synthdata.blocks.jobs import SynthDataJob, SynthDataJobRun

__all__ = [
    "InfinityCredentials",
    "ProviderCredentials",
    "SynthDataJob",
    "SynthDataJobRun",
    "ZpyCredentials",
    "load_credentials",
]
