"""Mesh folders: every format, colours, axes, a split stable under added files, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from render.mesh import TriMesh
from render.mesh_folder import MeshFolderChairs, axes_rotation


def _tall_box() -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(0.2, 0.4, 1.0))  # tall along z, deep along y


def _write_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    red = _tall_box()
    red.visual.vertex_colors = [255, 0, 0, 255]
    red.export(root / "red.ply")
    _tall_box().export(root / "plain.stl")
    (root / "sub").mkdir(exist_ok=True)
    trimesh.creation.cylinder(radius=0.1, height=1.0, sections=12).export(root / "sub" / "c.obj")
    green = _tall_box()
    green.visual = trimesh.visual.TextureVisuals(
        material=trimesh.visual.material.PBRMaterial(baseColorFactor=[0, 255, 0, 255]))
    scene = trimesh.Scene()
    scene.add_geometry(green, node_name="a")
    far = trimesh.transformations.translation_matrix([3.0, 0.0, 0.0])
    scene.add_geometry(_tall_box(), node_name="b", transform=far)
    scene.export(root / "scene.glb")
    (root / "notes.txt").write_text("not a mesh")
    return root


def _all_meshes(src: MeshFolderChairs) -> dict[str, TriMesh]:
    return {
        src.path(split, i).name: src.mesh(split, i)
        for split in ("train", "test")
        for i in range(src.num_identities(split))
    }


def _folder_seed(root: Path) -> int:
    """A seed that leaves neither split of the folder empty (the split rule is a hash)."""
    for seed in range(100):
        try:
            MeshFolderChairs(root, seed=seed, test_fraction=0.5)
            return seed
        except ValueError:
            continue
    raise AssertionError("no seed splits the folder")


def test_folder_loads_every_format_recursively(tmp_path):
    root = _write_folder(tmp_path / "meshes")
    src = MeshFolderChairs(root, seed=_folder_seed(root), test_fraction=0.5, up_axis="z",
                           front_axis="-y")
    meshes = _all_meshes(src)
    assert set(meshes) == {"red.ply", "plain.stl", "c.obj", "scene.glb"}
    for m in meshes.values():
        assert m.vertices.dtype == np.float32 and m.faces.dtype == np.int32
        assert abs(np.linalg.norm(m.vertices, axis=1).max() - 1) < 1e-5
        lo, hi = m.vertices.min(0), m.vertices.max(0)
        assert np.allclose(lo + hi, 0, atol=1e-5)  # centred
    assert np.allclose(meshes["red.ply"].colors, [1, 0, 0])
    assert np.allclose(meshes["plain.stl"].colors, 0.6)
    glb = meshes["scene.glb"]
    greens = np.isclose(glb.colors, [0, 1, 0], atol=1e-3).all(1)
    assert 0 < greens.sum() < len(glb.colors)  # one coloured box, one uncoloured
    # the node transform moved the second box 3 m along x: the scene is wide in x
    w, h, _ = glb.vertices.max(0) - glb.vertices.min(0)
    assert w > 1.5 * h


def test_material_and_texture_colours(tmp_path):
    root = tmp_path / "coloured"
    root.mkdir()
    (root / "kd.mtl").write_text("newmtl blue\nKd 0.1 0.2 0.9\n")
    (root / "kd.obj").write_text(
        "mtllib kd.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nusemtl blue\n"
        "f 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    textured = trimesh.creation.box()
    uv = np.random.default_rng(0).random((len(textured.vertices), 2))
    image = Image.new("RGB", (4, 4), (200, 150, 0))
    textured.visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
    textured.export(root / "tex.glb")
    _tall_box().export(root / "plain.stl")
    src = MeshFolderChairs(root, seed=_folder_seed(root), test_fraction=0.5)
    meshes = _all_meshes(src)
    assert np.allclose(meshes["kd.obj"].colors, [0.1, 0.2, 0.9], atol=0.01)
    assert np.allclose(meshes["tex.glb"].colors, [200 / 255, 150 / 255, 0], atol=0.01)
    assert np.allclose(meshes["plain.stl"].colors, 0.6)


def test_axes_conversion_puts_the_up_axis_up(tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    _tall_box().export(root / "a.stl")
    _tall_box().export(root / "b.stl")
    _tall_box().export(root / "c.stl")
    seed = _folder_seed(root)
    z_up = MeshFolderChairs(root, seed=seed, test_fraction=0.5, up_axis="z", front_axis="-y")
    ext = np.ptp(z_up.mesh("train", 0).vertices, axis=0)
    # file extents (x, y, z) = (0.2, 0.4, 1.0): z is up, file y becomes depth
    assert np.allclose(ext / ext[0], [1.0, 5.0, 2.0], rtol=1e-4)
    y_up = MeshFolderChairs(root, seed=seed, test_fraction=0.5, up_axis="y", front_axis="+z")
    ext = np.ptp(y_up.mesh("train", 0).vertices, axis=0)
    assert np.allclose(ext / ext[0], [1.0, 2.0, 5.0], rtol=1e-4)


def test_axes_rotation_is_proper_and_maps_front_to_plus_z():
    for up in ("x", "y", "z", "-x", "-y", "-z"):
        for front in ("+x", "+y", "+z", "-x", "-y", "-z"):
            if up.strip("+-") == front.strip("+-"):
                with pytest.raises(ValueError, match="perpendicular"):
                    axes_rotation(up, front)
                continue
            r = axes_rotation(up, front)
            assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
            axis = lambda s: np.eye(3)["xyz".index(s[-1])] * (-1 if s[0] == "-" else 1)  # noqa: E731
            assert np.allclose(r @ axis(up), [0, 1, 0])
            assert np.allclose(r @ axis(front), [0, 0, 1])
    with pytest.raises(ValueError, match="up_axis"):
        axes_rotation("w", "+z")


def test_split_is_stable_when_files_are_added(tmp_path):
    root = tmp_path / "grow"
    root.mkdir()
    text = _tall_box().export(file_type="obj")
    for i in range(30):
        (root / f"chair{i:02d}.obj").write_text(text)

    def membership(src: MeshFolderChairs) -> dict[str, str]:
        return {src.path(s, i).name: s for s in ("train", "test")
                for i in range(src.num_identities(s))}

    before = membership(MeshFolderChairs(root, seed=3, test_fraction=0.3))
    assert set(before.values()) == {"train", "test"}
    for i in range(30, 60):
        (root / f"chair{i:02d}.obj").write_text(text)
    (root / "aaa_first.obj").write_text(text)  # sorts before all others
    after = membership(MeshFolderChairs(root, seed=3, test_fraction=0.3))
    assert len(after) == 61
    assert all(after[name] == split for name, split in before.items())
    reseeded = membership(MeshFolderChairs(root, seed=4, test_fraction=0.3))
    assert reseeded != after  # the seed does pick the split
    # identities follow sorted path order within each split
    src = MeshFolderChairs(root, seed=3, test_fraction=0.3)
    names = [src.path("train", i).name for i in range(src.num_identities("train"))]
    assert names == sorted(names)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        MeshFolderChairs(tmp_path / "nowhere")

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no meshes here")
    with pytest.raises(ValueError, match=r"empty.*no mesh files"):
        MeshFolderChairs(empty)

    single = tmp_path / "single"
    single.mkdir()
    _tall_box().export(single / "only.stl")
    with pytest.raises(ValueError, match=r"single.*split"):
        MeshFolderChairs(single, test_fraction=0.5)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.ply").write_bytes(b"ply\nformat nonsense\n\x00\x01")
    (bad / "void.obj").write_text("# nothing\n")
    for i in range(12):
        _tall_box().export(bad / f"ok{i}.stl")
    src = MeshFolderChairs(bad, seed=0, test_fraction=0.5)
    broken = {src.path(s, i).name: (s, i) for s in ("train", "test")
              for i in range(src.num_identities(s))}
    for name in ("broken.ply", "void.obj"):
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            src.mesh(*broken[name])
    with pytest.raises(IndexError, match="holds"):
        src.mesh("train", src.num_identities("train"))
    with pytest.raises(ValueError, match="split"):
        src.num_identities("validation")
    with pytest.raises(ValueError, match="test_fraction"):
        MeshFolderChairs(bad, test_fraction=1.0)
