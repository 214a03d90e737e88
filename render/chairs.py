"""Chair identities: a parametric generator (unlimited identities) and folders of real meshes.

ParametricChairs draws a ChairParams from the identity's seeded stream (all randomness happens
there), then builds the chair from closed primitives (boxes, tapered cylinders, slabs with
rounded rims, tube sweeps along filleted polylines) in metres, and finally normalises it to the
unit sphere. Parts overlap instead of being unioned: every part is embedded a few millimetres in
the part that holds it, so no part floats. Vertices are duplicated at hard edges (box corners,
cap rims), so area-weighted vertex normals shade flat faces flat and round ones smooth.

MeshFolderChairs serves any folder of OBJ/PLY/GLB/GLTF/STL files, split into train/test by a
hash of (seed, relative path), so adding a file never moves another between splits.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from render.mesh import TriMesh
from render.sources import GenerativeSource, IdentitySource

BASES = (
    "four_leg_straight",
    "four_leg_tapered",
    "four_leg_splayed",
    "pedestal",
    "swivel",  # five-star base on casters or glides
    "sled",
    "cantilever",
)
BACKS = ("panel", "horizontal_slats", "vertical_slats", "spindle", "ladder")
SEATS = ("square", "rounded", "round")
ARMS = ("none", "post", "panel", "loop")
STRETCHERS = ("none", "side", "box", "h")
FEET = ("none", "disk", "dome", "cross", "casters", "glides")
FAMILIES: dict[str, tuple[str, ...]] = {
    "base": BASES,
    "back": BACKS,
    "seat": SEATS,
    "arms": ARMS,
    "stretchers": STRETCHERS,
    "feet": FEET,
}
MATERIALS = ("frame", "seat", "cushion")

_SEGMENTS = 16  # around a cylinder or tube: smooth at 64-150 px, ~64 triangles per leg


@dataclass(frozen=True)
class ChairParams:
    """One chair identity. Lengths in metres (before normalisation), angles in degrees,
    colours linear RGB in [0, 1]. Family fields take values from FAMILIES."""

    base: str
    back: str
    seat: str
    arms: str
    stretchers: str
    feet: str
    # seat slab: top at seat_height, outline in the xz plane
    seat_width: float
    seat_depth: float
    seat_height: float
    seat_thickness: float
    seat_corner: float  # corner radius of a "rounded" seat
    seat_taper: float  # rear width / front width of a "square" seat
    seat_rim: float  # rounding radius of the slab's rim
    # legs (four_leg_*), also post sections of arms
    leg_width: float
    leg_round: bool
    leg_taper: float  # bottom / top thickness
    leg_splay: float  # degrees outwards from vertical
    rear_legs_to_back: bool  # rear legs run on up as the back's stiles
    stretcher_height: float  # fraction of the leg's height
    # pedestal and swivel bases
    column_radius: float
    column_flare: float  # top / bottom radius of a pedestal column (tulip chairs)
    base_radius: float  # disk/dome radius, or reach of the star/cross arms
    base_height: float
    # sled, cantilever, loop arms
    tube_radius: float
    # back, in a frame tilted back by back_tilt about the seat's rear edge
    back_height: float  # above the seat top, along the tilted back
    back_width: float  # fraction of the seat width
    back_tilt: float
    back_thickness: float  # panel thickness
    back_bow: float  # how far the middle of panels/rails curves back
    back_top: str  # panel outline: "flat" | "rounded" | "arched"
    back_gap: float  # panel lifted above the seat on stiles / bottom rail height (metres)
    back_count: int  # slats, spindles or rungs
    stile_width: float
    stile_round: bool
    # arms
    arm_height: float  # armrest top above the seat top
    arm_width: float
    arm_posts: int  # 1 (T-arm) or 2
    # cushions: thickness, 0 = none
    seat_cushion: float
    back_cushion: float
    frame_color: tuple[float, float, float]
    seat_color: tuple[float, float, float]
    cushion_color: tuple[float, float, float]


@dataclass(frozen=True)
class ChairPart:
    """One closed primitive of a chair: vertices float64 (V, 3) in metres (y up, front +z,
    floor at y = 0), faces int32 (M, 3) counter-clockwise seen from outside."""

    name: str
    material: str  # one of MATERIALS
    vertices: np.ndarray
    faces: np.ndarray


# ----------------------------------------------------------------------------- primitives


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _perpendicular(t: np.ndarray) -> np.ndarray:
    helper = np.array([0.0, 1.0, 0.0]) if abs(t[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    return _unit(np.cross(t, helper))


def _signed_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _sweep(
    path: np.ndarray, profile: np.ndarray, normal0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A closed tube: `profile` (K, 2), or one per path point (N, K, 2), swept along `path`
    (N, 3) with parallel-transported frames, mitred at bends, fan-capped at both ends.

    Profile coordinates (a, b) map to a * normal + b * (tangent x normal); normal0 fixes the
    first normal (any vector not parallel to the first segment). Profiles must be star-shaped
    about their vertex mean (caps are fans). Returns float64 (V, 3), int32 (M, 3)."""
    path = np.asarray(path, dtype=np.float64)
    prof = np.asarray(profile, dtype=np.float64)
    n = len(path)
    if prof.ndim == 2:
        prof = np.broadcast_to(prof, (n, *prof.shape))
    if _signed_area(prof[0]) < 0:  # counter-clockwise profiles give outward side normals
        prof = prof[:, ::-1]
    k = prof.shape[1]

    seg = _unit(np.diff(path, axis=0))
    tan = np.empty_like(path)
    tan[0], tan[-1] = seg[0], seg[-1]
    tan[1:-1] = _unit(seg[:-1] + seg[1:])
    nrm = np.empty_like(path)
    nrm0 = _perpendicular(tan[0]) if normal0 is None else np.asarray(normal0, float)
    nrm[0] = _unit(nrm0 - nrm0 @ tan[0] * tan[0])
    for i in range(1, n):  # parallel transport: no twist along the path
        m = nrm[i - 1] - nrm[i - 1] @ tan[i] * tan[i]
        nrm[i] = m / np.linalg.norm(m)
    bin_ = np.cross(tan, nrm)
    off = prof[..., :1] * nrm[:, None] + prof[..., 1:] * bin_[:, None]  # (N, K, 3)
    for i in range(1, n - 1):  # the ring lies in the bisector plane: stretch it across the bend
        bend = seg[i] - seg[i - 1]
        norm = np.linalg.norm(bend)
        if norm > 1e-9:
            bend /= norm
            c = float(tan[i] @ seg[i - 1])
            off[i] += (1.0 / c - 1.0) * (off[i] @ bend)[:, None] * bend
    rings = path[:, None] + off

    # Duplicate profile corners sharper than 35 degrees so they shade as hard edges.
    p0 = prof[0]
    e_in = _unit(p0 - p0[np.arange(-1, k - 1)])
    e_out = e_in[np.arange(1, k + 1) % k]
    sharp = np.einsum("ij,ij->i", e_in, e_out) < _COS_SHARP
    idx, faces = _sweep_topology(n, sharp.tobytes())
    centres = rings[[0, -1]].mean(axis=1)
    verts = np.concatenate([rings[:, idx].reshape(-1, 3), rings[0], centres[:1], rings[-1],
                            centres[1:]])
    return verts, faces


_COS_SHARP = math.cos(math.radians(35))


@lru_cache(maxsize=256)
def _sweep_topology(n: int, sharp_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Which profile vertex each side-ring vertex copies, and the faces of a swept tube with
    n rings: sides, then a fan cap at each end (ring + centre appended after the sides)."""
    sharp = np.frombuffer(sharp_bytes, dtype=bool)
    k = len(sharp)
    copies = np.where(sharp, 2, 1)
    idx = np.repeat(np.arange(k), copies)
    last = np.cumsum(copies) - 1  # position of each corner's second copy
    a, b = last, np.roll(last - sharp.astype(int), -1)  # edge j runs from copy a to copy b
    e = len(idx)
    rows = (np.arange(n - 1) * e)[:, None]
    a0, b0, a1, b1 = rows + a, rows + b, rows + e + a, rows + e + b
    faces = [np.stack([a0, b0, b1], -1).reshape(-1, 3), np.stack([a0, b1, a1], -1).reshape(-1, 3)]
    j = np.arange(k)
    start, end = n * e, n * e + k + 1
    faces.append(np.stack([np.full(k, start + k), start + (j + 1) % k, start + j], -1))
    faces.append(np.stack([np.full(k, end + k), end + j, end + (j + 1) % k], -1))
    f = np.concatenate(faces).astype(np.int32)
    idx.flags.writeable = f.flags.writeable = False  # cached: shared between calls
    return idx, f


def _circle(r: float, k: int = _SEGMENTS) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return np.stack([r * np.cos(t), r * np.sin(t)], -1)


def _rect(ha: float, hb: float) -> np.ndarray:
    return np.array([[-ha, -hb], [ha, -hb], [ha, hb], [-ha, hb]], dtype=np.float64)


def _rounded_rect(ha: float, hb: float, r: float, k: int = 4) -> np.ndarray:
    """Outline (4 * (k + 1), 2) of a rectangle with corner radius r (clipped to fit)."""
    r = min(r, 0.98 * min(ha, hb))
    if r < 1e-4:
        return _rect(ha, hb)
    pts = []
    for cx, cy, start in ((ha, hb, 0.0), (-ha, hb, 90.0), (-ha, -hb, 180.0), (ha, -hb, 270.0)):
        t = np.radians(start + np.linspace(0, 90, k + 1))
        centre = (cx - np.sign(cx) * r, cy - np.sign(cy) * r)
        pts.append(np.stack([centre[0] + r * np.cos(t), centre[1] + r * np.sin(t)], -1))
    return np.vstack(pts)


def _box(centre: np.ndarray, half: tuple[float, float, float], axes: np.ndarray | None = None):
    """Box with half extents along the columns of `axes` (3, 3), right-handed (default: world)."""
    ax = np.eye(3) if axes is None else np.asarray(axes, float)
    c = np.asarray(centre, float)
    path = np.stack([c - half[2] * ax[:, 2], c + half[2] * ax[:, 2]])
    return _sweep(path, _rect(half[0], half[1]), ax[:, 0])


def _bar(p0, p1, ha: float, hb: float, normal0=None, scale1: float = 1.0):
    """Rectangular bar (2ha x 2hb section) from p0 to p1; the section scales to scale1 at p1."""
    r = _rect(ha, hb)
    return _sweep(np.stack([p0, p1]).astype(float), np.stack([r, r * scale1]), normal0)


def _cylinder(p0, p1, r0: float, r1: float | None = None, k: int = _SEGMENTS):
    c = _circle(1.0, k)
    r1 = r0 if r1 is None else r1
    return _sweep(np.stack([p0, p1]).astype(float), np.stack([c * r0, c * r1]))


def _sphere(centre, r: float, n_lat: int = 6, n_lon: int = 12):
    """Closed UV sphere (poles shared)."""
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack(
        [np.sin(lat)[:, None] * np.cos(lon), np.cos(lat)[:, None] + 0 * lon,
         np.sin(lat)[:, None] * np.sin(lon)], -1
    ).reshape(-1, 3)
    v = np.vstack([[0, 1, 0], ring, [0, -1, 0]]) * r + np.asarray(centre, float)
    j = np.arange(n_lon)
    jn = (j + 1) % n_lon
    faces = [np.stack([np.zeros(n_lon, int), 1 + jn, 1 + j], -1)]
    for i in range(n_lat - 2):
        a, b = 1 + i * n_lon, 1 + (i + 1) * n_lon
        faces += [np.stack([a + j, a + jn, b + jn], -1), np.stack([a + j, b + jn, b + j], -1)]
    last, s = 1 + (n_lat - 2) * n_lon, len(v) - 1
    faces.append(np.stack([last + j, last + jn, np.full(n_lon, s)], -1))
    return v, np.concatenate(faces).astype(np.int32)


def _slab(origin, a_axis, n_axis, outline: np.ndarray, n0: float, n1: float, rim: float):
    """A flat slab: `outline` (K, 2) in the plane (a_axis, n_axis x a_axis) through `origin`,
    extruded along n_axis from n0 to n1, its rim rounded with radius `rim` (outline shrunk
    towards its centre at the faces, so convex outlines stay convex)."""
    o, a, nn = (np.asarray(x, float) for x in (origin, a_axis, n_axis))
    rim = min(rim, 0.45 * (n1 - n0))
    centre = outline.mean(axis=0)
    half = np.maximum(np.abs(outline - centre).max(axis=0), 1e-6)
    if rim < 1e-4:
        levels, insets = [n0, n1], [0.0, 0.0]
    else:
        phi = np.radians([90, 60, 30, 0])
        up = rim * (1 - np.sin(phi))
        inset = list(rim * (1 - np.cos(phi)))
        levels = [n0 + x for x in up] + [n1 - x for x in up[::-1]]
        insets = inset + inset[::-1]
    profiles = [centre + (outline - centre) * (1 - d / half) for d in insets]
    path = o + np.outer(levels, nn)
    return _sweep(path, np.stack(profiles), a)


def _fillet(points: np.ndarray, radius: float, k: int = 5) -> np.ndarray:
    """Replace each interior corner of a polyline by a quadratic Bezier arc of ~radius."""
    p = np.asarray(points, float)
    out = [p[0]]
    for i in range(1, len(p) - 1):
        d_in, d_out = p[i] - p[i - 1], p[i + 1] - p[i]
        l_in, l_out = np.linalg.norm(d_in), np.linalg.norm(d_out)
        cos = float(d_in @ d_out / (l_in * l_out))
        if cos > 0.999:
            out.append(p[i])
            continue
        half = math.acos(max(-1.0, min(1.0, cos))) / 2
        t = min(radius * math.tan(half), 0.45 * l_in, 0.45 * l_out)
        a, b = p[i] - d_in / l_in * t, p[i] + d_out / l_out * t
        for s in np.linspace(0, 1, k + 1):
            out.append((1 - s) ** 2 * a + 2 * s * (1 - s) * p[i] + s**2 * b)
    out.append(p[-1])
    return np.array(out)


def _half_width(outline: np.ndarray, z: float) -> float:
    """Half width of a symmetric convex seat outline (K, 2) in (x, z) at depth z."""
    z = float(np.clip(z, outline[:, 1].min() + 1e-9, outline[:, 1].max() - 1e-9))
    xs = []
    for (x0, z0), (x1, z1) in zip(outline, np.roll(outline, -1, axis=0), strict=True):
        if min(z0, z1) <= z <= max(z0, z1) and z0 != z1:
            xs.append(x0 + (z - z0) / (z1 - z0) * (x1 - x0))
    return max(xs) if xs else 0.0


def _rear_z(outline: np.ndarray, x: float) -> float:
    """z of the rear edge (z < 0) of a seat outline (K, 2) in (x, z) at lateral position x."""
    zs = []
    for (x0, z0), (x1, z1) in zip(outline, np.roll(outline, -1, axis=0), strict=True):
        if min(x0, x1) <= x <= max(x0, x1) and x0 != x1:
            zs.append(z0 + (x - x0) / (x1 - x0) * (z1 - z0))
    zs = [z for z in zs if z < 0]
    if not zs:
        raise ValueError(f"x = {x:.3f} lies outside the seat's rear edge")
    return min(zs)


# ----------------------------------------------------------------------------- the generator


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    names = list(options)
    w = np.array([options[k] for k in names], dtype=float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _colour(rng: np.random.Generator, kind: str) -> tuple[float, float, float]:
    """A linear-RGB albedo for a material kind."""
    if kind == "wood":
        h, s, v = rng.uniform(0.05, 0.1), rng.uniform(0.35, 0.65), rng.uniform(0.25, 0.75)
    elif kind == "metal":
        h, s, v = rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.08), rng.uniform(0.55, 0.85)
    elif kind == "black":
        h, s, v = rng.uniform(0, 1), rng.uniform(0, 0.2), rng.uniform(0.06, 0.18)
    elif kind == "white":
        h, s, v = rng.uniform(0, 1), rng.uniform(0, 0.06), rng.uniform(0.8, 0.95)
    elif kind == "leather":
        h, s, v = rng.uniform(0.03, 0.09), rng.uniform(0.3, 0.7), rng.uniform(0.12, 0.45)
    elif kind == "painted":
        h, s, v = rng.uniform(0, 1), rng.uniform(0.1, 0.4), rng.uniform(0.3, 0.8)
    else:  # fabric
        h, s, v = rng.uniform(0, 1), rng.uniform(0.1, 0.55), rng.uniform(0.25, 0.85)
    return tuple(round(float(c), 4) for c in colorsys.hsv_to_rgb(h, s, v))


class ParametricChairs(GenerativeSource):
    """Unlimited chair identities: (seed, dataset, split, id) -> ChairParams -> TriMesh."""

    def sample_identity(self, rng: np.random.Generator) -> ChairParams:
        """Draw one chair's parameters from `rng` (the only randomness)."""
        u = rng.uniform
        base = BASES[int(rng.integers(len(BASES)))]
        four = base.startswith("four_leg")
        tubes = base in ("sled", "cantilever")
        seat = _pick(rng, {"square": 0.45, "rounded": 0.35, "round": 0.2} if four or tubes
                     else {"square": 0.2, "rounded": 0.4, "round": 0.4})
        if four:
            back = _pick(rng, dict.fromkeys(BACKS, 1.0))
        elif base == "swivel":
            back = _pick(rng, {"panel": 0.5, "horizontal_slats": 0.2, "vertical_slats": 0.3})
        else:
            back = _pick(rng, {"panel": 0.4, "horizontal_slats": 0.22, "vertical_slats": 0.22,
                               "spindle": 0.08, "ladder": 0.08})
        if base == "swivel":
            arms = _pick(rng, {"none": 0.4, "post": 0.6})
        elif four:
            arms = _pick(rng, {"none": 0.5, "post": 0.2, "panel": 0.15, "loop": 0.15})
        else:
            arms = _pick(rng, {"none": 0.5, "post": 0.2, "panel": 0.1, "loop": 0.2})
        if arms == "panel" and seat == "round":
            arms = "post"  # a flat side panel cannot follow a round seat's edge

        if four:
            stretchers = _pick(rng, {"none": 0.4, "side": 0.15, "box": 0.3, "h": 0.15})
        elif base == "sled":
            stretchers = _pick(rng, {"none": 0.5, "box": 0.5})  # box = a floor crossbar
        else:
            stretchers = "none"
        if base == "pedestal":
            feet = _pick(rng, {"disk": 1, "dome": 1, "cross": 1})
        elif base == "swivel":
            feet = _pick(rng, {"casters": 0.7, "glides": 0.3})
        else:
            feet = "none"

        if four:
            frame_kind = _pick(rng, {"wood": 0.6, "painted": 0.25, "black": 0.15})
        elif base == "swivel":
            frame_kind = _pick(rng, {"black": 0.5, "metal": 0.5})
        elif base == "pedestal":
            frame_kind = _pick(rng, {"white": 0.3, "painted": 0.3, "black": 0.2, "metal": 0.2})
        else:
            frame_kind = _pick(rng, {"metal": 0.6, "black": 0.3, "painted": 0.1})
        seat_kind = _pick(rng, {"same": 0.45, "fabric": 0.35, "leather": 0.2})
        upholstered = seat_kind != "same"

        width = u(0.40, 0.56)
        depth = width * u(0.92, 1.04) if seat == "round" else u(0.38, 0.52)
        height = u(0.43, 0.52) if base == "swivel" else u(0.40, 0.50)
        thickness = u(0.05, 0.1) if upholstered else u(0.02, 0.045)
        corner = u(0.03, 0.45 * min(width, depth) / 2) if seat == "rounded" else 0.0
        taper = u(0.8, 1.0) if seat == "square" else 1.0
        rim = u(0.0, 0.4) * thickness

        leg_round = bool(rng.random() < 0.5)
        leg_width = u(0.025, 0.05)
        leg_taper = {"four_leg_tapered": u(0.45, 0.75), "four_leg_splayed": u(0.55, 1.0)}.get(
            base, 1.0)
        splay = u(5.0, 12.0) if base == "four_leg_splayed" else 0.0

        back_height = u(0.38, 0.62) if back in ("spindle", "ladder") else u(0.28, 0.56)
        back_width = u(0.6, 0.8) if seat == "round" else u(0.75, 1.0)
        back_top = _pick(rng, {"flat": 1, "rounded": 1, "arched": 1}) if back == "panel" else "flat"
        if back == "panel":
            back_gap = u(0.05, 0.13) if rng.random() < 0.35 else 0.0
        elif back == "vertical_slats":
            back_gap = u(0.04, 0.16) if rng.random() < 0.6 else 0.0
        else:
            back_gap = 0.0
        back_count = {"panel": 0, "horizontal_slats": int(rng.integers(2, 6)),
                      "vertical_slats": int(rng.integers(3, 8)),
                      "spindle": int(rng.integers(5, 10)), "ladder": int(rng.integers(3, 6))}[back]
        stile_round = back in ("spindle", "ladder") or bool(rng.random() < (0.6 if tubes else 0.3))
        back_cushion = u(0.025, 0.06) if (back in ("panel", "horizontal_slats", "vertical_slats")
                                          and rng.random() < 0.3) else 0.0
        bow = u(0.01, 0.04) if rng.random() < 0.4 else 0.0
        if back_cushion or (back == "panel" and (back_gap or back_top != "flat")):
            bow = 0.0  # a flat cushion or a lifted/shaped panel would not meet a bowed back
        rear_legs_to_back = bool(base == "four_leg_straight" and back != "panel"
                                 and rng.random() < 0.5)

        frame = _colour(rng, frame_kind)
        seat_colour = frame if seat_kind == "same" else _colour(rng, seat_kind)
        return ChairParams(
            base=base, back=back, seat=seat, arms=arms, stretchers=stretchers, feet=feet,
            seat_width=width, seat_depth=depth, seat_height=height, seat_thickness=thickness,
            seat_corner=corner, seat_taper=taper, seat_rim=rim,
            leg_width=leg_width, leg_round=leg_round, leg_taper=leg_taper, leg_splay=splay,
            rear_legs_to_back=rear_legs_to_back, stretcher_height=u(0.2, 0.45),
            column_radius=u(0.025, 0.05), column_flare=u(1.0, 2.2) if base == "pedestal" else 1.0,
            base_radius=u(0.27, 0.33) if base == "swivel" else u(0.18, 0.27),
            base_height={"dome": u(0.04, 0.08), "cross": u(0.02, 0.035)}.get(feet, u(0.015, 0.03)),
            tube_radius=u(0.009, 0.016),
            back_height=back_height, back_width=back_width, back_tilt=u(0.0, 18.0),
            back_thickness=u(0.015, 0.04), back_bow=bow, back_top=back_top, back_gap=back_gap,
            back_count=back_count, stile_width=u(0.022, 0.045), stile_round=stile_round,
            arm_height=u(0.17, 0.26), arm_width=u(0.035, 0.07),
            arm_posts=1 if (base == "swivel" or rng.random() < 0.3) else 2,
            seat_cushion=u(0.03, 0.07) if rng.random() < 0.35 else 0.0, back_cushion=back_cushion,
            frame_color=frame, seat_color=seat_colour, cushion_color=_colour(rng, "fabric"),
        )

    def build(self, identity_params: ChairParams) -> TriMesh:
        """The normalised chair mesh (front +z, y up, in the unit sphere)."""
        return assemble(build_parts(identity_params), identity_params)


def assemble(parts: list[ChairPart], p: ChairParams) -> TriMesh:
    """Concatenate parts into one TriMesh coloured by material, normalised to the unit sphere."""
    colours = {"frame": p.frame_color, "seat": p.seat_color, "cushion": p.cushion_color}
    verts, faces, cols, base = [], [], [], 0
    for part in parts:
        verts.append(part.vertices)
        faces.append(part.faces + base)
        cols.append(np.broadcast_to(np.asarray(colours[part.material]), part.vertices.shape))
        base += len(part.vertices)
    mesh = TriMesh(
        np.vstack(verts).astype(np.float32),
        np.concatenate(faces).astype(np.int32),
        np.vstack(cols).astype(np.float32),
    )
    return mesh.normalized()


def build_parts(p: ChairParams) -> list[ChairPart]:
    """The chair's closed primitives in metres, before normalisation (deterministic)."""
    parts: list[ChairPart] = []

    def add(name: str, material: str, vf: tuple[np.ndarray, np.ndarray]) -> None:
        parts.append(ChairPart(name, material, vf[0], vf[1]))

    x_, y_, z_ = np.eye(3)
    hw, hd = p.seat_width / 2, p.seat_depth / 2
    top, t = p.seat_height, p.seat_thickness
    bottom = top - t
    soft = "seat"

    # Seat outline in (x, z), symmetric about x = 0, front at +z.
    if p.seat == "square":
        outline = np.array([[-hw * p.seat_taper, -hd], [hw * p.seat_taper, -hd], [hw, hd],
                            [-hw, hd]])
    elif p.seat == "rounded":
        outline = _rounded_rect(hw, hd, p.seat_corner)
    else:
        t_ = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        outline = np.stack([hw * np.cos(t_), hd * np.sin(t_)], -1)
    flip = np.array([1.0, -1.0])  # slab profiles are (x, -z): (x, y, -z) is right-handed
    add("seat", soft, _slab((0, 0, 0), x_, y_, outline * flip, bottom, top, p.seat_rim))

    def inside_x(z0: float, z1: float, half: float) -> float:
        """Largest |x| at which a (2 half)-wide member spanning depths z0..z1 fits the seat."""
        return min(_half_width(outline, z) for z in (z0, z1)) - half

    # ---- the back frame: u = x, s up the tilted back, w out of its front
    tilt = math.radians(p.back_tilt)
    ev = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    en = np.array([0.0, math.sin(tilt), math.cos(tilt)])
    back_axes = np.stack([x_, ev, en], axis=1)
    has_stiles = not (p.back == "panel" and p.back_gap == 0)
    sw = p.stile_width / 2
    bw = p.back_width * hw
    if p.seat == "square":
        bw = min(bw, p.seat_taper * hw)  # a tapered seat's rear edge is the narrow one
    member = 2 * sw if has_stiles else p.back_thickness
    zb = _rear_z(outline, bw) + member / 2 + 0.008 + (p.back_bow if p.back == "panel" else 0)
    us = bw - sw  # stile centres
    origin = np.array([0.0, top, zb])
    height = p.back_height

    def at(u: float, s: float, w: float = 0.0) -> np.ndarray:
        return origin + u * x_ + s * ev + w * en

    def bow_w(u: float) -> float:
        return p.back_bow * ((u / us) ** 2 - 1)

    def rail(s0: float, s1: float, half_w: float, span: float, name: str = "rail") -> None:
        """A horizontal member from -span to span between s0 and s1, bowed like the back."""
        hs = (s1 - s0) / 2
        if p.back_bow < 1e-4:
            add(name, "frame", _box(at(0, (s0 + s1) / 2), (span, hs, half_w), back_axes))
            return
        uu = np.linspace(-span, span, 11)
        path = np.stack([at(u, (s0 + s1) / 2, bow_w(u)) for u in uu])
        add(name, "frame", _sweep(path, _rect(hs, half_w), ev))

    def stile(s_top: float, x: float) -> None:
        if p.stile_round:
            add("stile", "frame", _cylinder(at(x, -0.7 * t), at(x, s_top), sw))
        else:
            add("stile", "frame", _bar(at(x, -0.7 * t), at(x, s_top), sw, sw, x_))

    panel_top = height
    s_top = height  # where the stiles end
    if p.back == "ladder":
        s_top = height + 0.5 * sw + 0.03
    elif p.back == "panel":
        s_top = p.back_gap + 0.55 * (height - p.back_gap)
    if has_stiles:
        for x in (-us, us):
            if not p.rear_legs_to_back:  # else the rear legs are the stiles
                stile(s_top, x)
            if p.back == "ladder":
                add("finial", "frame", _sphere(at(x, s_top), 1.5 * sw, 5, 10))

    thin = 0.6 * sw  # half thickness of slats: inside the stiles' depth
    if p.back == "panel":
        s0 = p.back_gap if has_stiles else -0.6 * t
        w = sw + p.back_thickness / 2 - 0.4 * min(2 * sw, p.back_thickness) if has_stiles else 0.0
        if p.back_bow >= 1e-4:
            uu = np.linspace(-bw, bw, 13)
            path = np.stack([at(u, (s0 + panel_top) / 2, p.back_bow * ((u / bw) ** 2 - 1))
                             for u in uu])
            add("back", soft, _sweep(path, _rect((panel_top - s0) / 2, p.back_thickness / 2), ev))
        else:
            r_top = {"flat": 0.012, "rounded": 0.35 * bw, "arched": 0.05}[p.back_top]
            arch = 0.18 * bw if p.back_top == "arched" else 0.0
            r_top = min(r_top, 0.45 * (panel_top - s0))
            pts = [(-bw, s0), (bw, s0)]
            for ang in np.linspace(0, 90, 5):
                a = math.radians(ang)
                pts.append((bw - r_top + r_top * math.cos(a),
                            panel_top - r_top + r_top * math.sin(a)))
            span = bw - r_top
            for uu in np.linspace(span, -span, 9)[1:-1]:
                pts.append((uu, panel_top + arch * (1 - (uu / span) ** 2)))
            for ang in np.linspace(90, 180, 5):
                a = math.radians(ang)
                pts.append((-bw + r_top + r_top * math.cos(a),
                            panel_top - r_top + r_top * math.sin(a)))
            outline_b = np.array(pts)
            add("back", soft, _slab(origin + w * en, x_, en, outline_b, -p.back_thickness / 2,
                                    p.back_thickness / 2, min(0.006, 0.3 * p.back_thickness)))
        front_of_back = w + p.back_thickness / 2
        cushion_w0 = front_of_back - 0.005  # embedded in the panel
    else:
        front_of_back = sw
        cushion_w0 = thin - 0.004  # embedded in the rails (round stiles may not reach)
        rail_h = {"horizontal_slats": 0.06, "vertical_slats": 0.07, "spindle": 0.05,
                  "ladder": 0.05}[p.back]
        if p.back != "ladder":
            rail(height - rail_h, height, 0.9 * sw if p.back == "spindle" else thin, us, "top_rail")
        n = p.back_count
        if p.back in ("horizontal_slats", "ladder"):
            lo = 0.35 * height if p.back == "horizontal_slats" else 0.3 * height
            hi = height - (rail_h + 0.03 if p.back == "horizontal_slats" else 0.0)
            slat_h = min(0.08, 0.55 * (hi - lo) / n)
            for c in np.linspace(lo + slat_h / 2, hi - slat_h / 2, n):
                rail(c - slat_h / 2, c + slat_h / 2, thin, us, "slat")
        elif p.back == "vertical_slats":
            s_lo = -0.6 * t
            if p.back_gap > 0:
                rail(p.back_gap, p.back_gap + 0.05, thin, us, "bottom_rail")
                s_lo = p.back_gap + 0.025
            gap_w = 2 * us / (n + 1)
            slat_w = min(0.045, 0.55 * gap_w) / 2
            for uu in np.linspace(-us + gap_w, us - gap_w, n):
                add("slat", "frame", _bar(at(uu, s_lo, bow_w(uu)),
                                          at(uu, height - rail_h / 2, bow_w(uu)), slat_w,
                                          0.7 * thin, x_))
        else:  # spindles from inside the seat up into the crest rail
            gap_w = 2 * us / (n + 1)
            r = min(0.009, 0.3 * gap_w)
            for uu in np.linspace(-us + gap_w, us - gap_w, n):
                lo, hi = at(uu, -0.6 * t, bow_w(uu)), at(uu, height - rail_h / 2, bow_w(uu))
                add("spindle", "frame", _cylinder(lo, hi, r, 0.8 * r))

    if p.back_cushion > 0:
        s0 = max(p.back_gap, 0.0) + p.seat_cushion + 0.02
        s1 = height - 0.03
        half = us + sw - 0.01 if has_stiles else bw - 0.01
        cushion_outline = _rounded_rect(half, (s1 - s0) / 2, 0.05) + np.array([0, (s0 + s1) / 2])
        add("back_cushion", "cushion",
            _slab(origin, x_, en, cushion_outline, cushion_w0,
                  cushion_w0 + p.back_cushion, 0.45 * p.back_cushion))

    # ---- base
    if p.base.startswith("four_leg"):
        m = p.leg_width / 2 + 0.008
        if p.seat == "square":
            zl = hd - m
        elif p.seat == "rounded":
            zl = hd - m - 0.3 * min(p.seat_corner, hd)
        else:
            zl = 0.62 * hd
        xl = inside_x(zl - m, zl + m, m)
        leg_top = bottom + 0.6 * t
        corners = [(sx, xl, zl) for sx in (-1, 1)]
        if p.rear_legs_to_back:
            corners += [(sx, us, zb) for sx in (-1, 1)]
        else:
            corners += [(sx, inside_x(-zl - m, -zl + m, m), -zl) for sx in (-1, 1)]
        axes = []
        for k, (sx, x, z) in enumerate(corners):
            out = _unit(np.array([sx * x, 0.0, z]))
            foot = np.array([sx * x, 0.0, z]) + out * leg_top * math.tan(math.radians(p.leg_splay))
            head = np.array([sx * x, leg_top, z])
            axes.append((foot, head))
            if p.rear_legs_to_back and k >= 2:
                # bend inside the seat, so the joint has vertices embedded in it
                path = np.stack([[sx * x, 0, z], [sx * x, top - t / 2, z], at(sx * x, s_top)])
                add("rear_leg", "frame", _sweep(path, _circle(sw) if p.stile_round
                                                else _rect(sw, sw), x_))
            else:
                half = p.leg_width / 2 * p.leg_taper
                v, f = (_cylinder(foot, head, half, p.leg_width / 2) if p.leg_round
                        else _bar(foot, head, half, half, x_, 1 / p.leg_taper))
                # a splayed foot's section is tilted: lift its lowest corner onto the floor
                add("leg", "frame", (v - [0.0, min(v[:, 1].min(), 0.0), 0.0], f))
        if p.stretchers != "none":
            f = p.stretcher_height
            pts = [a + f * (b - a) for a, b in axes]  # front-left, front-right, rear-l, rear-r
            r = 0.3 * p.leg_width * min(1.0, p.leg_taper + 0.2)
            pairs = [(0, 2), (1, 3)]
            if p.stretchers == "box":
                pairs += [(0, 1), (2, 3)]
            for i, j in pairs:
                add("stretcher", "frame", _cylinder(pts[i], pts[j], r))
            if p.stretchers == "h":
                add("stretcher", "frame",
                    _cylinder((pts[0] + pts[2]) / 2, (pts[1] + pts[3]) / 2, r))
    elif p.base == "pedestal":
        rc = p.column_radius
        plate_r = min(0.7 * min(hw, hd), max(0.1, 1.4 * rc * p.column_flare))
        add("plate", "frame", _cylinder((0, bottom - 0.018, 0), (0, bottom + 0.4 * t, 0), plate_r))
        bh = p.base_height
        if p.feet == "cross":
            for ang in (45, 135, 225, 315):
                d = np.array([math.cos(math.radians(ang)), 0, math.sin(math.radians(ang))])
                add("foot", "frame", _bar((0, bh / 2, 0), d * p.base_radius + [0, bh / 2, 0],
                                          bh / 2, 0.025, y_, 0.8))
        elif p.feet == "dome":
            add("foot", "frame", _cylinder((0, 0, 0), (0, bh, 0), p.base_radius, 1.5 * rc, 24))
        else:
            add("foot", "frame", _cylinder((0, 0, 0), (0, bh, 0), p.base_radius, None, 24))
        add("column", "frame", _cylinder((0, 0.5 * bh, 0), (0, bottom - 0.01, 0), rc,
                                         rc * p.column_flare))
    elif p.base == "swivel":
        arm_h, arm_w = 0.03, 0.022
        if p.feet == "casters":
            wheel = 0.026
            foot_top = 2 * wheel + 0.012
        else:
            wheel, foot_top = 0.0, 0.03
        y_tip = foot_top + arm_h / 2 - 0.004
        y_hub = y_tip + 0.035
        for k in range(5):
            ang = math.radians(90 + 72 * k)  # one arm straight back, two splayed to the front
            d = np.array([math.cos(ang), 0.0, -math.sin(ang)])
            tip = d * p.base_radius + [0, y_tip, 0]
            add("star_arm", "frame", _bar(np.array([0, y_hub, 0]), tip, arm_h / 2, arm_w, y_, 0.75))
            if p.feet == "casters":
                side = np.cross(d, y_)
                hub_c = d * (p.base_radius - 0.01) + [0, wheel, 0]
                add("caster", "frame", _cylinder(hub_c - 0.014 * side, hub_c + 0.014 * side,
                                                 wheel, None, 12))
                add("caster_fork", "frame",
                    _box(hub_c + np.array([0, (foot_top + 0.01 - wheel) / 2 + 0.004, 0]),
                         (0.016, (foot_top + 0.01 - wheel) / 2, 0.012),
                         np.stack([side, y_, np.cross(side, y_)], 1)))
            else:
                add("glide", "frame", _cylinder(tip * [1, 0, 1], tip + 0.004 * y_, 0.016,
                                                0.013, 12))
        add("hub", "frame", _cylinder((0, y_tip - arm_h / 2, 0), (0, y_hub + 0.03, 0), 0.05))
        mech_h = 0.045
        add("mechanism", "frame", _box((0, bottom - mech_h / 2 + 0.3 * t, 0),
                                       (0.1, mech_h / 2 + 0.3 * t, 0.1)))
        add("column", "frame", _cylinder((0, y_hub, 0), (0, bottom - mech_h + 0.01, 0),
                                         p.column_radius * 0.6))
        add("sleeve", "frame", _cylinder((0, y_hub, 0), (0, y_hub + 0.16, 0),
                                         p.column_radius * 0.6 + 0.012))
    else:
        r = p.tube_radius
        y_under = bottom + 0.4 * r  # the tube's top half runs inside the seat
        if p.base == "sled":
            za = 0.72 * hd if p.seat != "round" else 0.5 * hd
            xs = inside_x(-za - r, za + r, r + 0.008)
            for sx in (-xs, xs):
                pts = np.array([[sx, bottom + 0.5 * t, za], [sx, r, za + 0.04],
                                [sx, r, -za - 0.04], [sx, bottom + 0.5 * t, -za]])
                add("runner", "frame", _sweep(_fillet(pts, 0.06), _circle(r), x_))
            if p.stretchers != "none":
                add("crossbar", "frame", _cylinder((-xs, r, 0), (xs, r, 0), r))
        else:  # cantilever: one bent tube, under the seat, down in front, back along the floor
            za = 0.85 * hd if p.seat != "round" else 0.6 * hd
            zr = -0.5 * hd
            xs = inside_x(zr - r, za + r, r + 0.008)
            z_floor = -0.95 * hd
            pts = np.array([[-xs, y_under, zr], [-xs, y_under, za], [-xs, r, za + 0.03],
                            [-xs, r, z_floor], [xs, r, z_floor], [xs, r, za + 0.03],
                            [xs, y_under, za], [xs, y_under, zr]])
            add("frame_tube", "frame", _sweep(_fillet(pts, 0.08, 6), _circle(r), x_))

    # ---- arms
    if p.arms != "none":
        arm_top = top + p.arm_height
        hwa = p.arm_width / 2
        z_front = 0.6 * hd if p.seat != "round" else 0.35 * hd
        z_rear = zb + front_of_back * math.cos(tilt) + 0.035
        if p.arms == "panel":
            pt = 0.008 + 0.2 * hwa
            z0, z1 = zb, 0.85 * hd
            xa = inside_x(z0, z1, pt)
            y0 = bottom - 0.03
            # outline in (-z, y): x cross -z = y keeps the slab right-handed
            side = _rounded_rect((z1 - z0) / 2, (arm_top - y0) / 2, 0.05) + np.array(
                [-(z0 + z1) / 2, (arm_top + y0) / 2])
            for sx in (-xa, xa):
                add("arm_panel", "frame", _slab((sx, 0, 0), -z_, x_, side, -pt, pt, 0.4 * pt))
        elif p.arms == "loop":
            r = p.tube_radius
            xa = inside_x(z_rear - r, z_front + r, r + 0.006)
            for sx in (-xa, xa):
                pts = np.array([[sx, top - 0.5 * t, z_front], [sx, arm_top - r, z_front + 0.03],
                                [sx, arm_top - r, z_rear], [sx, top - 0.5 * t, z_rear]])
                add("arm", "frame", _sweep(_fillet(pts, 0.05), _circle(r), x_))
        else:
            post = min(p.leg_width, 0.035) / 2
            zs = [z_front, z_rear] if p.arm_posts == 2 else [(z_front + z_rear) / 2]
            xa = inside_x(min(zs) - post, max(zs) + post, post + 0.004)
            pad_t = 0.025
            for sx in (-xa, xa):
                for z in zs:
                    p0, p1 = (sx, top - 0.5 * t, z), (sx, arm_top - pad_t / 2, z)
                    add("arm_post", "frame", _cylinder(p0, p1, post) if p.leg_round
                        else _bar(p0, p1, post, post, x_))
                z0, z1 = min(z_rear, min(zs)) - 0.04, max(zs) + 0.05
                add("armrest", soft if p.seat_color != p.frame_color else "frame",
                    _box((sx, arm_top - pad_t / 2, (z0 + z1) / 2),
                         (max(hwa, post + 0.005), pad_t / 2, (z1 - z0) / 2)))

    if p.seat_cushion > 0:
        c = outline * 0.94 * flip
        add("seat_cushion", "cushion",
            _slab((0, 0, 0), x_, y_, c, top - 0.006, top + p.seat_cushion, 0.45 * p.seat_cushion))
    return parts


# ----------------------------------------------------------------------------- mesh folders

MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".stl")
_AXES = {"x": 0, "y": 1, "z": 2}


def _axis(spec: str, key: str) -> np.ndarray:
    s = spec.strip().lower()
    sign = -1.0 if s.startswith("-") else 1.0
    name = s.lstrip("+-")
    if name not in _AXES or len(s) > 2:
        raise ValueError(f"{key} must be one of x, y, z with an optional sign (e.g. '-z'), "
                         f"got {spec!r}")
    v = np.zeros(3)
    v[_AXES[name]] = sign
    return v


def axes_rotation(up_axis: str, front_axis: str) -> np.ndarray:
    """float64 (3, 3) rotation taking a file's coordinates to object space (+y up, +z front):
    rows are the file's left, up and front directions."""
    up, front = _axis(up_axis, "up_axis"), _axis(front_axis, "front_axis")
    if abs(up @ front) > 0.5:
        raise ValueError(f"up_axis {up_axis!r} and front_axis {front_axis!r} must be "
                         "perpendicular")
    return np.stack([np.cross(up, front), up, front])


def _split_of(seed: int, rel: str, test_fraction: float) -> str:
    # sha256 of (seed, path) only: a file's split ignores which other files exist.
    h = hashlib.sha256(f"{int(seed)}:{rel}".encode()).digest()
    return "test" if int.from_bytes(h[:8], "big") / 2.0**64 < test_fraction else "train"


def _geometry_colours(geom) -> np.ndarray:
    """float32 (V, 3) albedo of a trimesh.Trimesh: vertex colours, else a plain material
    colour, else a texture sampled at the vertices' UVs, else neutral grey."""
    grey = np.full((len(geom.vertices), 3), 0.6, dtype=np.float32)
    vis = geom.visual
    try:
        if vis.kind == "vertex":
            c = np.asarray(vis.vertex_colors)[:, :3]
        elif vis.kind == "face":  # spread face colours to their vertices
            fc = np.asarray(vis.face_colors)[:, :3].astype(np.float64)
            acc = np.zeros((len(geom.vertices), 3))
            cnt = np.zeros(len(geom.vertices))
            for corner in range(3):
                np.add.at(acc, geom.faces[:, corner], fc)
                np.add.at(cnt, geom.faces[:, corner], 1)
            c = acc / np.maximum(cnt, 1)[:, None]
        elif vis.kind == "texture":
            mat = vis.material
            image = getattr(mat, "image", None)
            if image is None:
                image = getattr(mat, "baseColorTexture", None)
            if image is not None and vis.uv is not None:
                c = np.asarray(vis.to_color().vertex_colors)[:, :3]
            else:
                base = getattr(mat, "baseColorFactor", None)
                if base is None:
                    base = getattr(mat, "diffuse", None)
                if base is None:
                    return grey
                c = np.broadcast_to(np.asarray(base)[:3], (len(geom.vertices), 3))
        else:
            return grey
    except Exception:  # exotic visuals: colour is a nicety, the shape is what matters
        return grey
    c = np.asarray(c, dtype=np.float32)
    if c.max() > 1.0:
        c = c / 255.0
    return np.clip(c, 0.0, 1.0).astype(np.float32)


def load_mesh_file(path: Path, rotation: np.ndarray) -> TriMesh:
    """Load one mesh file (scenes flattened with their node transforms), rotate it by
    `rotation` (3, 3) into object space and normalise it to the unit sphere."""
    import trimesh

    try:
        scene = trimesh.load(str(path), force="scene")
    except Exception as e:
        raise ValueError(f"cannot read mesh file {path}: {e}") from e
    verts, faces, cols, base = [], [], [], 0
    for geom in scene.dump(concatenate=False):
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue  # paths, point clouds
        verts.append(np.asarray(geom.vertices, dtype=np.float64))
        faces.append(np.asarray(geom.faces, dtype=np.int64) + base)
        cols.append(_geometry_colours(geom))
        base += len(geom.vertices)
    if not verts:
        raise ValueError(f"mesh file {path} holds no triangles (expected a triangle mesh)")
    v = np.vstack(verts) @ rotation.T
    if not np.isfinite(v).all():
        raise ValueError(f"mesh file {path} has non-finite vertex coordinates")
    if np.ptp(v, axis=0).max() <= 0:
        raise ValueError(f"mesh file {path} is degenerate: all vertices coincide")
    return TriMesh(v.astype(np.float32), np.concatenate(faces).astype(np.int32),
                   np.vstack(cols).astype(np.float32)).normalized()


class MeshFolderChairs(IdentitySource):
    """Identities from a folder of mesh files (OBJ, PLY, GLB, GLTF, STL; searched recursively).

    A file is in the test split when sha256(f"{seed}:{relative posix path}") maps below
    `test_fraction`, so the split of a file never depends on the folder's other files.
    Identity i of a split is the i-th file of that split in sorted path order. Meshes are
    loaded on demand and the last `cache_size` are kept."""

    def __init__(
        self,
        folder: str | Path,
        *,
        seed: int = 0,
        test_fraction: float = 0.1,
        up_axis: str = "y",
        front_axis: str = "+z",
        cache_size: int = 32,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"chair mesh folder {self.folder} does not exist "
                                    "(expected a folder of .obj/.ply/.glb/.gltf/.stl files)")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie strictly between 0 and 1, got "
                             f"{test_fraction}")
        self.rotation = axes_rotation(up_axis, front_axis)
        files = sorted(
            (f for f in self.folder.rglob("*") if f.is_file()
             and f.suffix.lower() in MESH_SUFFIXES),
            key=lambda f: f.relative_to(self.folder).as_posix(),
        )
        if not files:
            raise ValueError(f"chair mesh folder {self.folder} holds no mesh files "
                             f"(expected files ending in {', '.join(MESH_SUFFIXES)})")
        self.files: dict[str, list[Path]] = {"train": [], "test": []}
        for f in files:
            rel = f.relative_to(self.folder).as_posix()
            self.files[_split_of(seed, rel, test_fraction)].append(f)
        for split, chosen in self.files.items():
            if not chosen:
                raise ValueError(
                    f"chair mesh folder {self.folder}: none of its {len(files)} mesh files "
                    f"falls in the {split!r} split with seed={seed}, test_fraction="
                    f"{test_fraction}; add files or change test_fraction"
                )
        self.cache_size = cache_size
        self._cache: OrderedDict[Path, TriMesh] = OrderedDict()

    def num_identities(self, split: str) -> int:
        return len(self._split(split))

    def path(self, split: str, identity: int) -> Path:
        """The file behind identity `identity` of `split`."""
        files = self._split(split)
        if not 0 <= identity < len(files):
            raise IndexError(f"identity {identity} out of range: split {split!r} of "
                             f"{self.folder} holds {len(files)} meshes")
        return files[identity]

    def mesh(self, split: str, identity: int) -> TriMesh:
        f = self.path(split, identity)
        if f in self._cache:
            self._cache.move_to_end(f)
            return self._cache[f]
        m = load_mesh_file(f, self.rotation)
        self._cache[f] = m
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return m

    def _split(self, split: str) -> list[Path]:
        if split not in self.files:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return self.files[split]
