"""Chair identities from a parametric generator (unlimited identities); real meshes from a folder
are render.mesh_folder's.

ParametricChairs draws a ChairParams from the identity's seeded stream (all randomness happens
there), then builds the chair from closed primitives (boxes, tapered cylinders, slabs with
rounded rims, tube sweeps along filleted polylines) in metres, and finally normalises it to the
unit sphere. Parts overlap instead of being unioned: every part is embedded a few millimetres in
the part that holds it, so no part floats. Vertices are duplicated at hard edges (box corners,
cap rims), so area-weighted vertex normals shade flat faces flat and round ones smooth.

build_parts places the parts family by family (seat, stiles, back, back cushion, base, arms,
seat cushion) from one ChairFrame: the seat outline and the tilted back's frame they share.
"""

from __future__ import annotations

import colorsys
import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, pairwise

import numpy as np

from render.mesh import TriMesh
from render.sources import GenerativeSource

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


# A chair is ~15 small sweeps: numpy's per-call overhead, not arithmetic, made building one cost
# more than rendering it (bench/RESULTS.md "render: chairs"). So the per-ring frames (a few
# 3-vectors) are Python floats and numpy handles only the (N, K, 3) arrays. A Python dot product
# can differ from numpy's (BLAS, fused multiply-adds) in the last bit of a float64; of 4,350
# chairs' float32 meshes compared with commit 67a4949's, one coordinate differs (2e-19 vs 7e-19,
# a zero up to rounding), and the default chairs shards are byte-identical (bench/RESULTS.md);
# tests/render/test_chairs_stage.py pins rendered chairs to those of commit f80ce57.

Vec = tuple[float, float, float]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(np.add.reduce(v * v, axis=-1, keepdims=True))


def _vunit(v: Vec) -> Vec:
    n = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return v[0] / n, v[1] / n, v[2] / n


def _vcross(a: Vec, b: Vec) -> Vec:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _vdot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _perpendicular(t: Vec) -> Vec:
    helper = (0.0, 1.0, 0.0) if abs(t[1]) < 0.9 else (1.0, 0.0, 0.0)
    return _vunit(_vcross(t, helper))


@lru_cache(maxsize=64)
def _next_index(k: int) -> np.ndarray:
    return np.arange(1, k + 1) % k  # np.roll(., -1)


def _signed_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    nxt = _next_index(len(p))
    return 0.5 * float(np.sum(x * y[nxt] - x[nxt] * y))


def _sharp_corners(p0: np.ndarray) -> np.ndarray:
    """Profile corners sharper than 35 degrees (duplicated so they shade as hard edges)."""
    k = len(p0)
    d = _unit(p0[_next_index(k)] - p0)  # edge j -> j + 1, leaving corner j
    return np.add.reduce(d[np.arange(-1, k - 1)] * d, axis=-1) < _COS_SHARP


Traits = tuple[bool, bytes]  # (counter-clockwise, sharp corners as bool bytes) of a profile


def _traits(p0: np.ndarray) -> Traits:
    ccw = not _signed_area(p0) < 0
    return ccw, _sharp_corners(p0 if ccw else p0[::-1]).tobytes()


def _frames(pts: list[list[float]], normal0) -> tuple[list[Vec], list[Vec], list[Vec]]:
    """Unit segments, and the normal and binormal (tangent x normal) at each of the path's
    points: tangents bisect the segments, normals are parallel-transported from normal0."""
    seg = [_vunit((b[0] - a[0], b[1] - a[1], b[2] - a[2])) for a, b in pairwise(pts)]
    tan = [seg[0], *(_vunit((a[0] + b[0], a[1] + b[1], a[2] + b[2]))
                     for a, b in pairwise(seg)), seg[-1]]
    m0, m1, m2 = _perpendicular(tan[0]) if normal0 is None else map(float, normal0)
    nrm, bin_ = [], []
    for t0, t1, t2 in tan:  # parallel transport: no twist along the path
        d = m0 * t0 + m1 * t1 + m2 * t2
        m0, m1, m2 = m0 - d * t0, m1 - d * t1, m2 - d * t2
        r = math.sqrt(m0 * m0 + m1 * m1 + m2 * m2)
        m0, m1, m2 = m0 / r, m1 / r, m2 / r
        nrm.append((m0, m1, m2))
        bin_.append((t1 * m2 - t2 * m1, t2 * m0 - t0 * m2, t0 * m1 - t1 * m0))
    return seg, nrm, bin_


def _sweep(
    path: np.ndarray, profile: np.ndarray, normal0: np.ndarray | None = None,
    traits: Traits | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A closed tube: `profile` (K, 2), or one per path point (N, K, 2), swept along `path`
    (N, 3) with parallel-transported frames, mitred at bends, fan-capped at both ends.

    Profile coordinates (a, b) map to a * normal + b * (tangent x normal); normal0 fixes the
    first normal (any vector not parallel to the first segment). Profiles must be star-shaped
    about their vertex mean (caps are fans). `traits` of the first profile, when the caller
    knows them (circles, rectangles: the same at every scale), save computing them.
    Returns float64 (V, 3), int32 (M, 3)."""
    path = np.asarray(path, dtype=np.float64)
    prof = np.asarray(profile, dtype=np.float64)
    ccw, sharp = _traits(prof if prof.ndim == 2 else prof[0]) if traits is None else traits
    if not ccw:  # counter-clockwise profiles give outward side normals
        prof = prof[..., ::-1, :]
    k = prof.shape[-2]

    n = len(path)
    seg, nrm, bin_ = _frames(path.tolist(), normal0)
    frames = np.array(nrm + bin_).reshape(2, n, 1, 3)
    off = prof[..., :1] * frames[0] + prof[..., 1:] * frames[1]  # (N, K, 3)
    # Each inner ring lies in its bisector plane: stretch it across the bend (all at once).
    rows, bends, scales = [], [], []
    for i in range(1, n - 1):
        (a0, a1, a2), (b0, b1, b2) = seg[i - 1], seg[i]
        bend = (b0 - a0, b1 - a1, b2 - a2)
        norm = math.sqrt(_vdot(bend, bend))
        if norm > 1e-9:
            rows.append(i)
            bends.append(bend)
            cos = _vdot(_vunit((a0 + b0, a1 + b1, a2 + b2)), seg[i - 1])  # of the half bend
            scales.append((norm, 1.0 / cos - 1.0))
    if rows:
        sc = np.array(scales)
        b = np.array(bends) / sc[:, :1]  # (R, 3) unit bend directions
        ring = off[rows]
        off[rows] = ring + (sc[:, 1:] * (ring @ b[:, :, None])[..., 0])[..., None] * b[:, None]
    rings = (path[:, None] + off).reshape(-1, 3)

    gather, faces = _sweep_topology(n, sharp)
    centres = np.add.reduce(rings.reshape(n, k, 3)[::n - 1], axis=1) / k  # ndarray.mean's
    return np.concatenate([rings, centres])[gather], faces


_COS_SHARP = math.cos(math.radians(35))


@lru_cache(maxsize=256)
def _sweep_topology(n: int, sharp_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """For a swept tube of n rings of k profile points (ring-major, then the 2 cap centres):
    the vertex gather (side rings with sharp corners doubled, then each cap's ring and centre)
    and the faces: sides, then a fan cap at each end."""
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
    c0 = n * k  # the first cap centre, after the rings
    gather = np.concatenate([(np.arange(n)[:, None] * k + idx).ravel(), j, [c0],
                             (n - 1) * k + j, [c0 + 1]])
    gather.flags.writeable = f.flags.writeable = False  # cached: shared between calls
    return gather, f


@lru_cache(maxsize=16)
def _unit_circle(k: int) -> tuple[np.ndarray, Traits]:
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    c = np.stack([np.cos(t), np.sin(t)], -1)
    c.flags.writeable = False
    return c, _traits(c)


def _circle(r: float, k: int = _SEGMENTS) -> np.ndarray:
    return r * _unit_circle(k)[0]


_RECT_TRAITS: Traits = (True, np.ones(4, bool).tobytes())  # any ha, hb > 0: four right angles


def _rect(ha: float, hb: float) -> np.ndarray:
    return np.array([[-ha, -hb], [ha, -hb], [ha, hb], [-ha, hb]], dtype=np.float64)


@lru_cache(maxsize=16)
def _quarter_arcs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin (4, k + 1) of the rounded rectangle's four corner arcs."""
    t = np.radians(np.array([0.0, 90.0, 180.0, 270.0])[:, None] + np.linspace(0, 90, k + 1))
    return np.cos(t), np.sin(t)


_CORNER_SIGNS = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])


def _rounded_rect(ha: float, hb: float, r: float, k: int = 4) -> np.ndarray:
    """Outline (4 * (k + 1), 2) of a rectangle with corner radius r (clipped to fit)."""
    r = min(r, 0.98 * min(ha, hb))
    if r < 1e-4:
        return _rect(ha, hb)
    cos, sin = _quarter_arcs(k)
    corner = _CORNER_SIGNS * [ha, hb]  # (+-ha, +-hb)
    centre = corner - _CORNER_SIGNS * r
    return np.stack([centre[:, :1] + r * cos, centre[:, 1:] + r * sin], -1).reshape(-1, 2)


_EYE = np.eye(3)


def _box(centre: np.ndarray, half: tuple[float, float, float], axes: np.ndarray | None = None):
    """Box with half extents along the columns of `axes` (3, 3), right-handed (default: world)."""
    ax = _EYE if axes is None else np.asarray(axes, float)
    c = np.asarray(centre, float)
    path = np.stack([c - half[2] * ax[:, 2], c + half[2] * ax[:, 2]])
    return _sweep(path, _rect(half[0], half[1]), ax[:, 0], _RECT_TRAITS)


def _bar(p0, p1, ha: float, hb: float, normal0=None, scale1: float = 1.0):
    """Rectangular bar (2ha x 2hb section) from p0 to p1; the section scales to scale1 at p1."""
    r = _rect(ha, hb)
    return _sweep(np.array([p0, p1], dtype=float), np.stack([r, r * scale1]), normal0,
                  _RECT_TRAITS)


def _cylinder(p0, p1, r0: float, r1: float | None = None, k: int = _SEGMENTS):
    c, traits = _unit_circle(k)
    r1 = r0 if r1 is None else r1
    return _sweep(np.array([p0, p1], dtype=float), np.stack([c * r0, c * r1]), None, traits)


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
        levels, insets = np.array([n0, n1]), np.zeros(2)
    else:
        up, inset = rim * _RIM_UP, rim * _RIM_IN
        levels = np.concatenate([n0 + up, n1 - up[::-1]])
        insets = np.concatenate([inset, inset[::-1]])
    profiles = centre + (outline - centre) * (1 - insets[:, None, None] / half)
    path = o + levels[:, None] * nn  # np.outer
    return _sweep(path, profiles, a)


_RIM_PHI = np.radians([90, 60, 30, 0])  # a slab's rounded rim: 4 levels of a quarter circle
_RIM_UP, _RIM_IN = 1 - np.sin(_RIM_PHI), 1 - np.cos(_RIM_PHI)


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
        s = _arc_steps(k)
        out.extend((1 - s) ** 2 * a + 2 * s * (1 - s) * p[i] + s**2 * b)
    out.append(p[-1])
    return np.array(out)


@lru_cache(maxsize=16)
def _arc_steps(k: int) -> np.ndarray:
    s = np.linspace(0, 1, k + 1)[:, None]
    s.flags.writeable = False
    return s


def _crossings(outline: np.ndarray, c: float, along: int) -> np.ndarray:
    """Where the closed outline's edges cross coordinate `along` = c: the other coordinate of
    each crossing (edges parallel to the line excluded)."""
    q0 = outline
    q1 = outline[_next_index(len(outline))]
    a0, a1, b0, b1 = q0[:, along], q1[:, along], q0[:, 1 - along], q1[:, 1 - along]
    hit = (np.minimum(a0, a1) <= c) & (c <= np.maximum(a0, a1)) & (a0 != a1)
    a0, a1, b0, b1 = a0[hit], a1[hit], b0[hit], b1[hit]
    return b0 + (c - a0) / (a1 - a0) * (b1 - b0)


def _half_width(outline: np.ndarray, z: float) -> float:
    """Half width of a symmetric convex seat outline (K, 2) in (x, z) at depth z."""
    z = float(np.clip(z, outline[:, 1].min() + 1e-9, outline[:, 1].max() - 1e-9))
    xs = _crossings(outline, z, 1)
    return float(xs.max()) if len(xs) else 0.0


def _rear_z(outline: np.ndarray, x: float) -> float:
    """z of the rear edge (z < 0) of a seat outline (K, 2) in (x, z) at lateral position x."""
    zs = _crossings(outline, x, 0)
    zs = zs[zs < 0]
    if not len(zs):
        raise ValueError(f"x = {x:.3f} lies outside the seat's rear edge")
    return float(zs.min())


# ----------------------------------------------------------------------------- the generator


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    """One name drawn with probability proportional to its weight: the draw of
    `rng.choice(len(options), p=weights / sum)` (one rng.random() against the normalised
    cumulative weights), without choice's ~30 us of argument checks per call;
    tests/render/test_chairs.py checks that both give the same name and leave rng alike."""
    names = list(options)
    w = [float(options[k]) for k in names]
    total = sum(w)  # left to right, as numpy sums so few
    cdf = list(accumulate(x / total for x in w))
    cdf = [c / cdf[-1] for c in cdf]
    return names[bisect_right(cdf, rng.random())]


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
    n_verts = [len(part.vertices) for part in parts]
    first = np.cumsum([0, *n_verts[:-1]])  # each part's first vertex
    offsets = np.repeat(first, [len(part.faces) for part in parts])[:, None]
    mesh = TriMesh(
        np.concatenate([part.vertices for part in parts]).astype(np.float32),
        (np.concatenate([part.faces for part in parts]) + offsets).astype(np.int32),
        np.repeat(np.array([colours[part.material] for part in parts], dtype=np.float32),
                  n_verts, axis=0),
    )
    return mesh.normalized()


class _Parts(list):
    """The parts of one chair, in the order they are built (the mesh's vertex order)."""

    def add(self, name: str, material: str, vf: tuple[np.ndarray, np.ndarray]) -> None:
        self.append(ChairPart(name, material, vf[0], vf[1]))


_X, _Y, _Z = np.eye(3)
_FLIP = np.array([1.0, -1.0])  # slab profiles are (x, -z): (x, y, -z) is right-handed


@dataclass(frozen=True)
class ChairFrame:
    """Where one chair's parts go, shared by every part family: the seat's outline and slab,
    and the back's frame (u = x, s up the tilted back, w out of its front)."""

    p: ChairParams
    outline: np.ndarray  # seat outline in (x, z), symmetric about x = 0, front at +z
    hw: float  # seat half width and half depth
    hd: float
    top: float  # seat top, thickness and bottom
    t: float
    bottom: float
    soft: str  # the seat's material
    tilt: float  # back tilt, radians
    ev: np.ndarray  # up the back
    en: np.ndarray  # out of the back's front
    back_axes: np.ndarray
    has_stiles: bool
    sw: float  # half stile width
    bw: float  # half back width
    zb: float  # depth of the back's axis
    us: float  # stile centres (+-us)
    origin: np.ndarray  # the back frame's origin
    height: float  # back height
    s_top: float  # where the stiles end

    def inside_x(self, z0: float, z1: float, half: float) -> float:
        """Largest |x| at which a (2 half)-wide member spanning depths z0..z1 fits the seat."""
        return min(_half_width(self.outline, z) for z in (z0, z1)) - half

    def at(self, u: float, s: float, w: float = 0.0) -> np.ndarray:
        """origin + u * x + s * ev + w * en."""
        return np.array([o + u * x + s * e + w * n for o, x, e, n
                         in zip(self.origin.tolist(), (1.0, 0.0, 0.0), self.ev.tolist(),
                                self.en.tolist())])

    def bow_w(self, u: float) -> float:
        return self.p.back_bow * ((u / self.us) ** 2 - 1)


def chair_frame(p: ChairParams) -> ChairFrame:
    hw, hd = p.seat_width / 2, p.seat_depth / 2
    top, t = p.seat_height, p.seat_thickness
    if p.seat == "square":
        outline = np.array([[-hw * p.seat_taper, -hd], [hw * p.seat_taper, -hd], [hw, hd],
                            [-hw, hd]])
    elif p.seat == "rounded":
        outline = _rounded_rect(hw, hd, p.seat_corner)
    else:
        t_ = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        outline = np.stack([hw * np.cos(t_), hd * np.sin(t_)], -1)
    tilt = math.radians(p.back_tilt)
    ev = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    en = np.array([0.0, math.sin(tilt), math.cos(tilt)])
    has_stiles = not (p.back == "panel" and p.back_gap == 0)
    sw = p.stile_width / 2
    bw = p.back_width * hw
    if p.seat == "square":
        bw = min(bw, p.seat_taper * hw)  # a tapered seat's rear edge is the narrow one
    member = 2 * sw if has_stiles else p.back_thickness
    zb = _rear_z(outline, bw) + member / 2 + 0.008 + (p.back_bow if p.back == "panel" else 0)
    height = p.back_height
    s_top = height
    if p.back == "ladder":
        s_top = height + 0.5 * sw + 0.03
    elif p.back == "panel":
        s_top = p.back_gap + 0.55 * (height - p.back_gap)
    return ChairFrame(p, outline, hw, hd, top, t, top - t, "seat", tilt, ev, en,
                      np.stack([_X, ev, en], axis=1), has_stiles, sw, bw, zb, bw - sw,
                      np.array([0.0, top, zb]), height, s_top)


def _seat(f: ChairFrame, parts: _Parts) -> None:
    parts.add("seat", f.soft, _slab((0, 0, 0), _X, _Y, f.outline * _FLIP, f.bottom, f.top,
                                    f.p.seat_rim))


def _rail(f: ChairFrame, parts: _Parts, s0: float, s1: float, half_w: float, span: float,
          name: str = "rail") -> None:
    """A horizontal member of the back from -span to span between s0 and s1, bowed like it."""
    hs = (s1 - s0) / 2
    if f.p.back_bow < 1e-4:
        parts.add(name, "frame", _box(f.at(0, (s0 + s1) / 2), (span, hs, half_w), f.back_axes))
        return
    uu = np.linspace(-span, span, 11)
    path = np.stack([f.at(u, (s0 + s1) / 2, f.bow_w(u)) for u in uu])
    parts.add(name, "frame", _sweep(path, _rect(hs, half_w), f.ev))


def _stiles(f: ChairFrame, parts: _Parts) -> None:
    p, sw = f.p, f.sw
    if not f.has_stiles:
        return
    for x in (-f.us, f.us):
        if not p.rear_legs_to_back:  # else the rear legs are the stiles
            if p.stile_round:
                parts.add("stile", "frame", _cylinder(f.at(x, -0.7 * f.t), f.at(x, f.s_top), sw))
            else:
                parts.add("stile", "frame", _bar(f.at(x, -0.7 * f.t), f.at(x, f.s_top), sw, sw,
                                                 _X))
        if p.back == "ladder":
            parts.add("finial", "frame", _sphere(f.at(x, f.s_top), 1.5 * sw, 5, 10))


def _panel_back(f: ChairFrame, parts: _Parts) -> tuple[float, float]:
    """The panel back; returns (front of the back, where a back cushion starts) along w."""
    p, sw, bw, height = f.p, f.sw, f.bw, f.height
    panel_top = height
    s0 = p.back_gap if f.has_stiles else -0.6 * f.t
    w = sw + p.back_thickness / 2 - 0.4 * min(2 * sw, p.back_thickness) if f.has_stiles else 0.0
    if p.back_bow >= 1e-4:
        uu = np.linspace(-bw, bw, 13)
        path = np.stack([f.at(u, (s0 + panel_top) / 2, p.back_bow * ((u / bw) ** 2 - 1))
                         for u in uu])
        parts.add("back", f.soft, _sweep(path, _rect((panel_top - s0) / 2,
                                                     p.back_thickness / 2), f.ev))
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
        parts.add("back", f.soft, _slab(f.origin + w * f.en, _X, f.en, outline_b,
                                        -p.back_thickness / 2, p.back_thickness / 2,
                                        min(0.006, 0.3 * p.back_thickness)))
    front_of_back = w + p.back_thickness / 2
    return front_of_back, front_of_back - 0.005  # the cushion is embedded in the panel


def _open_back(f: ChairFrame, parts: _Parts) -> tuple[float, float]:
    """Slats, spindles or ladder rungs between the stiles; returns like _panel_back."""
    p, sw, us, height, t = f.p, f.sw, f.us, f.height, f.t
    thin = 0.6 * sw  # half thickness of slats: inside the stiles' depth
    rail_h = {"horizontal_slats": 0.06, "vertical_slats": 0.07, "spindle": 0.05,
              "ladder": 0.05}[p.back]
    if p.back != "ladder":
        _rail(f, parts, height - rail_h, height, 0.9 * sw if p.back == "spindle" else thin, us,
              "top_rail")
    n = p.back_count
    if p.back in ("horizontal_slats", "ladder"):
        lo = 0.35 * height if p.back == "horizontal_slats" else 0.3 * height
        hi = height - (rail_h + 0.03 if p.back == "horizontal_slats" else 0.0)
        slat_h = min(0.08, 0.55 * (hi - lo) / n)
        for c in np.linspace(lo + slat_h / 2, hi - slat_h / 2, n):
            _rail(f, parts, c - slat_h / 2, c + slat_h / 2, thin, us, "slat")
    elif p.back == "vertical_slats":
        s_lo = -0.6 * t
        if p.back_gap > 0:
            _rail(f, parts, p.back_gap, p.back_gap + 0.05, thin, us, "bottom_rail")
            s_lo = p.back_gap + 0.025
        gap_w = 2 * us / (n + 1)
        slat_w = min(0.045, 0.55 * gap_w) / 2
        for uu in np.linspace(-us + gap_w, us - gap_w, n):
            parts.add("slat", "frame", _bar(f.at(uu, s_lo, f.bow_w(uu)),
                                            f.at(uu, height - rail_h / 2, f.bow_w(uu)), slat_w,
                                            0.7 * thin, _X))
    else:  # spindles from inside the seat up into the crest rail
        gap_w = 2 * us / (n + 1)
        r = min(0.009, 0.3 * gap_w)
        for uu in np.linspace(-us + gap_w, us - gap_w, n):
            lo_, hi_ = f.at(uu, -0.6 * t, f.bow_w(uu)), f.at(uu, height - rail_h / 2, f.bow_w(uu))
            parts.add("spindle", "frame", _cylinder(lo_, hi_, r, 0.8 * r))
    return sw, thin - 0.004  # the cushion is embedded in the rails (round stiles may not reach)


def _back_cushion(f: ChairFrame, parts: _Parts, cushion_w0: float) -> None:
    p = f.p
    if p.back_cushion <= 0:
        return
    s0 = max(p.back_gap, 0.0) + p.seat_cushion + 0.02
    s1 = f.height - 0.03
    half = f.us + f.sw - 0.01 if f.has_stiles else f.bw - 0.01
    cushion_outline = _rounded_rect(half, (s1 - s0) / 2, 0.05) + np.array([0, (s0 + s1) / 2])
    parts.add("back_cushion", "cushion",
              _slab(f.origin, _X, f.en, cushion_outline, cushion_w0,
                    cushion_w0 + p.back_cushion, 0.45 * p.back_cushion))


def _four_legs(f: ChairFrame, parts: _Parts) -> None:
    p, hd, t, sw = f.p, f.hd, f.t, f.sw
    m = p.leg_width / 2 + 0.008
    if p.seat == "square":
        zl = hd - m
    elif p.seat == "rounded":
        zl = hd - m - 0.3 * min(p.seat_corner, hd)
    else:
        zl = 0.62 * hd
    xl = f.inside_x(zl - m, zl + m, m)
    leg_top = f.bottom + 0.6 * t
    corners = [(sx, xl, zl) for sx in (-1, 1)]
    if p.rear_legs_to_back:
        corners += [(sx, f.us, f.zb) for sx in (-1, 1)]
    else:
        corners += [(sx, f.inside_x(-zl - m, -zl + m, m), -zl) for sx in (-1, 1)]
    axes = []
    for k, (sx, x, z) in enumerate(corners):
        out = _unit(np.array([sx * x, 0.0, z]))
        foot = np.array([sx * x, 0.0, z]) + out * leg_top * math.tan(math.radians(p.leg_splay))
        head = np.array([sx * x, leg_top, z])
        axes.append((foot, head))
        if p.rear_legs_to_back and k >= 2:
            # bend inside the seat, so the joint has vertices embedded in it
            path = np.stack([[sx * x, 0, z], [sx * x, f.top - t / 2, z], f.at(sx * x, f.s_top)])
            parts.add("rear_leg", "frame", _sweep(path, _circle(sw) if p.stile_round
                                                  else _rect(sw, sw), _X))
        else:
            half = p.leg_width / 2 * p.leg_taper
            v, fc = (_cylinder(foot, head, half, p.leg_width / 2) if p.leg_round
                     else _bar(foot, head, half, half, _X, 1 / p.leg_taper))
            # a splayed foot's section is tilted: lift its lowest corner onto the floor
            parts.add("leg", "frame", (v - [0.0, min(v[:, 1].min(), 0.0), 0.0], fc))
    if p.stretchers != "none":
        h = p.stretcher_height
        pts = [a + h * (b - a) for a, b in axes]  # front-left, front-right, rear-l, rear-r
        r = 0.3 * p.leg_width * min(1.0, p.leg_taper + 0.2)
        pairs = [(0, 2), (1, 3)]
        if p.stretchers == "box":
            pairs += [(0, 1), (2, 3)]
        for i, j in pairs:
            parts.add("stretcher", "frame", _cylinder(pts[i], pts[j], r))
        if p.stretchers == "h":
            parts.add("stretcher", "frame",
                      _cylinder((pts[0] + pts[2]) / 2, (pts[1] + pts[3]) / 2, r))


def _pedestal(f: ChairFrame, parts: _Parts) -> None:
    p, bottom, t = f.p, f.bottom, f.t
    rc = p.column_radius
    plate_r = min(0.7 * min(f.hw, f.hd), max(0.1, 1.4 * rc * p.column_flare))
    parts.add("plate", "frame", _cylinder((0, bottom - 0.018, 0), (0, bottom + 0.4 * t, 0),
                                          plate_r))
    bh = p.base_height
    if p.feet == "cross":
        for ang in (45, 135, 225, 315):
            d = np.array([math.cos(math.radians(ang)), 0, math.sin(math.radians(ang))])
            parts.add("foot", "frame", _bar((0, bh / 2, 0), d * p.base_radius + [0, bh / 2, 0],
                                            bh / 2, 0.025, _Y, 0.8))
    elif p.feet == "dome":
        parts.add("foot", "frame", _cylinder((0, 0, 0), (0, bh, 0), p.base_radius, 1.5 * rc, 24))
    else:
        parts.add("foot", "frame", _cylinder((0, 0, 0), (0, bh, 0), p.base_radius, None, 24))
    parts.add("column", "frame", _cylinder((0, 0.5 * bh, 0), (0, bottom - 0.01, 0), rc,
                                           rc * p.column_flare))


def _swivel(f: ChairFrame, parts: _Parts) -> None:
    p, bottom, t = f.p, f.bottom, f.t
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
        parts.add("star_arm", "frame", _bar(np.array([0, y_hub, 0]), tip, arm_h / 2, arm_w, _Y,
                                            0.75))
        if p.feet == "casters":
            side = np.cross(d, _Y)
            hub_c = d * (p.base_radius - 0.01) + [0, wheel, 0]
            parts.add("caster", "frame", _cylinder(hub_c - 0.014 * side, hub_c + 0.014 * side,
                                                   wheel, None, 12))
            parts.add("caster_fork", "frame",
                      _box(hub_c + np.array([0, (foot_top + 0.01 - wheel) / 2 + 0.004, 0]),
                           (0.016, (foot_top + 0.01 - wheel) / 2, 0.012),
                           np.stack([side, _Y, np.cross(side, _Y)], 1)))
        else:
            parts.add("glide", "frame", _cylinder(tip * [1, 0, 1], tip + 0.004 * _Y, 0.016,
                                                  0.013, 12))
    parts.add("hub", "frame", _cylinder((0, y_tip - arm_h / 2, 0), (0, y_hub + 0.03, 0), 0.05))
    mech_h = 0.045
    parts.add("mechanism", "frame", _box((0, bottom - mech_h / 2 + 0.3 * t, 0),
                                         (0.1, mech_h / 2 + 0.3 * t, 0.1)))
    parts.add("column", "frame", _cylinder((0, y_hub, 0), (0, bottom - mech_h + 0.01, 0),
                                           p.column_radius * 0.6))
    parts.add("sleeve", "frame", _cylinder((0, y_hub, 0), (0, y_hub + 0.16, 0),
                                           p.column_radius * 0.6 + 0.012))


def _tube_base(f: ChairFrame, parts: _Parts) -> None:
    """Sled runners or a cantilever: bent tubes."""
    p, hd, bottom, t = f.p, f.hd, f.bottom, f.t
    r = p.tube_radius
    y_under = bottom + 0.4 * r  # the tube's top half runs inside the seat
    if p.base == "sled":
        za = 0.72 * hd if p.seat != "round" else 0.5 * hd
        xs = f.inside_x(-za - r, za + r, r + 0.008)
        for sx in (-xs, xs):
            pts = np.array([[sx, bottom + 0.5 * t, za], [sx, r, za + 0.04],
                            [sx, r, -za - 0.04], [sx, bottom + 0.5 * t, -za]])
            parts.add("runner", "frame", _sweep(_fillet(pts, 0.06), _circle(r), _X))
        if p.stretchers != "none":
            parts.add("crossbar", "frame", _cylinder((-xs, r, 0), (xs, r, 0), r))
    else:  # cantilever: one bent tube, under the seat, down in front, back along the floor
        za = 0.85 * hd if p.seat != "round" else 0.6 * hd
        zr = -0.5 * hd
        xs = f.inside_x(zr - r, za + r, r + 0.008)
        z_floor = -0.95 * hd
        pts = np.array([[-xs, y_under, zr], [-xs, y_under, za], [-xs, r, za + 0.03],
                        [-xs, r, z_floor], [xs, r, z_floor], [xs, r, za + 0.03],
                        [xs, y_under, za], [xs, y_under, zr]])
        parts.add("frame_tube", "frame", _sweep(_fillet(pts, 0.08, 6), _circle(r), _X))


def _arms(f: ChairFrame, parts: _Parts, front_of_back: float) -> None:
    p, hd, top, t = f.p, f.hd, f.top, f.t
    if p.arms == "none":
        return
    arm_top = top + p.arm_height
    hwa = p.arm_width / 2
    z_front = 0.6 * hd if p.seat != "round" else 0.35 * hd
    z_rear = f.zb + front_of_back * math.cos(f.tilt) + 0.035
    if p.arms == "panel":
        pt = 0.008 + 0.2 * hwa
        z0, z1 = f.zb, 0.85 * hd
        xa = f.inside_x(z0, z1, pt)
        y0 = f.bottom - 0.03
        # outline in (-z, y): x cross -z = y keeps the slab right-handed
        side = _rounded_rect((z1 - z0) / 2, (arm_top - y0) / 2, 0.05) + np.array(
            [-(z0 + z1) / 2, (arm_top + y0) / 2])
        for sx in (-xa, xa):
            parts.add("arm_panel", "frame", _slab((sx, 0, 0), -_Z, _X, side, -pt, pt, 0.4 * pt))
    elif p.arms == "loop":
        r = p.tube_radius
        xa = f.inside_x(z_rear - r, z_front + r, r + 0.006)
        for sx in (-xa, xa):
            pts = np.array([[sx, top - 0.5 * t, z_front], [sx, arm_top - r, z_front + 0.03],
                            [sx, arm_top - r, z_rear], [sx, top - 0.5 * t, z_rear]])
            parts.add("arm", "frame", _sweep(_fillet(pts, 0.05), _circle(r), _X))
    else:
        post = min(p.leg_width, 0.035) / 2
        zs = [z_front, z_rear] if p.arm_posts == 2 else [(z_front + z_rear) / 2]
        xa = f.inside_x(min(zs) - post, max(zs) + post, post + 0.004)
        pad_t = 0.025
        for sx in (-xa, xa):
            for z in zs:
                p0, p1 = (sx, top - 0.5 * t, z), (sx, arm_top - pad_t / 2, z)
                parts.add("arm_post", "frame", _cylinder(p0, p1, post) if p.leg_round
                          else _bar(p0, p1, post, post, _X))
            z0, z1 = min(z_rear, min(zs)) - 0.04, max(zs) + 0.05
            parts.add("armrest", f.soft if p.seat_color != p.frame_color else "frame",
                      _box((sx, arm_top - pad_t / 2, (z0 + z1) / 2),
                           (max(hwa, post + 0.005), pad_t / 2, (z1 - z0) / 2)))


def _seat_cushion(f: ChairFrame, parts: _Parts) -> None:
    p = f.p
    if p.seat_cushion > 0:
        c = f.outline * 0.94 * _FLIP
        parts.add("seat_cushion", "cushion",
                  _slab((0, 0, 0), _X, _Y, c, f.top - 0.006, f.top + p.seat_cushion,
                        0.45 * p.seat_cushion))


def build_parts(p: ChairParams) -> list[ChairPart]:
    """The chair's closed primitives in metres, before normalisation (deterministic), family
    by family in a fixed order (the order is the mesh's vertex order)."""
    f = chair_frame(p)
    parts = _Parts()
    _seat(f, parts)
    _stiles(f, parts)
    front_of_back, cushion_w0 = (_panel_back if p.back == "panel" else _open_back)(f, parts)
    _back_cushion(f, parts, cushion_w0)
    if p.base.startswith("four_leg"):
        _four_legs(f, parts)
    elif p.base == "pedestal":
        _pedestal(f, parts)
    elif p.base == "swivel":
        _swivel(f, parts)
    else:
        _tube_base(f, parts)
    _arms(f, parts, front_of_back)
    _seat_cushion(f, parts)
    return list(parts)
