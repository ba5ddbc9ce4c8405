"""An example detector trained on a published dataset, in plain torch (the `torch` extra).

- `detector`: a small CenterNet-style model (a centre heatmap per class, a box size and
  a sub-cell offset on a stride-4 grid), its training targets, loss and decoding;
- `fit`: a split of a published dataset as tensors, and a bounded training loop;
- `evaluate`: COCO mAP (pycocotools' COCOeval) of a model, and of a trivial baseline;
- `curve`: the loss curve as a PNG;
- `lineage`: the weights saved beside a JSON naming the dataset they came from.

Nothing here knows Prefect; `prefect_synthdata.flows.train` is the thin flow around it.
"""
