"""Published PyTorch checkpoints as Keras weight files: downloaded once, converted once.

``weights="imagenet"`` for a model whose manifest file is a torchvision checkpoint
(:attr:`~kapps.weights.manifest.WeightFile.is_checkpoint`) resolves, in order:

1. the converted file ``<checkpoint stem>.weights.h5`` in a search directory
   (``KAPPS_WEIGHTS_DIR``, Keras' cache, the kapps cache): loaded as it is, the ``.pth`` is not
   read again;
2. else the checkpoint itself, found or downloaded by :func:`kapps.weights.store.resolve`
   (lock, temporary file, hash check, atomic rename, progress bar), read without torch
   (:mod:`kapps.weights.torch_checkpoint`), mapped onto the full network
   (:mod:`kapps.weights.torch_mapping`) and written into the kapps cache, atomically and under
   an inter-process lock, so that concurrent first calls convert once. Keys under the entry's
   ``ignored_key_prefixes`` are left out first (GoogLeNet's untrained auxiliary heads).

A converted file records the sha256 of the checkpoint it came from (root attribute
``kapps_source_sha256``); a converted file whose record does not match the manifest's hash
is refused. A checkpoint that fails to convert (a hostile pickle, keys that do not fit) is
removed again if this call downloaded it: nothing is left in the cache.
"""

from __future__ import annotations

import os
from typing import Callable

import h5py
import keras

from kapps.errors import KappsError, WeightsIntegrityError
from kapps.weights import store
from kapps.weights.locking import file_lock
from kapps.weights.manifest import WeightFile
from kapps.weights.torch_checkpoint import read_checkpoint, state_dict
from kapps.weights.torch_mapping import convert_state_dict

__all__ = ["converted_file_name", "resolve_converted", "check_converted", "SOURCE_ATTRIBUTE"]

#: Root attribute of a converted file: the sha256 of the checkpoint it was converted from.
SOURCE_ATTRIBUTE = "kapps_source_sha256"


def converted_file_name(entry: WeightFile) -> str:
    """``resnet18-f37072fd.pth`` -> ``resnet18-f37072fd.weights.h5``.

    >>> from kapps.weights import manifest
    >>> converted_file_name(manifest.find("resnet18", True))
    'resnet18-f37072fd.weights.h5'
    """
    stem = entry.file.rsplit(".", 1)[0]
    return f"{stem}.weights.h5"


def check_converted(entry: WeightFile, path: str) -> None:
    """Raise :class:`WeightsIntegrityError` unless ``path`` is a file converted from ``entry``'s checkpoint."""
    if not h5py.is_hdf5(path):
        raise WeightsIntegrityError(f"{converted_file_name(entry)}: {path} is not an HDF5 file.")
    with h5py.File(path, "r") as f:
        recorded = f.attrs.get(SOURCE_ATTRIBUTE)
    recorded = recorded.decode() if isinstance(recorded, bytes) else recorded
    if not isinstance(recorded, str) or (entry.hash_value and not recorded.startswith(entry.hash_value)):
        raise WeightsIntegrityError(
            f"{converted_file_name(entry)}: {path} was not converted from {entry.file} (it records source sha256 "
            f"{recorded!r}, the manifest publishes {entry.hash_value!r}). Delete it to convert again."
        )


def _find_converted(entry: WeightFile) -> str | None:
    for _, directory in store.search_dirs():
        candidate = os.path.join(directory, converted_file_name(entry))
        if os.path.isfile(candidate):
            check_converted(entry, candidate)
            return candidate
    return None


def resolve_converted(entry: WeightFile, build: Callable[[], keras.Model], *, download: bool = True,
                      progress: bool = True) -> str:
    """A verified local ``.weights.h5`` converted from ``entry``'s checkpoint (see the module docs).

    ``build()`` returns the full network the checkpoint describes (with its top), called
    only when a conversion is needed.
    """
    found = _find_converted(entry)
    if found:
        return found
    cache = store.kapps_cache_dir()
    target = os.path.join(cache, converted_file_name(entry))
    lock_dir = os.path.join(cache, ".locks")
    os.makedirs(lock_dir, exist_ok=True)
    with file_lock(os.path.join(lock_dir, converted_file_name(entry) + ".lock")):
        if os.path.isfile(target):  # another process converted it while we waited
            check_converted(entry, target)
            return target
        downloaded = store.locate(entry) is None
        source = store.resolve(entry, download=download, progress=progress)
        try:
            state = state_dict(read_checkpoint(source), source)
            if entry.ignored_key_prefixes:  # parts of the checkpoint the model has not (GoogLeNet's aux heads)
                state = {k: v for k, v in state.items() if not k.startswith(entry.ignored_key_prefixes)}
            convert_state_dict(state, build(), target, source=f"checkpoint {source!r}",
                               attributes={SOURCE_ATTRIBUTE: store.file_hash(source), "kapps_source_file": entry.file})
        except KappsError:
            if downloaded and os.path.isfile(source):
                os.remove(source)
            raise
    return target
