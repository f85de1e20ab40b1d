"""The data that flows between stages: Camera, Pose, ObjectInstance, Scene.

Conventions (ARCHITECTURE.md):

* Camera frame: OpenCV (x right, y down, z forward), metres; intrinsics K in pixels.
* ``Camera.world_to_camera`` is a 4x4 rigid transform from world to that OpenCV camera frame.
* World frame of synthetic scenes: y up, ground plane y = 0.
* A canonical mesh is centred on its box centre, its longest box side spans [-1, 1], +y up, +z
  front. A pose (R, t, s) places it: p = R (s/2 * p_canonical) + t, so s is the longest side
  of the object's own (object-aligned) box once placed. Files store R, t and s explicitly and
  ``matrix`` = [[s/2 R, t], [0 0 0 1]].
* glTF export converts to glTF's conventions (y up, camera looking down -z).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, SceneMakerError
from .geometry.camera import CV_TO_GL
from .geometry.transforms import pose_matrix
from .io_utils import atomic_write_bytes, atomic_write_json, read_json

SCENE_SCHEMA = "scenemaker.scene/1"
_DATASET_SCENE_DIR = re.compile(r"^scene_\d{6}$")  # as synth.settings.SCENE_DIR


def _as_array(value, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def scene_data_root(scene_json: str | Path) -> Path:
    """The folder that the files named in ``scene_json`` must lie in.

    That is the scene's own folder, except for a scene of a generated dataset
    (``DATASET/scene_XXXXXX/scene.json`` next to ``DATASET/generate.json``), whose scenes share
    ``DATASET/objects``: there it is the dataset folder.
    """
    folder = Path(scene_json).parent
    if _DATASET_SCENE_DIR.match(folder.name) and (folder.parent / "generate.json").is_file():
        return folder.parent
    return folder


def resolve_scene_file(scene_json: str | Path, value, field_name: str) -> Path:
    """The file that ``field_name`` of ``scene_json`` names, resolved; every reader uses this.

    ``value`` must be a path relative to the scene's folder that stays inside
    :func:`scene_data_root` once ``..`` and symbolic links are resolved: absolute paths and
    paths leading outside are refused with one line naming the scene.json and the field.
    """
    scene_json = Path(scene_json)
    where = f"{scene_json}: {field_name}"
    if not isinstance(value, str) or not value or "\0" in value:
        raise InputError(
            f"{where}: expected a file path relative to the scene folder, got {value!r}"
        )
    if Path(value).is_absolute():
        raise InputError(
            f"{where}: absolute path {value!r} refused (expected a path relative to the scene"
            " folder)"
        )
    root = scene_data_root(scene_json)
    try:
        resolved = (scene_json.parent / value).resolve()
        inside = resolved.is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, bad names
        raise InputError(f"{where}: cannot resolve {value!r} ({exc})") from None
    if not inside:
        raise InputError(
            f"{where}: {value!r} leads outside {root} (expected a file inside the scene's"
            " folder; '..' and symbolic links may not leave it)"
        )
    return resolved


def _load_mesh(mesh_path: Path, referenced_by: Path):
    import trimesh

    if not mesh_path.is_file():
        raise FileNotFoundError(f"{mesh_path}: mesh referenced by {referenced_by} not found")
    try:
        return trimesh.load(mesh_path, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for broken files
        raise ValueError(f"{mesh_path}: cannot read mesh ({exc})") from None


def _json_only_glb(gltf) -> bytes:
    """A GLB with a JSON chunk only: the format's way to hold a scene without geometry
    (pygltflib always writes a BIN chunk, which the Khronos validator rejects when empty)."""
    import struct

    gltf.buffers = []
    gltf.bufferViews = []
    gltf.accessors = []
    text = gltf.to_json(separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned, JSON padded with spaces
    header = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(text))
    return header + struct.pack("<I4s", len(text), b"JSON") + text


@dataclass
class Camera:
    """A pinhole camera: intrinsics ``K`` (3x3, pixels), ``world_to_camera`` (4x4, OpenCV axes)."""

    K: np.ndarray
    world_to_camera: np.ndarray
    width: int
    height: int

    def __post_init__(self):
        self.K = _as_array(self.K, (3, 3), "K")
        self.world_to_camera = _as_array(self.world_to_camera, (4, 4), "world_to_camera")
        if not (self.K[0, 0] > 0 and self.K[1, 1] > 0 and self.K[2, 2] == 1.0):
            raise ValueError("K must have positive focal lengths and K[2, 2] = 1")
        rot = self.world_to_camera[:3, :3]
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4) or np.linalg.det(rot) < 0:
            raise ValueError("world_to_camera must be rigid (a proper rotation and a translation)")
        if not np.allclose(self.world_to_camera[3], [0, 0, 0, 1]):
            raise ValueError("world_to_camera must have last row [0, 0, 0, 1]")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        self.width, self.height = int(self.width), int(self.height)

    @property
    def camera_to_world(self) -> np.ndarray:
        return np.linalg.inv(self.world_to_camera)

    @property
    def position(self) -> np.ndarray:
        return self.camera_to_world[:3, 3]

    @property
    def yfov(self) -> float:
        """Vertical field of view in radians."""
        return float(2.0 * np.arctan(self.height / (2.0 * self.K[1, 1])))

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) world points -> (pixel coordinates (N, 2), depth z (N,)) in this camera."""
        pts = np.asarray(points_world, dtype=np.float64)
        cam = pts @ self.world_to_camera[:3, :3].T + self.world_to_camera[:3, 3]
        z = cam[:, 2]
        uv = cam[:, :2] / np.where(np.abs(z) < 1e-12, 1e-12, z)[:, None]
        uv = uv @ self.K[:2, :2].T + self.K[:2, 2]
        return uv, z

    def to_dict(self) -> dict:
        return {
            "K": self.K,
            "world_to_camera": self.world_to_camera,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        return cls(d["K"], d["world_to_camera"], d["width"], d["height"])

    @classmethod
    def from_fov(cls, yfov: float, width: int, height: int, world_to_camera) -> Camera:
        """Camera with square pixels and the principal point at the image centre."""
        f = height / (2.0 * np.tan(yfov / 2.0))
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0  # pixel centres at integer coordinates
        K = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
        return cls(K, world_to_camera, width, height)


@dataclass
class Pose:
    """Placement of a canonical mesh: p = R (s/2 * p_canonical) + t (metres)."""

    R: np.ndarray
    t: np.ndarray
    s: float

    def __post_init__(self):
        self.R = _as_array(self.R, (3, 3), "R")
        self.t = _as_array(self.t, (3,), "t")
        self.s = float(self.s)
        if not np.isfinite(self.s) or self.s <= 0:
            raise ValueError(f"size s must be a positive number, got {self.s}")
        if not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-5) or np.linalg.det(self.R) < 0:
            raise ValueError("R must be a proper rotation matrix (orthonormal, det +1)")

    @property
    def matrix(self) -> np.ndarray:
        return pose_matrix(self.R, self.t, self.s)

    def apply(self, canonical_points: np.ndarray) -> np.ndarray:
        return (self.s / 2.0) * np.asarray(canonical_points) @ self.R.T + self.t

    def to_dict(self) -> dict:
        return {"R": self.R, "t": self.t, "s": self.s, "matrix": self.matrix}

    @classmethod
    def from_dict(cls, d: dict) -> Pose:
        return cls(d["R"], d["t"], d["s"])


@dataclass
class ObjectInstance:
    """One object of a scene: its canonical mesh, label and pose (in the scene's world frame)."""

    mesh: object | None
    """Canonical ``trimesh.Trimesh`` (None when only referenced by ``mesh_file``)."""
    label: str
    pose: Pose
    instance_id: int = 2
    """Id in instance images: 0 background, 1 floor, 2+ objects."""
    object_id: str = ""
    source: str = ""
    licence: str = ""
    mesh_file: str | None = None
    """Path of the canonical mesh, relative to the scene folder, when stored on disk."""
    color: tuple[float, float, float] | None = None
    mask_file: str | None = None
    """Visible mask in the input image (pipeline outputs), relative to the scene folder."""
    confidence: float | None = None
    """Confidence of the estimate; None until a stage computes one."""

    def posed_mesh(self):
        if self.mesh is None:
            raise ValueError(f"object {self.instance_id} ({self.label}) has no mesh loaded")
        mesh = self.mesh.copy()
        mesh.apply_transform(self.pose.matrix)
        return mesh

    def to_dict(self) -> dict:
        d = {
            "instance_id": self.instance_id,
            "label": self.label,
            "object_id": self.object_id,
            "source": self.source,
            "licence": self.licence,
            "pose": self.pose.to_dict(),
            "mesh_file": self.mesh_file,
        }
        if self.color is not None:
            d["color"] = list(self.color)
        if self.mask_file is not None:
            d["mask_file"] = self.mask_file
            d["confidence"] = self.confidence
        return d

    @classmethod
    def from_dict(cls, d: dict, mesh=None) -> ObjectInstance:
        return cls(
            mesh=mesh,
            label=d["label"],
            pose=Pose.from_dict(d["pose"]),
            instance_id=int(d["instance_id"]),
            object_id=d.get("object_id", ""),
            source=d.get("source", ""),
            licence=d.get("licence", ""),
            mesh_file=d.get("mesh_file"),
            color=tuple(d["color"]) if d.get("color") is not None else None,
            mask_file=d.get("mask_file"),
            confidence=d.get("confidence"),
        )


@dataclass
class Scene:
    """Objects in a world frame, the cameras that saw them, and free-form metadata."""

    objects: list[ObjectInstance]
    cameras: list[Camera] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        ids = [o.instance_id for o in self.objects]
        if any(i < 2 for i in ids):
            raise ValueError(f"object instance ids must be >= 2 (0 background, 1 floor), got {ids}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"object instance ids must be unique, got {ids}")

    def to_dict(self) -> dict:
        return {
            "schema": SCENE_SCHEMA,
            "metadata": self.metadata,
            "objects": [o.to_dict() for o in self.objects],
            "cameras": [c.to_dict() for c in self.cameras],
        }

    def save_json(self, path: str | Path) -> None:
        """Write ``scene.json`` atomically (meshes are referenced by ``mesh_file``, not embedded)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load_json(cls, path: str | Path, load_meshes: bool = True) -> Scene:
        """Read a ``scene.json``; meshes are loaded from ``mesh_file`` paths relative to it."""

        path = Path(path)
        payload = read_json(path, SCENE_SCHEMA)
        try:
            objects = []
            for k, d in enumerate(payload["objects"]):
                if not isinstance(d, dict):
                    raise ValueError(f"objects[{k}]: expected an object, got {d!r}")
                mesh = None
                if load_meshes and d.get("mesh_file"):
                    field_name = f"objects[{k}].mesh_file"
                    mesh = _load_mesh(resolve_scene_file(path, d["mesh_file"], field_name), path)
                try:
                    objects.append(ObjectInstance.from_dict(d, mesh))
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"objects[{k}]: {_describe(exc)}") from None
            cameras = [Camera.from_dict(c) for c in payload.get("cameras", [])]
            return cls(objects, cameras, payload.get("metadata", {}))
        except (FileNotFoundError, SceneMakerError):
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {_describe(exc)}") from None

    def to_trimesh_scene(self):
        """A ``trimesh.Scene`` with one named node per object (world frame, y up)."""
        import trimesh

        scene = trimesh.Scene()
        for obj in self.objects:
            if obj.mesh is None:
                raise ValueError(f"object {obj.instance_id} ({obj.label}) has no mesh to export")
            mesh = obj.mesh.copy()
            if obj.color is not None:
                rgba = np.append(np.clip(np.asarray(obj.color), 0, 1) * 255, 255).astype(np.uint8)
                mesh.visual = trimesh.visual.ColorVisuals(mesh, face_colors=rgba)
            name = f"object_{obj.instance_id:02d}_{obj.label.replace(' ', '_')}"
            scene.add_geometry(mesh, node_name=name, geom_name=name, transform=obj.pose.matrix)
        return scene

    def export_glb(self, path: str | Path, camera_index: int | None = 0) -> None:
        """Export one GLB: a node per object and, if the scene has cameras, one glTF camera node.

        glTF cameras look down their local -z with +y up, so the node's matrix is the OpenCV
        camera-to-world times diag(1, -1, -1, 1). glTF has no image size, no principal point
        and one focal length: the camera node and the glTF camera carry
        :func:`camera_extras` (image size, full K, clipping range) in ``extras``, and the
        scene's ``extras`` repeat the image size.
        """
        import pygltflib

        if self.objects:
            glb = self.to_trimesh_scene().export(file_type="glb")
            gltf = pygltflib.GLTF2.load_from_bytes(glb)
        else:  # an empty but valid scene (e.g. nothing was detected); trimesh refuses these
            gltf = pygltflib.GLTF2(
                asset=pygltflib.Asset(version="2.0", generator="scenemaker"),
                scenes=[pygltflib.Scene(nodes=[])],
                scene=0,
            )
            glb = b"".join(gltf.save_to_bytes())
        if camera_index is not None and self.cameras:
            cam = self.cameras[camera_index]
            extras = camera_extras(cam)
            gltf.cameras.append(
                pygltflib.Camera(
                    type="perspective",
                    name="camera",
                    perspective=pygltflib.Perspective(
                        yfov=cam.yfov,
                        # tan(xfov/2) / tan(yfov/2): W/H unless fx != fy
                        aspectRatio=(cam.width * cam.K[1, 1]) / (cam.height * cam.K[0, 0]),
                        znear=CLIP_NEAR,
                        zfar=CLIP_FAR,
                    ),
                    extras=extras,
                )
            )
            c2w = cam.camera_to_world @ CV_TO_GL
            node = pygltflib.Node(
                name="camera",
                camera=len(gltf.cameras) - 1,
                matrix=[float(v) for v in c2w.T.reshape(-1)],  # glTF is column-major
                extras=dict(extras),
            )
            gltf.nodes.append(node)
            scene = gltf.scenes[gltf.scene or 0]
            scene.nodes.append(len(gltf.nodes) - 1)
            scene.extras = {
                **(scene.extras or {}),
                "image_width": cam.width,
                "image_height": cam.height,
                "camera_node": "camera",
            }
            glb = b"".join(gltf.save_to_bytes())
        if not self.objects:
            glb = _json_only_glb(pygltflib.GLTF2.load_from_bytes(glb))
        atomic_write_bytes(path, glb)


CLIP_NEAR = 0.01
"""Near clipping distance (metres) of the exported glTF and USD cameras."""
CLIP_FAR = 1000.0
"""Far clipping distance (metres) of the exported glTF and USD cameras."""

CAMERA_CONVENTION = (
    "K in pixels, OpenCV: u = fx x/z + cx, v = fy y/z + cy in the camera frame x right, y down,"
    " z forward; pixel centres at integer coordinates, the image spans [-0.5, W - 0.5] x"
    " [-0.5, H - 0.5]; principal_point_offset_px = (cx - (W - 1)/2, cy - (H - 1)/2);"
    " the camera node looks down its -z with +y up (camera-to-world times"
    " diag(1, -1, -1, 1)); metres"
)


def camera_extras(cam: Camera) -> dict:
    """What glTF cannot say about ``cam``, as JSON (the ``extras`` of the exported camera).

    Keys: ``image_width``, ``image_height`` (pixels), ``K`` (3x3, pixels, OpenCV), ``fx``,
    ``fy``, ``cx``, ``cy``, ``principal_point_offset_px`` (principal point minus image centre,
    +x right, +y down), ``pixel_aspect_ratio`` (width / height of a pixel: fy / fx), ``xfov``
    and ``yfov`` (radians), ``znear`` and ``zfar`` (metres) and ``convention``.
    """
    K = cam.K
    fx, fy, cx, cy = (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]))
    return {
        "image_width": cam.width,
        "image_height": cam.height,
        "K": [[float(v) for v in row] for row in K],
        "fx": fx,
        "fy": fy,
        "cx": cx,
        "cy": cy,
        "principal_point_offset_px": [cx - (cam.width - 1) / 2.0, cy - (cam.height - 1) / 2.0],
        "pixel_aspect_ratio": fy / fx,
        "xfov": float(2.0 * np.arctan(cam.width / (2.0 * fx))),
        "yfov": cam.yfov,
        "znear": CLIP_NEAR,
        "zfar": CLIP_FAR,
        "convention": CAMERA_CONVENTION,
    }
