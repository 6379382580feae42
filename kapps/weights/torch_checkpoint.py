"""Reading PyTorch checkpoints into NumPy without importing torch.

Three formats are read into ``{key: numpy array}``:

* the zip archive ``torch.save`` writes since torch 1.6 (``<name>/data.pkl`` plus one
  record per storage under ``<name>/data/``);
* the legacy stream of pickles (``torch.save(..., _use_new_zipfile_serialization=False)``,
  and torchvision's older published files): a magic number, the protocol version, system
  information, the object, the list of storage keys, then each storage's raw bytes;
* ``.safetensors``, through ``safetensors.numpy``.

Pickles are read with a **restricted unpickler**: the only globals it resolves are the ones
``torch.save`` uses to rebuild plain tensors (``torch._utils._rebuild_tensor_v2`` and ``_v3``,
``_rebuild_parameter``, the ``torch.*Storage`` classes, torch dtypes) and
``collections.OrderedDict``; each is replaced by a NumPy stand-in, so no torch code runs and
torch need not be installed. Any other global (``os.system``, ``builtins.eval``, ...) stops the
read with a :class:`~kapps.errors.CheckpointError` naming the global and the file.

:func:`state_dict` unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` and strips the
``module.`` prefix that ``DataParallel`` adds.

>>> import io, pickle
>>> hostile = pickle.dumps(print)     # a pickle that references builtins.print
>>> try:
...     load_pickle(io.BytesIO(hostile), "hostile.pth")
... except Exception as error:
...     print(type(error).__name__, "builtins.print" in str(error))
CheckpointError True
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import IO, Any, Callable, Mapping

import numpy as np

from kapps.errors import CheckpointError

__all__ = ["read_checkpoint", "state_dict", "load_pickle", "checkpoint_format", "STORAGE_DTYPES"]

#: ``torch.<Name>Storage`` -> the NumPy dtype of its elements (bfloat16 is read as its 16 bits).
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "UntypedStorage": "uint8",
}
#: ``torch.<dtype>`` globals (``_rebuild_tensor_v3`` names the dtype) -> NumPy dtype.
TORCH_DTYPES: dict[str, str] = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64", "float16": "float16",
    "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "int16": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "bool": "bool",
}
#: First bytes of a legacy torch pickle stream: protocol 2 + the long MAGIC_NUMBER 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _Storage:
    """A storage a pickle refers to: its element dtype and, once read, its flat NumPy array."""

    def __init__(self, dtype: str, key: str, numel: int):
        self.dtype, self.key, self.numel = dtype, key, numel
        self.array: np.ndarray | None = None


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and the like: only its element dtype matters."""

    def __init__(self, name: str):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class _DType:
    """Stand-in for ``torch.float32`` and the like."""

    def __init__(self, name: str):
        self.name, self.dtype = name, TORCH_DTYPES[name]


def _element_array(data: bytes, dtype: str, byteorder: str = "little") -> np.ndarray:
    """Raw storage bytes as a flat array (bfloat16 widened exactly to float32)."""
    order = "<" if byteorder == "little" else ">"
    if dtype == "bfloat16":
        bits = np.frombuffer(data, f"{order}u2").astype("uint32") << 16
        return bits.view("float32")
    if dtype == "bool":
        return np.frombuffer(data, "bool")
    return np.frombuffer(data, np.dtype(dtype).newbyteorder(order)).astype(dtype)


class _Tensor:
    """A tensor to rebuild from its storage once the storage's bytes are known (legacy format).

    ``dtype`` is the tensor's element type: its storage's, or (``_rebuild_tensor_v3``, an untyped
    byte storage) the one the pickle names.
    """

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple, dtype: str | None = None):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)
        self.dtype = dtype or storage.dtype

    def array(self, source: str) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise CheckpointError(f"{source}: storage {self.storage.key!r} of a tensor is missing from the file.")
        if self.dtype != self.storage.dtype:  # an untyped storage (v3): reinterpret its bytes
            flat = _element_array(flat.tobytes(), self.dtype)
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1 if all(self.size) else 0
        if needed > flat.size:
            raise CheckpointError(f"{source}: a tensor of shape {self.size} reads past the end of storage "
                                  f"{self.storage.key!r} ({flat.size} elements).")
        if not all(self.size):
            return np.zeros(self.size, flat.dtype)
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * flat.itemsize for s in self.stride], writeable=False)
        return np.array(view)


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: tuple, stride: tuple, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _Tensor:
    return _Tensor(storage, offset, size, stride)


def _rebuild_tensor_v3(storage: _Storage, offset: int, size: tuple, stride: tuple, requires_grad: Any,
                       backward_hooks: Any, dtype: _DType, metadata: Any = None) -> _Tensor:
    return _Tensor(storage, offset, size, stride, dtype.dtype)  # an untyped (byte) storage viewed as ``dtype``


def _rebuild_parameter(data: _Tensor, requires_grad: Any = False, backward_hooks: Any = None,
                       state: Any = None) -> _Tensor:
    return data


#: The globals a checkpoint may name, and what each becomes. Nothing else is resolved.
_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): lambda: _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): lambda: _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): lambda: _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): lambda: _rebuild_parameter,
    **{("torch", name): (lambda name=name: _StorageType(name)) for name in STORAGE_DTYPES},
    **{("torch.storage", "UntypedStorage"): lambda: _StorageType("UntypedStorage")},
    **{("torch", name): (lambda name=name: _DType(name)) for name in TORCH_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of :data:`_ALLOWED`; storages come from ``load_storage``."""

    def __init__(self, file: IO[bytes], source: str, load_storage: Callable[[tuple], Any] | None):
        super().__init__(file, encoding="utf-8")
        self.source, self.load_storage = source, load_storage

    def find_class(self, module: str, name: str) -> Any:
        make = _ALLOWED.get((module, name))
        if make is None:
            raise CheckpointError(
                f"{self.source}: refusing to load: its pickle references the global {module}.{name}, which is not "
                "one of the tensor-rebuilding globals a PyTorch state dict needs (torch._utils._rebuild_tensor_v2, "
                "torch.*Storage, collections.OrderedDict, ...). Unpickling it could run arbitrary code."
            )
        return make()

    def persistent_load(self, pid: Any) -> Any:
        if self.load_storage is None or not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise CheckpointError(f"{self.source}: unexpected persistent id {pid!r} in its pickle.")
        return self.load_storage(pid)


def load_pickle(file: IO[bytes], source: str, load_storage: Callable[[tuple], Any] | None = None) -> Any:
    """One pickle from ``file``, read with the restricted unpickler (``source`` names the file in errors)."""
    try:
        return _RestrictedUnpickler(file, source, load_storage).load()
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - a truncated or garbled pickle, whatever pickle raises
        raise CheckpointError(f"{source}: not a readable PyTorch checkpoint ({type(error).__name__}: {error}).") \
            from None


def checkpoint_format(path: str | os.PathLike) -> str:
    """``"zip"``, ``"legacy"`` (a pickle stream) or ``"safetensors"``, from the file's first bytes.

    Raises :class:`CheckpointError` for anything else (an HDF5 file, HTML, a truncated download).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:1] == b"\x80" and len(head) >= 2 and 2 <= head[1] <= 5:
        return "legacy"
    if len(head) >= 9 and head[8:9] == b"{":  # 8-byte little-endian header length, then the JSON header
        return "safetensors"
    raise CheckpointError(
        f"{path}: not a PyTorch checkpoint (.pth/.pt: a zip archive or a pickle stream) nor a .safetensors file "
        f"(first bytes {head[:8]!r})."
    )


def _read_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: a zip file without exactly one '<name>/data.pkl' record: not a "
                                  "PyTorch checkpoint.")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
        storages: dict[str, _Storage] = {}

        def load_storage(pid: tuple) -> _Storage:
            _, storage_type, key, _location, numel = pid[:5]
            if key not in storages:
                if not isinstance(storage_type, _StorageType):
                    raise CheckpointError(f"{path}: storage {key!r} has no storage type ({storage_type!r}).")
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise CheckpointError(f"{path}: storage record {record!r} is missing from the archive.")
                storage = _Storage(storage_type.dtype, str(key), int(numel))
                storage.array = _element_array(archive.read(record), storage.dtype, byteorder)
                storages[key] = storage
            return storages[key]

        with archive.open(pickles[0]) as f:
            obj = load_pickle(io.BytesIO(f.read()), path, load_storage)
    return _materialize(obj, path)


def _read_legacy(path: str) -> Any:
    storages: dict[str, _Storage] = {}

    def load_storage(pid: tuple) -> _Storage:
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{path}: storage {key!r} has no storage type ({storage_type!r}).")
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointError(f"{path}: storage views (a format of torch < 1.0) are not supported.")
        return storages.setdefault(str(key), _Storage(storage_type.dtype, str(key), int(numel)))

    with open(path, "rb") as f:
        magic = load_pickle(f, path)
        if magic != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: a pickle, but not a PyTorch checkpoint (no torch magic number).")
        protocol = load_pickle(f, path)
        if protocol != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: PyTorch legacy protocol {protocol!r} is not supported "
                                  f"(only {_LEGACY_PROTOCOL}).")
        info = load_pickle(f, path)
        little = not isinstance(info, Mapping) or info.get("little_endian", True)
        obj = load_pickle(f, path, load_storage)
        keys = load_pickle(f, path)
        for key in keys:
            storage = storages.get(str(key))
            if storage is None:
                raise CheckpointError(f"{path}: storage {key!r} is listed but no tensor uses it.")
            itemsize = 2 if storage.dtype == "bfloat16" else np.dtype(storage.dtype).itemsize
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{path}: truncated: storage {key!r} is missing.")
            (count,) = struct.unpack("<q" if little else ">q", header)
            data = f.read(count * itemsize)
            if count != storage.numel or len(data) != count * itemsize:
                raise CheckpointError(f"{path}: truncated or corrupt storage {key!r} ({len(data)} bytes read, "
                                      f"{storage.numel * itemsize} expected).")
            storage.array = _element_array(data, storage.dtype, "little" if little else "big")
    return _materialize(obj, path)


def _materialize(obj: Any, source: str) -> Any:
    """``obj`` with every :class:`_Tensor` replaced by its NumPy array (dicts, lists, tuples walked)."""
    if isinstance(obj, _Tensor):
        return obj.array(source)
    if isinstance(obj, Mapping):
        return collections.OrderedDict((key, _materialize(value, source)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(value, source) for value in obj)
    return obj


def _read_safetensors(path: str) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:  # pragma: no cover - safetensors is a dependency of kapps
        raise CheckpointError(f"{path}: reading .safetensors needs the 'safetensors' package "
                              "(pip install safetensors).") from None
    try:
        return dict(load_file(path))
    except Exception as error:  # noqa: BLE001 - safetensors' own errors for a damaged file
        raise CheckpointError(f"{path}: not a readable .safetensors file ({error}).") from None


def read_checkpoint(path: str | os.PathLike) -> Any:
    """The object saved in ``path`` (``.pth``/``.pt`` in either torch format, or ``.safetensors``),
    with every tensor as a NumPy array; no torch import and no code from the file runs.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "not_a_checkpoint.pth")
    >>> _ = open(path, "w").write("<html>404</html>")
    >>> try:
    ...     read_checkpoint(path)
    ... except Exception as error:
    ...     print(type(error).__name__)
    CheckpointError
    """
    path = os.fspath(path)
    kind = checkpoint_format(path)
    if kind == "safetensors":
        return _read_safetensors(path)
    try:
        return _read_zip(path) if kind == "zip" else _read_legacy(path)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({error}).") from None


#: Keys under which training scripts nest the state dict.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def state_dict(checkpoint: Any, source: str = "checkpoint") -> dict[str, np.ndarray]:
    """The flat ``{key: array}`` state dict inside a read checkpoint.

    Unwraps ``{"state_dict": ...}``, ``{"model": ...}`` (and ``model_state_dict``, ``module``),
    strips a ``module.`` prefix shared by every key (``DataParallel``), and drops
    BatchNorm's ``num_batches_tracked`` counters (training bookkeeping).

    >>> import numpy as np
    >>> sorted(state_dict({"state_dict": {"module.fc.weight": np.zeros((2, 3)),
    ...                                   "module.bn.num_batches_tracked": np.array(5)}}))
    ['fc.weight']
    """
    obj = checkpoint
    while isinstance(obj, Mapping) and not any(isinstance(v, np.ndarray) for v in obj.values()):
        inner = [key for key in WRAPPER_KEYS if isinstance(obj.get(key), Mapping)]
        if not inner:
            break
        obj = obj[inner[0]]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: holds a {type(obj).__name__}, not a state dict (a mapping of names to "
                              "tensors).")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
    others = sorted(str(k) for k, v in obj.items() if not isinstance(v, np.ndarray))
    if not tensors:
        raise CheckpointError(f"{source}: no tensors found (keys: {', '.join(map(str, list(obj)[:10]))}); expected a "
                              f"state dict, or one under {', '.join(map(repr, WRAPPER_KEYS))}.")
    if others:
        raise CheckpointError(f"{source}: entries that are not tensors: {', '.join(others[:10])}.")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return {k: v for k, v in tensors.items() if not k.endswith("num_batches_tracked")}
