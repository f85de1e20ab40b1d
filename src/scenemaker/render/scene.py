"""Fast offscreen rasteriser for synthetic scenes: moderngl over EGL (Mesa llvmpipe on CPUs).

Why moderngl: of the three candidates measured on the 2-core dev machine (ARCHITECTURE.md),
pyrender 0.1.45 is unmaintained and breaks on numpy 2 (``np.infty``), embreex ray casting was
~2x slower per frame, and moderngl is maintained and the fastest. Amodal masks are one extra,
depth-only pass per object.

Per view it produces (OpenCV camera, pixel centres at integer coordinates):

* ``rgb``: (H, W, 3) uint8, Lambert-lit per-object colours over a checkered floor;
* ``depth``: (H, W) float32, camera-frame z in metres, 0 where nothing was hit;
* ``instance``: (H, W) uint8, 0 background, 1 floor, 2+ objects;
* ``amodal``: (n_objects, H, W) bool, each object rendered alone;
* per object: visible / amodal pixel counts, ``visible_fraction`` = visible / amodal pixels
  inside the image (the issue's "occlusion" figure; ``occlusion`` = 1 - visible_fraction) and
  ``truncation`` = share of the object's surface samples that project outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scene import Camera

_VERTEX = """
#version 330
uniform mat4 u_world_to_clip;
uniform mat4 u_world_to_cam;
in vec3 in_position;
in vec3 in_color;
in vec2 in_uv;
out vec3 v_world;
out float v_z;
out vec3 v_color;
out vec2 v_uv;
void main() {
    v_world = in_position;
    v_z = (u_world_to_cam * vec4(in_position, 1.0)).z;
    v_color = in_color;
    v_uv = in_uv;
    gl_Position = u_world_to_clip * vec4(in_position, 1.0);
}
"""

_MASK_VERTEX = """
#version 330
uniform mat4 u_world_to_clip;
in vec3 in_position;
void main() { gl_Position = u_world_to_clip * vec4(in_position, 1.0); }
"""

_FRAGMENT = """
#version 330
uniform vec3 u_color;
uniform int u_source;  // 0: u_color, 1: vertex colours, 2: texture x vertex colours
uniform sampler2D u_texture;
uniform float u_instance;
uniform vec3 u_light_dir;
uniform vec3 u_camera_pos;
uniform int u_checker;
in vec3 v_world;
in float v_z;
in vec3 v_color;
in vec2 v_uv;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_depth_id;
void main() {
    // Flat shading from screen-space derivatives: no per-vertex normals needed, and faces of
    // meshes with inconsistent winding are lit the same from either side.
    vec3 n = normalize(cross(dFdx(v_world), dFdy(v_world)));
    if (dot(n, u_camera_pos - v_world) < 0.0) n = -n;
    vec3 base = u_source == 0 ? u_color : v_color;
    if (u_source == 2) {
        base *= pow(texture(u_texture, v_uv).rgb, vec3(2.2));  // sRGB texels -> linear
    }
    if (u_checker == 1) {
        float c = mod(floor(v_world.x * 2.0) + floor(v_world.z * 2.0), 2.0);
        base = u_color * (0.85 + 0.15 * c);
    }
    float diffuse = max(dot(n, normalize(u_light_dir)), 0.0);
    float fill = 0.35 * max(dot(n, normalize(vec3(-u_light_dir.x, 0.6, -u_light_dir.z))), 0.0);
    vec3 lit = base * (0.25 + 0.75 * diffuse + fill);
    out_color = vec4(pow(clamp(lit, 0.0, 1.0), vec3(1.0 / 2.2)), 1.0);
    out_depth_id = vec2(v_z, u_instance);
}
"""

_MASK_FRAGMENT = """
#version 330
out float out_mask;
void main() { out_mask = 1.0; }
"""


def projection_from_intrinsics(K: np.ndarray, width: int, height: int, near: float, far: float):
    """4x4 matrix from OpenCV camera coordinates to GL clip space for a K-camera.

    Pixel (u, v) with centre at integer coordinates, v downwards; the rendered rows come out
    bottom-up (GL) and are flipped on read-back.
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    P = np.zeros((4, 4))
    P[0, 0] = 2.0 * fx / width
    P[0, 2] = 2.0 * (cx + 0.5) / width - 1.0
    P[1, 1] = -2.0 * fy / height
    P[1, 2] = 1.0 - 2.0 * (cy + 0.5) / height
    P[2, 2] = (far + near) / (far - near)
    P[2, 3] = -2.0 * far * near / (far - near)
    P[3, 2] = 1.0
    return P


@dataclass
class RenderedView:
    rgb: np.ndarray
    depth: np.ndarray
    instance: np.ndarray
    amodal: np.ndarray
    visible_pixels: np.ndarray
    amodal_pixels: np.ndarray
    visible_fraction: np.ndarray
    truncation: np.ndarray

    @property
    def occlusion(self) -> np.ndarray:
        return 1.0 - self.visible_fraction


@dataclass
class RenderObject:
    """A mesh already placed in the world frame, with its instance id (>= 2) and colour:
    ``color`` (linear RGB) unless it has ``vertex_colors``; a ``texture`` (sRGB, sampled at
    ``uv``, OpenGL convention: v up) multiplies them. :func:`scenemaker.render.materials.
    render_object` reads them from a trimesh's visuals (textures, vertex or face colours)."""

    vertices: np.ndarray  # (V, 3) world frame, metres
    faces: np.ndarray  # (F, 3) int
    instance_id: int
    color: tuple[float, float, float]
    surface_samples: np.ndarray | None = None  # (S, 3) world, for the truncation figure
    vertex_colors: np.ndarray | None = None  # (V, 3) linear RGB in [0, 1]
    uv: np.ndarray | None = None  # (V, 2) texture coordinates
    texture: np.ndarray | None = None  # (h, w, 3) uint8 sRGB, row 0 at the top

    def __post_init__(self):
        n = len(self.vertices)
        if self.vertex_colors is not None and np.shape(self.vertex_colors) != (n, 3):
            raise ValueError(f"vertex_colors must be ({n}, 3), got {np.shape(self.vertex_colors)}")
        if (self.texture is None) != (self.uv is None):
            raise ValueError("a texture needs uv coordinates and uv a texture")
        if self.uv is not None and np.shape(self.uv) != (n, 2):
            raise ValueError(f"uv must be ({n}, 2), got {np.shape(self.uv)}")

    @property
    def source(self) -> int:
        """Colour source of the shader: 0 flat, 1 vertex colours, 2 texture."""
        return 2 if self.texture is not None else (1 if self.vertex_colors is not None else 0)


class SceneRenderer:
    """Renders one scene at a time from many cameras; reuse one instance across scenes.

    The OpenGL context is created on first use in the calling process (safe with worker
    processes: each gets its own context).
    """

    def __init__(self, width: int = 256, height: int = 256, near: float = 0.05, far: float = 100.0):
        if width < 8 or height < 8:
            raise ValueError(f"render size must be at least 8x8, got {width}x{height}")
        self.width, self.height, self.near, self.far = int(width), int(height), near, far
        self._ctx = None
        self._objects: list[tuple[object, RenderObject]] = []
        self._floor = None

    def _init_gl(self):
        from .gl import create_context

        ctx = create_context()
        self._ctx = ctx
        self._prog = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self._mask_prog = ctx.program(vertex_shader=_MASK_VERTEX, fragment_shader=_MASK_FRAGMENT)
        size = (self.width, self.height)
        self._color_tex = ctx.texture(size, 4, dtype="f1")
        self._depth_id_tex = ctx.texture(size, 2, dtype="f4")
        self._depth_rb = ctx.depth_renderbuffer(size)
        self._fbo = ctx.framebuffer([self._color_tex, self._depth_id_tex], self._depth_rb)
        self._mask_tex = ctx.texture(size, 1, dtype="f1")
        self._mask_depth = ctx.depth_renderbuffer(size)
        self._mask_fbo = ctx.framebuffer([self._mask_tex], self._mask_depth)

    def _vao(self, program, vbo, ibo, cbo=None, tbo=None):
        content = [(vbo, "3f", "in_position")]
        if cbo is not None:
            content += [(cbo, "3f", "in_color"), (tbo, "2f", "in_uv")]
        return self._ctx.vertex_array(program, content, index_buffer=ibo)

    def _buffers(self, vertices, colors=None, uv=None):
        """Position, colour and uv buffers (zeros where the object has none)."""
        n = len(vertices)
        colors = np.zeros((n, 3)) if colors is None else colors
        uv = np.zeros((n, 2)) if uv is None else uv
        return [self._ctx.buffer(np.ascontiguousarray(a, dtype="f4").tobytes())
                for a in (vertices, colors, uv)]  # fmt: skip

    def set_scene(
        self,
        objects: list[RenderObject],
        floor_color=(0.6, 0.6, 0.6),
        floor_size: float = 60.0,
        light_dir=(0.4, 1.0, 0.3),
        background=(0.82, 0.86, 0.92),
        floor: bool = True,
    ) -> None:
        """Upload a scene's meshes (world frame). Replaces the previous scene. ``floor=False``
        renders the objects alone (e.g. re-rendering a reconstructed scene's masks)."""
        self._draw_floor = bool(floor)
        if self._ctx is None:
            self._init_gl()
        with self._ctx:  # current, whatever other contexts this process made since
            self._set_scene(objects, floor_color, floor_size, light_dir, background)

    def _set_scene(self, objects, floor_color, floor_size, light_dir, background) -> None:
        self.release_scene()
        for obj in objects:
            if obj.instance_id < 2 or obj.instance_id > 255:
                raise ValueError(f"instance ids must be in [2, 255], got {obj.instance_id}")
            vbo, cbo, tbo = self._buffers(obj.vertices, obj.vertex_colors, obj.uv)
            ibo = self._ctx.buffer(np.ascontiguousarray(obj.faces, dtype="i4").tobytes())
            vaos = (self._vao(self._prog, vbo, ibo, cbo, tbo), self._vao(self._mask_prog, vbo, ibo))
            texture = None
            if obj.texture is not None:
                image = np.ascontiguousarray(np.asarray(obj.texture, np.uint8)[::-1, :, :3])
                texture = self._ctx.texture(image.shape[1::-1], 3, image.tobytes())
                texture.repeat_x = texture.repeat_y = True
                texture.build_mipmaps()
            self._objects.append(((vbo, ibo, vaos, (cbo, tbo), texture), obj))
        half = floor_size / 2.0
        quad = np.array([[-half, 0, -half], [half, 0, -half], [half, 0, half], [-half, 0, half]])
        fvbo, fcbo, ftbo = self._buffers(quad)
        fibo = self._ctx.buffer(np.array([0, 2, 1, 0, 3, 2], dtype="i4").tobytes())
        self._floor = (fvbo, fcbo, ftbo, fibo, self._vao(self._prog, fvbo, fibo, fcbo, ftbo))
        self._floor_color = tuple(float(c) for c in floor_color)
        self._light_dir = tuple(float(c) for c in light_dir)
        self._background = tuple(float(c) for c in background)

    def release_scene(self) -> None:
        for (vbo, ibo, vaos, extra, texture), _ in self._objects:
            for item in (*vaos, vbo, ibo, *extra, *([texture] if texture is not None else [])):
                item.release()
        self._objects = []
        if self._floor is not None:
            for item in self._floor:
                item.release()
            self._floor = None

    def _set_camera(self, program, camera: Camera) -> None:
        P = projection_from_intrinsics(camera.K, self.width, self.height, self.near, self.far)
        world_to_clip = P @ camera.world_to_camera
        # moderngl expects column-major matrices
        program["u_world_to_clip"].write(world_to_clip.T.astype("f4").tobytes())
        if "u_world_to_cam" in program:  # optimised away in the mask-only program
            program["u_world_to_cam"].write(camera.world_to_camera.T.astype("f4").tobytes())

    def render(self, camera: Camera, with_amodal: bool = True) -> RenderedView:
        if self._ctx is None or self._floor is None:
            raise RuntimeError("call set_scene() before render()")
        with self._ctx:
            return self._render(camera, with_amodal)

    def _render(self, camera: Camera, with_amodal: bool) -> RenderedView:
        if (camera.width, camera.height) != (self.width, self.height):
            raise ValueError(
                f"camera is {camera.width}x{camera.height}, renderer {self.width}x{self.height}"
            )
        import moderngl

        ctx, prog = self._ctx, self._prog
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE)
        self._fbo.use()
        self._fbo.clear(*self._background, 1.0, depth=1.0)
        # The clear colour also fills attachment 1 (z, id); z = background colour is overwritten
        # below by re-clearing that attachment alone.
        self._depth_id_tex.write(np.zeros((self.height, self.width, 2), "f4").tobytes())
        self._set_camera(prog, camera)
        prog["u_light_dir"].value = self._light_dir
        prog["u_camera_pos"].value = tuple(camera.position)
        prog["u_checker"].value = 1
        prog["u_color"].value = self._floor_color
        prog["u_instance"].value = 1.0
        prog["u_source"].value = 0
        prog["u_texture"].value = 0
        if self._draw_floor:
            self._floor[-1].render(moderngl.TRIANGLES)
        prog["u_checker"].value = 0
        for (_, _, (vao, _), _, texture), obj in self._objects:
            prog["u_color"].value = tuple(float(c) for c in obj.color)
            prog["u_source"].value = obj.source
            if texture is not None:
                texture.use(location=0)
            prog["u_instance"].value = float(obj.instance_id)
            vao.render(moderngl.TRIANGLES)
        h, w = self.height, self.width
        rgb = np.frombuffer(self._color_tex.read(), np.uint8).reshape(h, w, 4)[::-1, :, :3]
        depth_id = np.frombuffer(self._depth_id_tex.read(), np.float32).reshape(h, w, 2)[::-1]
        depth = np.ascontiguousarray(depth_id[..., 0])
        instance = np.rint(depth_id[..., 1]).astype(np.uint8)
        depth[instance == 0] = 0.0

        n = len(self._objects)
        ids = np.array([obj.instance_id for _, obj in self._objects], dtype=np.int64)
        visible = np.bincount(instance.ravel(), minlength=256)[ids] if n else np.zeros(0, int)
        amodal = np.zeros((n, h, w), dtype=bool)
        if with_amodal and n:
            mprog = self._mask_prog
            self._set_camera(mprog, camera)
            self._mask_fbo.use()
            for k, ((_, _, (_, mask_vao), _, _), _) in enumerate(self._objects):
                self._mask_fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
                mask_vao.render(moderngl.TRIANGLES)
                amodal[k] = np.frombuffer(self._mask_tex.read(), np.uint8).reshape(h, w)[::-1] > 0
        amodal_px = amodal.reshape(n, -1).sum(1) if n else np.zeros(0, int)
        with np.errstate(divide="ignore", invalid="ignore"):
            vis_frac = np.where(amodal_px > 0, visible / np.maximum(amodal_px, 1), 0.0)
        truncation = np.array([self._truncation(obj, camera) for _, obj in self._objects])
        return RenderedView(
            rgb=np.ascontiguousarray(rgb),
            depth=depth,
            instance=instance,
            amodal=amodal,
            visible_pixels=np.asarray(visible, dtype=np.int64),
            amodal_pixels=np.asarray(amodal_px, dtype=np.int64),
            visible_fraction=np.clip(vis_frac, 0.0, 1.0),
            truncation=truncation.astype(np.float64) if n else np.zeros(0),
        )

    def _truncation(self, obj: RenderObject, camera: Camera) -> float:
        samples = obj.surface_samples if obj.surface_samples is not None else obj.vertices
        uv, z = camera.project(samples)
        inside = (
            (z > self.near)
            & (uv[:, 0] >= -0.5)
            & (uv[:, 0] < self.width - 0.5)
            & (uv[:, 1] >= -0.5)
            & (uv[:, 1] < self.height - 0.5)
        )
        return float(1.0 - inside.mean())

    def release(self) -> None:
        if self._ctx is not None:
            with self._ctx:
                self.release_scene()
            self._ctx.release()
            self._ctx = None
