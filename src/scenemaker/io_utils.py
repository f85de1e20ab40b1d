"""Atomic file and folder writing (a reader never sees a half-written file or checkpoint), and
reading of weights / trainer state that fails with one line naming the file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import InputError, MissingWeightsError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; use the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _to_jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def atomic_write_json(path: str | Path, payload: dict) -> None:
    text = json.dumps(payload, indent=1, default=_to_jsonable)
    atomic_write_bytes(path, text.encode())


def read_json(path: str | Path, expected_schema: str | None = None) -> dict:
    """Read a JSON file; a clear one-line InputError (a ValueError) if it is missing, broken or of another schema."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if expected_schema is not None:
        schema = payload.get("schema") if isinstance(payload, dict) else None
        if schema != expected_schema:  # one version per schema so far: exact match
            raise InputError(f"{path}: expected schema {expected_schema!r}, found {schema!r}")
    return payload


# --- folders replaced all at once (checkpoints) ---------------------------------------------

COMPLETE_MARKER = ".complete"
"""File written last into a staging folder: without it the folder may be half-written."""


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. folders on platforms that cannot open them
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def replace_folder(tmp: str | Path, path: str | Path) -> None:
    """Swap the complete folder ``tmp`` into ``path``: ``path`` -> ``path.old``, ``tmp`` ->
    ``path``, then ``path.old`` is removed. At every instant ``path``, a ``tmp`` marked complete
    or ``path.old`` holds the newest complete folder; ``recover_folder`` finds it."""
    tmp, path = Path(tmp), Path(path)
    old = _sibling(path, ".old")
    if path.exists():
        _discard(old)  # stale: ``path`` is complete
        path.rename(old)
    tmp.rename(path)
    _fsync(path.parent)
    (path / COMPLETE_MARKER).unlink(missing_ok=True)  # only staging folders need it
    _discard(old)


def recover_folder(path: str | Path) -> bool:
    """Undo what a kill during ``atomic_folder`` / ``replace_folder`` left: ``path`` then holds
    the newest complete folder (a marked ``path.tmp``, else ``path``, else ``path.old``), and
    the ``.tmp`` / ``.old`` siblings are gone. Returns whether ``path`` exists.

    Call it before reading ``path`` to resume, in one process only (the main one)."""
    path = Path(path)
    tmp, old = _sibling(path, ".tmp"), _sibling(path, ".old")
    if (tmp / COMPLETE_MARKER).is_file():  # killed after the new folder was complete
        replace_folder(tmp, path)
    else:
        _discard(tmp)  # killed while it was written: incomplete
        if not path.exists() and old.is_dir():  # killed between the two renames
            old.rename(path)
        _discard(old)
    return path.is_dir()


@contextmanager
def atomic_folder(path: str | Path):
    """Write a folder that replaces ``path`` all at once::

        with atomic_folder(checkpoint) as tmp:
            ...  # write the files into tmp

    ``tmp`` (``path.tmp``) is marked complete once the block has finished (the marker is
    written last, after the files reach the disk), then swapped in by ``replace_folder``. An
    exception removes ``tmp`` and leaves ``path`` as it was; after a kill, ``recover_folder``
    restores the newest complete folder."""
    path = Path(path)
    recover_folder(path)
    tmp = _sibling(path, ".tmp")
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        _discard(tmp)
        raise
    for file in sorted(tmp.rglob("*")):
        _fsync(file)
    atomic_write_bytes(tmp / COMPLETE_MARKER, b"")
    _fsync(tmp)
    replace_folder(tmp, path)


# --- reading weights and trainer state --------------------------------------------------------

_PICKLE_STARTS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
"""torch.save's zip container, raw pickles of protocol 2-5."""
_MAX_HEADER = 100_000_000  # as the safetensors library


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def check_safetensors(path: str | Path) -> None:
    """A one-line InputError naming ``path`` unless it is a complete safetensors file (header
    read and checked against the file size; no tensor is loaded, nothing is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"{path}: file not found (expected safetensors weights)")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file, expected safetensors weights")
    with open(path, "rb") as f:
        start = f.read(8)
        length = int.from_bytes(start, "little") if len(start) == 8 else -1
        header = f.read(length) if 0 < length <= min(size - 8, _MAX_HEADER) else b""
    if start.startswith(_PICKLE_STARTS):
        raise InputError(f"{path}: pickled file refused: expected safetensors weights")
    try:
        entries = json.loads(header) if header.startswith(b"{") else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        entries = None
    if not isinstance(entries, dict):
        raise InputError(
            f"{path}: not a safetensors file or truncated (its {size} bytes hold no valid header)"
        )
    try:
        end = max(
            (int(v["data_offsets"][1]) for k, v in entries.items() if k != "__metadata__"),
            default=0,
        )
    except (TypeError, KeyError, IndexError, ValueError):
        raise InputError(f"{path}: not a safetensors file (damaged header)") from None
    expected = 8 + length + end
    if size < expected:
        raise InputError(f"{path}: truncated safetensors file ({size} of {expected} bytes)")
    if size > expected:
        raise InputError(
            f"{path}: not a valid safetensors file ({size - expected} bytes after the tensors)"
        )


def load_safetensors(path: str | Path) -> dict:
    """The tensors of a safetensors file (on the CPU), or a one-line InputError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_safetensors(path)
    try:
        return load_file(str(path))
    except (SafetensorError, ValueError, OSError) as error:
        raise InputError(f"{path}: not a valid safetensors file ({_first_line(error)})") from None


def load_trainer_state(path: str | Path, optimizer=None) -> dict:
    """A trainer state written by ``torch.save`` (a dict with ``optimizer`` and ``step``),
    unpickling only tensors, numbers and plain containers (``weights_only=True``: a file that
    wants anything else is refused, never run); its optimizer state is loaded into
    ``optimizer`` when given. Any problem is a one-line InputError naming the file."""
    import pickle
    import re
    import warnings

    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found (expected a trainer state)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file, expected a trainer state written by torch.save")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as error:  # its text advises weights_only=False: not shown
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f"it wants {found.group(1)}" if found else "it is not a plain torch.save file"
        raise InputError(
            f"{path}: pickled file refused ({what}): expected a trainer state of tensors, "
            "numbers and plain containers only"
        ) from None
    except Exception:  # any other failure: the file is damaged (zip, EOF, ...)
        raise InputError(f"{path}: not a torch.save file or truncated") from None
    if not (isinstance(state, dict) and {"optimizer", "step"} <= state.keys()):
        raise InputError(f"{path}: expected a trainer state with 'optimizer' and 'step'")
    if not isinstance(state["step"], int) or state["step"] < 0:
        raise InputError(f"{path}: expected a step count, found {state['step']!r}")
    if optimizer is not None:
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, TypeError, RuntimeError) as error:
            raise InputError(
                f"{path}: optimizer state does not fit this model ({_first_line(error)})"
            ) from None
    return state
