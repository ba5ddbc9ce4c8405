"""prefect-synthdata: Prefect 3 tasks, flows and blocks for synthetic computer-vision datasets.

Importing the package registers its blocks (`prefect block register -m prefect_synthdata`).

Example:
    >>> from prefect_synthdata import GenerateRequest
    >>> GenerateRequest().generator
    'shapes'
"""

from prefect_synthdata.blocks import InfinityCredentials, SynthDataJob, ZpyCredentials
from prefect_synthdata.dataset.manifest import DatasetManifest
from prefect_synthdata.flows import GenerateRequest, generate_dataset
from prefect_synthdata.providers import ProviderConfig

__all__ = [
    "DatasetManifest",
    "GenerateRequest",
    "InfinityCredentials",
    "ProviderConfig",
    "SynthDataJob",
    "ZpyCredentials",
    "generate_dataset",
]
