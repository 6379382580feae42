"""A PyTorch state dict onto a Keras model, by one naming rule and one table of layouts.

kapps names the layers of its torchvision-trained families after torch's module paths with
``.`` replaced by ``_`` (``layer1.0.conv1`` -> ``layer1_0_conv1``), so no model needs its own
conversion code: each weighted Keras layer finds its torch module by name, and each of its
weights its tensor by :data:`TORCH_PARAMETERS`:

* convolution ``kernel`` <- ``weight``: (out, in / groups, kh, kw) -> (kh, kw, in / groups, out);
* depthwise convolution ``kernel`` <- ``weight``: (channels * m, 1, kh, kw) -> (kh, kw, channels, m);
* dense ``kernel`` <- ``weight``: (out, in) -> (in, out);
* ``bias`` <- ``bias``; BatchNorm ``gamma``, ``beta``, ``moving_mean``, ``moving_variance`` <-
  ``weight``, ``bias``, ``running_mean``, ``running_var``, as they are.

Transformers add three rules:

* a layer that *is* one tensor (ViT's ``class_token``, ``encoder.pos_embedding``) is named after
  the whole key, and a weight that no table entry names (Swin's
  ``relative_position_bias_table``) takes the tensor of the same name in its layer's module;
* ``nn.MultiheadAttention``'s packed ``in_proj_weight``/``in_proj_bias`` are the ``weight``/``bias``
  of a module ``in_proj`` (a Dense layer ``..._in_proj``);
* torchvision's legacy ``MLPBlock`` keys ``mlp.linear_1``/``mlp.linear_2`` are ``mlp.0``/``mlp.3``
  (torchvision renames them the same way when it loads an old checkpoint).

A layer that defines ``adapt_weights(arrays)`` gets the tensors first to fit them to its own
shapes (ViT's position embedding, resampled for another input size).

BatchNorm's ``num_batches_tracked`` and Swin's ``relative_position_index`` (a function of the
window size) are bookkeeping and are ignored. A key the model
has no layer for, a layer with no key, or a shape that does not fit is a
:class:`~kapps.errors.CheckpointError` naming the key and why.

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="fc")])
>>> assign_state_dict(model, {"fc.weight": np.ones((2, 4), "float32"), "fc.bias": np.zeros(2, "float32")})
>>> tuple(model.get_layer("fc").kernel.shape)
(4, 2)
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import h5py
import keras
import numpy as np

from kapps.errors import CheckpointError
from kapps.utils.files import atomic_path
from kapps.utils.layers import leaf_layers, set_layer_weights
from kapps.weights.h5io import read_weight_file

__all__ = ["TORCH_PARAMETERS", "keras_name", "assign_state_dict", "write_weights", "convert_state_dict"]

#: Keras weight name -> the torch parameter (or buffer) name of the same module that holds it.
TORCH_PARAMETERS: dict[str, str] = {
    "kernel": "weight", "depthwise_kernel": "weight", "bias": "bias",
    "gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var",
}


#: Keys that are bookkeeping, not weights: BatchNorm's step counter, Swin's bias index (a function
#: of the window size).
IGNORED_PARAMETERS = frozenset({"num_batches_tracked", "relative_position_index"})
#: Packed or renamed torch parameters: ``{parameter: (sub-module, parameter)}``.
PACKED_PARAMETERS = {"in_proj_weight": ("in_proj", "weight"), "in_proj_bias": ("in_proj", "bias")}
#: torchvision's legacy ``MLPBlock`` module names and the ``MLP`` positions that replaced them.
LEGACY_MODULES = {"linear_1": "0", "linear_2": "3"}


def _module_and_parameter(key: str) -> tuple[str, str]:
    """A state-dict key as (torch module path, parameter name), packed and legacy names resolved.

    >>> _module_and_parameter("encoder.layers.encoder_layer_0.self_attention.in_proj_weight")
    ('encoder.layers.encoder_layer_0.self_attention.in_proj', 'weight')
    >>> _module_and_parameter("encoder.layers.encoder_layer_0.mlp.linear_2.bias")
    ('encoder.layers.encoder_layer_0.mlp.3', 'bias')
    """
    module, _, parameter = key.rpartition(".")
    if parameter in PACKED_PARAMETERS:
        sub, parameter = PACKED_PARAMETERS[parameter]
        module = f"{module}.{sub}" if module else sub
    parent, _, last = module.rpartition(".")
    if last in LEGACY_MODULES and parent.endswith("mlp"):
        module = f"{parent}.{LEGACY_MODULES[last]}"
    return module, parameter


def keras_name(torch_module: str) -> str:
    """The Keras layer name of a torch module path.

    >>> keras_name("layer1.0.downsample.0")
    'layer1_0_downsample_0'
    """
    return torch_module.replace(".", "_")


def _to_torch_shape(weight: str, shape: tuple) -> tuple:
    """The torch shape of a Keras weight of ``shape`` (see the module's table)."""
    if weight == "depthwise_kernel":
        kh, kw, channels, multiplier = shape
        return (channels * multiplier, 1, kh, kw)
    if weight == "kernel" and len(shape) == 4:
        kh, kw, fan_in, fan_out = shape
        return (fan_out, fan_in, kh, kw)
    if weight == "kernel" and len(shape) == 2:
        return (shape[1], shape[0])
    return tuple(shape)


def _to_keras(weight: str, array: np.ndarray, shape: tuple) -> np.ndarray:
    """A torch tensor (already checked to have the torch shape of ``shape``) in Keras' layout."""
    if weight == "depthwise_kernel":
        kh, kw, channels, multiplier = shape
        return array.reshape(channels, multiplier, kh, kw).transpose(2, 3, 0, 1)
    if weight == "kernel" and array.ndim == 4:
        return array.transpose(2, 3, 1, 0)
    if weight == "kernel" and array.ndim == 2:
        return array.T
    return array


def _short(variable: Any) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _listed(items: list[str], limit: int = 10) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def assign_state_dict(model: keras.Model, state: Mapping[str, np.ndarray], source: str = "checkpoint") -> None:
    """Set every weighted layer of ``model`` from the torch ``state`` (``{key: array}``).

    Every weight of the model must come from a key and every key must be used (but
    ``num_batches_tracked``); otherwise nothing is assigned and a
    :class:`~kapps.errors.CheckpointError` lists each missing key, unexpected key and shape
    mismatch (``source`` names the checkpoint in the message).
    """
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, array in state.items():
        module, parameter = _module_and_parameter(key)
        if parameter in IGNORED_PARAMETERS:
            continue
        modules.setdefault(module, {})[parameter] = np.asarray(array)
    whole_keys = {keras_name(f"{m}.{p}" if m else p): (m, p) for m, params in modules.items() for p in params}
    by_layer: dict[str, str] = {}
    clashes = []
    for module in modules:
        name = keras_name(module)
        if name in by_layer:
            clashes.append(f"'{by_layer[name]}' and '{module}' both name layer '{name}'")
        by_layer[name] = module
    missing, wrong, assignments, used = [], [], [], set()
    for layer in leaf_layers(model):
        module = by_layer.get(layer.name)
        whole = whole_keys.get(layer.name) if module is None and len(layer.weights) == 1 else None
        found: list[tuple[Any, str, str, np.ndarray]] = []
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        for variable in layer.weights:
            weight = _short(variable)
            weight = "depthwise_kernel" if depthwise and weight == "kernel" else weight
            owner, parameter = whole if whole else (module, TORCH_PARAMETERS.get(weight, weight))
            key = f"{owner}.{parameter}" if owner else parameter
            if owner is None or parameter not in modules.get(owner, {}):
                shown = key if owner is not None else f"{layer.name.replace('_', '.')}.{parameter}"
                missing.append(f"'{shown}' (for layer '{layer.name}', weight '{weight}')")
                continue
            used.add(key)
            found.append((variable, weight, key, modules[owner][parameter]))
        if len(found) != len(layer.weights):
            continue
        adapt = getattr(layer, "adapt_weights", None)
        if adapt is not None:  # e.g. ViT's position embedding of another grid (already in Keras' layout)
            adapted = adapt([array for _, _, _, array in found])
            found = [(v, w, k, a) for (v, w, k, _), a in zip(found, adapted)]
        arrays = []
        for variable, weight, key, array in found:
            expected = _to_torch_shape(weight, tuple(variable.shape))
            if tuple(array.shape) != expected:
                wrong.append(f"key '{key}': shape {tuple(array.shape)} in the checkpoint, but layer "
                             f"'{layer.name}' needs {expected}")
                continue
            arrays.append(_to_keras(weight, array, tuple(variable.shape)).astype(variable.dtype))
        if len(arrays) == len(layer.weights):
            assignments.append((layer, arrays))
    unexpected = sorted(key for key in (f"{m}.{p}" if m else p for m, params in modules.items() for p in params)
                        if key not in used)
    if missing or wrong or unexpected or clashes:
        lines = [f"{source} does not fit model {model.name!r}:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {_listed(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys, no layer of the model takes them ({len(unexpected)}): "
                         f"{_listed([repr(k) for k in unexpected])}")
        lines += [f"  shape mismatch: {w}" for w in wrong[:10]]
        lines += [f"  name clash: {c}" for c in clashes[:10]]
        raise CheckpointError("\n".join(lines))
    for layer, arrays in assignments:
        set_layer_weights(layer, arrays)


def write_weights(model: keras.Model, path: str | os.PathLike, attributes: Mapping[str, str] | None = None) -> str:
    """``model.save_weights`` into ``path`` (a ``.weights.h5``) atomically, with ``attributes``
    written on the file's root; the temp file is read back (every weighted layer, by name)
    before it replaces ``path``."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"`out` must end in '.weights.h5' (a Keras 3 weights file). Received: out={path!r}")
    names = {layer.name for layer in leaf_layers(model)}

    def check(tmp: str) -> None:
        stored = read_weight_file(tmp)
        if not names <= set(stored):
            raise OSError(f"{tmp!r}: wrote {len(names & set(stored))} of {len(names)} layers")

    with atomic_path(path, verify=check, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
        with h5py.File(tmp, "a") as f:
            for key, value in (attributes or {}).items():
                f.attrs[key] = value
    return path


def convert_state_dict(state: Mapping[str, np.ndarray], model: keras.Model, out: str | os.PathLike, *,
                       source: str = "checkpoint", attributes: Mapping[str, str] | None = None) -> str:
    """:func:`assign_state_dict` then :func:`write_weights`; returns ``out``."""
    assign_state_dict(model, state, source)
    return write_weights(model, out, attributes)

