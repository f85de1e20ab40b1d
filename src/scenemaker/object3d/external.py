"""External: any image-to-3D tool run as a command (``external``), e.g. TRELLIS or SF3D scripts.

The command is a template such as ``"python my_trellis.py {image} {out_mesh}"``. It is split
into arguments first (``shlex.split``), then the placeholders are substituted inside each
argument, and it runs without a shell: file names, labels with spaces or ``;`` reach the tool
as literal arguments, never as shell syntax.

Placeholders: ``{image}`` (PNG of the amodal crop, white background; RGBA with the amodal
mask as alpha when ``rgba=True``), ``{mask}`` (PNG, 255 inside the amodal mask), ``{out_mesh}``
(where the tool must write its mesh; the extension is ``mesh_format``) and ``{label}``. All
files live in a temporary folder removed afterwards.

The mesh (a trimesh scene's geometries are concatenated with their transforms; textures kept
where present) is taken as y-up, front +z like glTF (``z_up=True`` for z-up tools), then
canonicalised.
"""

from __future__ import annotations

import os
import shlex
import string
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BackendError
from .base import CanonicalMesh, ObjectObservation, canonical_mesh

PLACEHOLDERS = ("image", "mask", "out_mesh", "label")
MESH_FORMATS = ("glb", "gltf", "obj", "ply", "stl", "off")


def parse_template(command: str | list[str]) -> list[list[tuple[str, str | None]]]:
    """Split a command template into arguments, each a list of (literal text, placeholder or
    None). ValueError for unknown placeholders, format specs or unbalanced braces."""
    args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not args:
        raise ValueError("external command template is empty")
    parsed = []
    for arg in args:
        try:
            pieces = list(string.Formatter().parse(arg))
        except ValueError as exc:
            raise ValueError(f"external command argument {arg!r}: {exc}") from None
        for _, field, spec, conversion in pieces:
            if field is not None and (field not in PLACEHOLDERS or spec or conversion):
                raise ValueError(
                    f"unknown placeholder {{{field}}} in external command {arg!r}; "
                    f"use {' '.join('{' + p + '}' for p in PLACEHOLDERS)} (literal braces: "
                    "{{ }})"
                )
        parsed.append([(literal, field) for literal, field, _, _ in pieces])
    if not any(field == "out_mesh" for arg in parsed for _, field in arg):
        raise ValueError("external command template must contain {out_mesh}")
    return parsed


def substitute(parsed: list[list[tuple[str, str | None]]], values: dict[str, str]) -> list[str]:
    """The argument list with placeholders replaced by ``values`` (no shell involved)."""
    return ["".join(lit + (values[f] if f else "") for lit, f in arg) for arg in parsed]


class ExternalGenerator:
    """Runs a user command per object (see the module docstring).

    Args:
        command: template string (or list of arguments) with placeholders.
        timeout: seconds before the command (and its process group) is killed.
        mesh_format: extension of ``{out_mesh}``.
        z_up: the tool writes z-up meshes (converted to y-up).
        rgba: write ``{image}`` as RGBA with the amodal mask as alpha.
        cwd: working directory of the command (default: the current one).
    """

    name = "external"
    licence = "that of the external tool and its weights"

    def __init__(
        self,
        command: str | list[str],
        timeout: float = 600.0,
        mesh_format: str = "glb",
        z_up: bool = False,
        rgba: bool = False,
        cwd: str | Path | None = None,
    ):
        self.parsed = parse_template(command)
        self.command = command
        if not timeout > 0:
            raise ValueError(f"timeout must be positive (seconds), got {timeout}")
        mesh_format = mesh_format.lower().lstrip(".")
        if mesh_format not in MESH_FORMATS:
            raise ValueError(f"mesh_format must be one of {MESH_FORMATS}, got {mesh_format!r}")
        if cwd is not None and not Path(cwd).is_dir():
            raise ValueError(f"cwd {str(cwd)!r} is not an existing folder")
        self.timeout = float(timeout)
        self.mesh_format = mesh_format
        self.z_up = z_up
        self.rgba = rgba
        self.cwd = cwd

    def generate(self, amodal, observation: ObjectObservation) -> CanonicalMesh:
        from PIL import Image

        image = np.asarray(amodal.image, dtype=np.uint8)
        mask = np.asarray(amodal.mask, dtype=bool)
        if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
            raise ValueError(
                f"amodal crop must be an (S, S, 3) image with an (S, S) mask, got "
                f"{image.shape} and {mask.shape}"
            )
        with tempfile.TemporaryDirectory(prefix="scenemaker-external-") as tmp:
            folder = Path(tmp)
            paths = {
                "image": folder / "image.png",
                "mask": folder / "mask.png",
                "out_mesh": folder / f"mesh.{self.mesh_format}",
            }
            if self.rgba:
                alpha = mask.astype(np.uint8)[..., None] * 255
                Image.fromarray(np.concatenate([image, alpha], axis=2), "RGBA").save(paths["image"])
            else:
                Image.fromarray(image, "RGB").save(paths["image"])
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(paths["mask"])
            values = {key: str(path) for key, path in paths.items()}
            values["label"] = str(observation.label)
            self._run(substitute(self.parsed, values))
            mesh = load_output_mesh(paths["out_mesh"])
        if self.z_up:
            from ..geometry.canonical import Z_UP_TO_Y_UP

            mesh.apply_transform(Z_UP_TO_Y_UP)
        return canonical_mesh(mesh, self.name)

    def _run(self, args: list[str]) -> None:
        shown = shlex.join(args)
        try:
            process = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                start_new_session=True,  # its own process group: a timeout kills its children
            )
        except FileNotFoundError:
            raise BackendError(f"external command not found: {args[0]}") from None
        except PermissionError:
            raise BackendError(f"external command is not executable: {args[0]}") from None
        try:
            stdout, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise BackendError(
                f"external command timed out after {self.timeout:g} s: {shown}"
            ) from None
        except BaseException:  # Ctrl-C or any error here: its own group never saw the signal
            _kill_group(process)
            raise
        if process.returncode != 0:
            raise BackendError(
                f"external command failed (exit status {process.returncode}): "
                f"{_last_line(stderr) or _last_line(stdout) or '(no output)'}"
            )


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode(errors="replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the command and everything it started (its own process group)."""
    import signal

    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except ProcessLookupError:
        pass
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def load_output_mesh(path: Path):
    """An external tool's mesh as one ``trimesh.Trimesh``; BackendError naming ``path``."""
    import trimesh

    if not path.is_file() or path.stat().st_size == 0:
        raise BackendError(f"external command wrote no mesh at {path}")
    try:
        loaded = trimesh.load(path)
    except Exception as exc:  # trimesh raises many exception types for broken files
        raise BackendError(
            f"{path}: cannot read the external command's mesh ({type(exc).__name__}: {exc})"
        ) from None
    if isinstance(loaded, trimesh.Scene):
        geometries = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        if not geometries:
            raise BackendError(f"{path}: the external command's mesh has no triangles")
        loaded = geometries[0] if len(geometries) == 1 else trimesh.util.concatenate(geometries)
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise BackendError(f"{path}: the external command's mesh has no triangles")
    if not np.isfinite(loaded.vertices).all() or np.ptp(loaded.vertices, axis=0).max() <= 0:
        raise BackendError(f"{path}: the external command's mesh is degenerate")
    return loaded
