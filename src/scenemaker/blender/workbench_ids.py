"""Runs inside Blender's Python (bpy): renders a .blend with the Workbench engine at the
file's own camera and resolution, every mesh object a flat colour that encodes its index.

    python workbench_ids.py JOB.json

JOB: {"blend": path, "out": PNG path, "colors": {object name prefix: [r, g, b] in 0..1}}
Objects whose name starts with a key get its colour; the rest (and the background) black.
"""

import json
import sys

import bpy


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    bpy.ops.wm.open_mainfile(filepath=job["blend"])
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light = "FLAT"
    shading.color_type = "OBJECT"
    shading.show_shadows = False
    shading.show_cavity = False
    shading.show_object_outline = False
    shading.show_specular_highlight = False
    scene.display.render_aa = "OFF"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.render.film_transparent = False
    if scene.world is None:
        scene.world = bpy.data.worlds.new("world")
    scene.world.color = (0.0, 0.0, 0.0)
    for obj in scene.objects:
        if obj.type != "MESH":
            continue
        color = [0.0, 0.0, 0.0]
        for prefix, rgb in job["colors"].items():
            if obj.name.startswith(prefix):
                color = rgb
        obj.color = (*color, 1.0)
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.filepath = job["out"]
    bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    main(sys.argv[-1])
