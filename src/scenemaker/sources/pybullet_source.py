"""The 1,000 ``pybullet_data/random_urdfs`` meshes shipped in the ``pybullet`` wheel.

Unlabelled blobs (label ``"object"``), z-up (converted to +y up on load), zlib licence.
"""

from __future__ import annotations

from pathlib import Path

from .base import ObjectAsset, ObjectSource
from .folder import FolderSource


def pybullet_random_urdfs_dir() -> Path:
    try:
        import pybullet_data
    except ImportError:
        raise ImportError(
            "the 'pybullet' object source needs the pybullet package (pip install pybullet)"
        ) from None
    return Path(pybullet_data.getDataPath()) / "random_urdfs"


class PybulletSource(ObjectSource):
    name = "pybullet"
    licence = "Zlib (pybullet_data)"

    def __init__(self):
        root = pybullet_random_urdfs_dir()
        self._folder = FolderSource(root, name=self.name, z_up=True, licence=self.licence)
        # only the visual .obj of each object (the folders also hold collision meshes)
        self._ids = sorted(i for i in self._folder.all_ids() if Path(i).stem == Path(i).parent.name)

    def all_ids(self) -> list[str]:
        return [Path(i).parent.name for i in self._ids]

    def load(self, object_id: str) -> ObjectAsset:
        asset = self._folder.load(f"{object_id}/{object_id}.obj")
        asset.object_id = object_id
        asset.label = "object"
        asset.size_range = (0.25, 0.7)
        return asset
