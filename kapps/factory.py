"""The one code path every model constructor goes through.

It validates the standard keras.applications arguments once for all families, picks
the input shape, asks the family's spec for its blocks, hands them to the chosen
builder, and loads weights (official files by manifest, or a user file by path).
Constructors call it as ``build_model(**SPEC.bind(locals()))`` (see
:mod:`kapps.registry` for why).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import keras

from kapps import features, validation
from kapps.blocks.heads import PoolingHead
from kapps.blocks.naming import reserved_names
from kapps.builders import build_functional, build_sequential
from kapps.errors import WeightsMismatchError
from kapps.registry import ModelSpec, Options
from kapps.weights import converted, h5io, manifest, store


def imagenet_file(spec: ModelSpec, options: Mapping, input_shape: tuple, include_top: bool) -> manifest.WeightFile:
    """The manifest entry ``weights='imagenet'`` needs; refuses combinations with no file."""
    return manifest.find(spec.name, include_top, spec.weights_variant(options, input_shape))


def build_model(
    spec: ModelSpec,
    options: Mapping[str, Any],
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
    features_only: bool = False,
    out_indices: Any = None,
) -> keras.Model:
    """Build ``spec`` with the keras.applications arguments (see any model's docstring).

    ``features_only=True`` returns the feature model (:mod:`kapps.features`): the body
    without a head, built and loaded as ``include_top=False``.
    """
    validation.check_features(features_only, out_indices, pooling)
    if features_only and not spec.multi_scale:
        validation.fail("features_only", features_only, f"False for {spec.keras_name}: it computes one sequence of "
                        "tokens, not feature maps at several scales (include_top=False gives the sequence)")
    include_top = include_top and not features_only
    options = spec.options_of(options)
    weights = options.named_weights(weights)  # "imagenet-i224" (ResNet-RS) -> "imagenet"; options hold the file
    if weights == "imagenet" and not manifest.model_entry(spec.name).get("imagenet"):
        manifest.find(spec.name, include_top)  # raises first: the model has no official ImageNet weights
    validation.check_common(
        include_top=include_top, weights=weights, input_tensor=input_tensor, pooling=pooling,
        classes=classes, classifier_activation=classifier_activation, builder=builder,
    )
    options.check(weights)
    validation.check_data_format(spec.family)
    data_format = keras.config.image_data_format()
    input_layout = input_shape_of(spec, options, input_shape, input_tensor, include_top, weights)
    shape = validation.to_channels_last(input_layout, data_format)  # what specs see: (rows, cols, channels)
    entry = imagenet_file(spec, options, shape, include_top) if weights == "imagenet" else None
    user_layers = _input_graph_names(input_tensor)
    with reserved_names(user_layers):  # reproduced auto-names skip the user's (as Keras' counter does)
        blocks = spec.body(options, shape)
        if not features_only:
            blocks += head_blocks(spec, options, include_top, pooling, classes, classifier_activation)
    model_name = name if name is not None else spec.default_model_name(options, shape, weights)
    if builder == "functional":
        inputs = input_tensor if input_tensor is not None else keras.Input(shape=input_layout)
        model = build_functional(blocks, inputs, model_name, input_tensor)
    else:
        model = build_sequential(blocks, input_layout, model_name)

    try:
        if entry is not None:
            h5io.load_weights_by_name(model, imagenet_path(spec, options, entry), exclude=user_layers)
        elif weights is not None:
            h5io.load_weights_by_name(model, os.fspath(weights), exclude=user_layers)
    except WeightsMismatchError as error:
        raise _with_width_hint(error, options) from None
    if features_only:
        return features.feature_model(model, out_indices=out_indices, name=model_name, builder=builder,
                                      model_name=spec.keras_name)
    return model


def imagenet_path(spec: ModelSpec, options: Options, entry: manifest.WeightFile) -> str:
    """A local Keras weight file for ``entry``: the official file itself, or (a torchvision
    checkpoint) the file converted from it once, for the full network of ``spec``."""
    if not entry.is_checkpoint:
        return store.resolve(entry)
    return converted.resolve_converted(entry, lambda: build_model(
        spec, options, input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None,
        classes=1000, classifier_activation=None, name=None, builder="functional"))


def _with_width_hint(error: WeightsMismatchError, options: Options) -> WeightsMismatchError:
    """``error`` naming the ``alpha`` that fits, when the file is the model at another width."""
    alpha = options.get("alpha") if isinstance(options, Mapping) else None
    if error.width_ratio is None or not isinstance(alpha, (int, float)):
        return error
    fits = round(alpha * error.width_ratio, 3)
    return WeightsMismatchError(f"{error}\n  the file fits alpha={fits:g} (the model was built with "
                                f"alpha={alpha:g}): pass alpha={fits:g}", width_ratio=error.width_ratio)


def _input_graph_names(input_tensor: Any) -> frozenset[str]:
    """Names of the layers of the user's graph that ends in ``input_tensor`` (empty without one)."""
    if input_tensor is None:
        return frozenset()
    graph = keras.Model(keras.utils.get_source_inputs(input_tensor), input_tensor)
    return frozenset(layer.name for layer in graph.layers)


def input_shape_of(spec: ModelSpec, options: Options, input_shape: Any, input_tensor: Any, include_top: bool,
                   weights: Any) -> tuple:
    """The model's input shape, in the global data format: the requested one, checked, or the spec's default.

    Specs see shapes as ``(rows, cols, channels)`` whatever the data format.
    """
    data_format = keras.config.image_data_format()
    requested = _channels_last(input_shape if input_shape is not None else _tensor_shape(input_tensor), data_format)
    if spec.static_input:
        static = static_input_shape(spec, input_shape, requested, include_top)
        input_shape = static if static is input_shape else validation.from_channels_last(static, data_format)
    return validation.resolve_input_shape(
        input_shape, input_tensor, default_size=spec.default_size_for(options, requested), min_size=spec.min_size,
        include_top=include_top, weights=weights, channels=spec.input_channels, fixed_size_top=spec.fixed_size_top,
        data_format=data_format,
    )


def static_input_shape(spec: ModelSpec, input_shape: Any, requested: Any, include_top: bool) -> Any:
    """For a ``static_input`` spec: the default size without a top, and no unknown sizes.

    keras.applications builds NASNet on an input of unknown size (NASNetLarge without a top
    and without ``input_shape``) but the model cannot run: the cells compare the two
    inputs' sizes to choose how to adjust them. kapps uses the default size instead,
    and refuses an explicit unknown size.
    """
    if requested is None and not include_top:
        return (spec.default_size, spec.default_size, spec.input_channels)
    if isinstance(requested, (tuple, list)) and len(requested) == 3 and (requested[0] is None or requested[1] is None):
        raise ValueError(
            f"`input_shape` must be static (no None entries): {spec.keras_name} matches the sizes of its layers' "
            f"inputs when the model is built. Received: input_shape={tuple(requested)}"
        )
    return input_shape


def head_blocks(spec: ModelSpec, options: Options, include_top: bool, pooling: Any, classes: int,
                classifier_activation: Any) -> list:
    """The blocks after the body: the classifier, the family's no-top head, or plain pooling."""
    if include_top:
        return [spec.top(options, classes, classifier_activation)]
    if spec.no_top is not None:
        head = spec.no_top(options, pooling)
        return [] if head is None else [head]
    return [] if pooling is None else [PoolingHead(pooling)]


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
        stacklevel=7,  # the constructor (through the options' and the spec's weights_variant)
    )
    return fallback
