"""The main job: generate a synthetic dataset with the embedded `local` provider and
publish it under ./datasets/ (or wherever --dest / $SYNTHDATA_DEST points).

    python flows/generate_and_ingest.py                 # 4 jobs of 'shapes', 512x512
    python flows/generate_and_ingest.py --jobs 16 --dest s3://bucket/prefix

A second run with the same parameters submits nothing new and downloads nothing again.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect's 20 s for its temporary API is too short on a busy machine (README: the first minute).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from prefect_synthdata.flows import GenerateRequest, generate_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--generator", default="shapes")
    parser.add_argument("--dest", default=None)
    parser.add_argument("--name", default="synthetic-shapes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    request = GenerateRequest(
        generator=args.generator,
        num_jobs=args.jobs,
        name=args.name,
        seed=args.seed,
        **({"dest": args.dest} if args.dest else {}),
    )
    manifest = generate_dataset(request)
    print(f"dataset: {manifest.uri}")
    print(
        f"  {manifest.num_images} images, {manifest.num_annotations} annotations, "
        f"categories {', '.join(manifest.categories)}; {manifest.files_uploaded} files written"
    )


if __name__ == "__main__":
    main()
