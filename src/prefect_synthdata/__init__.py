"""prefect-synthdata: Prefect 3 tasks, flows and blocks for synthetic computer-vision datasets.

The names below load on first use, so that the engine's render workers and the
reference server import neither Prefect nor the flows. Listing the package (as
`prefect block register -m prefect_synthdata` does) loads them all, blocks included.

Example:
    >>> from prefect_synthdata import GenerateRequest
    >>> GenerateRequest().generator
    'shapes'
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "PublishedDataset": "prefect_synthdata.dataset.manifest",
    "GenerateRequest": "prefect_synthdata.flows",
    "generate_dataset": "prefect_synthdata.flows",
    "ProviderConfig": "prefect_synthdata.providers",
    "InfinityCredentials": "prefect_synthdata.blocks",
    "ZpyCredentials": "prefect_synthdata.blocks",
    "SynthDataJob": "prefect_synthdata.blocks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prefect_synthdata' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
