"""`tabletop`: 2.5D scenes of spheres, boxes, cylinders and cones on a textured table.

A pinhole camera looks down at the table plane (z = 0) from a chosen elevation,
azimuth and distance. Each primary ray is intersected analytically with the
objects inside their projected bounding box only, with a z-buffer for exact
occlusion; a directional light gives Lambert shading and hard shadows (shadow
rays are traced against each object inside its projected shadow volume only).
The table, sky and fog are computed once per job; in video jobs objects slide
across the table and keep their track ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefect_synthdata.engine.generators.base import (
    Frame,
    Generator,
    Instance,
    Region,
    between,
    choices,
    common_params,
    object_count,
    param,
)
from prefect_synthdata.engine.generators.motion import bounce
from prefect_synthdata.engine.imaging import (
    TEXTURES,
    apply_sensor,
    log_uniform,
    object_colours,
    texture,
)
from prefect_synthdata.params import GeneratorSpec

CATEGORIES = ["sphere", "box", "cylinder", "cone"]
PALETTE = np.array([[210, 70, 60], [230, 190, 60], [70, 150, 210], [90, 180, 90]], np.float32)
EPS = 1e-4
CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (0, 1)], np.float64)
Vec = tuple[Any, Any, Any]  # x, y, z: each a float32 array or a scalar
Hit = tuple[np.ndarray, Vec | None]  # ray parameters and normals

SPEC = GeneratorSpec(
    name="tabletop",
    version="2",
    description="2.5D tabletop scenes (sphere, box, cylinder, cone) with perspective, a textured "
    "ground plane, Lambert lighting, hard shadows, occlusion, noise, blur and motion.",
    preview=True,
    params=[
        *common_params(max_objects=32, default_objects=8),
        param(
            "min_size",
            "float",
            0.04,
            "Smallest object size in metres (sizes are log-uniform).",
            between(0.03, 0.08),
            min=0.02,
            max=0.5,
        ),
        param(
            "max_size",
            "float",
            0.4,
            "Largest object size in metres.",
            between(0.2, 0.45, at_least="min_size"),
            min=0.02,
            max=0.5,
        ),
        param(
            "table_texture",
            "str",
            "noise",
            "Texture of the table surface.",
            choices(*TEXTURES),
            choices=TEXTURES,
        ),
        param(
            "camera_elevation",
            "float",
            45.0,
            "Camera angle above the table, degrees.",
            between(25.0, 80.0),
            min=15.0,
            max=89.0,
        ),
        param(
            "camera_azimuth",
            "float",
            0.0,
            "Camera direction around the table, degrees.",
            between(0.0, 360.0),
            min=0.0,
            max=360.0,
        ),
        param(
            "camera_distance",
            "float",
            1.5,
            "Camera distance to the table centre, metres.",
            between(1.0, 2.5),
            min=0.5,
            max=5.0,
        ),
        param(
            "fov",
            "float",
            50.0,
            "Horizontal field of view, degrees.",
            between(35.0, 70.0),
            min=20.0,
            max=100.0,
        ),
        param(
            "light_elevation",
            "float",
            50.0,
            "Light angle above the table, degrees.",
            between(20.0, 80.0),
            min=10.0,
            max=90.0,
        ),
        param(
            "ambient",
            "float",
            0.35,
            "Ambient light level.",
            between(0.2, 0.6),
            min=0.0,
            max=1.0,
        ),
    ],
)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: position, orthonormal basis and intrinsics (pixels)."""

    position: np.ndarray
    right: np.ndarray
    down: np.ndarray
    forward: np.ndarray
    fx: float
    cx: float
    cy: float

    @classmethod
    def looking_at_origin(
        cls, elevation: float, azimuth: float, distance: float, fov: float, w: int, h: int
    ) -> Camera:
        el, az = np.radians(elevation), np.radians(azimuth)
        position = distance * np.array(
            [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)]
        )
        forward = -position / distance
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        return cls(
            position, right, down, forward, (w / 2) / np.tan(np.radians(fov) / 2), w / 2, h / 2
        )

    def rays(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit ray directions through every pixel centre, planar (3, h, w) float32, and
        each ray's cosine to the optical axis (depth along the axis per unit of ray), (h, w).
        """
        xs = ((np.arange(w) + 0.5 - self.cx) / self.fx).astype(np.float32)[None, :]
        ys = ((np.arange(h) + 0.5 - self.cy) / self.fx).astype(np.float32)[:, None]
        d = np.empty((3, h, w), np.float32)
        for c in range(3):
            d[c] = (
                np.float32(self.forward[c])
                + xs * np.float32(self.right[c])
                + ys * np.float32(self.down[c])
            )
        cosine = 1.0 / np.sqrt(
            d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
        )  # forward . d = 1 before scaling
        d *= cosine[None]
        return d, cosine

    def project(self, points: np.ndarray) -> np.ndarray | None:
        """Pixel (x, y) of world points (N, 3), or None if any lies behind the camera."""
        rel = points - self.position
        z = rel @ self.forward
        if np.any(z < 1e-3):
            return None
        return np.stack(
            [self.fx * (rel @ self.right) / z + self.cx, self.fx * (rel @ self.down) / z + self.cy],
            1,
        )

    def metadata(self, w: int, h: int) -> dict[str, Any]:
        rotation = np.stack(
            [self.right, self.down, self.forward]
        )  # world -> camera (x right, y down)
        return {
            "model": "pinhole",
            "width": w,
            "height": h,
            "K": [[float(self.fx), 0.0, self.cx], [0.0, float(self.fx), self.cy], [0.0, 0.0, 1.0]],
            "position": self.position.round(6).tolist(),
            "world_to_camera_rotation": rotation.round(6).tolist(),
            "depth_unit": "mm along the optical axis; 0 = no surface (sky)",
        }


@dataclass(frozen=True)
class Solid:
    """A primitive standing on the table: `kind` (category index), base centre, yaw and size."""

    kind: int
    x: float
    y: float
    yaw: float
    radius: float  # footprint half-extent
    height: float

    def corners(self) -> np.ndarray:
        """The 8 corners of a world box enclosing the solid."""
        r = self.radius * (1.5 if self.kind == 1 else 1.0)  # a yawed box reaches sqrt(2) further
        return CORNERS * [r, r, self.height] + [self.x, self.y, 0.0]

    def intersect(self, origin: Vec, direction: Vec, normals: bool = True) -> Hit:
        """Ray parameter of the first hit (inf on a miss) and, if asked, the unit normal there.

        Rays are given per component in world coordinates, each component a float32
        array or a scalar (the camera's position, the light's direction): a scalar
        costs nothing per ray. Directions are unit length.
        """
        c, s = np.float32(np.cos(self.yaw)), np.float32(np.sin(self.yaw))
        ox, oy = origin[0] - np.float32(self.x), origin[1] - np.float32(self.y)
        local_o = (c * ox + s * oy, c * oy - s * ox, origin[2])
        local_d = (
            c * direction[0] + s * direction[1],
            c * direction[1] - s * direction[0],
            direction[2],
        )
        shape = (_sphere, _box, _cylinder, _cone)[self.kind]
        t, normal = shape(
            local_o, local_d, np.float32(self.radius), np.float32(self.height), normals
        )
        if normal is None:
            return t, None
        nx, ny, nz = normal
        return t, (c * nx - s * ny, s * nx + c * ny, nz)


def _valid(t: Any, ok: Any) -> np.ndarray:
    return np.where(ok & (t > EPS), t, np.float32(np.inf)).astype(np.float32)


def _roots(a: Any, b: Any, c: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both roots of a t^2 + 2 b t + c = 0 (nan where there is none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(b * b - a * c)
        return (-b - root) / a, (-b + root) / a


def _at(o: Vec, d: Vec, t: np.ndarray) -> Vec:
    """Points o + t d, with misses (t = inf) placed at the origin."""
    t = np.where(np.isfinite(t), t, np.float32(0))
    return o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]


def _sphere(o: Vec, d: Vec, r: Any, _h: Any, normals: bool) -> Hit:
    oz = o[2] - r
    b = o[0] * d[0] + o[1] * d[1] + oz * d[2]
    c = o[0] * o[0] + o[1] * o[1] + oz * oz - r * r
    near, _ = _roots(np.float32(1), b, c)
    t = _valid(near, np.isfinite(near))
    if not normals:
        return t, None
    x, y, z = _at(o, d, t)
    return t, (x / r, y / r, (z - r) / r)


def _box(o: Vec, d: Vec, r: Any, h: Any, normals: bool) -> Hit:
    lows, highs = (-r, -r, np.float32(0)), (r, r, h)
    nears, fars = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis in range(3):
            inverse = np.float32(1) / np.where(d[axis] == 0, np.float32(1e-12), d[axis])
            t1, t2 = (lows[axis] - o[axis]) * inverse, (highs[axis] - o[axis]) * inverse
            nears.append(np.minimum(t1, t2))
            fars.append(np.maximum(t1, t2))
    t_near = np.maximum(np.maximum(nears[0], nears[1]), nears[2])
    t_far = np.minimum(np.minimum(fars[0], fars[1]), fars[2])
    t = _valid(t_near, t_far >= t_near)
    if not normals:
        return t, None
    nx, ny, nz = (
        np.where(nears[axis] == t_near, -np.sign(d[axis]), np.float32(0)) for axis in range(3)
    )
    return t, (nx, ny, nz)


def _cylinder(o: Vec, d: Vec, r: Any, h: Any, normals: bool) -> Hit:
    a = d[0] * d[0] + d[1] * d[1]
    b = o[0] * d[0] + o[1] * d[1]
    c = o[0] * o[0] + o[1] * o[1] - r * r
    t_side, _ = _roots(a, b, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_side = o[2] + t_side * d[2]
        t_top = (h - o[2]) / d[2]
        x_top, y_top = o[0] + t_top * d[0], o[1] + t_top * d[1]
        side = _valid(t_side, (z_side >= 0) & (z_side <= h))
        top = _valid(t_top, x_top * x_top + y_top * y_top <= r * r)
    t = np.minimum(side, top)
    if not normals:
        return t, None
    x, y, _z = _at(o, d, t)
    on_side = side <= top
    zero, one = np.float32(0), np.float32(1)
    return t, (
        np.where(on_side, x / r, zero),
        np.where(on_side, y / r, zero),
        np.where(on_side, zero, one),
    )


def _cone(o: Vec, d: Vec, r: Any, h: Any, normals: bool) -> Hit:
    k2 = (r / h) ** 2
    above = h - o[2]
    a = d[0] * d[0] + d[1] * d[1] - k2 * d[2] * d[2]
    b = o[0] * d[0] + o[1] * d[1] + k2 * above * d[2]
    c = o[0] * o[0] + o[1] * o[1] - k2 * above * above
    hits = []
    with np.errstate(invalid="ignore"):
        for root in _roots(a, b, c):
            z = o[2] + root * d[2]
            hits.append(_valid(root, (z >= 0) & (z <= h)))
    t = np.minimum(hits[0], hits[1])
    if not normals:
        return t, None
    x, y, z = _at(o, d, t)
    nz = k2 * (h - z)
    length = np.sqrt(x * x + y * y + nz * nz)
    length = np.where(length > 0, length, np.float32(1))
    return t, (x / length, y / length, nz / length)


def _region(pixels: np.ndarray | None, w: int, h: int) -> Region | None:
    """Clipped pixel box around projected points (everything if they were behind the camera)."""
    if pixels is None:
        return 0, h, 0, w
    x0, y0 = (int(v) - 1 for v in np.floor(pixels.min(0)))
    x1, y1 = (int(v) + 2 for v in np.ceil(pixels.max(0)))
    y0, y1, x0, x1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None


class TabletopGenerator(Generator):
    """Renders `tabletop` jobs."""

    spec = SPEC
    categories = CATEGORIES

    def render_frames(self, params: dict[str, Any], is_preview: bool) -> Iterator[Frame]:
        h, w = int(params["height"]), int(params["width"])
        seed = int(params["seed"])
        rng = np.random.default_rng(seed)
        camera = Camera.looking_at_origin(
            float(params["camera_elevation"]), float(params["camera_azimuth"]),
            float(params["camera_distance"]), float(params["fov"]), w, h,
        )  # fmt: skip
        rays, cosine = camera.rays(h, w)
        mm_per_unit = cosine * np.float32(1000)  # ray parameter -> depth along the axis in mm
        eye: Vec = (
            np.float32(camera.position[0]),
            np.float32(camera.position[1]),
            np.float32(camera.position[2]),
        )
        light_az, light_el = (
            np.radians(float(params["light_azimuth"])),
            np.radians(float(params["light_elevation"])),
        )
        light = np.array(
            [
                np.cos(light_el) * np.cos(light_az),
                np.cos(light_el) * np.sin(light_az),
                np.sin(light_el),
            ],
            np.float32,
        )
        power, ambient = float(params["light_power"]), float(params["ambient"])
        t_ground, albedo0 = self._table(params, rng, camera, rays)
        shade0 = np.where(
            np.isfinite(t_ground), ambient + power * max(float(light[2]), 0.0), 1.0
        ).astype(np.float32)

        solids, velocities = self._place(params, rng, camera, rays, t_ground)
        colours = object_colours(
            np.array([s.kind for s in solids], np.int64),
            PALETTE,
            bool(params["class_colours"]),
            float(params["colour_jitter"]),
            rng,
        )
        reach = float(params["camera_distance"])  # objects slide inside [-reach, reach]^2
        starts = np.array([[s.x + reach, s.y + reach] for s in solids]).reshape(-1, 2)
        velocities = velocities * float(params["motion"]) * reach
        for index in range(self.frame_count(params, is_preview)):
            positions = bounce(starts, velocities, index, np.array([2 * reach, 2 * reach])) - reach
            moved = [
                Solid(s.kind, float(x), float(y), s.yaw, s.radius, s.height)
                for s, (x, y) in zip(solids, positions, strict=True)
            ]
            albedo, shade, tbuf = albedo0.copy(), shade0.copy(), t_ground.copy()
            iseg = np.zeros((h, w), np.uint16)
            cseg = np.zeros((h, w), np.uint8)
            instances: dict[int, Instance] = {}
            for i, solid in enumerate(moved):
                region = _region(camera.project(solid.corners()), w, h)
                if region is None:
                    continue
                y0, y1, x0, x1 = region
                d = rays[:, y0:y1, x0:x1]
                t, normal = solid.intersect(eye, (d[0], d[1], d[2]))
                drawn = int(np.count_nonzero(np.isfinite(t)))
                if drawn == 0:
                    continue
                front = t < tbuf[y0:y1, x0:x1]
                assert normal is not None
                lambert = np.maximum(
                    normal[0] * light[0] + normal[1] * light[1] + normal[2] * light[2], 0
                )
                tbuf[y0:y1, x0:x1][front] = t[front]
                shade[y0:y1, x0:x1][front] = ambient + power * lambert[front]
                albedo[:, y0:y1, x0:x1][:, front] = colours[i][:, None]
                iseg[y0:y1, x0:x1][front] = i + 1
                cseg[y0:y1, x0:x1][front] = solid.kind + 1
                instances[i + 1] = Instance(solid.kind + 1, i + 1, drawn, region)
            for i, solid in enumerate(moved):
                self._cast_shadow(
                    i + 1, solid, camera, rays, light, tbuf, iseg, shade, ambient, w, h
                )
            rgb = albedo * shade[None]
            depth = np.minimum(tbuf * mm_per_unit, np.float32(65535))
            depth[depth == 65535] = 0  # sky (inf) and beyond 65.5 m: no depth
            np.rint(depth, out=depth)
            frame_rng = np.random.default_rng([seed, index, 1])
            yield Frame(
                rgb=apply_sensor(rgb, float(params["blur"]), float(params["noise_std"]), frame_rng),
                iseg=iseg,
                cseg=cseg,
                depth=depth.astype(np.uint16),
                instances=instances,
                metadata={
                    "seed": seed,
                    "frame": index,
                    "camera": camera.metadata(w, h),
                    "light": {
                        "azimuth_deg": float(params["light_azimuth"]),
                        "elevation_deg": float(params["light_elevation"]),
                        "direction": light.round(6).tolist(),
                        "power": power,
                        "ambient": ambient,
                    },
                    "table_texture": str(params["table_texture"]),
                },
            )

    @staticmethod
    def _table(
        params: dict[str, Any], rng: np.random.Generator, camera: Camera, rays: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ray parameter of the table (inf for sky) and the planar albedo of table, sky and fog."""
        height = np.float32(camera.position[2])
        with np.errstate(divide="ignore"):
            t_ground = np.where(rays[2] < -1e-6, -height / rays[2], np.float32(np.inf))
        t_safe = np.where(np.isfinite(t_ground), t_ground, np.float32(0))
        bits = 8  # a 256 x 256 texture, tiled mirrored so there are no seams
        size = 1 << bits
        tex = texture(str(params["table_texture"]), size, size, rng).reshape(3, -1)
        per_metre = np.float32(size / (2.0 * float(params["camera_distance"])))
        index = np.zeros(t_ground.shape, np.int32)
        for axis, shift in ((1, bits), (0, 0)):
            coord = ((np.float32(camera.position[axis]) + t_safe * rays[axis]) * per_metre).astype(
                np.int32
            )
            coord ^= -((coord >> bits) & 1) & (size - 1)  # odd tiles run backwards
            coord &= size - 1
            index |= coord << shift
        table = tex.take(index, axis=1)
        # fog towards the horizon; far table (and sky) only occur in the upper rows
        fog_start = np.float32(3.0 * float(params["camera_distance"]))
        foggy_rows = np.flatnonzero((t_ground > fog_start).any(axis=1))
        if foggy_rows.size:
            rows = slice(0, int(foggy_rows[-1]) + 1)
            fog = np.clip(
                (t_ground[rows] - fog_start) / (3 * fog_start), np.float32(0), np.float32(1)
            )
            sky = np.array([200, 215, 235], np.float32)
            for c in range(3):
                table[c, rows] += fog * (sky[c] - table[c, rows])
        return t_ground, table

    @staticmethod
    def _place(
        params: dict[str, Any],
        rng: np.random.Generator,
        camera: Camera,
        rays: np.ndarray,
        t_ground: np.ndarray,
    ) -> tuple[list[Solid], np.ndarray]:
        """Non-overlapping solids on table points in view near the table centre, and their headings."""
        h, w = t_ground.shape
        solids: list[Solid] = []
        reach = float(params["camera_distance"])  # keep objects on the table near its centre
        for _ in range(object_count(params, rng)):
            kind = int(rng.integers(0, len(CATEGORIES)))
            size = float(
                log_uniform(float(params["min_size"]), float(params["max_size"]), 1, rng)[0]
            )
            height = size * float(
                (1.0, rng.uniform(0.6, 1.4), rng.uniform(1.0, 2.0), rng.uniform(1.0, 1.8))[kind]
            )
            yaw = float(rng.uniform(0, np.pi))
            for _attempt in range(30):
                px, py = int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.25, 0.95) * h)
                if not np.isfinite(t_ground[py, px]):
                    continue
                x, y, _z = camera.position + t_ground[py, px] * rays[:, py, px]
                if x * x + y * y > reach * reach:
                    continue
                if all(
                    (x - s.x) ** 2 + (y - s.y) ** 2 > (size / 2 * 1.5 + s.radius * 1.5) ** 2
                    for s in solids
                ):
                    solids.append(Solid(kind, float(x), float(y), yaw, size / 2, height))
                    break
        headings = rng.uniform(0, 2 * np.pi, size=len(solids))
        return solids, np.stack([np.cos(headings), np.sin(headings)], 1)

    @staticmethod
    def _cast_shadow(
        instance_id: int,
        solid: Solid,
        camera: Camera,
        rays: np.ndarray,
        light: np.ndarray,
        tbuf: np.ndarray,
        iseg: np.ndarray,
        shade: np.ndarray,
        ambient: float,
        w: int,
        h: int,
    ) -> None:
        """Set `shade` to ambient where the solid blocks the light from the visible surface."""
        if light[2] <= 0:
            return
        corners = solid.corners()
        dropped = corners - (corners[:, 2:3] / light[2]) * light  # along the light onto the table
        region = _region(camera.project(np.concatenate([corners, dropped])), w, h)
        if region is None:
            return
        y0, y1, x0, x1 = region
        t = tbuf[y0:y1, x0:x1]
        candidates = np.isfinite(t) & (iseg[y0:y1, x0:x1] != instance_id)
        if not candidates.any():
            return
        t_hit = t[candidates]
        d = rays[:, y0:y1, x0:x1][:, candidates]
        points = tuple(np.float32(camera.position[c]) + t_hit * d[c] for c in range(3))
        blocked, _ = solid.intersect(points, (light[0], light[1], light[2]), normals=False)
        view = shade[y0:y1, x0:x1]
        lit = view[candidates]
        view[candidates] = np.where(np.isfinite(blocked), np.minimum(lit, ambient), lit)
