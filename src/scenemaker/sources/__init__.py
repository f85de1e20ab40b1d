"""Object sources by name: ``procedural``, ``pybullet``, ``objaverse[:DIR]`` or a folder path."""

from __future__ import annotations

from pathlib import Path

from .base import SPLITS, MeshError, ObjectAsset, ObjectSource, split_of

SOURCE_NAMES = ("procedural", "pybullet", "objaverse")


def get_source(spec: str) -> ObjectSource:
    """Build an object source from its CLI spelling.

    ``procedural`` | ``pybullet`` | ``objaverse`` (package + network) | ``objaverse:DIR``
    (local GLBs) | any folder path of mesh files.
    """
    if spec == "procedural":
        from .procedural import ProceduralSource

        return ProceduralSource()
    if spec == "pybullet":
        from .pybullet_source import PybulletSource

        return PybulletSource()
    if spec == "objaverse" or spec.startswith("objaverse:"):
        from .objaverse_source import ObjaverseSource

        local = spec.split(":", 1)[1] if ":" in spec else None
        if local is not None and not local.strip():
            raise ValueError("objaverse:DIR needs a folder after the colon")
        return ObjaverseSource(local_dir=local)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"{spec}: not an object source ({', '.join(SOURCE_NAMES)}) nor an existing folder"
        )
    from .folder import FolderSource

    return FolderSource(path)


__all__ = [
    "SPLITS",
    "SOURCE_NAMES",
    "MeshError",
    "ObjectAsset",
    "ObjectSource",
    "get_source",
    "split_of",
]
