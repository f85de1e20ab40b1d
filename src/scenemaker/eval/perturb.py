"""Perturbed canonical meshes that imitate image-to-3D errors (for the pose benchmark).

Each function takes a canonical mesh and a numpy Generator and returns (perturbed mesh, T):
the perturbed mesh is re-canonicalised, and T (4x4 similarity) maps the frame the
perturbation was applied in onto the new canonical frame, so the benchmark can carry it into
the ground-truth pose (``pose_benchmark.compensate_pose``).
"""

from __future__ import annotations

import numpy as np

from ..geometry.canonical import canonical_transform

LEVELS = {
    1: {"deform": 0.05, "noise": 0.005, "cut": 0.075},
    2: {"deform": 0.10, "noise": 0.010, "cut": 0.15},
}
"""Deformation amplitude and noise as fractions of the object's size (longest side), largest
volume fraction cut away."""


def smooth_deformation(vertices: np.ndarray, amplitude: float, rng) -> np.ndarray:
    """Displace vertices by a smooth random field (a sum of 4 low-frequency sinusoids per axis),
    peak displacement ``amplitude`` x the size (canonical size is 2)."""
    field = np.zeros_like(vertices)
    for axis in range(3):
        for _ in range(4):
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            freq = rng.uniform(0.5, 1.5) * np.pi / 2
            phase = rng.uniform(0, 2 * np.pi)
            field[:, axis] += np.sin(vertices @ direction * freq + phase)
    peak = np.abs(field).max()
    return vertices + field / max(peak, 1e-9) * amplitude * 2.0


def cut_part(mesh, fraction: float, rng):
    """Cut away up to ``fraction`` of the surface with a random plane; watertight meshes are
    cut and closed exactly (manifold3d), others lose the faces beyond the plane."""
    import manifold3d
    import trimesh

    normal = rng.normal(size=3)
    normal /= np.linalg.norm(normal)
    samples = mesh.sample(4000, seed=int(rng.integers(2**31)))
    share = rng.uniform(0.3, 1.0) * fraction
    offset = float(np.quantile(samples @ normal, 1.0 - share))
    if mesh.is_watertight:
        solid = manifold3d.Manifold(
            manifold3d.Mesh(
                vert_properties=np.asarray(mesh.vertices, np.float32),
                tri_verts=np.asarray(mesh.faces, np.uint32),
            )
        )
        if solid.status() == manifold3d.Error.NoError:
            # keep the side opposite the normal: -n . x >= -offset
            kept = solid.trim_by_plane(tuple(-normal), -offset).to_mesh()
            out = trimesh.Trimesh(kept.vert_properties[:, :3], kept.tri_verts, process=True)
            if len(out.faces) and out.area > 0:
                return out
    keep = (np.asarray(mesh.triangles_center) @ normal) <= offset
    if keep.sum() < 4:
        return mesh
    out = mesh.submesh([np.nonzero(keep)[0]], append=True)
    return out


def perturb_mesh(mesh, rng, level: int = 1):
    """Deformation + surface noise + a part cut away, at ``level`` (1 or 2); re-canonicalised."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {sorted(LEVELS)}, got {level}")
    import trimesh

    cfg = LEVELS[level]
    # dense vertices first, so that the smooth field bends faces instead of moving corners
    v, f = trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, max_edge=0.15, max_iter=6)
    out = trimesh.Trimesh(v, f, process=True)
    vertices = smooth_deformation(np.asarray(out.vertices), cfg["deform"], rng)
    normals = np.asarray(out.vertex_normals)
    vertices = vertices + normals * rng.normal(0, cfg["noise"] * 2.0, (len(vertices), 1))
    out.vertices = vertices
    out = cut_part(out, cfg["cut"], rng)
    T = canonical_transform(out.vertices)
    out.apply_transform(T)
    return out, T


def densify(mesh, min_faces: int = 20000):
    """The same surface with every face split in four until it has ``min_faces`` faces or
    more (as dense as a scanned mesh); canonical frame unchanged."""
    import trimesh

    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    while 0 < len(f) < min_faces:
        v, f = trimesh.remesh.subdivide(v, f)
    return trimesh.Trimesh(v, f, process=False), np.eye(4)


def other_instance(object_id: str, source):
    """A perturbation that swaps the mesh for another instance of the same category (procedural
    ids ``category_XXXX``); the ground-truth pose is kept (no vertex correspondence)."""
    category, index = object_id.rsplit("_", 1)
    others = [i for i in source.all_ids() if i.rsplit("_", 1)[0] == category and i != object_id]
    if not others:
        raise ValueError(f"no other instance of {category!r}")
    pick = others[(int(index) * 7919) % len(others)]
    return source.load(pick).mesh, np.eye(4)
