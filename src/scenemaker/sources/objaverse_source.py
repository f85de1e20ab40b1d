"""Objaverse objects: a local folder of GLBs, or the ``objaverse`` package where a network exists.

With the package, objects are downloaded to its cache; labels and licences come from the
Objaverse annotations (each object keeps its own Creative Commons licence). Offline, pass a
folder of already downloaded GLBs (``--objects objaverse:DIR``); ids are file stems (UIDs).
"""

from __future__ import annotations

from pathlib import Path

from .base import ObjectAsset, ObjectSource
from .folder import FolderSource, load_canonical_mesh


class ObjaverseSource(ObjectSource):
    name = "objaverse"
    licence = "per object (Objaverse annotations; mostly CC-BY)"

    def __init__(self, local_dir: str | Path | None = None, max_objects: int = 2000):
        self._annotations: dict = {}
        self._paths: dict[str, Path] = {}
        if local_dir is not None:
            folder = FolderSource(local_dir, name=self.name, licence=self.licence)
            stems = [Path(i).stem for i in folder.all_ids()]
            # ids are UIDs (file stems) unless two files share a stem: then relative paths
            unique = len(set(stems)) == len(stems)
            ids = stems if unique else folder.all_ids()
            self._paths = {k: folder.root / i for k, i in zip(ids, folder.all_ids(), strict=True)}
            self._labels = {
                k: folder.label_of(i) for k, i in zip(ids, folder.all_ids(), strict=True)
            }
            return
        try:
            import objaverse
        except ImportError:
            raise ImportError(
                "the 'objaverse' source needs the objaverse package (pip install "
                "'scenemaker[objaverse]') and a network, or a local folder: "
                "--objects objaverse:DIR"
            ) from None
        try:
            uids = sorted(objaverse.load_uids())[:max_objects]
            self._annotations = objaverse.load_annotations(uids)
        except Exception as exc:
            raise RuntimeError(
                f"cannot reach Objaverse ({type(exc).__name__}); offline, pass a local folder of "
                "GLBs: --objects objaverse:DIR"
            ) from None
        self._labels = {u: a.get("name") or "object" for u, a in self._annotations.items()}

    def all_ids(self) -> list[str]:
        return sorted(self._labels)

    def _path(self, uid: str) -> Path:
        if uid in self._paths:
            return self._paths[uid]
        import objaverse

        return Path(objaverse.load_objects([uid])[uid])

    def load(self, object_id: str) -> ObjectAsset:
        if object_id not in self._labels:
            raise KeyError(f"unknown objaverse object {object_id!r}")
        path = self._path(object_id)
        mesh = load_canonical_mesh(path)
        annotation = self._annotations.get(object_id, {})
        return ObjectAsset(
            object_id=object_id,
            label=self._labels[object_id],
            mesh=mesh,
            source=self.name,
            licence=annotation.get("license", self.licence),
            size_range=(0.3, 1.0),
            extra={"path": str(path)},
        )
