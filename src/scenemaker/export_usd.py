"""USD export (``usd-core``): one Mesh per object, named by object, and the input camera.

Stage: y up, metres (``metersPerUnit`` 1), default prim ``/Scene``.

* ``/Scene/object_02_chair`` (``object_<id>_<label>``, the label made a valid USD identifier):
  a Mesh carrying the object's pose as its transform (so importers such as Blender name the
  object after it), ``extent`` (object space), face-varying ``normals`` (split at edges sharper
  than 30 degrees, counter-clockwise = front, ``orientation`` rightHanded) and
  ``primvars:displayColor`` (the object's colour, else the mesh's vertex / face colours or its
  texture sampled at the vertices, else the material's base colour, else grey; linear).
* ``/Scene/camera``: the input camera. USD measures ``focalLength`` and the apertures in tenths
  of a scene unit, so on this metre stage a 36 mm wide film is ``horizontalAperture`` 0.36.
  With W x H pixels and K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]:
  ``horizontalAperture`` = 0.36, ``focalLength`` = 0.36 fx / W,
  ``verticalAperture`` = focalLength H / fy (fx != fy shows as the film's aspect ratio),
  ``horizontalApertureOffset`` = ((W - 1)/2 - cx) 0.36 / W and
  ``verticalApertureOffset`` = (cy - (H - 1)/2) verticalAperture / H (USD's film y points up,
  the image's v down), ``clippingRange`` (znear, zfar) as in the GLB. Projecting with these
  reproduces K's pixels (pixel centres at integer coordinates). Its ``customData`` holds
  the image size and K.
* ``/Render/settings``: a RenderSettings prim with the image size (``resolution``) and
  ``pixelAspectRatio`` (fy / fx), pointing at the camera.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .errors import MissingDependencyError
from .geometry.camera import CV_TO_GL
from .scene import CLIP_FAR, CLIP_NEAR, Camera, Scene

FILM_WIDTH = 0.36
"""Horizontal aperture in tenths of a metre: a 36 mm wide film."""
SMOOTH_ANGLE = np.radians(30.0)
"""Corners whose vertex normal is further than this from the face normal use the face normal."""
GREY = (0.5, 0.5, 0.5)


def _name(text: str) -> str:
    """A valid USD prim name."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text) or "object"
    return name if not name[0].isdigit() else f"_{name}"


def prim_name(instance_id: int, label: str) -> str:
    """The prim name of an object: ``object_02_chair`` (as the GLB node, made a USD name)."""
    return _name(f"object_{instance_id:02d}_{label}")


def camera_apertures(cam: Camera) -> dict[str, float]:
    """USD camera lens and film values (tenths of a metre) that reproduce ``cam.K``."""
    fx, fy = float(cam.K[0, 0]), float(cam.K[1, 1])
    cx, cy = float(cam.K[0, 2]), float(cam.K[1, 2])
    focal = FILM_WIDTH * fx / cam.width
    vertical = focal * cam.height / fy
    return {
        "focalLength": focal,
        "horizontalAperture": FILM_WIDTH,
        "verticalAperture": vertical,
        "horizontalApertureOffset": ((cam.width - 1) / 2.0 - cx) * FILM_WIDTH / cam.width,
        "verticalApertureOffset": (cy - (cam.height - 1) / 2.0) * vertical / cam.height,
    }


def _corner_normals(mesh) -> np.ndarray:
    """Face-varying normals (3 per face, face order): vertex normals, split at sharp edges."""
    faces = np.asarray(mesh.faces, np.int64)
    face_n = np.asarray(mesh.face_normals, np.float64)
    vert_n = np.asarray(mesh.vertex_normals, np.float64)[faces]  # (F, 3, 3)
    face_n3 = np.broadcast_to(face_n[:, None, :], vert_n.shape)
    smooth = np.einsum("fkc,fkc->fk", vert_n, face_n3) >= np.cos(SMOOTH_ANGLE)
    degenerate = np.linalg.norm(face_n, axis=1) < 0.5  # trimesh gives zero normals there
    smooth |= degenerate[:, None]
    return np.where(smooth[..., None], vert_n, face_n3).reshape(-1, 3)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _display_color(obj) -> tuple[np.ndarray, str]:
    """(colours (N, 3) linear in [0, 1], USD interpolation) for ``obj``."""
    if obj.color is not None:
        return np.clip(np.asarray([obj.color], np.float64), 0, 1), "constant"
    visual = getattr(obj.mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    try:
        if kind == "vertex":
            return np.asarray(visual.vertex_colors, np.float64)[:, :3] / 255.0, "vertex"
        if kind == "face":
            return np.asarray(visual.face_colors, np.float64)[:, :3] / 255.0, "uniform"
        if kind == "texture":
            material = visual.material
            image = getattr(material, "baseColorTexture", None)
            if image is None:
                image = getattr(material, "image", None)
            if image is not None and visual.uv is not None:
                colors = np.asarray(visual.to_color().vertex_colors, np.float64)[:, :3] / 255.0
                return _srgb_to_linear(colors), "vertex"  # textures hold sRGB
            main = np.asarray(material.main_color, np.float64)[:3] / 255.0  # a base colour factor
            return main[None], "constant"
    except Exception:  # noqa: BLE001 - odd visuals: fall back to grey rather than fail the export
        pass
    return np.asarray([GREY], np.float64), "constant"


def export_usd(scene: Scene, path: str | Path, camera_index: int = 0) -> None:
    """Write ``scene`` as a text USD stage (y up, metres), atomically."""
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdRender, Vt
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
            if obj.mesh is None:
                raise ValueError(f"object {obj.instance_id} ({obj.label}) has no mesh to export")
            mesh = UsdGeom.Mesh.Define(stage, f"/Scene/{prim_name(obj.instance_id, obj.label)}")
            # USD uses row vectors: the transpose of our column-vector matrix
            mesh.AddTransformOp().Set(Gf.Matrix4d(obj.pose.matrix.T.tolist()))
            points = np.asarray(obj.mesh.vertices, np.float32).reshape(-1, 3)
            faces = np.asarray(obj.mesh.faces, np.int32).reshape(-1, 3)
            mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(points))
            mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)))
            mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(faces.reshape(-1)))
            mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
            mesh.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
            bounds = (points.min(0), points.max(0)) if len(points) else (np.zeros(3),) * 2
            mesh.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, b)) for b in bounds]))
            if len(faces):
                mesh.CreateNormalsAttr(
                    Vt.Vec3fArray.FromNumpy(_corner_normals(obj.mesh).astype(np.float32))
                )
                mesh.SetNormalsInterpolation(UsdGeom.Tokens.faceVarying)
            colors, interpolation = _display_color(obj)
            color = mesh.CreateDisplayColorPrimvar(interpolation)
            color.Set(Vt.Vec3fArray.FromNumpy(np.clip(colors, 0, 1).astype(np.float32)))
        if scene.cameras:
            cam = scene.cameras[camera_index]
            camera = UsdGeom.Camera.Define(stage, "/Scene/camera")
            # USD cameras look down -z with +y up (OpenGL): camera-to-world times CV->GL flip
            c2w = cam.camera_to_world @ CV_TO_GL
            camera.AddTransformOp().Set(Gf.Matrix4d(c2w.T.tolist()))
            lens = camera_apertures(cam)
            camera.CreateFocalLengthAttr(lens["focalLength"])
            camera.CreateHorizontalApertureAttr(lens["horizontalAperture"])
            camera.CreateVerticalApertureAttr(lens["verticalAperture"])
            camera.CreateHorizontalApertureOffsetAttr(lens["horizontalApertureOffset"])
            camera.CreateVerticalApertureOffsetAttr(lens["verticalApertureOffset"])
            camera.CreateClippingRangeAttr(Gf.Vec2f(CLIP_NEAR, CLIP_FAR))
            camera.GetPrim().SetCustomData(
                {
                    "image_width": cam.width,
                    "image_height": cam.height,
                    "K": Vt.DoubleArray([float(v) for v in cam.K.reshape(-1)]),
                    "convention": "K row-major, pixels, OpenCV (pixel centres at integers)",
                }
            )
            UsdGeom.Scope.Define(stage, "/Render")
            settings = UsdRender.Settings.Define(stage, "/Render/settings")
            settings.CreateResolutionAttr(Gf.Vec2i(cam.width, cam.height))
            settings.CreatePixelAspectRatioAttr(float(cam.K[1, 1] / cam.K[0, 0]))
            settings.CreateCameraRel().SetTargets([Sdf.Path("/Scene/camera")])
            stage.SetMetadata("renderSettingsPrimPath", "/Render/settings")
        stage.GetRootLayer().Save()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files: use the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
