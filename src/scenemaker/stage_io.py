"""Reading and writing the files of stage outputs (``stage_outputs`` owns which files).

Every file is written to a temporary name and renamed into place; every read of a saved output
that fails (missing, truncated, another shape or schema) is one InputError naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import InputError
from .io_utils import atomic_write_bytes


def write_png(path: Path, array: np.ndarray) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise InputError(f"{path}: saved stage output not found (run the earlier stages first)")
    with _reading(path), Image.open(path) as im:
        return np.asarray(im)


class _reading:
    """Turns any failure to read a saved stage output into one line naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        if not self.path.is_file():
            raise InputError(
                f"{self.path}: saved stage output not found (run the earlier stages first)"
            )
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, InputError):
            return False
        if isinstance(exc, (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError,
                            EOFError)):  # fmt: skip
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                f"{self.path}: damaged saved stage output ({why}); rerun from an earlier stage"
            ) from None
        return False


def read_json(path: Path, schema: str | None = None):
    with _reading(path):
        payload = json.loads(path.read_text())
        if not isinstance(payload, dict):
            raise ValueError(f"expected a JSON object, found {type(payload).__name__}")
        if schema is not None and payload.get("schema") != schema:
            raise ValueError(f"expected schema {schema!r}, found {payload.get('schema')!r}")
        return payload


def save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def snapshot(out: Path) -> dict:
    """{path: (inode, mtime_ns, size)} of the files under ``out`` (but the run's own records):
    files written by a stage (always a fresh file renamed into place) differ afterwards."""
    from .stage_records import RECORDS_FILE

    skip = {out / RECORDS_FILE, out / "config.json"}
    found = {}
    for path in out.rglob("*"):
        if path in skip or path.name.endswith(".tmp") or not path.is_file():
            continue
        st = path.stat()
        found[path] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return found
