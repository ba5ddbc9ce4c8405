"""The example train stage at a realistic size: steps, wall time, mAP against a baseline.

Generates a `shapes` dataset of `--jobs` images of 128 x 128 (train/val 80/20, split
by job) through `generate_dataset`, then runs the real `train_on_dataset` flow for
`--steps` steps of `--batch-size` images, and prints: the training wall time and time per
step, the whole flow's wall time, the COCO box mAP@[.5:.95] and mAP@.5 on val, and the
same scores of the trivial baseline (one box of each class's mean training size at the
image centre) side by side. Under a temporary Prefect API (prefect_test_harness).

    PYTHONPATH=src python benchmarks/bench_train.py [--jobs 300] [--steps 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300, help="images in the dataset")
    parser.add_argument("--size", type=int, default=128, help="image width and height")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch
    from prefect.testing.utilities import prefect_test_harness

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        os.environ["SYNTHDATA_HOME"] = str(Path(tmp) / "home")
        from prefect_synthdata.flows import GenerateRequest, generate_dataset, train_on_dataset

        started = time.perf_counter()
        dataset = generate_dataset(
            GenerateRequest(
                credentials="local",  # type: ignore[arg-type]
                name="bench-train",
                num_jobs=args.jobs,
                params={"width": args.size, "height": args.size},
                seed=1,
                dest=str(Path(tmp) / "datasets"),
                splits={"train": 0.8, "val": 0.2},
            )
        )
        generated = time.perf_counter() - started
        started = time.perf_counter()
        report = train_on_dataset(
            dataset.uri,
            steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
        )
        flow_seconds = time.perf_counter() - started

    print(f"dataset: {args.jobs} images of {args.size}x{args.size} generated in {generated:.0f} s")
    print(f"train split {report.train_images} images, val split {report.eval_images} images")
    print(
        f"training: {report.steps} steps x {args.batch_size} images in {report.seconds:.0f} s "
        f"({report.seconds / report.steps:.2f} s/step, torch threads {torch.get_num_threads()}); "
        f"whole flow {flow_seconds:.0f} s; final loss {report.final_loss:.3f}"
    )
    print("| | mAP@[.5:.95] | mAP@.5 |\n|---|---|---|")
    print(f"| CenterNet, {report.steps} steps | {report.map:.3f} | {report.map50:.3f} |")
    print(f"| centre-box baseline | {report.baseline_map:.3f} | {report.baseline_map50:.3f} |")


if __name__ == "__main__":
    main()
