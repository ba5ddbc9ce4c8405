"""Blender generator throughput at 512 x 512: frames per core-minute and time per phase.

Renders still scenes (one job = one scene = one frame, as a dataset of stills does) in
one process that imported `bpy` once, for each setting below, and prints medians over
the frames: the scene build (reset + objects, materials, lights, HDRI, camera), the
Cycles render (to the EXR on /dev/shm), the pass read-back (parsing it) and the encode
(8-bit conversion, records, the four PNGs of the engine's writer). Frames per
core-minute divide by the process's CPU time (every render thread counted), so a
loaded machine does not flatter or punish the figure.

The baseline is the issue's measurement on this machine class: a 7-object scene with a
procedural ground shader (noise + voronoi + bump) and sky, 32 samples + denoise,
2 threads: 15.5 s a frame, about 2 frames per core-minute. The `32 + denoise` row is
that setting with this generator's scene (pre-baked table texture, 256-texel world map).

    python benchmarks/bench_blender.py [--frames 3] [--threads 2]     # needs the blender extra
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from prefect_synthdata.engine import png
from prefect_synthdata.engine.generators.blender import BlenderGenerator, to_frame

BASELINE_FRAMES_PER_CORE_MINUTE = 2.0
SETTINGS = [(32, True), (16, True), (32, False)]  # (samples, denoise)


def bench(samples: int, denoise: bool, frames: int, threads: int) -> dict[str, float]:
    from prefect_synthdata.engine.generators.blender.scene import Scene

    generator = BlenderGenerator()
    phases: dict[str, list[float]] = {"build": [], "render": [], "read": [], "encode": []}
    cpu_started = time.process_time()
    out = Path(tempfile.mkdtemp())
    for seed in range(frames):
        params = {
            **generator.spec.defaults(),
            "width": 512,
            "height": 512,
            "num_objects": 7,
            "samples": samples,
            "denoise": denoise,
            "seed": seed,
        }
        scene = Scene.build(params, threads)
        passes = scene.render(0)
        started = time.perf_counter()
        frame = to_frame(passes, scene.category_ids(), {})
        png.write_png(out / "rgb.png", frame.rgb, png.RGB)
        png.write_png(out / "iseg.png", frame.iseg, png.INSTANCES)
        png.write_png(out / "cseg.png", frame.cseg, png.CATEGORIES)
        png.write_png(out / "depth.png", frame.depth, png.DEPTH)
        phases["encode"].append(time.perf_counter() - started)
        for phase in ("build", "render", "read"):
            phases[phase].append(scene.timings[phase])
    cpu = time.process_time() - cpu_started
    medians = {phase: statistics.median(values) for phase, values in phases.items()}
    medians["frames_per_core_minute"] = frames / (cpu / 60)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    import bpy  # noqa: F401  (timed: a render process pays this once)

    print(f"import bpy: {time.perf_counter() - started:.1f} s")
    bench(8, False, 1, args.threads)  # warm-up: kernels, OIDN weights
    print(
        "| samples | denoise | build s | render s | read-back s | encode s "
        "| frames/core-minute | vs baseline (2.0) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for samples, denoise in SETTINGS:
        r = bench(samples, denoise, args.frames, args.threads)
        fpcm = r["frames_per_core_minute"]
        print(
            f"| {samples} | {'yes' if denoise else 'no'} | {r['build']:.2f} | {r['render']:.2f} "
            f"| {r['read']:.3f} | {r['encode']:.3f} | {fpcm:.1f} "
            f"| {fpcm / BASELINE_FRAMES_PER_CORE_MINUTE:.1f}x |"
        )


if __name__ == "__main__":
    main()
