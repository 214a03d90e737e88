"""The one view convention: (azimuth, elevation, light_azimuth) in degrees -> poses.

World frame = object frame at azimuth 0: +y up, +z out of the object's front, +x its left
(render.mesh). Every backend takes its poses from here and nowhere else.

- azimuth: the object turns about the vertical (+y) axis; 0 faces the camera, positive turns the
  object's front towards its own left (towards +x, the camera's right).
- elevation: the camera orbits upwards on the object's sphere; positive = camera above, looking
  down; 0 = camera on +z.
- light_azimuth: one directional light, rotated about +y from the camera's direction; 0 =
  light from the camera's side, positive = light from +x (the camera's right). Its elevation is
  fixed in the world (render.light.elevation: a scene light, which a tilt of the camera does not
  move) or, where that is null, the camera's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from core.vocab import FACTORS


@dataclass(frozen=True)
class View:
    """One image's extrinsic factors, in degrees."""

    azimuth: float
    elevation: float
    light_azimuth: float


# A View is built positionally from a stored factors row (columns in FACTORS order).
assert tuple(f.name for f in fields(View)) == FACTORS, "View's fields must be FACTORS, in order"


def rotation_y(deg: float) -> np.ndarray:
    """3x3 rotation about +y by `deg` degrees (maps +z towards +x for positive angles)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def object_pose(view: View) -> np.ndarray:
    """4x4 world-from-object transform: the object's yaw."""
    pose = np.eye(4)
    pose[:3, :3] = rotation_y(view.azimuth)
    return pose


def camera_direction(elevation: float) -> np.ndarray:
    """Unit vector from the origin towards the camera."""
    e = math.radians(elevation)
    return np.array([0.0, math.sin(e), math.cos(e)])


def camera_distance(fov_deg: float, margin: float) -> float:
    """Distance at which the unit sphere fills `1/margin` of the vertical field of view."""
    return margin / math.sin(math.radians(fov_deg) / 2)


def camera_pose(view: View, distance: float) -> np.ndarray:
    """4x4 world-from-camera transform, OpenGL convention (camera looks down its -z, +y up)."""
    back = camera_direction(view.elevation)  # camera +z points away from the target
    right = np.cross(np.array([0.0, 1.0, 0.0]), back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, up, back
    pose[:3, 3] = back * distance
    return pose


def light_direction(view: View, elevation: float | None = None) -> np.ndarray:
    """Unit vector from the origin towards the light (world frame), at `elevation` degrees in
    the world, or at the camera's elevation where that is None."""
    e = view.elevation if elevation is None else elevation
    return rotation_y(view.light_azimuth) @ camera_direction(e)


def light_direction_in_object(view: View, elevation: float | None = None) -> np.ndarray:
    """The light direction in the object's own frame (for shading an un-rotated mesh)."""
    return rotation_y(view.azimuth).T @ light_direction(view, elevation)
