"""APIs in the style of the original clients, on top of the HTTP providers.

- `prefect_synthdata.compat.infinity`: `Session` and `Batch` (infinity-core style);
- `prefect_synthdata.compat.zpy`: `init`, `DatasetConfig`, `generate`, `preview`, `Dataset` (zpy style).
"""
