"""The output scene from per-object labels, meshes and camera-frame poses."""

from __future__ import annotations

import numpy as np

from .geometry.camera import CV_TO_GL3
from .scene import Camera, ObjectInstance, Pose, Scene


def build_scene(width, height, K, labels, meshes, poses, skipped=None, confidences=None) -> Scene:
    """Objects with a pose, in the world frame of pipeline outputs (the camera's OpenGL axes:
    x right, y up, z towards the viewer; camera at the origin), and that camera."""
    objects = []
    for k, (label, generated, pose) in enumerate(zip(labels, meshes, poses, strict=True)):
        if pose is None:
            continue
        world = Pose(CV_TO_GL3 @ pose.R, CV_TO_GL3 @ pose.t, pose.s)
        objects.append(
            ObjectInstance(
                mesh=generated.mesh, label=label, pose=world, instance_id=k + 2,
                source=generated.source,
                confidence=None if confidences is None else confidences[k],
            )
        )  # fmt: skip
    w2c = np.eye(4)
    w2c[:3, :3] = CV_TO_GL3
    camera = Camera(K, w2c, width, height)
    metadata = {
        "world_frame": "the input camera's OpenGL axes (x right, y up, z towards the viewer), "
        "camera at the origin; cameras[0].world_to_camera gives OpenCV camera coordinates",
        "skipped": {str(k): v for k, v in (skipped or {}).items()},
    }
    return Scene(objects, [camera], metadata)
