"""Atomic file writes: a temp file in the target's folder, verified, then renamed over it.

Nothing on disk is ever left half-written: a reader sees the old file or the new one.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "out", "note.txt")
>>> write_text_atomic(path, "hello")
>>> open(path).read()
'hello'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import IO, Any, Callable, Iterator

__all__ = ["atomic_path", "atomic_open", "write_text_atomic", "write_json_atomic", "write_bytes_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, verify: Callable[[str], None] | None = None,
                suffix: str = "") -> Iterator[str]:
    """Yield a temp path beside ``path``; on success ``verify(tmp)`` runs, then tmp replaces ``path``.

    For writers that want a file name (``model.save``, ``h5py.File``). On any error the
    temp file is removed and ``path`` is untouched. ``suffix`` keeps an extension that
    a writer insists on (``".keras"``, ``".h5"``).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix + ".part", dir=directory)
    os.close(fd)
    if suffix:  # some writers refuse to open an existing file or need the exact extension
        os.remove(tmp)
        tmp = tmp[: -len(".part")]
    try:
        yield tmp
        if verify is not None:
            verify(tmp)
        if os.path.exists(tmp):  # mkstemp makes 0600 files; give the usual umask-derived mode
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` that only replaces ``path`` once the block finished without error."""
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb'. Received: mode={mode!r}")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")
