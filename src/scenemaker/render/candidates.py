"""Render many poses of one mesh in one draw: camera-frame depth in a crop of the observed
camera, for render-and-compare scoring.

Each candidate is one instance of an instanced draw: its own model matrix (canonical ->
camera frame) and its own tile of an atlas texture. The vertex shader squeezes the crop's
clip space into the tile and ``gl_ClipDistance`` clips every triangle to its tile, so
candidates never bleed into each other. The fragment shader writes the camera-frame z; 0 means
nothing was drawn there.

Crop convention: crop pixel (i, j) is image pixel (x0 + i * stride, y0 + j * stride) (pixel
centres at integer coordinates), so the rendered crop samples exactly the pixel centres of the
observation; :func:`crop_intrinsics` gives the matching K.
"""

from __future__ import annotations

import numpy as np

from .scene import projection_from_intrinsics

_VERTEX = """
#version 330
uniform mat4 u_projection;
uniform vec2 u_grid;
in vec3 in_position;
in vec4 in_m0;
in vec4 in_m1;
in vec4 in_m2;
in vec4 in_m3;
in vec2 in_tile;
out float v_z;
out float gl_ClipDistance[4];
void main() {
    vec4 cam = mat4(in_m0, in_m1, in_m2, in_m3) * vec4(in_position, 1.0);
    v_z = cam.z;
    vec4 clip = u_projection * cam;
    gl_ClipDistance[0] = clip.w + clip.x;
    gl_ClipDistance[1] = clip.w - clip.x;
    gl_ClipDistance[2] = clip.w + clip.y;
    gl_ClipDistance[3] = clip.w - clip.y;
    clip.xy = clip.xy / u_grid + ((2.0 * in_tile + 1.0) / u_grid - 1.0) * clip.w;
    gl_Position = clip;
}
"""

_FRAGMENT = """
#version 330
in float v_z;
layout(location = 0) out float out_z;
void main() { out_z = v_z; }
"""

_GL_CLIP_DISTANCE0 = 0x3000


def crop_intrinsics(K: np.ndarray, x0: int, y0: int, stride: int = 1) -> np.ndarray:
    """K of the crop grid whose pixel (i, j) is image pixel (x0 + i * stride, y0 + j * stride):
    every crop pixel samples exactly an image pixel centre."""
    Kc = np.array(K, dtype=np.float64).copy()
    Kc[:2] /= stride
    Kc[0, 2] = (K[0, 2] - x0) / stride
    Kc[1, 2] = (K[1, 2] - y0) / stride
    return Kc


def pose_matrices(R: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(N, 4, 4) canonical -> camera matrices for poses p = R (s/2 q) + t."""
    R = np.asarray(R, dtype=np.float64).reshape(-1, 3, 3)
    n = len(R)
    M = np.zeros((n, 4, 4))
    M[:, :3, :3] = R * (np.asarray(s, dtype=np.float64).reshape(n, 1, 1) / 2.0)
    M[:, :3, 3] = np.asarray(t, dtype=np.float64).reshape(n, 3)
    M[:, 3, 3] = 1.0
    return M


class CandidateRenderer:
    """Depth of one mesh under many poses; reuse one instance for a whole run.

    ``render(K_crop, matrices, tile_w, tile_h)`` returns (N, tile_h, tile_w) float32
    camera-frame z (0 where empty). Up to ``max_batch`` candidates share one draw.
    """

    def __init__(self, max_batch: int = 64, max_tile: int = 96, near: float = 0.01, far=100.0,
                 cull: bool = True):  # fmt: skip
        if max_batch < 1 or max_tile < 4:
            raise ValueError(f"max_batch >= 1 and max_tile >= 4, got {max_batch}, {max_tile}")
        self.max_batch, self.max_tile, self.near, self.far = max_batch, max_tile, near, far
        if not isinstance(cull, bool):
            raise ValueError(f"cull must be true or false, got {cull!r}")
        self.cull = cull
        """Skip the faces a closed mesh turns away (:func:`hidden_side`; the same depth)."""
        self.cols = int(np.ceil(np.sqrt(max_batch)))
        self.rows = int(np.ceil(max_batch / self.cols))
        self._ctx = None
        self._mesh = None
        self._mesh_key = None

    def _init_gl(self) -> None:
        from .gl import create_context

        ctx = create_context()
        self._ctx = ctx
        self._prog = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        size = (self.cols * self.max_tile, self.rows * self.max_tile)
        self._z_tex = ctx.texture(size, 1, dtype="f4")
        self._depth_rb = ctx.depth_renderbuffer(size)
        self._fbo = ctx.framebuffer([self._z_tex], self._depth_rb)
        self._instances = ctx.buffer(reserve=self.max_batch * 18 * 4)

    def set_mesh(self, vertices: np.ndarray, faces: np.ndarray, key=None) -> None:
        """Upload the canonical mesh to draw (kept until another ``key`` comes)."""
        if self._ctx is None:
            self._init_gl()
        if key is not None and key == self._mesh_key:
            return
        with self._ctx:
            self._upload(vertices, faces, key)

    def _upload(self, vertices, faces, key) -> None:
        self._release_mesh()
        vertices = np.ascontiguousarray(vertices, dtype="f4")
        faces = np.ascontiguousarray(faces, dtype="i4")
        if vertices.ndim != 2 or vertices.shape[1] != 3 or len(faces) == 0:
            raise ValueError("mesh needs (V, 3) vertices and at least one face")
        if (
            faces.ndim != 2
            or faces.shape[1] != 3
            or faces.min() < 0
            or faces.max() >= len(vertices)
        ):
            raise ValueError(f"mesh faces must be (F, 3) indices into its {len(vertices)} vertices")
        vbo = self._ctx.buffer(vertices.tobytes())
        ibo = self._ctx.buffer(faces.tobytes())
        vao = self._ctx.vertex_array(
            self._prog,
            [
                (vbo, "3f", "in_position"),
                (
                    self._instances,
                    "4f 4f 4f 4f 2f/i",
                    "in_m0",
                    "in_m1",
                    "in_m2",
                    "in_m3",
                    "in_tile",
                ),
            ],  # fmt: skip
            index_buffer=ibo,
        )
        self._mesh = (vbo, ibo, vao)
        self._mesh_key = key
        self._cull = hidden_side(vertices, faces) if self.cull else None

    def _release_mesh(self) -> None:
        if self._mesh is not None:
            for item in reversed(self._mesh):
                item.release()
        self._mesh, self._mesh_key, self._cull = None, None, None

    def render(self, K_crop: np.ndarray, matrices: np.ndarray, tile_w: int, tile_h: int):
        if self._mesh is None:
            raise RuntimeError("call set_mesh() before render()")
        if not (1 <= tile_w <= self.max_tile and 1 <= tile_h <= self.max_tile):
            raise ValueError(f"tile must be within 1..{self.max_tile} px, got {tile_w}x{tile_h}")
        matrices = np.asarray(matrices, dtype=np.float64).reshape(-1, 4, 4)
        out = np.zeros((len(matrices), tile_h, tile_w), dtype=np.float32)
        with self._ctx:  # current for these draws, whatever other contexts the process made
            for start in range(0, len(matrices), self.max_batch):
                chunk = matrices[start : start + self.max_batch]
                out[start : start + len(chunk)] = self._draw(K_crop, chunk, tile_w, tile_h)
        return out

    def _draw(self, K_crop, matrices, tile_w, tile_h) -> np.ndarray:
        import moderngl

        ctx, n = self._ctx, len(matrices)
        cols = min(self.cols, n)
        rows = int(np.ceil(n / cols))
        width, height = cols * tile_w, rows * tile_h
        P = projection_from_intrinsics(K_crop, tile_w, tile_h, self.near, self.far)
        self._prog["u_projection"].write(P.T.astype("f4").tobytes())
        self._prog["u_grid"].value = (float(cols), float(rows))
        index = np.arange(n)
        # GL rows go upwards: the first candidates take the top tiles once read back flipped
        tiles = np.stack([index % cols, rows - 1 - index // cols], 1).astype("f4")
        columns = matrices.transpose(0, 2, 1).reshape(n, 16).astype("f4")  # column-major
        self._instances.write(np.concatenate([columns, tiles], 1).tobytes())
        ctx.enable(moderngl.DEPTH_TEST)
        if self._cull is None:
            ctx.disable(moderngl.CULL_FACE)
        else:  # a closed mesh: the faces turned away are always hidden; skip drawing them
            ctx.enable(moderngl.CULL_FACE)
            ctx.cull_face = self._cull
        for plane in range(4):
            ctx.enable_direct(_GL_CLIP_DISTANCE0 + plane)
        self._fbo.use()
        self._fbo.viewport = (0, 0, width, height)
        self._fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0, viewport=(0, 0, width, height))
        self._mesh[2].render(moderngl.TRIANGLES, instances=n)
        raw = self._fbo.read(viewport=(0, 0, width, height), components=1, dtype="f4")
        atlas = np.frombuffer(raw, np.float32).reshape(height, width)[::-1]
        tiles_img = atlas.reshape(rows, tile_h, cols, tile_w).transpose(0, 2, 1, 3)
        return tiles_img.reshape(rows * cols, tile_h, tile_w)[:n]

    def release(self) -> None:
        if self._ctx is not None:
            with self._ctx:
                self._release_mesh()
            self._ctx.release()
            self._ctx = None


def hidden_side(vertices: np.ndarray, faces: np.ndarray) -> str | None:
    """Which faces of a closed mesh the camera never sees first ("back" when its faces wind
    counter-clockwise seen from outside, "front" when clockwise), or None when the mesh is
    not closed with consistent winding (an open scan, a flipped face): then every face is
    drawn. Culling that side leaves the nearest depth of every pixel as it was."""
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False, validate=False)
    if not (mesh.is_watertight and mesh.is_winding_consistent):
        return None
    # each connected part's signed volume: all outward or all inward (a part turned inside
    # out would lose its visible faces)
    from trimesh.graph import connected_component_labels

    labels = connected_component_labels(mesh.face_adjacency, node_count=len(faces))
    tri = np.asarray(vertices, np.float64)[np.asarray(faces)]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    parts = np.bincount(labels, weights=signed)
    scale = float(np.abs(signed).sum()) + 1e-30
    if not np.isfinite(parts).all() or not (
        (parts > 1e-9 * scale).all() or (parts < -1e-9 * scale).all()
    ):
        return None
    # GL's back faces are those wound clockwise in window coordinates: an outward CCW face
    # turned away from the camera (tests/render check it against drawing every face)
    return "back" if parts[0] > 0 else "front"


def render_mesh(mesh, max_faces: int):
    """(vertices, faces) for scoring: ``mesh`` (a trimesh, or a (vertices, faces) pair)
    decimated to about ``max_faces`` faces or fewer. Quadric decimation first (when the
    library is installed); where it stalls (seams, many flat parts: it can stop at several
    times the target) or is missing, vertex clustering on a grid brings it down. A very dense
    mesh (a scan) is clustered to a few times the target first, which is much faster."""
    if isinstance(mesh, tuple):
        vertices, faces = (np.asarray(a) for a in mesh)
    else:
        vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if len(faces) <= max_faces:
        return vertices, faces
    if len(faces) > 8 * max_faces:
        v, f = cluster_vertices(vertices, faces, 4 * max_faces)
        vertices, faces = (v, f) if len(f) else (vertices, faces)
    if len(faces) > max_faces:
        try:
            import fast_simplification

            v, f = fast_simplification.simplify(
                np.asarray(vertices, np.float32), np.asarray(faces, np.int32),
                target_count=max_faces,
            )  # fmt: skip
            if len(f) > 0:
                vertices, faces = np.asarray(v, np.float64), np.asarray(f)
        except (ImportError, ValueError, RuntimeError):
            pass
    if len(faces) > 1.25 * max_faces:
        v, f = cluster_vertices(vertices, faces, max_faces)
        if len(f):  # a budget too small for any face to survive keeps the larger mesh
            vertices, faces = v, f
    return vertices, faces


def cluster_vertices(vertices: np.ndarray, faces: np.ndarray, max_faces: int):
    """Vertex-clustering decimation: vertices in one cell of a regular grid merge (at their
    mean); faces that collapse are dropped. The finest grid (from 256 cells along the longest
    side, coarser by a factor of 1.25 per try) that leaves <= ``max_faces`` faces."""
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces)
    low = vertices.min(0)
    extent = float((vertices.max(0) - low).max()) or 1.0
    cells = 256.0
    while True:
        key = np.floor((vertices - low) / (extent / cells)).astype(np.int64)
        key = (key[:, 0] * 1024 + key[:, 1]) * 1024 + key[:, 2]  # cells < 1024 per axis
        _, inverse = np.unique(key, return_inverse=True)
        inverse = inverse.reshape(-1)
        f = inverse[faces]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
        n = int(inverse.max()) + 1
        ordered = np.sort(f, axis=1)
        if n < 2_000_000:  # one int64 key per face (n**3 fits)
            key = (ordered[:, 0] * n + ordered[:, 1]) * n + ordered[:, 2]
            f = f[np.unique(key, return_index=True)[1]]
        else:
            f = f[np.unique(ordered, axis=0, return_index=True)[1]]
        if len(f) <= max_faces or cells <= 2:
            break
        cells /= 1.25
    count = np.bincount(inverse).astype(np.float64)
    merged = np.zeros((len(count), 3))
    np.add.at(merged, inverse, vertices)
    merged /= count[:, None]
    used, f = np.unique(f, return_inverse=True)
    return merged[used], f.reshape(-1, 3)
