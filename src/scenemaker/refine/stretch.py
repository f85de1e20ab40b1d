"""Stretch: fit a mesh that is not the object's own to what the camera saw.

A retrieved or generated mesh is rarely the object itself: a chair of the right kind but wider,
a mug taller. With one size per object its box cannot match the observed one along every
axis. After the search has chosen a pose, :func:`stretch_search` scales the mesh along its
own (canonical) axes: rounds of random perturbations of the log scale per axis (and of the
translation), each candidate also moved along its viewing ray onto the observed depth, scored
by the same render-and-compare score plus a penalty on how far the three scales differ
(``stretch_weight`` x the sum of |log scale - their mean|; their mean, the size, is free:
a substitute's best size differs from the size that fits it unstretched). The stretch is kept only when it
lowers the score by at least ``stretch_min_gain``: a mesh that fits as it is stays as it is.

The stretched mesh is re-canonicalised (:func:`apply_stretch`): the refined pose then places
the stretched canonical mesh, its size multiplied by the returned factor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .scoring import CropObservation, depth_shift


def stretch_matrices(R, t, s, stretch) -> np.ndarray:
    """(N, 4, 4) canonical -> camera matrices for p = R (s/2 (a * q)) + t, a = ``stretch``."""
    from ..render.candidates import pose_matrices

    M = pose_matrices(R, t, s)
    M[:, :3, :3] *= np.asarray(stretch, dtype=np.float64).reshape(-1, 1, 3)
    return M


def stretch_factor(extent: np.ndarray, stretch) -> float:
    """New size / old size when a canonical box of ``extent`` (3,) is stretched by ``stretch``
    and re-canonicalised (its longest side back to 2)."""
    return float((np.asarray(extent) * np.asarray(stretch)).max() / 2.0)


def apply_stretch(mesh, stretch):
    """(mesh, factor): canonical ``mesh`` scaled by ``stretch`` (3,) along its axes and
    re-canonicalised (centred on its box centre, longest side 2); a pose of the original
    placing it the same way has its size multiplied by ``factor``."""
    a = np.asarray(stretch, dtype=np.float64).reshape(3)
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise ValueError(f"stretch must be three positive numbers, got {stretch!r}")
    out = mesh.copy()
    v = np.asarray(out.vertices, dtype=np.float64) * a
    lo, hi = v.min(0), v.max(0)
    longest = float((hi - lo).max())
    out.vertices = (v - (lo + hi) / 2.0) * (2.0 / longest)
    extent = np.asarray(mesh.vertices).max(0) - np.asarray(mesh.vertices).min(0)
    return out, stretch_factor(extent, a)


def stretch_points(points: np.ndarray, extent: np.ndarray, stretch) -> np.ndarray:
    """Canonical ``points`` of a mesh with box ``extent`` as they lie on the stretched,
    re-canonicalised mesh (:func:`apply_stretch`)."""
    a = np.asarray(stretch, dtype=np.float64).reshape(3)
    return np.asarray(points) * a / stretch_factor(extent, a)


def stretch_search(
    score: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    renderer,
    crop: CropObservation,
    st,
    rng: np.random.Generator,
    R: np.ndarray,
    t: np.ndarray,
    s: float,
    base: float,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Search a stretch for the pose (R, t, s) that scores ``base`` unstretched.

    ``score(z, t, a)`` scores (N, th, tw) depths of candidates with translations t (N, 3) and
    stretches a (N, 3), without the stretch penalty. ``st``: the
    :class:`~.render_settings.RenderCompareSettings`. Returns (stretch, t, score, renders);
    stretch is all ones (and t, score unchanged) when no stretch gains ``stretch_min_gain``.
    """
    P, rounds = st.perturbations, st.stretch_rounds
    first, last = st.stretch_step
    best_l, best_t, best = np.zeros(3), np.asarray(t, dtype=np.float64).copy(), float(base)
    R1 = np.asarray(R)[None]
    renders = 0
    for step in range(rounds):
        f = step / max(rounds - 1, 1)
        sig_l = first * (last / first) ** f
        sig_t = st.translation_step[0] * (st.translation_step[1] / st.translation_step[0]) ** f
        logs = best_l[None] + rng.normal(0.0, sig_l, (P, 3))
        logs = np.clip(logs, -st.stretch_max, st.stretch_max)
        a = np.exp(logs)
        tt = best_t[None] + rng.normal(0.0, sig_t * s, (P, 3))
        Rs, ss = np.repeat(R1, P, axis=0), np.full(P, s)
        z = renderer.render(crop.K, stretch_matrices(Rs, tt, ss, a), crop.tile_w, crop.tile_h)
        delta = depth_shift(z, crop)  # and each moved along its ray onto the observed depth
        tt = tt * (1.0 + delta[:, None] / np.maximum(np.linalg.norm(tt, axis=1, keepdims=True),
                                                     1e-9))  # fmt: skip
        z = renderer.render(crop.K, stretch_matrices(Rs, tt, ss, a), crop.tile_w, crop.tile_h)
        renders += 2 * P
        penalty = st.stretch_weight * np.abs(logs - logs.mean(1, keepdims=True)).sum(1)
        sc = score(z, tt, a) + penalty
        i = int(np.argmin(sc))
        if sc[i] < best:
            best_l, best_t, best = logs[i], tt[i], float(sc[i])
    if not best < base - st.stretch_min_gain:
        return np.ones(3), np.asarray(t, dtype=np.float64), float(base), renders
    return np.exp(best_l), best_t, best, renders


def refine_stretch(refiner, obj, renderer, rng, pose, base: float):
    """Run :func:`stretch_search` for ``pose`` (scoring ``base``) of the object ``obj`` of a
    :class:`~.render_compare.RenderCompareRefiner`'s search. Returns (None or {"pose": pose of
    the stretched, re-canonicalised mesh, "stretch": [3 floats], "score", "iou",
    "residual"}, renders)."""
    from ..scene import Pose

    crop = obj.crop_fine
    R = pose.R

    def score(z, t, a, full=False):
        n = len(z)
        out = refiner._score(z, np.repeat(R[None], n, 0), t, np.full(n, pose.s), crop, a)
        return out if full else out["score"]

    a, t, _, renders = stretch_search(
        score, renderer, crop, refiner.settings, rng, R, pose.t, pose.s, float(base)
    )
    if np.all(a == 1.0):
        return None, renders
    z = renderer.render(crop.K, stretch_matrices(R[None], t[None], [pose.s], a[None]),
                        crop.tile_w, crop.tile_h)  # fmt: skip
    final = score(z, t[None], a[None], full=True)
    verts = np.asarray(obj.mesh.vertices)  # the canonical box (apply_stretch's factor)
    extent = verts.max(0) - verts.min(0)
    return {
        "pose": Pose(R, t, pose.s * stretch_factor(extent, a)),
        "stretch": [float(x) for x in a],
        "score": float(final["score"][0])
        + refiner.settings.stretch_weight * float(np.abs(np.log(a) - np.log(a).mean()).sum()),
        "iou": float(final["iou"][0]),
        "residual": float(final["residual"][0]),
    }, renders + 1


def stretch_best(refiner, obj, renderer, rng, candidates, scores):
    """Stretch each of the ``stretch_hypotheses`` best refined hypotheses ``candidates``
    (R, t, s arrays) scoring ``scores``; returns (index of the winner, its
    :func:`refine_stretch` result or None, renders)."""
    from .hypotheses import orthonormal_pose

    R, t, s = candidates
    tried, renders = [], 0
    for h in np.argsort(scores, kind="stable")[: refiner.settings.stretch_hypotheses]:
        pose = orthonormal_pose(R[h], t[h], s[h])
        found, n = refine_stretch(refiner, obj, renderer, rng, pose, float(scores[h]))
        renders += n
        tried.append((float(scores[h]) if found is None else found["score"], int(h), found))
    _, best, found = min(tried, key=lambda c: (c[0], c[1]))
    return best, found, renders
