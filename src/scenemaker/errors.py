"""Errors that the command line turns into one clear line (no traceback)."""

from __future__ import annotations


class SceneMakerError(Exception):
    """Base class of errors meant for the user, printed as one line."""


class InputError(SceneMakerError, ValueError):
    """A user-supplied file or value is unusable (names the file and what was expected)."""


class MissingWeightsError(SceneMakerError, OSError):
    """Model weights are not available locally (offline) or the id / path is wrong."""


class MissingDependencyError(SceneMakerError, ImportError):
    """An optional library needed by a backend is not installed."""


class BackendError(SceneMakerError, RuntimeError):
    """A backend failed on valid input (external command failed or timed out, ...)."""
