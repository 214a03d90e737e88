"""The optional backend: Blender's Cycles path tracer on the CPU, through the `bpy` module.

Same protocol as the pyrender backend (render.backends): the same View convention and poses
(render.views), the same camera intrinsics (vertical fov, square image, distance), the same light
semantics and the same display encoding, so the two backends' datasets differ only in what a path
tracer adds: cast shadows, interreflection (render.blender.bounces), soft edges and sampling noise
(render.blender.samples, render.blender.denoise).

Lighting equivalence with the GL backend's `albedo * (ambient + diffuse * max(0, n.l))`:
- diffuse: a Sun light along `light_direction(view)`. A Cycles sun of strength S lights a
  Lambertian surface of albedo a facing it with radiance a * S / pi, so S = pi * diffuse.
- ambient: an unshadowed emission of `albedo * ambient` in the material (with emission light
  sampling off, so the mesh is not a light source for direct-light sampling). This is exactly the
  GL ambient term and noise-free at any sample count. A uniform world colour would add ambient
  occlusion, but is visibly noisy below ~16 samples and costs a light sample per bounce; the world
  stays black.
Colour management: Cycles writes scene-linear radiance to a float (OpenEXR) frame; the display
encoding (clip, 1/2.2 gamma, Rec. 709 luma of the encoded colour for grayscale) is then done here
with render.shading's constants, not by a Blender view transform (whose sRGB curve is not a pure
2.2 power). Background pixels are transparent film, i.e. composited over black.

Other differences from the GL backend: Cycles anti-aliases in linear light (edge pixels slightly
brighter), and at 1 sample per pixel a silhouette edge is one random sub-pixel sample (ragged).

Blender's state is process-global: the first backend in a process resets bpy to factory settings
once (a process that renders owns bpy); each backend then owns one scene (camera, sun, one object,
one mesh, one material, one read-back image) and reuses it for every image, replacing only the
mesh's geometry and the poses, so thousands of renders neither slow down nor grow memory. close()
removes all of it. Renders are deterministic: a fixed Cycles seed, no adaptive sampling; the
thread count ($DCIGN_BLENDER_THREADS, default 1) does not change the image.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from core.params import RenderConfig
from render.backends import Backend
from render.mesh import TriMesh
from render.shading import GAMMA, LUMA, vertex_normals
from render.views import (
    View,
    camera_distance,
    camera_pose,
    light_direction,
    object_pose,
)

INSTALL_HINT = "pip install 'dcign[blender]'"
THREADS_ENV = "DCIGN_BLENDER_THREADS"
SEED = 0  # Cycles' sampling seed: fixed, so identical inputs give identical bytes
SUN_ANGLE_DEG = 1.0  # angular diameter of the sun: slightly soft shadow edges, little extra noise
ALBEDO = "albedo"  # names of the per-vertex attributes the material reads
NORMAL = "gl_normal"

_session_ready = False  # bpy reset to factory settings in this process
_instances = 0  # unique datablock names per backend instance


def _is_blender_script_dir(path: str) -> bool:
    return re.search(r"[\\/](bpy|blender)[\\/]\d+\.\d+[\\/]scripts([\\/]|$)", path) is not None


def import_bpy() -> Any:
    """The `bpy` module, or an ImportError that says how to install it."""
    if "bpy" not in sys.modules:
        # A process spawned by one that had imported bpy inherits Blender's script folders on
        # sys.path; there `import bpy` finds Blender's inner bpy package before the wheel's loader
        # and fails ("No module named '_bpy'"). The loader puts them back.
        sys.path[:] = [p for p in sys.path if not _is_blender_script_dir(p)]
    try:
        import bpy
    except ImportError as e:
        raise ImportError(
            "params key 'render.backend' is 'blender', which needs the optional package bpy "
            f"(Blender as a Python module, Python 3.11 only): {INSTALL_HINT}"
        ) from e
    return bpy


def render_threads() -> int:
    """Cycles threads per backend: $DCIGN_BLENDER_THREADS, else 1."""
    raw = os.environ.get(THREADS_ENV, "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"${THREADS_ENV} must be a positive integer, got {raw!r}")
    return n


def _readback_dir() -> Path:
    """Memory-backed storage for the frame hand-off where there is some, else the temp dir."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def _matrix(m: np.ndarray) -> Any:
    """A 4x4 numpy transform as a mathutils.Matrix (rows; a plain nested list assigned to a
    matrix property would be read column-major, i.e. transposed)."""
    from mathutils import Matrix  # ships with bpy

    return Matrix(m.tolist())


def _sun_pose(direction: np.ndarray) -> np.ndarray:
    """4x4 rotation whose +z is `direction`: a Blender sun shines along its local -z."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = x, np.cross(z, x), z
    return pose


class BlenderBackend(Backend):
    """Cycles (CPU) renders of a TriMesh; see the module docstring for the design."""

    name = "blender"

    def __init__(self, cfg: RenderConfig) -> None:
        super().__init__(cfg)
        self._threads = render_threads()  # validated before any Blender state is made
        self._bpy = bpy = import_bpy()
        global _session_ready, _instances
        if not _session_ready:
            # Drop the startup file's scene and enable the bundled add-ons (Cycles among them).
            bpy.ops.wm.read_factory_settings(use_empty=True)
            _session_ready = True
        _instances += 1
        tag = f"dcign{os.getpid()}-{_instances}"
        self._path = str(_readback_dir() / f"{tag}.exr")
        self.distance = camera_distance(cfg.camera.fov_deg, cfg.camera.margin)
        self._ids: list[tuple[Any, Any]] = []  # (collection, datablock) to remove on close
        self._scene = self._new(bpy.data.scenes, tag)
        self._setup_scene(self._scene)
        self._camera = self._add_camera(tag)
        self._sun = self._add_sun(tag)
        self._mesh = self._new(bpy.data.meshes, tag)
        self._mesh.materials.append(self._material(tag))
        self._object = self._new(bpy.data.objects, tag, self._mesh)
        self._scene.collection.objects.link(self._object)
        self._uploaded: TriMesh | None = None  # the mesh now in self._mesh
        self._image: Any = None  # the frame file, loaded once and reloaded per render
        self._buffer = np.empty(cfg.image_size * cfg.image_size * 4, np.float32)

    # --- set-up ---------------------------------------------------------------------------

    def _new(self, collection: Any, name: str, *args: Any) -> Any:
        block = collection.new(name, *args)
        self._ids.append((collection, block))
        return block

    def _setup_scene(self, scene: Any) -> None:
        cfg, bc = self.cfg, self.cfg.blender
        r = scene.render
        r.engine = "CYCLES"
        r.resolution_x = r.resolution_y = cfg.image_size
        r.resolution_percentage = 100
        r.pixel_aspect_x = r.pixel_aspect_y = 1.0
        r.film_transparent = True  # background = alpha 0, i.e. black once premultiplied
        r.use_compositing = r.use_sequencer = False
        # Keep the BVH and compiled shaders between renders (only poses change within a batch).
        r.use_persistent_data = True
        # One thread by default, like the GL backend: parallelism comes from render workers.
        # The thread count does not change the image (Cycles seeds per pixel and sample).
        r.threads_mode, r.threads = "FIXED", self._threads
        img = r.image_settings
        img.file_format, img.color_mode, img.color_depth = "OPEN_EXR", "RGBA", "32"
        img.exr_codec = "NONE"  # the file lives in memory; compression only costs time
        scene.view_settings.view_transform = "Standard"  # no tone curve on anything Blender shows
        scene.view_settings.look = "None"
        scene.view_settings.exposure, scene.view_settings.gamma = 0.0, 1.0
        c = scene.cycles
        c.device = "CPU"
        c.samples = bc.samples
        c.use_adaptive_sampling = False  # a fixed sample count per pixel: predictable, seeded
        c.seed, c.use_animated_seed = SEED, False
        c.use_denoising = bc.denoise
        if bc.denoise:
            c.denoiser = "OPENIMAGEDENOISE"
        c.max_bounces = c.diffuse_bounces = bc.bounces
        c.glossy_bounces = c.transmission_bounces = c.volume_bounces = 0
        c.transparent_max_bounces = 0
        c.caustics_reflective = c.caustics_refractive = False
        c.use_light_tree = False  # one light: the tree only costs build time
        # A one-pixel box filter integrates each pixel's footprint, as the GL backend's MSAA does
        # (Cycles' default 1.5 px Blackman-Harris would widen silhouettes).
        c.pixel_filter_type, c.filter_width = "BOX", 1.0
        world = self._new(self._bpy.data.worlds, scene.name)
        world.color = (0.0, 0.0, 0.0)
        world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
        world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
        scene.world = world

    def _add_camera(self, tag: str) -> Any:
        bpy = self._bpy
        data = self._new(bpy.data.cameras, tag)
        data.type = "PERSP"
        data.sensor_fit = "VERTICAL"  # `angle` is then the vertical fov, as in pyrender's yfov
        data.angle = math.radians(self.cfg.camera.fov_deg)
        data.shift_x = data.shift_y = 0.0
        # Objects live in the unit sphere (render.mesh): same clip range as the GL backend.
        data.clip_start, data.clip_end = max(self.distance - 1.5, 0.05), self.distance + 1.5
        cam = self._new(bpy.data.objects, tag + "-camera", data)
        self._scene.collection.objects.link(cam)
        self._scene.camera = cam
        return cam

    def _add_sun(self, tag: str) -> Any:
        bpy = self._bpy
        data = self._new(bpy.data.lights, tag, "SUN")
        # Irradiance S on a surface facing the sun gives radiance albedo * S / pi.
        data.energy = math.pi * self.cfg.light.diffuse
        data.angle = math.radians(SUN_ANGLE_DEG)
        data.color = (1.0, 1.0, 1.0)
        sun = self._new(bpy.data.objects, tag + "-sun", data)
        self._scene.collection.objects.link(sun)
        return sun

    def _material(self, tag: str) -> Any:
        """Diffuse(albedo) + Emission(albedo, strength = ambient), albedo from vertex colours."""
        mat = self._new(self._bpy.data.materials, tag)
        mat.cycles.emission_sampling = "NONE"  # the ambient glow is not a light to sample
        nodes, links = mat.node_tree.nodes, mat.node_tree.links
        nodes.clear()
        albedo = nodes.new("ShaderNodeAttribute")
        albedo.attribute_type, albedo.attribute_name = "GEOMETRY", ALBEDO
        diffuse = nodes.new("ShaderNodeBsdfDiffuse")
        diffuse.inputs["Roughness"].default_value = 0.0  # Lambertian (not Oren-Nayar)
        glow = nodes.new("ShaderNodeEmission")
        glow.inputs["Strength"].default_value = self.cfg.light.ambient
        add = nodes.new("ShaderNodeAddShader")
        out = nodes.new("ShaderNodeOutputMaterial")
        out.target = "CYCLES"
        # Shade with the GL backend's area-weighted vertex normals (an attribute costs ~1 ms per
        # mesh; custom split normals cost ~7; Blender's own angle-weighted ones differ by up to
        # tens of degrees around creases).
        normal = nodes.new("ShaderNodeAttribute")
        normal.attribute_type, normal.attribute_name = "GEOMETRY", NORMAL
        to_world = nodes.new("ShaderNodeVectorTransform")
        to_world.vector_type, to_world.convert_from, to_world.convert_to = (
            "NORMAL", "OBJECT", "WORLD")
        links.new(normal.outputs["Vector"], to_world.inputs["Vector"])
        links.new(to_world.outputs["Vector"], diffuse.inputs["Normal"])
        links.new(albedo.outputs["Color"], diffuse.inputs["Color"])
        links.new(albedo.outputs["Color"], glow.inputs["Color"])
        links.new(diffuse.outputs["BSDF"], add.inputs[0])
        links.new(glow.outputs["Emission"], add.inputs[1])
        links.new(add.outputs["Shader"], out.inputs["Surface"])
        return mat

    # --- per image --------------------------------------------------------------------------

    def version(self) -> str:
        bc = self.cfg.blender
        return (f"blender {self._bpy.app.version_string} cycles-cpu "
                f"(samples {bc.samples}, bounces {bc.bounces}, denoise {bc.denoise})")

    def _upload(self, mesh: TriMesh) -> None:
        """Replace the geometry of the one Blender mesh in place (no file round-trip)."""
        me = self._mesh
        me.clear_geometry()
        n_v, n_f = len(mesh.vertices), len(mesh.faces)
        me.vertices.add(n_v)
        me.vertices.foreach_set("co", mesh.vertices.ravel())
        me.loops.add(3 * n_f)
        me.loops.foreach_set("vertex_index", mesh.faces.ravel())
        me.polygons.add(n_f)
        me.polygons.foreach_set("loop_start", np.arange(0, 3 * n_f, 3, dtype=np.int32))
        me.update()
        me.attributes.new(NORMAL, "FLOAT_VECTOR", "POINT").data.foreach_set(
            "vector", vertex_normals(mesh).ravel())
        rgba = np.ones((n_v, 4), np.float32)
        rgba[:, :3] = mesh.colors  # linear albedo
        attr = me.color_attributes.new(ALBEDO, "FLOAT_COLOR", "POINT")
        attr.data.foreach_set("color", rgba.ravel())
        self._uploaded = mesh

    def render(self, mesh: TriMesh, view: View) -> np.ndarray:
        if self._scene is None:
            raise RuntimeError("BlenderBackend.render() after close()")
        bpy, size = self._bpy, self.cfg.image_size
        if mesh is not self._uploaded:
            self._upload(mesh)
        self._object.matrix_world = _matrix(object_pose(view))
        self._camera.matrix_world = _matrix(camera_pose(view, self.distance))
        self._sun.matrix_world = _matrix(_sun_pose(light_direction(view, self.cfg.light.elevation)))
        bpy.ops.render.render(scene=self._scene.name)
        # Background mode cannot read the Render Result's pixels: save the frame (to memory-backed
        # storage) and read it back through one reused image datablock.
        bpy.data.images["Render Result"].save_render(self._path, scene=self._scene)
        if self._image is None:
            self._image = bpy.data.images.load(self._path, check_existing=False)
            self._ids.append((bpy.data.images, self._image))
        else:
            self._image.reload()
        self._image.pixels.foreach_get(self._buffer)
        # Gone at once: a process that never reaches close() (a killed or pooled worker) must not
        # leave frames in /dev/shm, which is memory.
        Path(self._path).unlink(missing_ok=True)
        # (H, W, 4) premultiplied linear RGBA, rows bottom to top -> (H, W, 3) top to bottom.
        rgb = self._buffer.reshape(size, size, 4)[::-1, :, :3]
        encoded = np.clip(rgb, 0.0, 1.0) ** (1.0 / GAMMA)
        if self.cfg.channels == 1:
            encoded = (encoded @ LUMA)[:, :, None]  # (H, W, 1)
        image = np.rint(encoded * 255.0).astype(np.uint8)
        return np.ascontiguousarray(image.transpose(2, 0, 1))  # (C, H, W)

    def close(self) -> None:
        if getattr(self, "_scene", None) is None:
            return
        # Remove every datablock this backend made (objects before the data they use).
        for collection, block in reversed(self._ids):
            with contextlib.suppress(ReferenceError):  # already gone with its owner
                collection.remove(block)
        self._ids.clear()
        self._scene = self._image = self._uploaded = None
        Path(self._path).unlink(missing_ok=True)
