"""Any folder of mesh files (.obj .glb .gltf .ply .stl, searched recursively)."""

from __future__ import annotations

from pathlib import Path

from ..geometry.canonical import canonicalize_mesh
from .base import MeshError, ObjectAsset, ObjectSource, validate_mesh

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl")


def load_mesh_file(path: Path, name: str | None = None):
    """Load a mesh file as one validated trimesh.Trimesh; MeshError (naming the file) on failure."""
    import trimesh

    name = name or str(path)
    try:
        loaded = trimesh.load(path, process=False)
    except Exception as exc:  # trimesh raises many exception types for broken files
        raise MeshError(f"{name}: cannot read mesh ({type(exc).__name__}: {exc})") from None
    return validate_mesh(loaded, name)


def load_canonical_mesh(path: Path, z_up: bool = False):
    """Read, validate and canonicalise a mesh file; MeshError naming the file on failure."""
    from ..geometry.canonical import Z_UP_TO_Y_UP

    mesh = load_mesh_file(path)
    if z_up:
        mesh.apply_transform(Z_UP_TO_Y_UP)
    try:
        mesh, _ = canonicalize_mesh(mesh)
    except ValueError as exc:
        raise MeshError(f"{path}: {exc}") from None
    return mesh


class FolderSource(ObjectSource):
    """Meshes in a folder; ids are paths relative to it; label from the parent folder name
    when the file is in a sub-folder, else ``"object"``."""

    licence = "user-supplied (see the folder's own licence)"

    def __init__(
        self, root: str | Path, name: str = "folder", z_up: bool = False, licence: str | None = None
    ):
        self.root = Path(root)
        self.name = name
        self.z_up = z_up
        if licence:
            self.licence = licence
        if not self.root.exists():
            raise FileNotFoundError(f"{self.root}: objects folder does not exist")
        if not self.root.is_dir():
            raise NotADirectoryError(f"{self.root}: expected a folder of mesh files")
        self._ids = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.suffix.lower() in MESH_SUFFIXES and p.is_file()
        )
        if not self._ids:
            raise FileNotFoundError(
                f"{self.root}: no mesh files ({' '.join(MESH_SUFFIXES)}) found in this folder"
            )

    def all_ids(self) -> list[str]:
        return list(self._ids)

    def label_of(self, object_id: str) -> str:
        parent = Path(object_id).parent.name
        return parent.replace("_", " ") if parent else "object"

    def load(self, object_id: str) -> ObjectAsset:
        path = self.root / object_id
        mesh = load_canonical_mesh(path, self.z_up)
        return ObjectAsset(
            object_id=object_id,
            label=self.label_of(object_id),
            mesh=mesh,
            source=self.name,
            licence=self.licence,
            size_range=(0.3, 1.0),
            extra={"path": str(path)},
        )
