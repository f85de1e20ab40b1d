"""USD export (``usd-core``): one Xform + Mesh per object and the input camera."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .errors import MissingDependencyError
from .geometry.camera import CV_TO_GL
from .scene import Scene


def _name(text: str) -> str:
    """A valid USD prim name."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text) or "object"
    return name if not name[0].isdigit() else f"_{name}"


def export_usd(scene: Scene, path: str | Path, camera_index: int = 0) -> None:
    """Write ``scene`` as a text USD stage (y up, metres), atomically."""
    try:
        from pxr import Gf, Usd, UsdGeom, Vt
    except ImportError:
        raise MissingDependencyError(
            "USD export needs usd-core: pip install 'scenemaker[formats]'"
        ) from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix or ".usda", dir=path.parent)
    os.close(fd)
    try:
        stage = Usd.Stage.CreateNew(tmp)
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        root = UsdGeom.Xform.Define(stage, "/Scene")
        stage.SetDefaultPrim(root.GetPrim())
        for obj in scene.objects:
            prim = f"/Scene/object_{obj.instance_id:02d}_{_name(obj.label)}"
            xform = UsdGeom.Xform.Define(stage, prim)
            # USD uses row vectors: the transpose of our column-vector matrix
            xform.AddTransformOp().Set(Gf.Matrix4d(obj.pose.matrix.T.tolist()))
            mesh = UsdGeom.Mesh.Define(stage, prim + "/mesh")
            mesh.CreatePointsAttr(
                Vt.Vec3fArray.FromNumpy(np.asarray(obj.mesh.vertices, np.float32))
            )
            faces = np.asarray(obj.mesh.faces, np.int32)
            mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)))
            mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(faces.reshape(-1)))
            mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        if scene.cameras:
            cam = scene.cameras[camera_index]
            camera = UsdGeom.Camera.Define(stage, "/Scene/camera")
            # USD cameras look down -z with +y up (OpenGL): camera-to-world times CV->GL flip
            c2w = cam.camera_to_world @ CV_TO_GL
            camera.AddTransformOp().Set(Gf.Matrix4d(c2w.T.tolist()))
            aperture_mm = 36.0  # horizontal film width; focal length in the same units
            camera.CreateHorizontalApertureAttr(aperture_mm)
            camera.CreateVerticalApertureAttr(aperture_mm * cam.height / cam.width)
            camera.CreateFocalLengthAttr(float(cam.K[0, 0]) / cam.width * aperture_mm)
            camera.CreateClippingRangeAttr(Gf.Vec2f(0.01, 1000.0))
        stage.GetRootLayer().Save()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files: use the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
