"""Reading and writing weight files by layer name.

Two layouts are read:

* the legacy Keras HDF5 layout (what Keras' bucket serves): root attribute
  ``layer_names``, one group per layer with attribute ``weight_names``; also full-model
  files that keep these under ``model_weights``;
* Keras 3 ``.weights.h5``: groups ``.../vars`` carrying the layer's ``name``
  attribute and datasets ``0``, ``1``, ...

Weights are matched to a model's layers by layer name, then by weight name
(``kernel``, ``gamma``, ...) where the file has names, else by position. Nested layers
(the blocks of a Sequential kapps model) are searched too, so one file loads into
both builders.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable

import h5py
import keras

from kapps import _keras_compat as compat
from kapps.utils.files import atomic_path
from kapps.utils.layers import leaf_layers, set_layer_weights
import numpy as np

from kapps.errors import WeightsMismatchError

LayerWeights = dict[str, list[tuple[str | None, np.ndarray]]]


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _short(weight_name: str) -> str:
    """``'conv1_bn/gamma:0'`` -> ``'gamma'``."""
    return weight_name.split("/")[-1].split(":")[0]


def read_weight_file(path: str | os.PathLike) -> LayerWeights:
    """``{layer name: [(weight name or None, array), ...]}`` from either layout."""
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f and "layer_names" in f["model_weights"].attrs else f
        if "layer_names" in group.attrs:
            return _read_legacy(group)
        if "layers" in group or "vars" in group:
            return _read_keras3(group)
    raise WeightsMismatchError(
        f"`weights` file {os.fspath(path)!r} is neither a legacy Keras HDF5 weights file (no 'layer_names') "
        "nor a Keras 3 .weights.h5 file (no 'layers' group)."
    )


def _read_legacy(group: h5py.Group) -> LayerWeights:
    result: LayerWeights = {}
    nested: LayerWeights = {}
    for layer_name in (_text(n) for n in group.attrs["layer_names"]):
        layer_group = group[layer_name]
        names = [_text(n) for n in layer_group.attrs.get("weight_names", [])]
        if names:
            result[layer_name] = [(_short(n), np.asarray(layer_group[n])) for n in names]
            # A nested model (ConvNeXt's stem is a Sequential) keeps its layers' weights in
            # one group as "<inner layer>/<weight>": expose them under the inner names too.
            for n, entry in zip(names, result[layer_name]):
                parts = n.split("/")
                if len(parts) >= 2 and parts[-2] != layer_name:
                    nested.setdefault(parts[-2], []).append(entry)
    for inner_name, entries in nested.items():
        result.setdefault(inner_name, entries)
    return result


def _read_keras3(group: h5py.Group) -> LayerWeights:
    result: LayerWeights = {}

    def visit(path: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and path.split("/")[-1] == "vars" and len(obj):
            name = _text(obj.attrs.get("name", path.split("/")[-2]))
            keys = sorted(obj.keys(), key=int)
            result[name] = [(None, np.asarray(obj[k])) for k in keys]

    group.visititems(visit)
    return result


def _arrays_for(layer: keras.layers.Layer, stored: list[tuple[str | None, np.ndarray]]) -> list[np.ndarray]:
    wanted = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
    names = [n for n, _ in stored]
    if all(names) and sorted(names) == sorted(wanted):
        by_name = dict(stored)
        return [by_name[n] for n in wanted]
    return [a for _, a in stored]


_AUTO_SUFFIX = re.compile(r"_\d+$")


def _auto_base(name: str) -> str:
    return _AUTO_SUFFIX.sub("", name)


def _auto_order(name: str) -> int:
    match = _AUTO_SUFFIX.search(name)
    return 0 if match is None else int(match.group()[1:]) + 1


def _is_auto_named(layer: keras.layers.Layer) -> bool:
    """Named the way Keras names an unnamed layer (``conv2d``, ``conv2d_3``, ...)."""
    return _auto_base(layer.name) == compat.snake_case(type(layer).__name__)


def _pair_auto_named(layers: list[keras.layers.Layer], stored: LayerWeights) -> dict[str, str]:
    """Pair the model's auto-named layers with the file's, by order, where numbers differ.

    Keras numbers layers it names itself per session (``conv2d_1`` in a file saved by
    Keras 2 can be ``conv2d`` here); within one base name the order is the creation
    order, the same on both sides, so the k-th maps to the k-th. A base whose names
    agree exactly, or whose counts differ, is left to plain name matching.
    """
    pairs: dict[str, str] = {}
    by_base: dict[str, list[keras.layers.Layer]] = {}
    for layer in layers:
        if _is_auto_named(layer):
            by_base.setdefault(_auto_base(layer.name), []).append(layer)
    for base, layers in by_base.items():
        ours = sorted(layers, key=lambda l: _auto_order(l.name))
        theirs = sorted((n for n in stored if _auto_base(n) == base), key=_auto_order)
        if len(ours) == len(theirs) and [l.name for l in ours] != theirs:
            pairs.update({layer.name: name for layer, name in zip(ours, theirs)})
    return pairs


_NUMBER = re.compile(r"\d+")


def _pair_session_numbered(layers: list[keras.layers.Layer], stored: LayerWeights,
                           taken: dict[str, str]) -> dict[str, str]:
    """Pair the model's layers missing from ``stored`` with names that differ in one number only.

    tf.keras numbers some names by a per-session counter (RegNet's ``1head_dense``, ResNet-RS'
    ``stem_1_stem_conv_1``): a file saved after other models were built says ``2head_dense``.
    A missing layer is paired with the one stored name, not a name of the model, that has the
    same text and numbers but one; none or several such names: no pairing.

    >>> class L:
    ...     def __init__(self, name): self.name = name
    >>> _pair_session_numbered([L("1head_dense"), L("stem_1_conv_2")],
    ...                        {"3head_dense": [], "stem_2_conv_2": [], "stem_2_conv_3": []}, {})
    {'1head_dense': '3head_dense', 'stem_1_conv_2': 'stem_2_conv_2'}
    """
    ours = {layer.name for layer in layers} | set(taken.values())
    free = [name for name in stored if name not in ours]
    pairs: dict[str, str] = {}
    for layer in layers:
        if layer.name in stored or layer.name in taken:
            continue
        numbers, text = _NUMBER.findall(layer.name), _NUMBER.split(layer.name)
        matches = [name for name in free if _NUMBER.split(name) == text and
                   sum(a != b for a, b in zip(_NUMBER.findall(name), numbers)) == 1]
        if len(matches) == 1 and matches[0] not in pairs.values():
            pairs[layer.name] = matches[0]
    return pairs


def assign_by_name(model: keras.Model, stored: LayerWeights, source: str, exclude: Iterable[str] = ()) -> None:
    """Set every weighted layer of ``model`` from ``stored`` (``{layer name: weights}``).

    Layers of ``stored`` that the model lacks are ignored (for example the classifier of
    an include-top file loaded without top); layers of the model missing from
    ``stored`` and shape mismatches raise :class:`~kapps.errors.WeightsMismatchError`
    naming them. A layer that defines ``adapt_weights(arrays)`` fits stored weights of another
    shape to its own first (ViT's position embedding at another input size). Layers Keras named automatically are paired by order when their
    numbers differ (see :func:`_pair_auto_named`), and names tf.keras numbered by session when
    one number differs (see :func:`_pair_session_numbered`). Layers named in ``exclude`` (those of
    a user's ``input_tensor`` graph) are left as they are.
    """
    skipped = set(exclude)
    layers = [layer for layer in leaf_layers(model) if layer.name not in skipped]
    renamed = _pair_auto_named(layers, stored)
    renamed.update(_pair_session_numbered(layers, stored, renamed))
    missing, wrong, assignments, ratios = [], [], [], []
    for layer in layers:
        key = renamed.get(layer.name, layer.name)
        if key not in stored:
            missing.append(layer.name)
            continue
        arrays = _arrays_for(layer, stored[key])
        adapt = getattr(layer, "adapt_weights", None)
        if adapt is not None and len(arrays) == len(layer.weights):  # ViT's position embedding at another size
            arrays = adapt(arrays)
        if len(arrays) != len(layer.weights):
            wrong.append(f"{layer.name}: model has {len(layer.weights)} weights, {source} has {len(arrays)}")
            continue
        for variable, array in zip(layer.weights, arrays):
            if tuple(variable.shape) != tuple(array.shape):
                ratios += _channel_ratios(tuple(variable.shape), tuple(array.shape))
                wrong.append(
                    f"{layer.name}/{variable.name}: model shape {tuple(variable.shape)}, "
                    f"{source.split()[0]} shape {tuple(array.shape)}"
                )
        assignments.append((layer, arrays))
    if missing or wrong:
        lines = [f"{source} does not fit model {model.name!r}:"]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            lines.append(f"  layers missing from the {source.split()[0]} ({len(missing)}): {shown}")
        lines += [f"  shape mismatch: {w}" for w in wrong[:10]]
        ratio = _common_ratio(ratios) if wrong and not missing else None
        if ratio is not None:
            lines.append(f"  every mismatched shape is {ratio:.3g}x the model's: the file is of a "
                         f"{ratio:.3g}x {'wider' if ratio > 1 else 'narrower'} model")
        raise WeightsMismatchError("\n".join(lines), width_ratio=ratio)
    for layer, arrays in assignments:
        set_layer_weights(layer, arrays)


def _channel_ratios(model_shape: tuple, file_shape: tuple) -> list[float]:
    """file / model for each axis whose size differs (NaN for a different rank: no common factor)."""
    if len(model_shape) != len(file_shape):
        return [float("nan")]
    return [f / m for m, f in zip(model_shape, file_shape) if m != f and m > 0]


def _common_ratio(ratios: list[float]) -> float | None:
    """The one width factor behind ``ratios`` (within the rounding of channel counts), or None.

    >>> _common_ratio([0.25, 0.25, 0.2501]), _common_ratio([0.25, 2.0])
    (0.25, None)
    """
    if not ratios or any(r != r for r in ratios):
        return None
    middle = float(np.median(ratios))
    if all(abs(r - middle) <= 0.2 * middle for r in ratios):
        return round(middle, 4)
    return None


def load_weights_by_name(model: keras.Model, path: str | os.PathLike, exclude: Iterable[str] = ()) -> None:
    """Load a weight file (either layout) into ``model`` by layer name; see :func:`assign_by_name`."""
    assign_by_name(model, read_weight_file(path), f"file {os.fspath(path)!r}", exclude)


def copy_weights_by_name(source: keras.Model, target: keras.Model) -> None:
    """Copy every weighted layer of ``target`` from the same-named layer of ``source``."""
    stored = {
        layer.name: [(w.name.split("/")[-1], np.asarray(w)) for w in layer.weights] for layer in leaf_layers(source)
    }
    assign_by_name(target, stored, f"model {source.name!r}")


def write_legacy_h5(model: keras.Model, path: str | os.PathLike) -> None:
    """Write ``model``'s weights in the legacy Keras HDF5 layout (Keras' bucket files).

    Written atomically (:func:`kapps.utils.files.atomic_path`): the file is checked to
    list every layer before it replaces ``path``.
    """
    layers = list(leaf_layers(model))

    def check(tmp: str) -> None:
        with h5py.File(tmp, "r") as f:
            if len(f.attrs["layer_names"]) != len(layers):
                raise OSError(f"{tmp!r}: wrote {len(f.attrs['layer_names'])} of {len(layers)} layers")

    with atomic_path(path, verify=check, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["layer_names"] = np.array([l.name.encode("utf8") for l in layers])
            f.attrs["backend"] = keras.backend.backend().encode("utf8")
            f.attrs["keras_version"] = keras.__version__.encode("utf8")
            for layer in layers:
                group = f.create_group(layer.name)
                names = [f"{layer.name}/{w.name}".encode("utf8") for w in layer.weights]
                group.attrs["weight_names"] = np.array(names)
                for name, value in zip(names, layer.get_weights()):
                    group.create_dataset(name.decode("utf8"), data=value)
