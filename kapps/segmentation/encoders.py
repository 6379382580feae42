"""What U-Net and DeepLabV3+ share: argument checks, the encoder, freezing, placing blocks.

An encoder is a Functional ``keras.Model`` whose outputs are feature maps, shallow to deep,
with ``feature_info`` (``{"name", "channels", "reduction"}`` per output): any kapps model
built with ``features_only=True``, or :func:`plain_unet_encoder`. Segmentation models are
Functional graphs grown from the encoder's own input and outputs, so the encoder's layers
(and their names, by which ``encoder_weights`` load) are the model's.
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, Sequence

import keras

from kapps.blocks import Block, apply, conv_stack
from kapps.builders import BUILDERS
from kapps.registry import get_model, get_spec, list_models
from kapps.validation import check_bool, check_choice, check_positive_int, check_weights, fail, to_channels_last


# -- argument checks ----------------------------------------------------------------------------
def check_arguments(*, input_shape: Any, classes: Any, activation: Any, encoder_weights: Any,
                    encoder_freeze: Any, builder: Any) -> tuple[int, int, int]:
    """The checks every segmentation model makes; returns ``(rows, cols, channels)``."""
    check_choice("builder", builder, BUILDERS)
    check_positive_int("classes", classes)
    check_activation(activation)
    check_weights(encoder_weights, "encoder_weights")
    check_bool("encoder_freeze", encoder_freeze)
    return image_size(input_shape)


def check_activation(activation: Any) -> None:
    """``activation`` is None or a Keras activation (a name such as ``"softmax"``, or a function)."""
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        fail("activation", activation, "None or a Keras activation name (e.g. 'softmax', 'sigmoid')")




def image_size(input_shape: Any) -> tuple[int, int, int]:
    """``(rows, cols, channels)`` of ``input_shape`` (given in the global data format's order).

    >>> image_size((64, 48, 1))
    (64, 48, 1)
    """
    layout = "(channels, rows, cols)" if keras.config.image_data_format() == "channels_first" else \
        "(rows, cols, channels)"
    accepted = f"a tuple of three positive integers {layout}"
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or len(input_shape) != 3:
        fail("input_shape", input_shape, accepted)
    if not all(_is_positive_int(d) for d in input_shape):
        fail("input_shape", input_shape, accepted)
    return to_channels_last(tuple(int(d) for d in input_shape), keras.config.image_data_format())


def check_divisible(input_shape: Any, size: tuple, reduction: int, why: str) -> None:
    """Both sides of the image are multiples of ``reduction`` (``why`` says whose)."""
    if size[0] % reduction or size[1] % reduction:
        fail("input_shape", input_shape, f"a shape whose rows and cols are multiples of {reduction} ({why})")


def check_positive_ints(argument: str, values: Any) -> tuple[int, ...]:
    """``values`` is a non-empty sequence of positive integers; returned as a tuple.

    >>> check_positive_ints("decoder_filters", [64, 32])
    (64, 32)
    """
    valid = isinstance(values, Sequence) and not isinstance(values, (str, bytes)) and len(values) > 0
    if not valid or not all(_is_positive_int(v) for v in values):
        fail(argument, values, "a non-empty sequence of positive integers")
    return tuple(int(v) for v in values)


def _is_positive_int(value: Any) -> bool:
    """An integer (Python's or NumPy's, not a bool) of at least 1."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def resolve_backbone(backbone: Any) -> str:
    """The registry name of ``backbone`` (a registry or Keras model name); close names when unknown.

    >>> resolve_backbone("MobileNetV2")
    'mobilenet_v2'
    """
    if not isinstance(backbone, str):
        raise TypeError("`backbone` must be a model name (see kapps.list_models()) or None. "
                        f"Received: backbone={backbone!r} of type {type(backbone).__name__}")
    try:
        return get_spec(backbone).name
    except (ValueError, KeyError):
        names = list_models()
        close = difflib.get_close_matches(backbone.lower(), names, n=5, cutoff=0.5)
        hint = f" Close names: {', '.join(map(repr, close))}." if close else ""
        raise ValueError("`backbone` must be a registered model (see kapps.list_models()) or None. "
                         f"Received: backbone={backbone!r}.{hint}") from None


# -- encoders -----------------------------------------------------------------------------------
def build_encoder(backbone: str, input_shape: Any, encoder_weights: Any, builder: str) -> keras.Model:
    """The ``features_only`` model of ``backbone`` (a registry name), weights loaded."""
    return get_model(backbone, features_only=True, weights=encoder_weights, input_shape=tuple(input_shape),
                     builder=builder)


#: The plain U-Net (Ronneberger et al. 2015): filters of the four down stages and of the bottleneck.
PLAIN_ENCODER_FILTERS = (64, 128, 256, 512)
PLAIN_BOTTLENECK_FILTERS = 1024


def plain_unet_encoder(input_shape: tuple, builder: str) -> keras.Model:
    """The paper's contracting path: four stages of two 3x3 conv-BN-ReLU, each then 2x2 max pooling,
    and a bottleneck of two 3x3 conv-BN-ReLU (1024). Outputs the stages' pre-pooling maps
    (reductions 1, 2, 4, 8) and the bottleneck's (16).

    >>> encoder = plain_unet_encoder((32, 32, 1), "functional")
    >>> [(level["channels"], level["reduction"]) for level in encoder.feature_info]
    [(64, 1), (128, 2), (256, 4), (512, 8), (1024, 16)]
    """
    inputs = keras.Input(shape=tuple(input_shape))
    x, features, info = inputs, [], []
    for i, filters in enumerate((*PLAIN_ENCODER_FILTERS, PLAIN_BOTTLENECK_FILTERS), start=1):
        if features:
            pool = keras.layers.MaxPooling2D(2, name=f"encoder_stage{i - 1}_pool")
            x = pool(x)
        prefix = f"encoder_stage{i}_" if i <= len(PLAIN_ENCODER_FILTERS) else "bottleneck_"
        stage = conv_stack(filters, prefix)
        x = place(stage, x, builder)
        features.append(x)
        tap = stage.parts[-1].act.name if builder == "functional" else stage.name
        info.append({"name": tap, "channels": filters, "reduction": 2 ** (i - 1)})
    encoder = keras.Model(inputs, features, name="unet_encoder")
    encoder.feature_info = tuple(info)
    return encoder


def levels(encoder: keras.Model) -> dict[int, Any]:
    """``{reduction: feature tensor}`` of an encoder."""
    return {info["reduction"]: tensor for info, tensor in zip(encoder.feature_info, encoder.outputs)}


def freeze(encoder: keras.Model) -> None:
    """Every layer of the encoder non-trainable (BatchNorm then runs in inference mode)."""
    for layer in encoder.layers:
        layer.trainable = False


def place(block: keras.layers.Layer, inputs: Any, builder: str) -> Any:
    """Apply ``block``: spread flat (``builder="functional"``) or as one layer (``"sequential"``)."""
    if builder == "sequential" and isinstance(block, Block):
        return block(inputs)
    return apply(block, inputs)


def stage_count_limit(deepest: int) -> int:
    """How many x2 upsampling stages take the deepest reduction to 1 (its power of two).

    >>> stage_count_limit(32), stage_count_limit(24)
    (5, 3)
    """
    return int(math.log2(deepest & -deepest))
