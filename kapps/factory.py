"""The one code path every model constructor goes through.

It validates the standard keras.applications arguments once for all families, picks
the input shape, asks the family's spec for its blocks, hands them to the chosen
builder, and loads weights (official files by manifest, or a user file by path).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import keras

from kapps import validation
from kapps.blocks.heads import PoolingHead
from kapps.blocks.naming import reserved_names
from kapps.builders import build_functional, build_sequential
from kapps.registry import ModelSpec
from kapps.weights import h5io, manifest, store


def imagenet_file(spec: ModelSpec, options: dict, input_shape: tuple, include_top: bool) -> manifest.WeightFile:
    """The manifest entry ``weights='imagenet'`` needs; refuses combinations with no file."""
    return manifest.find(spec.name, include_top, spec.weights_variant(options, input_shape))


def build_model(
    spec: ModelSpec,
    options: dict[str, Any],
    *,
    input_shape: Any,
    include_top: bool,
    weights: Any,
    input_tensor: Any,
    pooling: Any,
    classes: int,
    classifier_activation: Any,
    name: str | None,
    builder: str,
) -> keras.Model:
    """Build ``spec`` with the keras.applications arguments (see any model's docstring)."""
    validation.check_common(
        include_top=include_top, weights=weights, input_tensor=input_tensor, pooling=pooling,
        classes=classes, classifier_activation=classifier_activation, builder=builder,
    )
    spec.check_options(options, weights)
    data_format = keras.config.image_data_format()
    validation.check_data_format(spec.family)
    given = input_shape if input_shape is not None else _tensor_shape(input_tensor)
    default_size = spec.default_size_for(_channels_last(given, data_format)) \
        if spec.default_size_for else spec.default_size
    input_layout = validation.resolve_input_shape(
        input_shape, input_tensor, default_size=default_size, min_size=spec.min_size,
        include_top=include_top, weights=weights, channels=spec.input_channels,
        fixed_size_top=spec.fixed_size_top, data_format=data_format,
    )
    shape = validation.to_channels_last(input_layout, data_format)  # what specs see: (rows, cols, channels)
    entry = imagenet_file(spec, options, shape, include_top) if weights == "imagenet" else None

    user_layers = _input_graph_names(input_tensor)
    with reserved_names(user_layers):  # reproduced auto-names skip the user's (as Keras' counter does)
        blocks = _blocks(spec, options, shape, include_top, classes, classifier_activation, pooling)
    model_name = name if name is not None else spec.default_model_name(options, shape, weights)
    if builder == "functional":
        inputs = input_tensor if input_tensor is not None else keras.Input(shape=input_layout)
        model = build_functional(blocks, inputs, model_name, input_tensor)
    else:
        model = build_sequential(blocks, input_layout, model_name)

    if entry is not None:
        h5io.load_weights_by_name(model, store.resolve(entry), exclude=user_layers)
    elif weights is not None:
        h5io.load_weights_by_name(model, os.fspath(weights), exclude=user_layers)
    return model


def _blocks(spec: ModelSpec, options: dict, shape: tuple, include_top: bool, classes: int,
            classifier_activation: Any, pooling: Any) -> list:
    """The spec's body, then its top (or its no-top head, or a pooling head)."""
    blocks = list(spec.body(options, shape))
    if include_top:
        blocks.append(spec.top(options, classes, classifier_activation))
    elif spec.no_top is not None:
        head = spec.no_top(options, pooling)
        if head is not None:
            blocks.append(head)
    elif pooling is not None:
        blocks.append(PoolingHead(pooling))
    return blocks


def _input_graph_names(input_tensor: Any) -> frozenset[str]:
    """Names of the layers of the user's graph that ends in ``input_tensor`` (empty without one)."""
    if input_tensor is None:
        return frozenset()
    graph = keras.Model(keras.utils.get_source_inputs(input_tensor), input_tensor)
    return frozenset(layer.name for layer in graph.layers)


def _tensor_shape(input_tensor: Any) -> Any:
    return None if input_tensor is None else tuple(input_tensor.shape[1:])


def _channels_last(shape: Any, data_format: str) -> Any:
    """A user's 3-d shape in (rows, cols, channels) order; anything else as it is (validated later)."""
    if isinstance(shape, (tuple, list)) and len(shape) == 3:
        return validation.to_channels_last(tuple(shape), data_format)
    return shape


def nearest_weights_size(rows: Any, cols: Any, sizes: tuple[int, ...], fallback: int = 224) -> int:
    """The resolution whose ImageNet file to use; Keras' rule: non-listed sizes use 224.

    Without a top the convolution weights do not depend on the input size, so a
    square listed size picks its own file and any other size the ``fallback`` file.
    """
    if rows == cols and rows in sizes:
        return rows
    if rows is None and cols is None:  # any size: the default file fits without a top
        return fallback
    warnings.warn(
        f"`input_shape` is non-square or not one of {sizes}; weights for input shape "
        f"({fallback}, {fallback}) will be loaded.",
        stacklevel=4,
    )
    return fallback
