"""Build and render one Blender scene (this module imports `bpy`; load it only in a worker).

`Scene.build` resets Blender to an empty file and builds a tabletop or bin of
primitives and procedural meshes from a seeded numpy generator, with principled
materials, a sun, an area light, a bundled HDRI (or a plain sky) and a camera aimed
at the table; every mesh's vertices and smooth normals are computed with numpy, so
the float input to Cycles is the same bits in every process. `Scene.render` poses
frame `t` (objects drift, the camera orbits), renders with Cycles on the CPU
(OpenImageDenoise when asked) and reads the combined, object-index, depth and
(optionally) normal passes back from an uncompressed multilayer EXR in /dev/shm;
`Scene.amodal_pixels` gives each object's unoccluded area for that frame.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from mathutils import Vector

from prefect_synthdata.engine.generators.blender import HDRIS, SHAPES
from prefect_synthdata.engine.generators.blender.amodal import amodal_pixels
from prefect_synthdata.engine.generators.blender.exr import read_exr
from prefect_synthdata.engine.imaging import texture

TABLE_HALF = 0.6  # metres: the table is 1.2 m square
GROUND_TEXTURE = 256  # pixels per side of the pre-baked table texture
SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
# OpenCV camera axes (x right, y down, z forward) from Blender's (x right, y up, -z forward)
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


@dataclass
class Placed:
    """One object of the scene: its Blender object, category id and motion."""

    obj: Any
    category_id: int
    start: np.ndarray
    velocity: np.ndarray


@dataclass
class Scene:
    """A built scene; `timings` accumulates the process's CPU seconds (every render
    thread counted) per phase: `build`, `render` (Cycles and the EXR save), `read`."""

    params: dict[str, Any]
    objects: list[Placed] = field(default_factory=list)
    camera: Any = None
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, params: dict[str, Any], threads: int) -> Scene:
        started = time.process_time()
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = cls(params)
        rng = np.random.default_rng(params["seed"])
        _configure_render(params, threads)
        _table(rng, params["scene"] == "bin")
        _lights(rng, params)
        scene.objects = _objects(rng, params)
        scene.camera = _camera(rng, params)
        scene.timings["build"] = time.process_time() - started
        return scene

    def pose(self, frame: int) -> None:
        """Move objects along their velocity and orbit the camera for frame `frame`."""
        for placed in self.objects:
            placed.obj.location = Vector(placed.start + frame * placed.velocity)
        bpy.context.view_layer.update()  # matrix_world, which amodal_pixels reads
        if self.params["camera_motion"] > 0:
            base = self.camera["orbit"]
            angle = base[0] + frame * math.radians(self.params["camera_motion"])
            _aim(self.camera, angle, base[1], base[2])

    def render(self, frame: int) -> dict[str, np.ndarray]:
        """Render frame `frame`; returns `rgb` (float linear), `index`, `depth` and, with
        the `normals` parameter, `normal` (world space) arrays."""
        self.pose(frame)
        bpy.context.scene.cycles.seed = (self.params["seed"] + frame) % 2**31
        started = time.process_time()
        bpy.ops.render.render()
        path = SCRATCH / f"synthdata-blender-{os.getpid()}.exr"
        bpy.data.images["Render Result"].save_render(str(path))
        rendered = time.process_time()
        try:
            channels = read_exr(path)
        finally:
            path.unlink(missing_ok=True)
        layer = bpy.context.view_layer.name
        passes = {
            "rgb": np.stack([channels[f"{layer}.Combined.{c}"] for c in "RGB"], axis=-1),
            "index": channels[f"{layer}.Object Index.X"],
            "depth": channels[f"{layer}.Depth.Z"],
        }
        if self.params["normals"]:
            passes["normal"] = np.stack([channels[f"{layer}.Normal.{c}"] for c in "XYZ"], -1)
        read = time.process_time()
        self.timings["render"] = self.timings.get("render", 0.0) + rendered - started
        self.timings["read"] = self.timings.get("read", 0.0) + read - rendered
        return passes

    def category_ids(self) -> np.ndarray:
        """Category id by instance id (0 for the background)."""
        ids = np.zeros(len(self.objects) + 1, np.uint8)
        for placed in self.objects:
            ids[placed.obj.pass_index] = placed.category_id
        return ids

    def amodal_pixels(self) -> np.ndarray:
        """Pixels each object would cover with nothing in front of it, by instance id, for
        the frame last posed (`amodal.py`: its triangles projected through the camera)."""
        started = time.process_time()
        intrinsics, rotation, position = self._camera_model()
        render = bpy.context.scene.render
        counts = np.zeros(len(self.objects) + 1, np.int64)
        for placed in self.objects:
            mesh, to_world = placed.obj.data, np.array(placed.obj.matrix_world)
            positions = np.empty(len(mesh.vertices) * 3, np.float32)
            mesh.vertices.foreach_get("co", positions)
            world = positions.reshape(-1, 3) @ to_world[:3, :3].T + to_world[:3, 3]
            camera = (world - position) @ rotation.T
            counts[placed.obj.pass_index] = amodal_pixels(
                camera[_triangles(mesh)],
                intrinsics,
                render.resolution_y,
                render.resolution_x,
            )
        self.timings["amodal"] = self.timings.get("amodal", 0.0) + time.process_time() - started
        return counts

    def world_to_camera(self) -> np.ndarray:
        """The world-to-camera rotation (OpenCV axes) of the frame last posed."""
        return self._camera_model()[1]

    def camera_metadata(self) -> dict[str, Any]:
        """Intrinsics `K` (pixels) and the world-to-camera pose in OpenCV axes."""
        intrinsics, rotation, position = self._camera_model()
        return {
            "K": intrinsics.tolist(),
            "position": [round(float(v), 6) for v in position],
            "rotation": [[round(float(v), 6) for v in row] for row in rotation],
            "lens_mm": self.camera.data.lens,
        }

    def _camera_model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Intrinsics (pixels), world-to-camera rotation (OpenCV axes) and camera position."""
        render, cam = bpy.context.scene.render, self.camera
        width, height = render.resolution_x, render.resolution_y
        focal_px = cam.data.lens / cam.data.sensor_width * max(width, height)  # sensor fit AUTO
        intrinsics = np.array([[focal_px, 0.0, width / 2], [0.0, focal_px, height / 2], [0, 0, 1]])
        world_to_blender_cam = np.array(cam.matrix_world.inverted().to_3x3())
        position = np.array(cam.matrix_world.translation)
        return intrinsics, BLENDER_TO_OPENCV @ world_to_blender_cam, position


def _configure_render(params: dict[str, Any], threads: int) -> None:
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = params["samples"]
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = params["denoise"]
    scene.cycles.denoiser = "OPENIMAGEDENOISE"
    # the albedo and normal guides are used as rendered: prefiltering them ("ACCURATE")
    # runs the network twice more, about 5 of a 512x512 frame's 11 CPU-seconds at 8 samples
    scene.cycles.denoising_prefilter = "FAST"
    scene.cycles.use_light_tree = False  # two lights and a world: the tree costs 15%, gains nothing
    # short light paths: tabletop scenes gain little past two diffuse/glossy bounces
    scene.cycles.max_bounces = 3
    scene.cycles.diffuse_bounces = scene.cycles.glossy_bounces = 2
    scene.cycles.transmission_bounces = scene.cycles.volume_bounces = 0
    scene.cycles.transparent_max_bounces = 2
    scene.cycles.caustics_reflective = scene.cycles.caustics_refractive = False
    scene.cycles.sample_clamp_indirect = 10.0  # no fireflies for the denoiser to smear
    scene.cycles.use_animated_seed = False
    scene.render.resolution_x, scene.render.resolution_y = params["width"], params["height"]
    scene.render.resolution_percentage = 100
    scene.render.threads_mode = "FIXED"
    scene.render.threads = threads
    scene.render.use_persistent_data = False
    scene.display_settings.display_device = "sRGB"
    scene.view_settings.view_transform = "Standard"
    layer = bpy.context.view_layer
    layer.use_pass_z = True
    layer.use_pass_object_index = True
    layer.use_pass_normal = params["normals"]
    settings = scene.render.image_settings
    settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.color_depth = "32"
    settings.exr_codec = "NONE"


def _material(name: str, colour: np.ndarray, metallic: float, roughness: float) -> Any:
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Metallic"].default_value = metallic
    bsdf.inputs["Roughness"].default_value = roughness
    return material


def _table(rng: np.random.Generator, bin_walls: bool) -> None:
    """The table: a plane with a pre-baked numpy texture (cheap to render); a bin adds walls."""
    bpy.ops.mesh.primitive_plane_add(size=1.0)
    plane = bpy.context.active_object
    _scale_vertices(plane.data, np.full(len(plane.data.vertices), 2 * TABLE_HALF * 3))
    kind = str(rng.choice(["noise", "checker", "stripes", "gradient"]))
    pixels = texture(kind, GROUND_TEXTURE, GROUND_TEXTURE, rng) / 255.0  # planar (3, h, w)
    rgba = np.concatenate([pixels, np.ones((1, GROUND_TEXTURE, GROUND_TEXTURE), np.float32)])
    image = bpy.data.images.new("table", GROUND_TEXTURE, GROUND_TEXTURE)
    image.pixels.foreach_set(np.ascontiguousarray(rgba.transpose(1, 2, 0)).ravel())
    image.pack()
    material = _material("table", np.array([0.5, 0.5, 0.5]), 0.0, float(rng.uniform(0.3, 0.9)))
    nodes, links = material.node_tree.nodes, material.node_tree.links
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    links.new(tex.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    plane.data.materials.append(material)
    if bin_walls:
        wall_material = _material("bin", rng.uniform(0.1, 0.7, 3), 0.0, 0.5)
        for axis, sign in ((0, 1), (0, -1), (1, 1), (1, -1)):
            location = [0.0, 0.0, 0.1]
            location[axis] = sign * (TABLE_HALF * 0.75)
            scale = [TABLE_HALF * 0.75, TABLE_HALF * 0.75, 0.1]
            scale[axis] = 0.01
            bpy.ops.mesh.primitive_cube_add(size=2, location=location, scale=scale)
            bpy.context.active_object.data.materials.append(wall_material)


def _lights(rng: np.random.Generator, params: dict[str, Any]) -> None:
    scene = bpy.context.scene
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = float(rng.uniform(0.5, 2.5))
    sun.data.angle = math.radians(float(rng.uniform(0.5, 5.0)))
    sun.rotation_euler = (float(rng.uniform(0.1, 0.9)), 0.0, float(rng.uniform(0, 2 * math.pi)))
    area = bpy.data.objects.new("area", bpy.data.lights.new("area", "AREA"))
    area.data.energy = float(rng.uniform(20, 120))
    area.data.size = float(rng.uniform(0.3, 1.5))
    azimuth, height = rng.uniform(0, 2 * math.pi), rng.uniform(1.0, 2.0)
    area.location = (math.cos(azimuth) * 1.2, math.sin(azimuth) * 1.2, height)
    area.rotation_euler = (Vector((0, 0, 0.2)) - area.location).to_track_quat("-Z", "Y").to_euler()
    for light in (sun, area):
        scene.collection.objects.link(light)
    world = bpy.data.worlds.new("world")
    scene.world = world
    world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = nodes["Background"]
    background.inputs["Strength"].default_value = float(rng.uniform(0.3, 0.9))
    hdri = params["hdri"] if params["hdri"] != "random" else str(rng.choice(HDRIS))
    if hdri == "none":
        background.inputs["Color"].default_value = (*rng.uniform(0.2, 0.8, 3), 1.0)
        return
    folder = Path(bpy.utils.system_resource("DATAFILES")) / "studiolights" / "world"
    world.cycles.sampling_method = "MANUAL"  # the automatic map costs seconds of sync a frame
    world.cycles.sample_map_resolution = 256
    env = nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(folder / f"{hdri}.exr"), check_existing=True)
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, float(rng.uniform(0, 2 * math.pi)))
    coords = nodes.new("ShaderNodeTexCoord")
    links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    links.new(env.outputs["Color"], background.inputs["Color"])


def _add_shape(shape: str, size: float, rng: np.random.Generator) -> Any:
    """A primitive of `size` metres. Blender builds it at unit size; numpy scales its
    vertices and computes its smooth normals, because Blender's own results for both
    differ in the last bit from one process to the next, which moved float RGB values
    (and, through the denoiser, a few 8-bit ones) run to run."""
    ops = bpy.ops.mesh
    if shape == "cube":
        ops.primitive_cube_add(size=1.0)
    elif shape == "sphere":
        ops.primitive_uv_sphere_add(radius=0.5, segments=24, ring_count=12)
    elif shape == "cylinder":
        ops.primitive_cylinder_add(radius=0.5, depth=1.0, vertices=24)
    elif shape == "cone":
        ops.primitive_cone_add(radius1=0.5, depth=1.0, vertices=24)
    elif shape == "torus":
        ops.primitive_torus_add(major_radius=1 / 2.6, minor_radius=1 / 8)
    elif shape == "monkey":
        ops.primitive_monkey_add(size=1.0)
    else:  # a rock: an icosphere with every vertex pushed in or out at random
        ops.primitive_ico_sphere_add(radius=0.5, subdivisions=3)
    obj = bpy.context.active_object
    scale = np.full(len(obj.data.vertices), size)
    if shape == "rock":
        scale *= rng.uniform(0.75, 1.2, len(obj.data.vertices))
    positions = _scale_vertices(obj.data, scale)
    if shape in ("sphere", "cylinder", "cone", "torus", "monkey"):
        _smooth_normals(obj.data, positions)
    return obj


def _scale_vertices(mesh: Any, scale: np.ndarray) -> np.ndarray:
    """Multiply each vertex of `mesh` by its `scale` in numpy; returns the new positions."""
    coords = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", coords)
    positions = (coords.reshape(-1, 3) * scale[:, None]).astype(np.float32)
    mesh.vertices.foreach_set("co", positions.ravel())
    mesh.update()
    return positions


def _triangles(mesh: Any) -> np.ndarray:
    """(N, 3) vertex indices of the triangles Cycles renders `mesh` as."""
    mesh.calc_loop_triangles()
    flat = np.empty(len(mesh.loop_triangles) * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", flat)
    return flat.reshape(-1, 3)


def _smooth_normals(mesh: Any, positions: np.ndarray) -> None:
    """Shade `mesh` smooth with vertex normals computed here, each the sum of its faces'
    normals weighted by the face's angle at the vertex (as Blender's; unlike area weights,
    that does not depend on how a cap's polygon is split), stored as Blender 5's free
    `custom_normal` attribute, which Cycles interpolates as is."""
    triangles = _triangles(mesh)
    corners = positions.astype(np.float64)[triangles]
    face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    face /= np.linalg.norm(face, axis=1, keepdims=True)
    normals = np.zeros((len(positions), 3))
    for corner in range(3):
        towards_next = corners[:, (corner + 1) % 3] - corners[:, corner]
        towards_prev = corners[:, (corner + 2) % 3] - corners[:, corner]
        cosine = np.einsum("ij,ij->i", towards_next, towards_prev) / (
            np.linalg.norm(towards_next, axis=1) * np.linalg.norm(towards_prev, axis=1)
        )
        angle = np.arccos(np.clip(cosine, -1.0, 1.0))
        np.add.at(normals, triangles[:, corner], face * angle[:, None])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    mesh.shade_smooth()
    attribute = mesh.attributes.new("custom_normal", "FLOAT_VECTOR", "POINT")
    attribute.data.foreach_set("vector", normals.astype(np.float32).ravel())


def _objects(rng: np.random.Generator, params: dict[str, Any]) -> list[Placed]:
    """Objects on a jittered grid (no two overlap), random rotation, material and drift."""
    count = params["num_objects"]
    side = math.ceil(math.sqrt(count))
    spread = TABLE_HALF * (0.65 if params["scene"] == "bin" else 0.9)
    cell = 2 * spread / side
    cells = rng.permutation(side * side)[:count]
    placed = []
    for index, cell_index in enumerate(cells.tolist()):
        category = int(rng.integers(len(SHAPES)))
        size = float(rng.uniform(0.35, 0.7)) * cell
        obj = _add_shape(SHAPES[category], size, rng)
        row, col = divmod(cell_index, side)
        jitter = rng.uniform(-0.5, 0.5, 2) * (cell - size) * 0.9
        start = np.array(
            [
                -spread + (col + 0.5) * cell + jitter[0],
                -spread + (row + 0.5) * cell + jitter[1],
                size / 2,
            ]
        )
        obj.location = Vector(start)
        obj.rotation_euler = (0.0, 0.0, float(rng.uniform(0, 2 * math.pi)))
        metallic = float(rng.random() < 0.35)
        roughness = float(rng.uniform(0.05, 0.3) if rng.random() < 0.5 else rng.uniform(0.4, 0.9))
        obj.data.materials.append(
            _material(f"m{index}", rng.uniform(0.05, 0.9, 3), metallic, roughness)
        )
        obj.pass_index = index + 1  # the instance id in the object-index pass
        direction = rng.uniform(0, 2 * math.pi)
        speed = params["motion"] * cell
        velocity = np.array([math.cos(direction) * speed, math.sin(direction) * speed, 0.0])
        placed.append(Placed(obj, category + 1, start, velocity))
    return placed


def _camera(rng: np.random.Generator, params: dict[str, Any]) -> Any:
    data = bpy.data.cameras.new("camera")
    data.lens = float(rng.uniform(28, 50))
    data.clip_start, data.clip_end = 0.05, 50.0
    camera = bpy.data.objects.new("camera", data)
    bpy.context.scene.collection.objects.link(camera)
    bpy.context.scene.camera = camera
    azimuth = float(rng.uniform(0, 2 * math.pi))
    elevation = math.radians(float(rng.uniform(35, 75)))
    distance = float(rng.uniform(1.1, 1.7))
    camera["orbit"] = (azimuth, elevation, distance)
    _aim(camera, azimuth, elevation, distance)
    return camera


def _aim(camera: Any, azimuth: float, elevation: float, distance: float) -> None:
    location = Vector(
        (
            distance * math.cos(elevation) * math.cos(azimuth),
            distance * math.cos(elevation) * math.sin(azimuth),
            distance * math.sin(elevation),
        )
    )
    camera.location = location
    camera.rotation_euler = (Vector((0, 0, 0.05)) - location).to_track_quat("-Z", "Y").to_euler()
    bpy.context.view_layer.update()
