"""Engine throughput: frames per second per core at 512 x 512 with every output written.

Each measurement renders whole jobs through `render_job` (RGB, instance, class and
depth PNGs plus labels.json and job.json on disk) in a warmed-up process pool set up
like the JobService's (spawned workers with `tune_allocator`) of 1 worker and of
every usable core, and prints medians over repeats:

- `stills`: jobs of one frame each (the scene, textures and camera are built per frame);
- `video`: one job of many frames per worker (built once, then frames only);
- `pillow`: stills again with Pillow's PNG encoder (compress_level=1), the writer the
  engine used before `engine.png`, as the in-run baseline.

The reference figures from the issue are Blender on this machine class at 512 x 512:
Workbench about 0.28 s a frame, Cycles (CPU) about 18 s.

    PYTHONPATH=src python benchmarks/bench_engine.py [--frames 48] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prefect_synthdata.engine import png
from prefect_synthdata.engine.allocator import tune_allocator
from prefect_synthdata.engine.generators import GENERATORS, get_generator
from prefect_synthdata.engine.jobs import default_workers
from prefect_synthdata.engine.render import render_job

BLENDER_WORKBENCH_S = 0.28
BLENDER_CYCLES_S = 18.0
MODES = ("stills", "video", "pillow")
ENGINE_WRITE_PNG = png.write_png


def _pillow_write_png(path: Path, array: np.ndarray, profile: png.PngProfile) -> None:
    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def _render(
    generator: str, size: int, seeds: list[int], frames: int, out: str, pillow: bool
) -> tuple[int, float]:
    """Worker: render one job per seed; returns frames written and the CPU seconds it took."""
    png.write_png = _pillow_write_png if pillow else ENGINE_WRITE_PNG  # type: ignore[assignment]
    written = 0
    cpu = time.process_time()
    for seed in seeds:
        params: dict[str, Any] = {
            **get_generator(generator).spec.defaults(),
            "width": size, "height": size, "seed": seed, "frames": frames,
        }  # fmt: skip
        job_dir = Path(out) / f"{os.getpid()}-{generator}-{seed}"
        written += render_job(generator, params, False, job_dir)["images"]
        shutil.rmtree(job_dir)
    return written, time.process_time() - cpu


def measure(
    pool: ProcessPoolExecutor,
    workers: int,
    generator: str,
    mode: str,
    args: argparse.Namespace,
    out: str,
) -> tuple[float, float]:
    """(frames per CPU-second of the workers, frames per wall-clock second of the pool) for one run."""
    if mode == "video":  # one job of `frames` frames per worker
        chunks = [([1000 + w], args.frames, False) for w in range(workers)]
    else:  # `frames` one-frame jobs per worker
        chunks = [
            (list(range(w * 10000, w * 10000 + args.frames)), 1, mode == "pillow")
            for w in range(workers)
        ]
    start = time.perf_counter()
    futures = [
        pool.submit(_render, generator, args.size, seeds, n, out, pillow)
        for seeds, n, pillow in chunks
    ]
    done = [f.result() for f in futures]
    wall = time.perf_counter() - start
    frames = sum(n for n, _ in done)
    return frames / sum(cpu for _, cpu in done), frames / wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=40, help="frames per worker per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="the 'all cores' pool size"
    )
    args = parser.parse_args()
    out = tempfile.mkdtemp(prefix="bench-engine-")
    context = multiprocessing.get_context("spawn")
    results: dict[tuple[str, str, int], tuple[float, float]] = {}
    load_before = os.getloadavg()[0]
    try:
        for workers in sorted({1, args.workers}):
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=tune_allocator
            ) as pool:
                warm = [
                    pool.submit(_render, g, 64, [0], 1, out, False)
                    for g in GENERATORS
                    for _ in range(workers)
                ]
                for future in warm:  # imports and caches in every worker
                    future.result()
                for generator in sorted(GENERATORS):
                    for mode in MODES:
                        runs = [
                            measure(pool, workers, generator, mode, args, out)
                            for _ in range(args.repeats)
                        ]
                        results[(generator, mode, workers)] = (
                            statistics.median(r[0] for r in runs),
                            statistics.median(r[1] for r in runs),
                        )
    finally:
        shutil.rmtree(out, ignore_errors=True)

    n = args.workers
    print(
        f"engine benchmark: {args.size}x{args.size}, every output written, medians of {args.repeats} runs, "
        f"1 worker vs {n} (usable cores {default_workers()}, load average {load_before:.1f} -> {os.getloadavg()[0]:.1f})"
    )
    header = (
        f"{'generator':<9} {'mode':<7} {'fps/core':>9} {'ms/frame':>9} {'vs pillow':>10} {'vs Workbench':>13}"
        f" {f'fps/core {n}w':>12} {'wall fps 1w':>12} {f'wall fps {n}w':>12} {'scaling':>8}"
    )
    print(header)
    print("-" * len(header))
    for generator in sorted(GENERATORS):
        for mode in MODES:
            per_core, wall_one = results[(generator, mode, 1)]
            per_core_many, wall_many = results[(generator, mode, n)]
            baseline = results[(generator, "pillow", 1)][0]
            print(
                f"{generator:<9} {mode:<7} {per_core:>9.1f} {1000 / per_core:>9.1f} {per_core / baseline:>9.2f}x"
                f" {per_core * BLENDER_WORKBENCH_S:>12.0f}x {per_core_many:>12.1f}"
                f" {wall_one:>12.1f} {wall_many:>12.1f} {wall_many / wall_one:>7.2f}x"
            )
    print(
        "fps/core = frames per CPU-second of the workers (1 worker, then all); scaling = wall-clock frames/s with "
        f"{n} workers over 1 (meaningful on an idle machine only); vs Workbench = speed-up over "
        f"{BLENDER_WORKBENCH_S} s/frame (Cycles CPU: {BLENDER_CYCLES_S} s/frame)"
    )


if __name__ == "__main__":
    main()
