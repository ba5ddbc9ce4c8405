"""Blender generator throughput at 512 x 512: frames per core-minute and CPU time per phase.

Renders still scenes (one job = one scene = one frame, as a dataset of stills does) in
one process that imported `bpy` once, side by side in one run: for every seed, each
setting below in turn (so a change in machine load hits them alike). Core-minutes are
the CPU time of this process and its children (`resource.getrusage`, every render
thread counted), not wall time: the machine is shared and wall time says more about the
neighbours than about the renderer. Per phase (CPU seconds, medians over the frames):
the scene build (reset + objects, materials, lights, HDRI, camera), the Cycles render
(with the denoiser and the EXR save), the pass read-back (parsing the EXR), the amodal
areas behind `visibility` (`blender/amodal.py`) and the encode (8-bit conversion,
records, the four PNGs of the engine's writer).

`reference` is the issue's configuration, rebuilt here: the generator's scene with the
table's pre-baked texture swapped for the procedural ground shader (noise + voronoi +
bump), 32 samples, OpenImageDenoise with prefiltered guides, Cycles' light tree (its
defaults). `default` is the generator's defaults (the speed goal: at least 4 frames per
core-minute at visually clean quality); `8 samples` shows the next step down.
`--psnr` adds each setting's PSNR on seed 0 against a 128-sample denoised render of the
same scene and settings (the noise left, in dB; higher is cleaner).

    python benchmarks/bench_blender.py [--frames 3] [--threads 2] [--images DIR] [--psnr]
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from prefect_synthdata.engine import png
from prefect_synthdata.engine.generators.blender import BlenderGenerator, to_frame

PHASES = ("build", "render", "read", "amodal", "encode")
CLEAN_SAMPLES = 128  # the --psnr reference's samples


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def procedural_ground() -> None:
    """The issue's ground: the table's image texture replaced by noise + voronoi + bump."""
    import bpy

    material = bpy.data.materials["table"]
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 12.0
    noise.inputs["Detail"].default_value = 10.0
    voronoi = nodes.new("ShaderNodeTexVoronoi")
    voronoi.inputs["Scale"].default_value = 30.0
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.inputs["Factor"].default_value = 0.35
    links.new(noise.outputs["Color"], mix.inputs["A"])
    links.new(voronoi.outputs["Color"], mix.inputs["B"])
    links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])
    bump = nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = 0.3
    links.new(noise.outputs["Fac"], bump.inputs["Height"])
    links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])


def reference_settings() -> None:
    """The issue's render settings over the generator's: prefiltered guides, light tree."""
    import bpy

    procedural_ground()
    bpy.context.scene.cycles.denoising_prefilter = "ACCURATE"
    bpy.context.scene.cycles.use_light_tree = True


SETTINGS: dict[str, tuple[dict[str, Any], Callable[[], None] | None]] = {
    "reference (32 + denoise, procedural ground)": (
        {"samples": 32, "denoise": True},
        reference_settings,
    ),
    "default": ({}, None),
    "8 samples + denoise": ({"samples": 8, "denoise": True}, None),
}


def render_one(
    overrides: dict[str, Any], adjust: Callable[[], None] | None, seed: int, threads: int, out: Path
) -> dict[str, float]:
    """Build, render, read back and encode one 512x512 frame; CPU seconds per phase and in all."""
    from prefect_synthdata.engine.generators.blender.scene import Scene

    generator = BlenderGenerator()
    params = {**generator.spec.defaults(), "width": 512, "height": 512, "num_objects": 7}
    params.update({**overrides, "seed": seed})
    started = cpu_seconds()
    scene = Scene.build(params, threads)
    if adjust is not None:
        adjust()
    passes = scene.render(0)
    amodal = scene.amodal_pixels()
    encode_started = cpu_seconds()
    frame = to_frame(passes, scene.category_ids(), amodal, {})
    png.write_png(out / "rgb.png", frame.rgb, png.RGB)
    png.write_png(out / "iseg.png", frame.iseg, png.INSTANCES)
    png.write_png(out / "cseg.png", frame.cseg, png.CATEGORIES)
    png.write_png(out / "depth.png", frame.depth, png.DEPTH)
    ended = cpu_seconds()
    return {**scene.timings, "encode": ended - encode_started, "total": ended - started}


def psnr(image: Path, clean: Path) -> float:
    """Peak signal-to-noise ratio of 8-bit `image` against `clean`, in dB."""
    a, b = (np.asarray(Image.open(path), np.float64) for path in (image, clean))
    return 10 * math.log10(255**2 / float(np.mean((a - b) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3, help="frames per setting (seeds 0..n-1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=Path, help="keep each setting's RGB of seed 0 here")
    parser.add_argument("--psnr", action="store_true", help="PSNR against 128 samples")
    args = parser.parse_args()
    import bpy  # noqa: F401  (a render process pays this once)

    out = Path(tempfile.mkdtemp())
    warm = {"width": 64, "height": 64, "samples": 1, "denoise": True}
    render_one(warm, None, 0, args.threads, out)  # kernels, OIDN weights
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    quality: dict[str, str] = {name: "" for name in SETTINGS}
    for seed in range(args.frames):
        for name, (overrides, adjust) in SETTINGS.items():
            results[name].append(render_one(overrides, adjust, seed, args.threads, out))
            if args.images and seed == 0:
                args.images.mkdir(parents=True, exist_ok=True)
                (args.images / f"{name.split()[0]}.png").write_bytes((out / "rgb.png").read_bytes())
            if args.psnr and seed == 0:
                (out / "setting.png").write_bytes((out / "rgb.png").read_bytes())
                clean = {**overrides, "samples": CLEAN_SAMPLES, "denoise": True}
                render_one(clean, adjust, seed, args.threads, out)
                quality[name] = f" | {psnr(out / 'setting.png', out / 'rgb.png'):.1f}"
    defaults = BlenderGenerator.spec.defaults()
    print(f"512x512, 7 objects, {args.threads} threads, {args.frames} frames per setting, medians")
    print(
        f"default = {defaults['samples']} samples, denoise {'on' if defaults['denoise'] else 'off'}"
    )
    psnr_column = f" | PSNR vs {CLEAN_SAMPLES} samples, dB" if args.psnr else ""
    print(
        "| setting | build | render | read-back | amodal | encode | CPU s / frame "
        f"| frames / core-minute | vs reference{psnr_column} |"
    )
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if args.psnr else ""))
    reference = statistics.median(r["total"] for r in next(iter(results.values())))
    for name, runs in results.items():
        medians = {key: statistics.median(r[key] for r in runs) for key in (*PHASES, "total")}
        phases = " | ".join(f"{medians[phase]:.2f}" for phase in PHASES)
        print(
            f"| {name} | {phases} | {medians['total']:.1f} | {60 / medians['total']:.1f} "
            f"| {reference / medians['total']:.1f}x{quality[name]} |"
        )


if __name__ == "__main__":
    main()
