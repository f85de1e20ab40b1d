"""Runs inside Blender's Python (bpy, numpy < 2): renders one synthetic scene with Cycles (CPU)
from many cameras. Not imported by SceneMaker itself (``scenemaker.synth.cycles`` drives it).

    python cycles_render.py JOB.json

JOB: {"out": folder, "width": W, "height": H, "samples": n, "denoise": bool, "seed": int,
      "near": m, "far": m, "threads": 0 (all cores) or n,
      "objects": [{"npz": path (vertices (V, 3) world, faces (F, 3), optional vertex_colors
                   (V, 3) linear, uv (V, 2)), "texture": PNG path or null, "pass_index": id,
                   "color": [r, g, b] linear}],
      "floor": {"size": m, "color": [r, g, b] linear} or null,
      "light_dir": [x, y, z] (towards the sun, world frame), "sun": strength,
      "environment": {"hdri": path or null, "bundled": float in [0, 1) (picks one of Blender's
                      studio-light HDRIs when hdri is null), "rotation": rad, "brightness": mean
                      luminance the HDRI is scaled to,
                      "background": [r, g, b] (a plain sky when no HDRI is found)},
      "cameras": [{"K": 3x3, "world_to_camera": 4x4 (OpenCV axes)}]}

World frame: SceneMaker's (y up, floor y = 0); Blender's is z up, so every object and camera
is placed through the same rotation (x, y, z) -> (x, -z, y), which leaves camera-frame depths
and ids unchanged and lets HDRIs stand upright.

Per camera ``i`` it writes ``OUT/{i:03d}_rgb.npy`` (H, W, 3) uint8 sRGB, ``_depth.npy`` (H, W)
float32 camera-frame z in metres (Cycles' Z pass is planar depth; 0 where nothing is hit) and
``_instance.npy`` (H, W) uint8 (the IndexOB pass: object pass_index, floor 1, background 0).
Two renders per camera: the image (``samples``, Blackman-Harris pixel filter, OIDN when built
in), then one sample through pixel centres (filter width 0.01 px, no bounces) for depth and
ids, so they are the exact per-pixel values a rasteriser gives, not a filtered mix.
Passes are read back from an uncompressed multilayer EXR with a small reader below.
"""

import glob
import json
import math
import os
import struct
import sys

import bpy
import numpy as np
from blend_export import SENSOR_MM, camera_settings

Y_UP_TO_Z_UP = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
OPENCV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])
NO_HIT = 1e9  # Cycles' Z pass holds 1e10 where a ray hits nothing


# -- EXR read-back (uncompressed scan-line files, single or multi-part, as Blender writes) ----


def _exr_header(data, pos):
    header = {}
    while data[pos] != 0:
        end = data.index(b"\0", pos)
        name = data[pos:end].decode()
        end2 = data.index(b"\0", end + 1)
        size = struct.unpack_from("<i", data, end2 + 1)[0]
        header[name] = data[end2 + 5 : end2 + 5 + size]
        pos = end2 + 5 + size
    return header, pos + 1


def read_exr(path):
    """{channel name: (H, W) float32} of an uncompressed scan-line EXR (parts' channels merged;
    Blender's multilayer channel names already carry the layer and pass)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x76\x2f\x31\x01":
        raise ValueError(f"{path}: not an OpenEXR file")
    flags = struct.unpack_from("<i", data, 4)[0]
    if flags & 0xA00:
        raise ValueError(f"{path}: tiled or deep EXR not supported")
    multi = bool(flags & 0x1000)
    pos, headers = 8, []
    while True:
        header, pos = _exr_header(data, pos)
        headers.append(header)
        if not multi or data[pos] == 0:
            pos += int(multi)
            break
    tables = []
    for header in headers:
        _, y0, _, y1 = struct.unpack("<4i", header["dataWindow"])
        tables.append(np.frombuffer(data, "<u8", y1 - y0 + 1, pos))
        pos += 8 * (y1 - y0 + 1)
    out = {}
    kinds = {0: "<u4", 1: "<f2", 2: "<f4"}
    for header, table in zip(headers, tables, strict=True):
        if header["compression"][0] != 0:
            raise ValueError(f"{path}: compressed EXR not supported")
        raw, channels, p = header["channels"], [], 0
        while raw[p] != 0:
            end = raw.index(b"\0", p)
            channels.append((raw[p:end].decode(), struct.unpack_from("<i", raw, end + 1)[0]))
            p = end + 17
        x0, y0, x1, y1 = struct.unpack("<4i", header["dataWindow"])
        width, height = x1 - x0 + 1, y1 - y0 + 1
        row = np.dtype([(name, kinds[kind], (width,)) for name, kind in channels])
        planes = {name: np.zeros((height, width), np.float32) for name, _ in channels}
        for offset in table:
            offset = int(offset) + 4 * int(multi)  # multi-part chunks start with the part number
            y = struct.unpack_from("<i", data, offset)[0]
            record = np.frombuffer(data, row, 1, offset + 8)[0]
            for name, _ in channels:
                planes[name][y - y0] = record[name]
        out.update(planes)
    return out


def _channel(planes, suffix):
    for name, plane in planes.items():
        if name.endswith(suffix):
            return plane
    raise KeyError(f"no EXR channel ending in {suffix!r} (have {sorted(planes)})")


def linear_to_srgb8(rgb):
    rgb = np.clip(np.nan_to_num(rgb), 0.0, 1.0)
    srgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    return np.rint(srgb * 255.0).astype(np.uint8)


# -- scene ------------------------------------------------------------------------------------


def _matrix(array):
    from mathutils import Matrix

    return Matrix([list(map(float, row)) for row in np.asarray(array)])


def _node(tree, kind, **settings):
    node = tree.nodes.new(kind)
    for key, value in settings.items():
        setattr(node, key, value)
    return node


def _material(name, item, texture):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    tree = mat.node_tree
    bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.6
    color = [float(c) for c in item["color"]]
    if item.get("has_colors"):
        attr = _node(tree, "ShaderNodeAttribute", attribute_name="scenemaker_color")
        base = attr.outputs["Color"]
        if texture is not None:
            tex = _node(tree, "ShaderNodeTexImage", image=bpy.data.images.load(texture))
            mul = _node(tree, "ShaderNodeVectorMath", operation="MULTIPLY")
            tree.links.new(base, mul.inputs[0])
            tree.links.new(tex.outputs["Color"], mul.inputs[1])
            base = mul.outputs["Vector"]
        tree.links.new(base, bsdf.inputs["Base Color"])
    else:
        bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    return mat


def _add_mesh(scene, name, vertices, faces, material, pass_index, colors=None, uv=None):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(np.asarray(vertices, np.float64), [], np.asarray(faces, np.int64))
    if colors is not None:
        attr = mesh.color_attributes.new("scenemaker_color", "FLOAT_COLOR", "POINT")
        rgba = np.ones((len(vertices), 4), np.float32)
        rgba[:, :3] = colors
        attr.data.foreach_set("color", rgba.ravel())
    if uv is not None:
        layer = mesh.uv_layers.new(name="UVMap")
        layer.data.foreach_set("uv", np.asarray(uv, np.float32)[np.asarray(faces).ravel()].ravel())
    mesh.update()
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    obj.matrix_world = _matrix(Y_UP_TO_Z_UP)
    obj.pass_index = int(pass_index)
    scene.collection.objects.link(obj)
    return obj


def _floor(scene, floor):
    half = float(floor["size"]) / 2.0
    quad = [[-half, 0, -half], [half, 0, -half], [half, 0, half], [-half, 0, half]]
    mat = bpy.data.materials.new("floor")
    mat.use_nodes = True
    tree = mat.node_tree
    bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Roughness"].default_value = 0.8
    coords = _node(tree, "ShaderNodeTexCoord")
    checker = _node(tree, "ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = 2.0  # 0.5 m squares, as the fast renderer's
    color = [float(c) for c in floor["color"]]
    checker.inputs["Color1"].default_value = (*color, 1.0)
    checker.inputs["Color2"].default_value = (*[0.85 * c for c in color], 1.0)
    tree.links.new(coords.outputs["Object"], checker.inputs["Vector"])
    tree.links.new(checker.outputs["Color"], bsdf.inputs["Base Color"])
    _add_mesh(scene, "floor", quad, [[0, 2, 1], [0, 3, 2]], mat, 1)


def _bundled_hdris():
    try:
        folder = bpy.utils.system_resource("DATAFILES", path="studiolights/world")
    except Exception:  # noqa: BLE001 - an older bpy without it: plain sky
        return []
    return sorted(glob.glob(os.path.join(folder or "", "*.exr")))


def _mean_luminance(image):
    """Mean luminance of an equirectangular HDRI, rows weighted by their solid angle."""
    small = image
    if image.size[0] * image.size[1] > 1024 * 512:
        small = image.copy()
        small.scale(1024, 512)
    width, height = small.size
    pixels = np.empty(width * height * 4, np.float32)
    small.pixels.foreach_get(pixels)
    if small is not image:
        bpy.data.images.remove(small)
    lum = pixels.reshape(height, width, 4)[..., :3] @ np.array([0.2126, 0.7152, 0.0722])
    weight = np.sin((np.arange(height) + 0.5) / height * np.pi)  # latitude rows
    return float((lum.mean(axis=1) * weight).sum() / weight.sum())


def _world(scene, env):
    world = bpy.data.worlds.new("world")
    scene.world = world
    world.use_nodes = True
    tree = world.node_tree
    background = next(n for n in tree.nodes if n.type == "BACKGROUND")
    background.inputs["Strength"].default_value = 1.0
    hdri = env.get("hdri")
    if not hdri:
        bundled = _bundled_hdris()
        if bundled:
            hdri = bundled[int(float(env.get("bundled", 0.0)) * len(bundled)) % len(bundled)]
    if hdri:
        image = bpy.data.images.load(hdri)
        # HDRIs differ in brightness by 10x: scale each to the same mean luminance
        mean = _mean_luminance(image)
        if mean > 0:
            background.inputs["Strength"].default_value = float(env.get("brightness", 0.25)) / mean
        coords = _node(tree, "ShaderNodeTexCoord")
        rotate = _node(tree, "ShaderNodeMapping")
        rotate.inputs["Rotation"].default_value[2] = float(env.get("rotation", 0.0))
        tex = _node(tree, "ShaderNodeTexEnvironment", image=image)
        tree.links.new(coords.outputs["Generated"], rotate.inputs["Vector"])
        tree.links.new(rotate.outputs["Vector"], tex.inputs["Vector"])
        tree.links.new(tex.outputs["Color"], background.inputs["Color"])
    else:
        background.inputs["Color"].default_value = (*env.get("background", [0.8, 0.85, 0.9]), 1)
    return os.path.basename(hdri) if hdri else None


def _sun(scene, light_dir, strength):
    from mathutils import Vector

    if strength <= 0:
        return
    sun = bpy.data.lights.new("sun", "SUN")
    sun.energy = float(strength)
    sun.angle = math.radians(3.0)
    obj = bpy.data.objects.new("sun", sun)
    towards = Y_UP_TO_Z_UP[:3, :3] @ np.asarray(light_dir, np.float64)
    # a sun shines along its local -z: point local +z at the light
    obj.rotation_euler = Vector(towards.tolist()).to_track_quat("Z", "Y").to_euler()
    scene.collection.objects.link(obj)


def _camera(scene, job):
    cam_obj = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(cam_obj)
    scene.camera = cam_obj
    cam = cam_obj.data
    cam.type = "PERSP"
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = SENSOR_MM
    cam.clip_start, cam.clip_end = float(job.get("near", 0.05)), float(job.get("far", 100.0))
    return cam_obj


def _place_camera(scene, cam_obj, view, width, height):
    settings = camera_settings(view["K"], width, height)
    cam = cam_obj.data
    cam.lens = settings["lens"]
    cam.shift_x, cam.shift_y = settings["shift_x"], settings["shift_y"]
    scene.render.pixel_aspect_x = settings["pixel_aspect_x"]
    scene.render.pixel_aspect_y = settings["pixel_aspect_y"]
    cam_to_world = np.linalg.inv(np.asarray(view["world_to_camera"], np.float64))
    cam_obj.matrix_world = _matrix(Y_UP_TO_Z_UP @ cam_to_world @ OPENCV_TO_BLENDER_CAMERA)


# -- rendering --------------------------------------------------------------------------------


def _settings(scene, job):
    import _cycles

    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.seed = int(job.get("seed", 0))
    scene.render.resolution_x, scene.render.resolution_y = int(job["width"]), int(job["height"])
    scene.render.resolution_percentage = 100
    scene.render.use_persistent_data = True  # keep the BVH between the views' renders
    threads = int(job.get("threads", 0))
    scene.render.threads_mode = "FIXED" if threads > 0 else "AUTO"
    if threads > 0:
        scene.render.threads = threads
    scene.render.film_transparent = False
    layer = scene.view_layers[0]
    layer.use_pass_z = True
    layer.use_pass_object_index = True
    settings = scene.render.image_settings
    settings.media_type = "MULTI_LAYER_IMAGE"
    settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.exr_codec = "NONE"
    settings.color_depth = "32"
    # one part, all passes interleaved: multi-part files with pixel aspect != 1 fail to save
    settings.use_exr_interleave = True
    return bool(job.get("denoise", True)) and bool(getattr(_cycles, "with_openimagedenoise", 0))


def _render(scene, path, image_pass, samples, denoise):
    cycles = scene.cycles
    if image_pass:
        cycles.samples = max(int(samples), 1)
        cycles.use_adaptive_sampling = False
        cycles.filter_width = 1.5
        cycles.use_denoising = denoise
        if denoise:
            cycles.denoiser = "OPENIMAGEDENOISE"
            cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
            cycles.denoising_prefilter = "FAST"
            cycles.denoising_quality = "FAST"
        cycles.max_bounces = 8
    else:  # one ray through each pixel centre: exact depth and ids
        cycles.samples = 1
        cycles.use_adaptive_sampling = False
        cycles.filter_width = 0.01
        cycles.use_denoising = False
        cycles.max_bounces = 0
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    planes = read_exr(path)
    os.remove(path)
    return planes


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    out = job["out"]
    os.makedirs(out, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    denoise = _settings(scene, job)
    for k, item in enumerate(job["objects"]):
        arrays = np.load(item["npz"])
        colors = arrays["vertex_colors"] if "vertex_colors" in arrays.files else None
        uv = arrays["uv"] if "uv" in arrays.files else None
        item = dict(item, has_colors=colors is not None)
        material = _material(f"object_{k}", item, item.get("texture"))
        _add_mesh(
            scene, f"object_{k}", arrays["vertices"], arrays["faces"], material,
            item["pass_index"], colors, uv,
        )  # fmt: skip
    if job.get("floor"):
        _floor(scene, job["floor"])
    hdri = _world(scene, job.get("environment", {}))
    _sun(scene, job.get("light_dir", [0.4, 1.0, 0.3]), float(job.get("sun", 2.0)))
    cam_obj = _camera(scene, job)
    width, height = int(job["width"]), int(job["height"])
    for i, view in enumerate(job["cameras"]):
        _place_camera(scene, cam_obj, view, width, height)
        exr = os.path.join(out, f"{i:03d}.exr")
        image = _render(scene, exr, True, job.get("samples", 16), denoise)
        rgb = np.stack([_channel(image, f"Combined.{c}") for c in "RGB"], axis=-1)
        data = _render(scene, exr, False, 1, False)
        depth = _channel(data, "Depth.Z").astype(np.float32)
        ids = _channel(data, "Object Index.X")
        hit = (depth < NO_HIT) & (ids > 0.5)
        depth = np.where(hit, depth, 0.0).astype(np.float32)
        instance = np.where(hit, np.rint(ids), 0).clip(0, 255).astype(np.uint8)
        np.save(os.path.join(out, f"{i:03d}_rgb.npy"), linear_to_srgb8(rgb))
        np.save(os.path.join(out, f"{i:03d}_depth.npy"), depth)
        np.save(os.path.join(out, f"{i:03d}_instance.npy"), instance)
    with open(os.path.join(out, "done.json"), "w") as f:
        json.dump({"views": len(job["cameras"]), "denoise": denoise, "hdri": hdri}, f)


if __name__ == "__main__":
    main(sys.argv[-1])
