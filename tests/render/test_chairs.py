"""Chair identities: the parametric generator and mesh folders."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from core.seeds import identity_rng
from render.chairs import (
    FAMILIES,
    ChairParams,
    ChairPart,
    ParametricChairs,
    _pick,
    build_parts,
)
from render.mesh import TriMesh

N_CHECKED = 150  # identities whose geometry is checked in depth


@pytest.fixture(scope="module")
def source() -> ParametricChairs:
    return ParametricChairs(seed=0, dataset="chairs")


@pytest.fixture(scope="module")
def chairs(source) -> list[tuple[ChairParams, list[ChairPart], TriMesh]]:
    out = []
    for i in range(N_CHECKED):
        p = source.sample_identity(identity_rng(0, "chairs", "train", i))
        out.append((p, build_parts(p), source.build(p)))
    return out


# ----------------------------------------------------------------------------- helpers


def _winding(points: np.ndarray, v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Generalised winding number (P,) of points (P, 3) w.r.t. a closed mesh: 1 inside,
    0 outside (van Oosterom & Strackee solid angles)."""
    tri = v[f]
    a, b, c = (tri[None, :, k] - points[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    det = np.einsum("pmi,pmi->pm", a, np.cross(b, c))
    dot = lambda x, y: np.einsum("pmi,pmi->pm", x, y)  # noqa: E731
    den = la * lb * lc + dot(a, b) * lc + dot(a, c) * lb + dot(b, c) * la
    return 2 * np.arctan2(det, den).sum(axis=1) / (4 * np.pi)


def _embedded(p: ChairPart, q: ChairPart) -> bool:
    """Whether some vertex of p lies strictly inside closed part q (so the parts overlap)."""
    lo, hi = q.vertices.min(0), q.vertices.max(0)
    pts = p.vertices[np.all((p.vertices > lo) & (p.vertices < hi), axis=1)]
    # nearest the middle of q first: the likeliest to be inside, so most pairs stop early
    pts = pts[np.argsort(np.linalg.norm(pts - (lo + hi) / 2, axis=1))]
    return any(
        (_winding(pts[k : k + 32], q.vertices, q.faces) > 0.5).any()
        for k in range(0, len(pts), 32)
    )


def _groups(parts: list[ChairPart]) -> list[list[str]]:
    """Parts grouped by overlap (union-find): one group = one connected chair.

    The generator embeds every joint (a vertex of one part inside the other), which is what
    this checks; parts that merely touch face to face would count as apart."""
    parent = list(range(len(parts)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, p in enumerate(parts):
        for j in range(i + 1, len(parts)):
            q = parts[j]
            if root(i) == root(j):
                continue
            lo = np.maximum(p.vertices.min(0), q.vertices.min(0))
            hi = np.minimum(p.vertices.max(0), q.vertices.max(0))
            if np.all(lo < hi) and (_embedded(p, q) or _embedded(q, p)):
                parent[root(i)] = root(j)
    groups: dict[int, list[str]] = {}
    for i, p in enumerate(parts):
        groups.setdefault(root(i), []).append(p.name)
    return list(groups.values())


def _closed_outward(v: np.ndarray, f: np.ndarray) -> tuple[bool, float]:
    """(every edge shared by exactly two faces in opposite directions, signed volume)."""
    _, weld = np.unique(np.round(v / 1e-7).astype(np.int64), axis=0, return_inverse=True)
    ff = weld.reshape(-1)[f]
    edges = np.concatenate([ff[:, [0, 1]], ff[:, [1, 2]], ff[:, [2, 0]]])
    fwd = np.unique(edges, axis=0)
    closed = len(fwd) == len(edges) and np.array_equal(fwd, np.unique(edges[:, ::-1], axis=0))
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    return closed, float(volume)


def _surface_points(mesh: TriMesh, n: int = 20000) -> np.ndarray:
    """float64 (n, 3) area-weighted surface samples (a fixed-seed stream: deterministic)."""
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(tri), size=n, p=area / area.sum())
    r1, r2 = rng.random((2, n, 1))
    s = np.sqrt(r1)
    return (1 - s) * tri[pick, 0] + s * (1 - r2) * tri[pick, 1] + s * r2 * tri[pick, 2]


def _silhouette(points: np.ndarray, azimuth_deg: float, size: int = 48) -> np.ndarray:
    """bool (size, size) orthographic silhouette of surface points (n, 3) in the unit sphere,
    seen from `azimuth_deg` about +y; rows run downwards."""
    a = math.radians(azimuth_deg)
    x = points[:, 0] * math.cos(a) - points[:, 2] * math.sin(a)
    ij = np.clip(((np.stack([-points[:, 1], x], 1) + 1) / 2 * size).astype(int), 0, size - 1)
    img = np.zeros((size, size), bool)
    img[ij[:, 0], ij[:, 1]] = True
    return img


# ----------------------------------------------------------------------------- generator


def test_pick_draws_what_generator_choice_draws():
    """_pick re-implements rng.choice(n, p=...) for speed: same name, same stream after it (a
    numpy whose choice draws differently would change every chair: this test says so)."""
    options = [{"a": 0.45, "b": 0.35, "c": 0.2}, dict.fromkeys("pqrst", 1.0), {"x": 0.7, "y": 0.3},
               {"none": 0.4, "side": 0.15, "box": 0.3, "h": 0.15}, {"only": 2.0}]
    for seed in range(400):
        ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
        for opts in options * 2:
            names = list(opts)
            w = np.array(list(opts.values()))
            assert _pick(ours, opts) == names[int(numpys.choice(len(names), p=w / w.sum()))]
        assert ours.random() == numpys.random()


def test_same_identity_gives_the_same_mesh(source):
    a = source.mesh("train", 7)
    b = ParametricChairs(seed=0, dataset="chairs").mesh("train", 7)
    for x, y in ((a.vertices, b.vertices), (a.faces, b.faces), (a.colors, b.colors)):
        assert np.array_equal(x, y)


def test_build_is_a_function_of_the_params(source):
    p = source.sample_identity(np.random.default_rng(123))
    assert p == source.sample_identity(np.random.default_rng(123))
    a, b = source.build(p), source.build(p)
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.colors, b.colors)
    taller = source.build(dataclasses.replace(p, back_height=p.back_height + 0.2))
    assert not np.array_equal(a.vertices, taller.vertices)


def test_seed_dataset_and_split_change_the_identity():
    base = ParametricChairs(0, "chairs").sample_identity(identity_rng(0, "chairs", "train", 3))
    others = [
        ParametricChairs(1, "chairs").sample_identity(identity_rng(1, "chairs", "train", 3)),
        ParametricChairs(0, "chairs").sample_identity(identity_rng(0, "chairs", "test", 3)),
        ParametricChairs(0, "other").sample_identity(identity_rng(0, "other", "train", 3)),
    ]
    assert all(o != base for o in others)


def test_train_and_test_identities_are_disjoint(source):
    train = [source.mesh("train", i) for i in range(40)]
    test = [source.mesh("test", i) for i in range(40)]
    keys = lambda ms: {m.vertices.tobytes() for m in ms}  # noqa: E731
    assert len(keys(train)) == 40 and len(keys(test)) == 40  # no duplicates within a split
    assert not keys(train) & keys(test)


def test_every_family_and_style_appears(chairs):
    seen = {name: set() for name in FAMILIES}
    for p, _, _ in chairs:
        for name in FAMILIES:
            seen[name].add(getattr(p, name))
    for name, options in FAMILIES.items():
        assert seen[name] == set(options), f"{name}: missing {set(options) - seen[name]}"


def test_meshes_are_well_formed(chairs):
    for p, _, m in chairs:
        v = m.vertices
        assert np.isfinite(v).all() and np.isfinite(m.colors).all(), p
        radius = np.linalg.norm(v, axis=1).max()
        assert 0.999 <= radius <= 1.0 + 1e-5, p
        assert ((m.colors >= 0) & (m.colors <= 1)).all(), p
        assert 100 < len(m.faces) <= 20000, p
        tri = v[m.faces].astype(np.float64)
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        assert area.min() > 0, p
        w, h, d = v.max(0) - v.min(0)
        assert 0.9 < h / w < 3.2 and 0.5 < d / w < 2.0, (p, w, h, d)
        # left-right symmetric about x = 0
        assert abs(v[:, 0].max() + v[:, 0].min()) < 1e-3, p


def test_every_part_is_closed_and_outward(chairs):
    for p, parts, _ in chairs:
        for part in parts:
            closed, volume = _closed_outward(part.vertices, part.faces)
            assert closed and volume > 0, (part.name, p)


def test_every_part_holds_on_to_the_chair(chairs):
    for p, parts, _ in chairs:
        groups = _groups(parts)
        assert len(groups) == 1, (groups, p)


def test_connectivity_check_sees_a_floating_part(chairs):
    parts = chairs[0][1]
    lifted = parts[-1]
    moved = dataclasses.replace(lifted, vertices=lifted.vertices + np.array([0.0, 3.0, 0.0]))
    assert len(_groups([*parts[:-1], moved])) == 2


def test_chairs_stand_on_the_floor_facing_plus_z(chairs):
    for p, parts, _ in chairs:
        v = np.vstack([q.vertices for q in parts])
        assert abs(v[:, 1].min()) < 1e-3, p  # floor at y = 0
        feet = v[v[:, 1] < 0.01]
        # floor contacts surround the seat's centre in both directions
        assert feet[:, 0].min() < -0.1 < 0.1 < feet[:, 0].max(), p
        assert feet[:, 2].min() < -0.05 < 0.05 < feet[:, 2].max(), p
        seat = next(q for q in parts if q.name == "seat")
        assert seat.vertices[:, 1].min() > 0.3, p
        # the back rises behind the seat: the top tenth of the chair lies at -z
        high = v[v[:, 1] > v[:, 1].max() - 0.1 * np.ptp(v[:, 1])]
        assert high[:, 2].mean() < 0, p


def test_meshes_render_to_a_solid_silhouette(chairs):
    for p, _, m in chairs:
        points, areas = _surface_points(m), []
        for az in (0, 90, 180, 270):
            img = _silhouette(points, az)
            rows = np.nonzero(img)[0]
            assert 0.04 < img.mean() < 0.6, (p, az, img.mean())
            assert np.ptp(rows) > 0.5 * img.shape[0], (p, az)  # tall: legs to back top
            areas.append(img.mean())
        # front and side views differ: a 3-D object, not a card
        assert abs(areas[0] - areas[1]) > 1e-3, p
