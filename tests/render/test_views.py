from __future__ import annotations

import numpy as np
import pytest

from render.views import (
    View,
    camera_distance,
    camera_pose,
    light_direction,
    light_direction_in_object,
    object_pose,
)


def test_positive_azimuth_turns_the_front_to_the_objects_left():
    front = object_pose(View(90, 0, 0))[:3, :3] @ np.array([0, 0, 1.0])
    assert np.allclose(front, [1, 0, 0])  # +x is the object's left at azimuth 0


def test_positive_elevation_puts_the_camera_above_looking_at_the_origin():
    pose = camera_pose(View(0, 30, 0), distance=4.0)
    position, forward = pose[:3, 3], -pose[:3, 2]
    assert position[1] > 0 and np.isclose(np.linalg.norm(position), 4.0)
    assert np.allclose(forward, -position / 4.0)  # looks at the origin
    assert np.isclose(np.linalg.det(pose[:3, :3]), 1.0)  # a rotation, not a reflection
    assert pose[1, 1] > 0  # camera up points up


@pytest.mark.parametrize("elev", [-30.0, 0.0, 45.0])
def test_light_zero_comes_from_the_camera(elev):
    pose = camera_pose(View(0, elev, 0), 1.0)
    assert np.allclose(light_direction(View(0, elev, 0)), pose[:3, 3])
    # A scene light at the camera's elevation is the same light.
    assert np.allclose(light_direction(View(0, elev, 0), elevation=elev), pose[:3, 3])


@pytest.mark.parametrize("light_az", [-60.0, 0.0, 35.0])
def test_a_scene_light_stays_when_the_camera_tilts(light_az):
    level, low, high = (light_direction(View(15, e, light_az), elevation=30.0)
                        for e in (0.0, -30.0, 30.0))
    assert np.allclose(level, low) and np.allclose(level, high)
    assert np.isclose(level[1], np.sin(np.radians(30.0))) and np.isclose(np.linalg.norm(level), 1)
    # Turned about the vertical as the camera-borne light is: the same horizontal direction.
    flat = light_direction(View(15, 0.0, light_az))
    assert np.allclose(level[[0, 2]] / np.linalg.norm(level[[0, 2]]), flat[[0, 2]])
    # The camera-borne light moves with the tilt.
    assert not np.allclose(light_direction(View(15, -30.0, light_az)), low)


def test_positive_light_azimuth_lights_from_plus_x():
    assert light_direction(View(0, 0, 60))[0] > 0.8
    assert light_direction(View(0, 0, -60))[0] < -0.8


def test_light_in_object_frame_follows_the_object_turn():
    # Turning the object by +a and the light by +a leaves the light fixed on the object.
    assert np.allclose(light_direction_in_object(View(40, 10, 40)),
                       light_direction_in_object(View(0, 10, 0)))


def test_camera_distance_frames_the_unit_sphere():
    d = camera_distance(20.0, 1.0)
    assert np.isclose(np.degrees(np.arcsin(1 / d)), 10.0)
