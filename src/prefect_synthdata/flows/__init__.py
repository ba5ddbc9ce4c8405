"""Prefect flows of prefect-synthdata; each flow lives in its own module.

- `generate_dataset` (generate.py): generate a batch and publish it as a dataset;
- `preview_generator` (preview.py): a few preview frames, shown as an artifact;
- `sweep_datasets` (sweep.py): a grid or zip of parameter values, one dataset per point or one combined;
- `train_on_dataset` (train.py): the example downstream stage triggered by published datasets.

Example:
    >>> from prefect_synthdata.flows import GenerateRequest
    >>> GenerateRequest(num_jobs=2).jobs()
    [{}, {}]
"""

from prefect_synthdata.flows.generate import GenerateRequest, generate_dataset
from prefect_synthdata.flows.preview import PreviewRequest, preview_generator
from prefect_synthdata.flows.sweep import SweepAxis, SweepRequest, sweep_datasets
from prefect_synthdata.flows.train import train_on_dataset

__all__ = [
    "GenerateRequest",
    "PreviewRequest",
    "SweepAxis",
    "SweepRequest",
    "generate_dataset",
    "preview_generator",
    "sweep_datasets",
    "train_on_dataset",
]
