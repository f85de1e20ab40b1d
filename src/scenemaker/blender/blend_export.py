"""Runs inside Blender's Python (bpy, numpy < 2): scene.glb -> a .blend whose camera and render
settings reproduce the photo's camera. Not imported by SceneMaker itself.

    python blend_export.py JOB.json

JOB: {"glb": path, "out": path (written to a temporary name, then renamed),
      "K": 3x3, "width": W, "height": H, "znear": m, "zfar": m}

Camera (Blender's conventions, sensor fit horizontal, 36 mm sensor): lens = fx * 36 / W;
pixel aspect x / y = fy / fx (both >= 1); shift_x = -(cx - (W-1)/2) * pax / max(W pax, H pay),
shift_y = (cy - (H-1)/2) * pay / max(W pax, H pay) (image v points down, Blender's shift up).
"""

import json
import math
import os
import sys

import bpy

SENSOR_MM = 36.0


def camera_settings(K, width, height):
    fx, fy, cx, cy = K[0][0], K[1][1], K[0][2], K[1][2]
    pax, pay = (fy / fx, 1.0) if fy >= fx else (1.0, fx / fy)
    size = max(width * pax, height * pay)
    return {
        "lens": fx * SENSOR_MM / width,
        "pixel_aspect_x": pax,
        "pixel_aspect_y": pay,
        "shift_x": -(cx - (width - 1) / 2.0) * pax / size,
        "shift_y": (cy - (height - 1) / 2.0) * pay / size,
    }


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 beside the output
    bpy.ops.import_scene.gltf(filepath=job["glb"])
    scene = bpy.context.scene
    cameras = [o for o in scene.objects if o.type == "CAMERA"]
    if cameras:
        cam_obj = cameras[0]
    else:  # the photo's camera sits at the origin looking along glTF -z (Blender +y)
        cam_obj = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
        scene.collection.objects.link(cam_obj)
        cam_obj.location = (0.0, 0.0, 0.0)
        cam_obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    cam = cam_obj.data
    settings = camera_settings(job["K"], job["width"], job["height"])
    cam.type = "PERSP"
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = SENSOR_MM
    cam.lens = settings["lens"]
    cam.shift_x, cam.shift_y = settings["shift_x"], settings["shift_y"]
    cam.clip_start, cam.clip_end = job.get("znear", 0.01), job.get("zfar", 1000.0)
    scene.camera = cam_obj
    render = scene.render
    render.resolution_x, render.resolution_y = int(job["width"]), int(job["height"])
    render.resolution_percentage = 100
    render.pixel_aspect_x = settings["pixel_aspect_x"]
    render.pixel_aspect_y = settings["pixel_aspect_y"]
    cam_obj["scenemaker_K"] = [float(v) for row in job["K"] for v in row]  # custom property
    tmp = job["out"] + ".tmp.blend"
    bpy.ops.wm.save_as_mainfile(filepath=tmp, check_existing=False, compress=True)
    os.replace(tmp, job["out"])


if __name__ == "__main__":
    main(sys.argv[-1])
