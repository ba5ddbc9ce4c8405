"""Extracting every simrun of a zpy dataset zip: the zip read and checked once for all
simruns (what the zpy provider does) versus once per simrun, side by side in one run.

A zpy dataset is one zip holding every simrun's folder. Its central directory lists
every file of every simrun, so reading and checking it again for each simrun makes
extracting the whole dataset quadratic in its size.

    python benchmarks/bench_zip_extract.py                      # 500 simruns, 3 repeats
    python benchmarks/bench_zip_extract.py --simruns 2000 --repeats 1

The zip is synthetic: `--files` files of 1 KiB per simrun folder, on /dev/shm when it
exists (the subject is the zip handling, not the disk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from prefect_synthdata.providers.archive import CheckedZip, extract_zip


def make_dataset_zip(path: Path, simruns: int, files: int) -> list[str]:
    """A zip of `simruns` top-level folders of `files` small files; returns the folders."""
    folders = [f"run-{index:06d}" for index in range(simruns)]
    with zipfile.ZipFile(path, "w") as zf:
        for folder in folders:
            for number in range(files):
                zf.writestr(f"{folder}/image.{number:06d}.rgb.png", os.urandom(1024))
    return folders


def once_for_all(archive: Path, folders: list[str], out: Path) -> float:
    start = time.perf_counter()
    with CheckedZip(archive) as checked:
        for folder in folders:
            checked.extract(out / folder, folder=folder)
    return time.perf_counter() - start


def once_per_simrun(archive: Path, folders: list[str], out: Path) -> float:
    start = time.perf_counter()
    for folder in folders:
        extract_zip(archive, out / folder, folder=folder)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simruns", type=int, default=500)
    parser.add_argument("--files", type=int, default=8, help="files per simrun")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    variants = {"read once": once_for_all, "read per simrun": once_per_simrun}
    times: dict[str, list[float]] = {name: [] for name in variants}
    tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        archive = Path(tmp) / "dataset.zip"
        folders = make_dataset_zip(archive, args.simruns, args.files)
        for repeat in range(args.repeats):
            order = list(variants) if repeat % 2 == 0 else list(variants)[::-1]
            for name in order:
                out = Path(tmp) / "out"
                times[name].append(variants[name](archive, folders, out))
                shutil.rmtree(out)
                print(f"  repeat {repeat + 1} {name:<16} {times[name][-1]:8.2f} s", flush=True)

    once, per = (statistics.median(times[name]) for name in variants)
    print(f"\n{args.simruns} simruns of {args.files} files, medians of {args.repeats} repeats:")
    print(f"  zip read once:         {once:8.2f} s")
    print(f"  zip read per simrun:   {per:8.2f} s   ratio {per / once:.0f}x")


if __name__ == "__main__":
    main()
