"""One way to get an offscreen OpenGL context (EGL first), shared by every renderer."""

from __future__ import annotations

from ..errors import BackendError


class RenderUnavailableError(BackendError):
    """No usable OpenGL context: the message says what to install."""


def create_context():
    """A standalone moderngl context: EGL (headless, Mesa llvmpipe on CPUs), else the platform
    default (GLX / WGL / CGL). Raises :class:`RenderUnavailableError` with one line saying what
    to install when neither works."""
    try:
        import moderngl
    except ImportError:
        raise RenderUnavailableError(
            "rendering needs moderngl: pip install moderngl (scripts/setup.sh installs it)"
        ) from None
    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as exc:
        try:
            return moderngl.create_standalone_context()
        except Exception:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RenderUnavailableError(
                f"cannot create an OpenGL context ({first[:160]}); install EGL + Mesa: "
                "apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri (scripts/setup.sh does)"
            ) from None
