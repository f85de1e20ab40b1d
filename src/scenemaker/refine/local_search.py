"""The last stage of render-and-compare: a local random search around each hypothesis.

Each round perturbs rotation, translation and size (step sizes shrink geometrically from the
settings' first to last value), adds one candidate per hypothesis that only moves along its
viewing ray onto the observed depth, renders them all in one batch and keeps, per hypothesis,
whatever scores better. With ``local_repeat``, a hypothesis whose last round improved also
tries that step again, once and twice over: the score's valleys are narrow (a slightly too
large object sitting a little too deep improves only when size and position move together),
so a direction that worked is followed. From halfway on, with ``local_margin``, hypotheses far
behind the best are no longer searched (they keep their pose).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .hypotheses import rotvec_matrices
from .scoring import CropObservation, depth_shift


def local_search(
    score: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    renderer,
    crop: CropObservation,
    st,
    rng: np.random.Generator,
    steps: int,
    cand_R: np.ndarray,
    cand_t: np.ndarray,
    cand_s: np.ndarray,
    cand_score: np.ndarray,
) -> int:
    """Search around each of the H hypotheses ``(cand_R, cand_t, cand_s)`` (updated in place
    where ``score(z, R, t, s)`` improves on ``cand_score``, also updated). ``st`` is the
    :class:`~.render_settings.RenderCompareSettings`. Returns the renders spent."""
    from ..render.candidates import pose_matrices

    H, P = len(cand_R), st.perturbations
    renders = 0
    last = [None] * H  # each hypothesis' last improving step: (rotation, translation, size ratio)
    for step in range(steps):
        f = step / max(steps - 1, 1)
        sig_r = np.radians(st.rotation_step[0] * (st.rotation_step[1] / st.rotation_step[0]) ** f)
        sig_t = st.translation_step[0] * (st.translation_step[1] / st.translation_step[0]) ** f
        sig_s = st.size_step[0] * (st.size_step[1] / st.size_step[0]) ** f
        dR = rotvec_matrices(rng.normal(0.0, sig_r, (H * P, 3)))
        new_R = dR @ np.repeat(cand_R, P, axis=0)
        new_s = np.repeat(cand_s, P) * np.exp(rng.normal(0.0, sig_s, H * P))
        new_t = np.repeat(cand_t, P, axis=0) + rng.normal(0.0, 1.0, (H * P, 3)) * (
            sig_t * np.repeat(cand_s, P)[:, None]
        )
        a = np.arange(H)  # the hypotheses still searched
        if st.local_margin is not None and step >= steps // 2:
            a = np.nonzero(cand_score <= cand_score.min() + st.local_margin)[0]
            rows = (a[:, None] * P + np.arange(P)).reshape(-1)
            new_R, new_t, new_s = new_R[rows], new_t[rows], new_s[rows]
        owner = np.repeat(np.arange(len(a)), P)
        moves = []  # (R, t, s, owner)
        if st.local_repeat:  # the last improving step again, once and twice over
            again = [(i, h) for i, h in enumerate(a) if last[h] is not None]
            for times in (1, 2):
                for i, h in again:
                    dR, dt, ds = last[h]
                    moves.append((np.linalg.matrix_power(dR, times) @ cand_R[h],
                                  cand_t[h] + times * dt, cand_s[h] * ds**times, i))  # fmt: skip
        if moves:
            new_R = np.concatenate([new_R, [m[0] for m in moves]])
            new_t = np.concatenate([new_t, [m[1] for m in moves]])
            new_s = np.concatenate([new_s, [m[2] for m in moves]])
            owner = np.concatenate([owner, [m[3] for m in moves]])
        A, tail = len(a), len(new_R)
        # one candidate per hypothesis only moves onto the observed depth
        new_R = np.concatenate([new_R, cand_R[a]])
        new_t = np.concatenate([new_t, cand_t[a]])
        new_s = np.concatenate([new_s, cand_s[a]])
        z = renderer.render(crop.K, pose_matrices(new_R, new_t, new_s), crop.tile_w, crop.tile_h)
        delta = depth_shift(z[tail:], crop)
        norm = np.linalg.norm(cand_t[a], axis=1, keepdims=True)
        new_t[tail:] = cand_t[a] * (1.0 + delta[:, None] / np.maximum(norm, 1e-9))
        z[tail:] = renderer.render(
            crop.K, pose_matrices(cand_R[a], new_t[tail:], cand_s[a]), crop.tile_w, crop.tile_h
        )
        renders += len(new_R) + A
        sc = score(z, new_R, new_t, new_s)
        owner = np.concatenate([owner, np.arange(A)])
        for i, h in enumerate(a):
            mine = np.nonzero(owner == i)[0]
            best = mine[np.argmin(sc[mine])]
            if sc[best] < cand_score[h]:
                last[h] = (new_R[best] @ cand_R[h].T, new_t[best] - cand_t[h],
                           new_s[best] / cand_s[h])  # fmt: skip
                cand_R[h], cand_t[h], cand_s[h] = new_R[best], new_t[best], new_s[best]
                cand_score[h] = sc[best]
            else:
                last[h] = None
    return renders
