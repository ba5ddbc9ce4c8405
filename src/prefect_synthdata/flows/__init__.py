"""Prefect flows of prefect-synthdata; each flow lives in its own module.

Example:
    >>> from prefect_synthdata.flows import GenerateRequest
    >>> GenerateRequest(num_jobs=2).jobs()
    [{}, {}]
"""

from prefect_synthdata.flows.generate import GenerateRequest, generate_dataset

__all__ = ["GenerateRequest", "generate_dataset"]
