"""Crash-safe checkpoints of a fine-tuning run: one weights file per completed epoch plus a JSON state.

Layout of ``checkpoint_dir``::

    state.json              phase, completed epochs, early-stopping state, history, argument fingerprint
    ckpt-p2-e003.npz        model variables (+ optimizer variables) after epoch 3 of phase 2
    best-p2-e002.npz        model variables of the best epoch so far of the running phase

Every file is written to a temporary name in the folder, flushed to disk and renamed
into place; ``state.json`` is renamed last and names the files it relies on, and
files it no longer names are removed only after that. So a process killed at any
moment (``kill -9`` included) leaves either the previous state or the new one,
never a mix, and a rerun with the same arguments continues from the last completed
epoch of the right phase.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from typing import Any, Sequence

import numpy as np

from kapps.errors import KappsError
from kapps.utils.files import atomic_open

__all__ = ["CheckpointMismatchError", "Checkpointer", "fingerprint"]

STATE = "state.json"
FORMAT = "kapps.fine_tune/1"


class CheckpointMismatchError(KappsError, ValueError):
    """``checkpoint_dir`` holds a run made with other arguments or another model."""


def fingerprint(arguments: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path: str, write: Any) -> None:
    """``write(f)`` into ``path`` atomically (:mod:`kapps.utils.files`), then sync the folder's entry."""
    with atomic_open(path, "wb") as f:
        write(f)
    _fsync_dir(os.path.dirname(path))


def variables_to_arrays(variables: Sequence[Any]) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables]


def assign_arrays(variables: Sequence[Any], arrays: Sequence[np.ndarray], what: str, path: str) -> None:
    if len(variables) != len(arrays):
        raise CheckpointMismatchError(
            f"Checkpoint {path!r} holds {len(arrays)} {what} variables but the model has {len(variables)}; "
            "it was made with another model or other arguments. Use another `checkpoint_dir` or delete this one."
        )
    for variable, array in zip(variables, arrays):
        if tuple(variable.shape) != tuple(array.shape):
            raise CheckpointMismatchError(
                f"Checkpoint {path!r}: {what} variable {variable.path} has shape {tuple(variable.shape)} in the "
                f"model but {tuple(array.shape)} in the file. Use another `checkpoint_dir` or delete this one."
            )
    for variable, array in zip(variables, arrays):
        variable.assign(array)


class Checkpointer:
    """Reads and writes the checkpoints of one run (``directory`` None: keeps nothing on disk).

    Only the chief writes (``writer=False`` on the other workers of a multi-worker run);
    every process reads.
    """

    def __init__(self, directory: str | os.PathLike | None, arguments: dict[str, Any], writer: bool = True):
        self.directory = None if directory is None else os.path.abspath(os.fspath(directory))
        self.arguments = json.loads(json.dumps(arguments, sort_keys=True, default=str))
        self.fingerprint = fingerprint(arguments)
        self.writer = writer
        if self.directory is not None and writer:
            os.makedirs(self.directory, exist_ok=True)

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def _path(self, name: str) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, name)

    def load_state(self) -> dict[str, Any] | None:
        """The saved state, None when there is none; refuses a state made with other arguments."""
        if self.directory is None or not os.path.isfile(self._path(STATE)):
            return None
        with open(self._path(STATE), encoding="utf-8") as f:
            state = json.load(f)
        if state.get("format") != FORMAT:
            raise CheckpointMismatchError(
                f"`checkpoint_dir`={self.directory!r} holds a state file of another format "
                f"({state.get('format')!r}, expected {FORMAT!r}). Use another directory or delete it."
            )
        if state.get("fingerprint") != self.fingerprint:
            saved = state.get("arguments", {})
            differ = sorted(k for k in set(saved) | set(self.arguments) if saved.get(k) != self.arguments.get(k))
            details = "; ".join(f"{k}: saved {saved.get(k)!r}, now {self.arguments.get(k)!r}" for k in differ[:8])
            raise CheckpointMismatchError(
                f"`checkpoint_dir`={self.directory!r} holds a run made with other arguments ({details}). "
                "Rerun with the same arguments to resume it, or use another directory (or delete it) to start over."
            )
        for key in ("checkpoint", "best_file"):
            name = state.get(key) or (state.get("monitor") or {}).get(key)
            if name and not os.path.isfile(self._path(name)):
                raise CheckpointMismatchError(f"`checkpoint_dir`={self.directory!r}: {STATE} names {name!r}, "
                                              "which is missing. Delete the directory to start over.")
        return state

    def save_arrays(self, name: str, model_arrays: Sequence[np.ndarray],
                    optimizer_arrays: Sequence[np.ndarray] | None = None) -> None:
        if not (self.enabled and self.writer):
            return
        payload = {f"m{i:05d}": a for i, a in enumerate(model_arrays)}
        if optimizer_arrays is not None:
            payload.update({f"o{i:05d}": a for i, a in enumerate(optimizer_arrays)})
        _write_atomic(self._path(name), lambda f: np.savez(f, **payload))

    def load_arrays(self, name: str) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        with np.load(self._path(name)) as data:
            model = [data[k] for k in sorted(k for k in data.files if k.startswith("m"))]
            optimizer = [data[k] for k in sorted(k for k in data.files if k.startswith("o"))]
        return model, (optimizer or None)

    def save_state(self, state: dict[str, Any]) -> None:
        """Write ``state.json`` (atomically), then remove weight files it does not name."""
        if not (self.enabled and self.writer):
            return
        state = dict(state, format=FORMAT, fingerprint=self.fingerprint, arguments=self.arguments,
                     updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
        text = json.dumps(state, indent=1, default=float).encode()
        _write_atomic(self._path(STATE), lambda f: f.write(text))
        keep = {state.get("checkpoint"), (state.get("monitor") or {}).get("best_file")}
        for path in glob.glob(self._path("ckpt-*.npz")) + glob.glob(self._path("best-*.npz")):
            if os.path.basename(path) not in keep:
                try:
                    os.remove(path)
                except OSError:
                    pass
        for path in glob.glob(self._path(".*.part")):  # debris of a process killed mid-write
            if time.time() - os.path.getmtime(path) > 60:
                try:
                    os.remove(path)
                except OSError:
                    pass
