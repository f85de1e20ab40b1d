"""Dense alignment of rendered candidates with the observed depth of their crop.

Point-to-plane ICP with projective association (every rendered pixel of the object's mask is
paired with the observed surface point on the same pixel's ray, and the distance is measured
along that point's normal), solved for a small rotation and a translation of each candidate
and, optionally, its size (scaled about its centre). With every pixel of the crop taking part
it converges where a few sampled point pairs cannot: near the right pose the score's depth
residual falls to the level of the depth noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scoring import CropObservation


@dataclass
class SurfaceGrid:
    """The observed surface of a crop: points, unit normals (towards the camera), validity."""

    rays: np.ndarray  # (th, tw, 3), z = 1
    points: np.ndarray  # (th, tw, 3)
    normals: np.ndarray  # (th, tw, 3)
    valid: np.ndarray  # (th, tw) bool: depth and a normal


def surface_grid(crop: CropObservation, jump: float = 0.05) -> SurfaceGrid:
    """Observed points and normals (central differences; none across depth jumps larger than
    ``jump`` x depth)."""
    rays = crop.rays()
    D = crop.depth.astype(np.float64)
    P = rays * D[..., None]
    normals = np.zeros_like(P)
    valid = np.zeros(D.shape, dtype=bool)
    if D.shape[0] >= 3 and D.shape[1] >= 3:
        c = D[1:-1, 1:-1]
        left, right, up, down = D[1:-1, :-2], D[1:-1, 2:], D[:-2, 1:-1], D[2:, 1:-1]
        ok = (c > 0) & (left > 0) & (right > 0) & (up > 0) & (down > 0)
        for n in (left, right, up, down):
            ok &= np.abs(n - c) < jump * np.maximum(c, 1e-6)
        dx = P[1:-1, 2:] - P[1:-1, :-2]
        dy = P[2:, 1:-1] - P[:-2, 1:-1]
        nrm = np.cross(dx, dy)
        length = np.linalg.norm(nrm, axis=-1)
        ok &= length > 1e-12
        nrm = nrm / np.maximum(length, 1e-12)[..., None]
        # towards the camera: n . p < 0
        flip = (nrm * P[1:-1, 1:-1]).sum(-1) > 0
        nrm[flip] *= -1.0
        normals[1:-1, 1:-1] = nrm
        valid[1:-1, 1:-1] = ok
    return SurfaceGrid(rays, P, normals, valid & crop.own)


def point_to_plane_step(
    z: np.ndarray,
    grid: SurfaceGrid,
    R: np.ndarray,
    t: np.ndarray,
    s: np.ndarray,
    cap: np.ndarray,
    scale: bool = True,
    min_pixels: int = 12,
):
    """One Gauss-Newton step for each of N candidates from their rendered depths z (N, th, tw):
    returns the updated (R, t, s) and a bool mask of the candidates that moved. Pairs whose
    distance exceeds ``cap`` (N,) are left out; the rest are weighted by Tukey's biweight."""
    N = len(z)
    R, t, s = R.copy(), t.copy(), s.copy()
    moved = np.zeros(N, dtype=bool)
    for n in range(N):
        use = (z[n] > 0) & grid.valid
        if use.sum() < min_pixels:
            continue
        p = grid.rays[use] * z[n][use][:, None]  # rendered points
        q = grid.points[use]
        nrm = grid.normals[use]
        r = ((p - q) * nrm).sum(1)
        keep = np.abs(r) < cap[n]
        if keep.sum() < min_pixels:
            continue
        p, nrm, r = p[keep], nrm[keep], r[keep]
        a = p - t[n]
        # residual after p -> p + w x a + v + sigma a: r + (a x n).w + n.v + (n.a) sigma
        cols = [np.cross(a, nrm), nrm]
        if scale:
            cols.append((nrm * a).sum(1, keepdims=True))
        J = np.concatenate(cols, 1)
        c = max(cap[n] / 2.0, 1e-9)
        w = np.square(np.clip(1.0 - np.square(r / c), 0.0, None))  # Tukey
        if not (w > 0).sum() >= min_pixels:
            continue
        H = (J * w[:, None]).T @ J
        g = (J * w[:, None]).T @ r
        H += np.eye(len(H)) * (1e-3 * np.trace(H) / len(H) + 1e-12)
        try:
            x = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            continue
        if not np.isfinite(x).all():
            continue
        omega, v = x[:3], x[3:6]
        sigma = float(x[6]) if scale else 0.0
        angle = np.linalg.norm(omega)
        if angle > np.radians(10) or abs(sigma) > 0.1 or np.linalg.norm(v) > 0.1 * s[n]:
            continue  # far outside the small-motion regime: leave it to the search
        from .hypotheses import rotvec_matrices

        dR = rotvec_matrices(omega[None])[0]
        R[n] = dR @ R[n]
        t[n] = t[n] + v
        s[n] = s[n] * (1.0 + sigma)
        moved[n] = True
    return R, t, s, moved


def visible_icp(renderer, crop, obs, R, t, s, iterations: int, points: int, seed: int = 0):
    """Similarity ICP of each candidate's rendered visible surface with the observed
    points, all candidates at once: pairs both ways (rendered -> nearest observed,
    observed -> nearest rendered, equal weight), so the size is pulled from both sides;
    rendered pixels hidden behind an observed surface take no part. Returns
    (R, t, s, renders)."""
    from ..render.candidates import pose_matrices

    R, t, s = R.copy(), t.copy(), s.copy()
    rng = np.random.default_rng(seed)
    rays = crop.rays().reshape(-1, 3)
    D = crop.depth.reshape(-1)
    own = crop.own.reshape(-1)
    renders = 0
    for _ in range(iterations):
        z = renderer.render(crop.K, pose_matrices(R, t, s), crop.tile_w, crop.tile_h)
        renders += len(R)
        z = z.reshape(len(R), -1)
        tolerance = 0.02 + 0.05 * s[:, None]
        use = (z > 0) & ~(~own[None] & (D[None] > 0) & (z > D[None] - tolerance))
        # up to icp_points rendered pixels per candidate, picked at random
        keys = np.where(use, rng.random(use.shape), 2.0)
        count = min(points, keys.shape[1])
        pick = np.argpartition(keys, count - 1, axis=1)[:, :count]
        ok = np.take_along_axis(use, pick, 1)  # (N, P)
        zp = np.take_along_axis(z, pick, 1)
        pts = rays[pick] * zp[..., None]  # (N, P, 3)
        sq = pts @ (-2.0 * obs.T)
        sq += np.einsum("npc,npc->np", pts, pts)[..., None]
        sq += np.einsum("oc,oc->o", obs, obs)[None, None]  # (N, P, O) squared distances
        sq[~ok] = np.inf  # pixels not picked pair with nothing
        limit = np.square(0.25 * s[:, None])  # squared, as the distances
        j1 = sq.argmin(2)  # rendered -> observed
        d1 = np.take_along_axis(sq, j1[..., None], 2)[..., 0]
        i2 = sq.argmin(1)  # observed -> rendered
        d2 = np.take_along_axis(sq, i2[:, None, :], 1)[:, 0]
        w1 = (d1 < limit).astype(np.float64)
        w2 = (d2 < limit).astype(np.float64)
        enough = (w1.sum(1) + w2.sum(1)) >= 8
        w1 *= 0.5 / np.maximum(w1.sum(1, keepdims=True), 1)
        w2 *= 0.5 / np.maximum(w2.sum(1, keepdims=True), 1)
        src = np.concatenate([pts, np.take_along_axis(pts, i2[..., None], 1)], 1)
        dst = np.concatenate([obs[j1], np.broadcast_to(obs, (len(R), *obs.shape))], 1)
        M = weighted_similarity(src, dst, np.concatenate([w1, w2], 1))
        scale = np.cbrt(np.clip(np.linalg.det(M[:, :3, :3]), 1e-12, None))
        good = enough & np.isfinite(scale) & (scale > 0.5) & (scale < 2.0)
        good &= np.isfinite(M).all((1, 2))
        if not good.any():
            break
        rot = M[good, :3, :3] / scale[good, None, None]
        R[good] = rot @ R[good]
        t[good] = np.einsum("nij,nj->ni", M[good, :3, :3], t[good]) + M[good, :3, 3]
        s[good] = s[good] * scale[good]
    return R, t, s, renders


def weighted_similarity(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, 4, 4) weighted least-squares similarities taking src (N, P, 3) onto dst (N, P, 3)
    (Umeyama's closed form with weights (N, P); a zero weight drops a pair)."""
    total = np.maximum(w.sum(1), 1e-12)[:, None]
    mu_s = np.einsum("np,npc->nc", w, src) / total
    mu_d = np.einsum("np,npc->nc", w, dst) / total
    xs, xd = src - mu_s[:, None], dst - mu_d[:, None]
    cov = np.einsum("np,npi,npj->nij", w, xd, xs) / total[..., None]
    U, S, Vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    E = np.ones((len(src), 3))
    E[:, 2] = np.where(sign == 0, 1.0, sign)
    R = U @ (E[:, :, None] * Vt)
    var = np.einsum("np,npc->n", w, xs * xs) / total[:, 0]
    c = (S * E).sum(1) / np.maximum(var, 1e-18)
    M = np.zeros((len(src), 4, 4))
    M[:, :3, :3] = c[:, None, None] * R
    M[:, :3, 3] = mu_d - c[:, None] * np.einsum("nij,nj->ni", R, mu_s)
    M[:, 3, 3] = 1.0
    return M


def dense_refine(refiner, obj, renderer, R, t, s, score, precise: bool = False) -> int:
    """Dense point-to-plane alignment of candidates (R, t, s, score: updated in place where
    the score improves) on the fine crop, ``dense_iterations`` rounds (``precise``: on
    ``obj.crop_precise``, ``precise_iterations`` rounds). Returns the renders spent."""
    from ..render.candidates import pose_matrices

    st = refiner.settings
    iterations = st.precise_iterations if precise else st.dense_iterations
    if iterations == 0:
        return 0
    crop = obj.crop_precise if precise else obj.crop_fine
    name = "grid_precise" if precise else "grid"  # the crop's observed surface, made once
    if getattr(obj, name) is None:
        setattr(obj, name, surface_grid(crop))
    grid = getattr(obj, name)
    nR, nt, ns = R.copy(), t.copy(), s.copy()
    renders = 0
    for _ in range(iterations):
        z = renderer.render(crop.K, pose_matrices(nR, nt, ns), crop.tile_w, crop.tile_h)
        renders += len(nR)
        cap = st.score.cap_size * ns + st.score.tolerance
        nR, nt, ns, moved = point_to_plane_step(z, grid, nR, nt, ns, cap, st.dense_scale)
        if not moved.any():
            break
    z = renderer.render(crop.K, pose_matrices(nR, nt, ns), crop.tile_w, crop.tile_h)
    renders += len(nR)
    new = refiner._score(z, nR, nt, ns, crop)["score"]
    better = new < score
    R[better], t[better], s[better], score[better] = (
        nR[better],
        nt[better],
        ns[better],
        new[better],
    )
    return renders


def polish(refiner, obj, renderer, pose):
    """(pose, renders): the chosen ``pose`` aligned once more, densely, at the finer crop
    ``obj.crop_precise`` (``precise_tile``; the search's crops sample a large object's pixels
    only every few pixels, and a scene's normalised boxes move with its largest object's
    sub-percent errors); kept only where it scores better on that crop."""
    from ..render.candidates import pose_matrices
    from .hypotheses import orthonormal_pose

    crop = obj.crop_precise
    R, t, s = pose.R[None].copy(), pose.t[None].copy(), np.array([pose.s], dtype=np.float64)
    z = renderer.render(crop.K, pose_matrices(R, t, s), crop.tile_w, crop.tile_h)
    base = refiner._score(z, R, t, s, crop)["score"].astype(np.float64)
    score = base.copy()
    renders = 1 + dense_refine(refiner, obj, renderer, R, t, s, score, precise=True)
    if score[0] < base[0]:
        return orthonormal_pose(R[0], t[0], s[0]), renders
    return pose, renders
