"""Scene consistency after each object's choice: objects that interpenetrate are separated
where the image allows it.

For each pair whose surfaces go into each other (a share of one's surface samples inside the
other, by generalised winding number), the less certain object (lower confidence) is moved
along its own viewing ray, away from the other, in growing steps until they no longer
interpenetrate. Moving along the ray keeps the object where the image sees it; the move is
kept only if the object's render-and-compare score worsens by less than ``tolerance`` (the
image evidence allows it). Penetration of the support plane is already part of the score.
"""

from __future__ import annotations

import numpy as np

from ..scene import Pose


def _inside_share(points: np.ndarray, mesh) -> float:
    """Share of ``points`` inside the closed-ish posed ``mesh`` (|winding number| > 0.5)."""
    from ..geometry.solids import winding_number

    lo, hi = mesh.bounds
    near = ((points >= lo) & (points <= hi)).all(1)
    if not near.any():
        return 0.0
    tri = np.asarray(mesh.triangles, dtype=np.float64)
    inside = np.abs(winding_number(points[near], tri)) > 0.5
    return float(inside.sum() / len(points))


def resolve_interpenetration(
    details: list,
    meshes: list,
    score_pose,
    samples: int = 256,
    threshold: float = 0.02,
    steps: tuple[float, ...] = (0.03, 0.06, 0.1, 0.15, 0.2, 0.3),
    tolerance: float = 0.05,
    max_faces: int = 1000,
) -> list[str]:
    """Separate interpenetrating objects in place (``details[k].pose`` updated); returns a
    note per move. ``score_pose(k, pose) -> float`` scores object k's pose on the image."""
    from ..render.candidates import render_mesh

    live = [k for k, d in enumerate(details) if d.pose is not None and d.score is not None]
    if len(live) < 2:
        return []
    small = {}
    for k in live:
        v, f = render_mesh(meshes[k], max_faces)
        small[k] = (v, f, np.asarray(meshes[k].sample(samples, seed=k)))
    notes = []

    def posed(k, pose):
        import trimesh

        v, f, _ = small[k]
        return trimesh.Trimesh(pose.apply(v), f, process=False)

    for _ in range(2):  # a second sweep for chains of contacts
        moved = False
        for a_i, a in enumerate(live):
            for b in live[a_i + 1 :]:
                pa, pb = details[a].pose, details[b].pose
                share = max(
                    _inside_share(pa.apply(small[a][2]), posed(b, pb)),
                    _inside_share(pb.apply(small[b][2]), posed(a, pa)),
                )
                if share < threshold:
                    continue
                conf = {k: details[k].confidence or 0.0 for k in (a, b)}
                mover, fixed = (a, b) if conf[a] <= conf[b] else (b, a)
                pm, pf = details[mover].pose, details[fixed].pose
                ray = pm.t / max(np.linalg.norm(pm.t), 1e-9)
                away = 1.0 if np.linalg.norm(pm.t) >= np.linalg.norm(pf.t) else -1.0
                base = score_pose(mover, pm)
                for step in steps:
                    trial = Pose(pm.R, pm.t + away * step * pm.s * ray, pm.s)
                    share = max(
                        _inside_share(trial.apply(small[mover][2]), posed(fixed, pf)),
                        _inside_share(pf.apply(small[fixed][2]), posed(mover, trial)),
                    )
                    if share >= threshold:
                        continue
                    worse = score_pose(mover, trial) - base
                    if worse < tolerance:
                        details[mover].pose = trial
                        notes.append(
                            f"object {mover} moved {step:.2f} x size along its ray out of "
                            f"object {fixed} (score +{worse:.3f})"
                        )
                        moved = True
                    break
        if not moved:
            break
    return notes
