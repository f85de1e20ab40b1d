"""Render-and-compare refinement: the pose model proposes, a renderer verifies.

Per object, coarse to fine (every candidate is rendered in a crop of the observed camera and
scored by :mod:`.scoring`; many candidates share one draw):

1. **Rotations.** Every pose of the pool (the pose model's samples, plus any other estimate)
   gives an up axis; each is turned about it in ``turns`` steps and, with ``faces``, also
   laid on each of the other five faces of its canonical box (objects lie on their side).
   Each rotation is placed at the pool's median size, its visible surface centred on the
   observed points, then moved along the viewing ray onto the observed depth. Adaptively
   (``pool_exit_score``), the pool's own rotations and their turns go first; the other
   faces are only tried when none of those fits well.
2. **Sizes.** The ``keep`` best distinct rotations are tried at ``sizes`` x that size, placed
   the same way.
3. **ICP.** The ``local`` best go through rigid ICP against the observed points.
4. **Local search.** Those then take ``steps`` rounds of random perturbations of rotation,
   translation and size (shrinking step sizes), keeping whatever scores better, plus a move
   along the viewing ray onto the observed depth each round; from halfway on, hypotheses
   far behind the best (``local_margin``) are no longer searched.

The lowest score wins. Each object's record keeps its scores, the top alternatives and a
confidence in [0, 1] (:func:`confidence`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..render.candidates import render_mesh
from ..scene import Pose
from .alignment import dense_refine, polish, visible_icp
from .confidence import confidence, pose_distance  # noqa: F401  (re-exported)
from .hypotheses import (
    _near,
    align_up,
    distinct,
    orthonormal_pose,
    rotation_hypotheses,
)
from .local_search import local_search
from .render_settings import ObjectRefinement, RenderCompareSettings
from .scoring import CropObservation, depth_shift, score_depths


class _Object:
    """One object's search state: its render mesh, samples, points and crops."""

    def __init__(self, mesh, points, crop_coarse, crop_fine, samples, render_mesh, precise=None):
        self.mesh, self.points = mesh, points
        self.crop_coarse, self.crop_fine, self.crop_precise = crop_coarse, crop_fine, precise
        self.samples = samples  # (M, 3) canonical surface samples
        self.render_mesh = render_mesh  # (vertices, faces) decimated for scoring
        self.centroid = points.mean(0)
        self.ray = self.centroid / max(np.linalg.norm(self.centroid), 1e-9)
        self.grid = None  # the fine crop's observed surface (alignment.surface_grid), lazily
        self.grid_precise = None


class RenderCompareRefiner:
    """Render-and-compare refinement over a pool of pose hypotheses per object."""

    name = "render"

    def __init__(self, settings: RenderCompareSettings | None = None, seed: int = 0,
                 workers: int = 0, **kw):  # fmt: skip
        self.settings = settings or RenderCompareSettings(seed=seed, **kw)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"render refiner: workers must be an integer >= 0, got {workers!r}")
        self.workers = workers
        """Processes searching objects side by side: 0 one per core (up to 8), 1 this process
        only (refine/parallel.py)."""
        self._renderer = None
        self._states = {}  # object -> its search's state, for the consistency step
        self.trace: list | None = None  # set to [] to keep each object's stages (diagnostics)

    # the Refiner protocol: poses in, poses out (``points`` is not used: the observed points
    # are taken from the observation, the same way for run and eval)
    def refine(self, poses, meshes, points, observation=None, hypotheses=None) -> list:
        return [r.pose for r in self.refine_detailed(poses, meshes, observation, hypotheses)]

    def refine_detailed(
        self, poses, meshes, observation, hypotheses=None, on_object=None, alternatives=None
    ):
        """One :class:`ObjectRefinement` per object. ``hypotheses[k]`` (a list of poses) is
        object k's pool; without it the pool is ``[poses[k]]``. ``alternatives[k]``: other
        candidate meshes for object k (same canonical frame); each is searched like the first
        and the lowest final score wins (``mesh_choice``). ``on_object()`` is called as each
        object is done (progress). Objects are searched side by side in worker processes
        (``workers``, refine/parallel.py); each object's search depends only on the frame and
        its own seed, so the poses are those of one process."""
        if observation is None:
            raise ValueError("render-and-compare refinement needs the observation")
        if (len(poses) != len(meshes) or len(meshes) != len(observation.masks)
                or (alternatives is not None and len(alternatives) != len(meshes))):  # fmt: skip
            raise ValueError(
                f"got {len(poses)} poses, {len(meshes)} meshes, {len(observation.masks)} masks"
                + ("" if alternatives is None else f", {len(alternatives)} alternative lists")
            )
        from .parallel import choose_mesh, make_tasks, run_tasks

        st = self.settings
        depth = np.where(np.isfinite(observation.depth), observation.depth, 0.0)
        self._plane = None
        if st.support_plane:
            from .support import estimate_support_plane

            self._plane = estimate_support_plane(
                depth, observation.K, observation.masks, seed=st.seed
            )
        self._states = {}
        results, tasks = make_tasks(st, poses, meshes, observation, depth, hypotheses, alternatives)
        done = (lambda: None) if on_object is None else on_object
        for _ in range(sum(r is not None for r in results)):
            done()  # objects decided without a search
        parallel = self.trace is None and not st.consistency  # those need this process's state
        states, found = {}, {}
        left = {t.k: sum(u.k == t.k for u in tasks) for t in tasks}
        for task, result in run_tasks(self, tasks, self.workers if parallel else 1):
            found.setdefault(task.k, {})[task.choice] = result
            left[task.k] -= 1
            if left[task.k] == 0:  # every candidate mesh of this object searched
                results[task.k] = choose_mesh(found[task.k])
                done()
        for (k, choice), state in self._states.items():
            if results[k].mesh_choice in (None, choice):
                states[k] = state
        self._states = {}
        if st.consistency and len(states) > 1:
            from .consistency import resolve_interpenetration

            placed = [  # the candidate mesh each object chose
                m if not r.mesh_choice else alternatives[k][r.mesh_choice - 1]
                for k, (m, r) in enumerate(zip(meshes, results, strict=True))
            ]
            for note in resolve_interpenetration(
                results, placed, lambda k, pose: self._score_state(states[k], pose)
            ):
                k = int(note.split()[1])
                results[k].note = note if results[k].note is None else f"{results[k].note}; {note}"
        return results

    def run_task(self, task, plane) -> ObjectRefinement:
        """Search one object (a :class:`~.parallel.ObjectTask`) in this process."""
        from ..geometry.sampling import sample_surface

        st = self.settings
        self._plane = plane
        self._others = None
        if task.others is not None:
            from scipy.spatial import cKDTree

            self._others = cKDTree(task.others)
        mesh = task.mesh
        samples, _ = sample_surface(mesh, 256, seed=st.seed + task.k)
        vertices, faces = render_mesh(mesh, st.max_faces)
        renderer = self._get_renderer()
        coarse_mesh = (
            render_mesh((vertices, faces), st.coarse_faces)
            if st.coarse_faces and len(faces) > st.coarse_faces
            else (vertices, faces)
        )
        obj = _Object(mesh, task.points, task.coarse, task.fine, samples, (vertices, faces),
                      task.precise)  # fmt: skip
        self._obj = obj
        try:
            renderer.set_mesh(*coarse_mesh)  # the rotation stage's mesh
            found = self._search(obj, task.pool, renderer, task.k)
            if st.rescue_score is not None and found.score > st.rescue_score:
                found = self._rescue(obj, task.pool, renderer, task.k, found, coarse_mesh)
                if (st.hidden_score is not None and found.score > st.hidden_score
                        and not all(obj.crop_coarse.free)):  # fmt: skip
                    found = self._rescue(obj, task.pool, renderer, task.k, found, coarse_mesh,
                                         {"rotation_sizes": st.hidden_sizes})  # fmt: skip
            if obj.crop_precise is not None and found.stretch is None:  # alignment.polish
                renderer.set_mesh(*obj.render_mesh)
                found.pose, n = polish(self, obj, renderer, found.pose)
                found.renders += n
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            return ObjectRefinement(task.fallback, note=f"search failed: {exc}")
        if st.consistency:  # the consistency step scores the chosen poses again
            self._states[task.k, task.choice] = (obj, vertices, faces, self._others, self._prior)
        return found

    def _score_state(self, state, pose: Pose) -> float:
        """Score of one object's pose, from the state its search left."""
        from ..render.candidates import pose_matrices

        obj, vertices, faces, others, prior = state
        self._obj, self._others, self._prior = obj, others, prior
        renderer = self._get_renderer()
        renderer.set_mesh(vertices, faces)
        crop = obj.crop_fine
        z = renderer.render(crop.K, pose_matrices(pose.R[None], pose.t[None], [pose.s]),
                            crop.tile_w, crop.tile_h)  # fmt: skip
        return float(
            self._score(z, pose.R[None], pose.t[None], np.array([pose.s]), crop)["score"][0]
        )

    def check(self) -> None:
        """Raise :class:`~scenemaker.render.RenderUnavailableError` (one line saying what to
        install) when no OpenGL context can be made here."""
        renderer = self._get_renderer()
        if renderer._ctx is None:
            renderer._init_gl()

    def warm(self) -> None:
        """Start the worker processes (refine/parallel.py) now, while other stages run."""
        from .parallel import warm

        warm(type(self), self.workers)

    def _get_renderer(self):
        st = self.settings
        tile = max(96, st.tile, st.coarse_tile, st.precise_tile)
        if self._renderer is not None and self._renderer.max_tile < tile:  # settings changed
            self.close()
        if self._renderer is None:
            from ..render.candidates import CandidateRenderer

            self._renderer = CandidateRenderer(max_batch=64, max_tile=tile)
        return self._renderer

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.release()
            self._renderer = None

    # -- the search ------------------------------------------------------------------------

    def _rescue(self, obj, pool, renderer, k, found, coarse_mesh, extra=None):
        """A second, wider search for an object whose best pose still fits badly (occluded or
        cut by the image border: the first size and placement guesses were off): every face,
        the pool's size as the first size, only the visible part centred, more rotations
        kept (``extra``: settings changed on top, for the third search). The better of the
        two wins; the renders of both are counted."""
        first = self.settings
        extra = extra or {}
        self.settings = replace(first, **{"pool_exit_score": None, **first.rescue, **extra})
        try:
            renderer.set_mesh(*coarse_mesh)
            again = self._search(obj, pool, renderer, k)
        finally:
            self.settings = first
        self._prior = float(np.median([p.s for p in pool]))
        best, other = (again, found) if again.score < found.score else (found, again)
        best.renders = found.renders + again.renders
        best.hypotheses = found.hypotheses + again.hypotheses
        if best is again:
            best.note = ("found by the search at larger sizes (hidden object)" if extra
                         else "rescued by the wider search")  # fmt: skip
        return best

    def _sizes(self, obj: _Object, R: np.ndarray, s0: float) -> np.ndarray:
        """(N,) a size per rotation: the smallest that covers the observed points' extent
        along the rotated box axes (what was seen must fit inside the object), and no less
        than 0.7 of the pool's size (an occluded object shows less than its extent)."""
        local = np.einsum("nji,mj->nmi", R, obj.points - obj.centroid)  # R^T p
        extent = np.percentile(local, 98, axis=1) - np.percentile(local, 2, axis=1)
        canon = obj.samples.max(0) - obj.samples.min(0)  # canonical extent per axis (<= 2)
        lower = 2.0 * (extent / np.maximum(canon, 0.05)).max(1)
        return np.maximum(lower, self.settings.size_floor * s0)

    def _place(self, obj: _Object, renderer, crop: CropObservation, R, s):
        """(t, renders): translations that put each candidate's rendered visible surface on
        the observed points (centroid to centroid), from a start just behind them."""
        from ..render.candidates import pose_matrices

        ray = crop.rays()  # (th, tw, 3)
        # the observed centre the same way: pixel-weighted, on the same grid
        seen = crop.own & (crop.depth > 0)
        if seen.sum() >= 3:
            target = (crop.depth[seen][:, None] * ray[seen]).mean(0)
        else:
            target = obj.centroid
        t = target[None] + obj.ray[None] * (s[:, None] / 4.0)
        active = np.arange(len(R))
        renders = 0
        hidden_ok = self.settings.place_visible
        behind = ~crop.own & (crop.depth > 0)  # where another surface was seen
        for _ in range(self.settings.place_rounds):
            z = renderer.render(
                crop.K, pose_matrices(R[active], t[active], s[active]), crop.tile_w, crop.tile_h
            )
            renders += len(active)
            if hidden_ok:  # only what the camera would see: not what lies behind others
                tol = (0.02 + 0.05 * s[active])[:, None, None]
                z = np.where(behind[None] & (z > crop.depth[None] - tol), 0.0, z)
            count = (z > 0).sum((1, 2))
            centre = np.einsum("nhw,hwc->nc", z, ray) / np.maximum(count, 1)[:, None]
            step = np.where(count[:, None] > 0, target[None] - centre, 0.0)
            t[active] += step
            # another round only for those that moved by more than a tenth of their size
            active = active[np.linalg.norm(step, axis=1) > self.settings.place_tol * s[active]]
            if len(active) == 0:
                break
        return t, renders

    def _score(self, z, R, t, s, crop, stretch=None) -> dict:
        """Render-and-compare score plus, where a support plane was found, penetration below
        it and the gap under the candidate's lowest part (``stretch``: (N, 3) scales of the
        mesh's axes, refine/stretch.py)."""
        st = self.settings.score
        if self.settings.stretch and self.settings.stretch_box_weight is not None:
            st = replace(st, box_weight=self.settings.stretch_box_weight)
        out = score_depths(z, s, crop, st, self._prior)
        if self._plane is not None and (st.penetration_weight > 0 or st.gap_weight > 0):
            from .support import contact_terms

            samples = self._obj.samples[: self.settings.contact_samples][None]
            samples = samples if stretch is None else samples * stretch[:, None]
            samples = np.broadcast_to(samples, (len(R),) + samples.shape[1:])
            posed = np.einsum("nij,nmj->nmi", R, samples) * (s[:, None, None] / 2) + t[:, None]
            pen, gap = contact_terms(posed, s, self._plane, self._others)
            out["penetration"], out["gap"] = pen, gap
            out["score"] = out["score"] + st.penetration_weight * pen + st.gap_weight * gap
        return out

    def _evaluate(self, renderer, crop: CropObservation, R, t, s, shift: bool = True):
        """Render; optionally move each candidate along its ray onto the observed depth and
        render again. Returns (t, scores dict, renders)."""
        from ..render.candidates import pose_matrices

        t = np.array(t, dtype=np.float64)
        z = renderer.render(crop.K, pose_matrices(R, t, s), crop.tile_w, crop.tile_h)
        renders = len(R)
        if shift:
            delta = depth_shift(z, crop)
            moved = np.abs(delta) > 1e-4
            if moved.any():
                norm = np.linalg.norm(t[moved], axis=1, keepdims=True)
                t[moved] = t[moved] * (1.0 + delta[moved, None] / np.maximum(norm, 1e-9))
                z[moved] = renderer.render(
                    crop.K, pose_matrices(R[moved], t[moved], s[moved]), crop.tile_w, crop.tile_h
                )
                renders += int(moved.sum())
        return t, self._score(z, R, t, s, crop), renders

    def _visible_icp(self, obj: _Object, renderer, crop, R, t, s, iterations: int, points=None):
        points = points or self.settings.icp_points
        return visible_icp(
            renderer, crop, obj.points[:points], R, t, s, iterations, points, self.settings.seed
        )

    def _rotation_stage(self, obj: _Object, renderer, R, s0: float):
        """Place, align (coarse ICP) and score rotation hypotheses at the coarse tile.
        Returns (R, t, s, scores dict, renders)."""
        st = self.settings
        renders = 0
        lower = self._sizes(obj, R, 0.0)  # what covers the observed points
        s = np.maximum(lower, st.size_floor * s0)
        if len(st.rotation_sizes) > 1:
            # an object hidden or cut on some side: its extent there is unknown, so each
            # rotation is tried at several sizes
            f = np.asarray(st.rotation_sizes, dtype=np.float64)
            s = np.maximum(lower[:, None], s[:, None] * f[None]).reshape(-1)
            R = np.repeat(R, len(f), axis=0)
        t, n = self._place(obj, renderer, obj.crop_coarse, R, s)
        renders += n
        if st.coarse_icp:
            R, t, s, n = self._visible_icp(
                obj, renderer, obj.crop_coarse, R, t, s, st.coarse_icp, st.coarse_icp_points
            )
            renders += n
        t, sc, n = self._evaluate(renderer, obj.crop_coarse, R, t, s)
        renders += n
        return R, t, s, sc, renders

    def _search(self, obj: _Object, pool: list[Pose], renderer, k: int) -> ObjectRefinement:
        from ..render.candidates import pose_matrices

        st = self.settings
        rng = np.random.default_rng(st.seed + 7919 * k)
        s0 = float(np.median([p.s for p in pool]))
        self._prior = s0
        renders = 0
        # 1. rotations at the pool's size
        starts = list(pool)
        if self._plane is not None and st.plane_up != "none":
            # the same poses tilted so that their up axis is the support plane's normal
            aligned = [Pose(align_up(p.R, self._plane.normal), p.t, p.s) for p in pool]
            starts = aligned if st.plane_up == "only" else starts + aligned
        R_all = rotation_hypotheses(starts, st.turns, st.faces, st.dedupe_deg)
        if st.pool_exit_score is None:
            R, t, s, sc, n = self._rotation_stage(obj, renderer, R_all, s0)
            renders += n
            n_hyp = len(R_all)
        else:
            # adaptive: the pool's own rotations (turned, with pool_exit_turns) first; only
            # when none of them fits well are the others (turns, other faces) tried too
            R = rotation_hypotheses(starts, st.turns if st.pool_exit_turns else 1, False,
                                    st.dedupe_deg)  # fmt: skip
            R, t, s, sc, n = self._rotation_stage(obj, renderer, R, s0)
            renders += n
            n_hyp = len(R)
            rest = R_all[~_near(R_all, R, st.dedupe_deg)]
            if not sc["score"].min() < st.pool_exit_score and len(rest):
                R_b, t_b, s_b, sc_b, n = self._rotation_stage(obj, renderer, rest, s0)
                renders += n
                n_hyp += len(rest)
                R, t, s = (np.concatenate(p) for p in ((R, R_b), (t, t_b), (s, s_b)))
                sc = {"score": np.concatenate([sc["score"], sc_b["score"]])}
        order = np.argsort(sc["score"], kind="stable")
        top = distinct(R, order, st.keep, st.distinct_deg)
        renderer.set_mesh(*obj.render_mesh)  # full detail from here on
        # 2. sizes for the best distinct rotations
        factors = np.asarray(st.stretch_sizes if st.stretch and st.stretch_sizes else st.sizes)
        R2 = np.repeat(R[top], len(factors), axis=0)
        s2 = (factors[None] * s[top][:, None]).reshape(-1)
        # scaled about the observed centre, so the visible surface stays where ICP put it
        f = np.tile(factors, len(top))[:, None]
        t2 = obj.centroid[None] + f * (np.repeat(t[top], len(factors), axis=0) - obj.centroid)
        if st.size_icp:
            R2, t2, s2, n = self._visible_icp(obj, renderer, obj.crop_fine, R2, t2, s2, st.size_icp)
            renders += n
        t2, sc2, n = self._evaluate(renderer, obj.crop_fine, R2, t2, s2, shift=not st.size_icp)
        renders += n
        order2 = np.argsort(sc2["score"], kind="stable")
        chosen = distinct(R2, order2, st.local, st.distinct_deg)
        steps = st.steps
        if st.early_exit_score is not None and sc2["score"][chosen[0]] < st.early_exit_score:
            margin = sc2["score"][chosen[1]] - sc2["score"][chosen[0]] if len(chosen) > 1 else 1.0
            if margin >= st.early_exit_margin:  # a clear winner: refine it (and few others)
                chosen = chosen[: st.early_exit_local]
                steps = st.early_exit_steps if st.early_exit_steps is not None else steps
        # 3. ICP with scale against the observed points, on the rendered visible surface
        cand_R, cand_t, cand_s = R2[chosen].copy(), t2[chosen].copy(), s2[chosen].copy()
        cand_score = sc2["score"][chosen].copy()
        icp_R, icp_t, icp_s, n = self._visible_icp(
            obj, renderer, obj.crop_fine, cand_R, cand_t, cand_s, st.icp_iterations
        )
        renders += n
        icp_t, sc3, n = self._evaluate(renderer, obj.crop_fine, icp_R, icp_t, icp_s, shift=False)
        renders += n
        better = sc3["score"] < cand_score
        cand_R[better], cand_t[better], cand_s[better] = icp_R[better], icp_t[better], icp_s[better]
        cand_score[better] = sc3["score"][better]
        renders += dense_refine(self, obj, renderer, cand_R, cand_t, cand_s, cand_score)
        # 4. local search: perturb rotation, translation and size, keep improvements
        H = len(chosen)
        renders += local_search(
            lambda z, R, t, s: self._score(z, R, t, s, obj.crop_fine)["score"],
            renderer, obj.crop_fine, st, rng, steps, cand_R, cand_t, cand_s, cand_score,
        )  # fmt: skip
        renders += dense_refine(self, obj, renderer, cand_R, cand_t, cand_s, cand_score)
        # final scores of the local results, at the fine resolution
        z = renderer.render(
            obj.crop_fine.K, pose_matrices(cand_R, cand_t, cand_s),
            obj.crop_fine.tile_w, obj.crop_fine.tile_h,
        )  # fmt: skip
        final = self._score(z, cand_R, cand_t, cand_s, obj.crop_fine)
        renders += len(cand_R)
        best = int(np.argmin(final["score"]))
        pose = orthonormal_pose(cand_R[best], cand_t[best], cand_s[best])
        stretched = None
        gate = st.stretch_score
        if st.stretch and (gate is None or final["score"][best] > gate):
            # a mesh that is not the object's own: fit its proportions too
            from .stretch import stretch_best

            best, stretched, n = stretch_best(
                self, obj, renderer, rng, (cand_R, cand_t, cand_s), final["score"]
            )
            renders += n
            pose = orthonormal_pose(cand_R[best], cand_t[best], cand_s[best])
        # alternatives: the other local results and the size stage's best distinct rotations
        alt = [
            {"pose": orthonormal_pose(cand_R[h], cand_t[h], cand_s[h]),
             "score": float(final["score"][h])}
            for h in range(H) if h != best
        ]  # fmt: skip
        for i in order2[: 4 * st.local]:
            alt.append(
                {"pose": orthonormal_pose(R2[i], t2[i], s2[i]), "score": float(sc2["score"][i])}
            )
        alt.sort(key=lambda a: a["score"])
        conf = confidence(float(final["score"][best]), pose, alt, obj.samples)
        if self.trace is not None:
            self.trace.append(
                {"rotations": R, "coarse": sc["score"], "size_R": R2, "size_s": s2,
                 "size": sc2["score"], "chosen": chosen, "icp_score": sc3["score"],
                 "final_R": cand_R, "final_s": cand_s, "final_t": cand_t, "final": final["score"]}
            )  # fmt: skip
        result = ObjectRefinement(
            pose,
            score=float(final["score"][best]),
            iou=float(final["iou"][best]),
            residual=float(final["residual"][best]),
            confidence=conf,
            alternatives=alt[:4],
            hypotheses=n_hyp,
            renders=renders,
        )
        if stretched is not None:  # the stretched mesh's pose, score and factors
            result.pose, result.stretch = stretched["pose"], stretched["stretch"]
            result.score, result.iou = stretched["score"], stretched["iou"]
            result.residual = stretched["residual"]
        return result
