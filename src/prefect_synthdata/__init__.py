"""prefect-synthdata: Prefect 3 tasks and flows for synthetic computer-vision datasets.

Example:
    >>> from prefect_synthdata import GenerateRequest
    >>> GenerateRequest().generator
    'shapes'
"""

from prefect_synthdata.dataset.manifest import DatasetManifest
from prefect_synthdata.flows import GenerateRequest, generate_dataset
from prefect_synthdata.providers import ProviderConfig

__all__ = ["DatasetManifest", "GenerateRequest", "ProviderConfig", "generate_dataset"]
