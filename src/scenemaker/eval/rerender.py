"""Does the output scene, seen from its exported camera, reproduce the input's masks?"""

from __future__ import annotations

import numpy as np

from ..scene import Scene


def true_scene(view, objects, K=None, size=None) -> Scene:
    """The output-frame scene (as the pipeline writes it) of a synthetic view's true meshes at
    their true poses, seen by the view's camera (or by ``K`` at ``size`` = (W, H))."""
    from ..object3d import CanonicalMesh
    from ..scene_assembly import build_scene
    from .pose_benchmark import camera_frame_pose

    w2c = view.camera.world_to_camera
    poses = [camera_frame_pose(o.pose, w2c) for o in objects]
    meshes = [CanonicalMesh(o.mesh, "truth") for o in objects]
    h, w = view.depth.shape
    w, h = size or (w, h)
    K = view.camera.K if K is None else K
    return build_scene(w, h, K, [o.label for o in objects], meshes, poses)


def render_instance_masks(scene: Scene, camera_index: int = 0) -> dict[int, np.ndarray]:
    """Visible mask of every object of ``scene`` seen from ``scene.cameras[camera_index]``:
    {instance_id: (H, W) bool}. Objects only (no floor), with occlusion between them."""
    from ..render.scene import RenderObject, SceneRenderer

    camera = scene.cameras[camera_index]
    renderer = SceneRenderer(camera.width, camera.height, near=0.01, far=1000.0)
    try:
        objects = []
        for obj in scene.objects:
            mesh = obj.posed_mesh()
            objects.append(
                RenderObject(np.asarray(mesh.vertices), np.asarray(mesh.faces), obj.instance_id,
                             (0.5, 0.5, 0.5))
            )  # fmt: skip
        renderer.set_scene(objects, floor=False)
        view = renderer.render(camera, with_amodal=False)
    finally:
        renderer.release()
    return {obj.instance_id: view.instance == obj.instance_id for obj in scene.objects}


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def rerender_mask_iou(scene: Scene, masks: dict[int, np.ndarray]) -> dict[int, float]:
    """IoU per object between the re-rendered visible mask and ``masks`` {instance_id: mask}
    (objects missing from the scene score 0)."""
    rendered = render_instance_masks(scene)
    return {k: mask_iou(rendered[k], m) if k in rendered else 0.0 for k, m in sorted(masks.items())}
