"""Argument checks shared by every model constructor, written once.

Every error names the argument, the value received and what is accepted, in the
words of keras.applications' documentation.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import keras

from kapps.blocks.heads import POOLING_CHOICES
from kapps.builders import BUILDERS


def _fail(argument: str, value: Any, accepted: str, context: str = "") -> None:
    prefix = f"{context}: " if context else ""
    raise ValueError(f"{prefix}`{argument}` must be {accepted}. Received: {argument}={value!r}")


def check_choice(argument: str, value: Any, choices: tuple, context: str = "") -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        _fail(argument, value, "one of " + ", ".join(repr(c) for c in choices), context)


def check_weights(weights: Any) -> None:
    """``weights`` is None, ``"imagenet"`` or the path of an existing file."""
    if weights is None or weights == "imagenet":
        return
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return
    detail = " (no such file)" if isinstance(weights, (str, os.PathLike)) else ""
    raise ValueError(
        "`weights` must be None (random initialization), 'imagenet' (pre-training on ImageNet) "
        f"or the path to an existing weights file{detail}. Received: weights={weights!r}"
    )


def check_classes(classes: Any, include_top: bool, weights: Any) -> None:
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        _fail("classes", classes, "a positive integer")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            "`classes` must be 1000 when using weights='imagenet' with include_top=True "
            "(the ImageNet classifier has 1000 outputs; use include_top=False and your own head, "
            f"or kapps.fine_tune, for other class counts). Received: classes={classes!r}"
        )


def check_classifier_activation(activation: Any, include_top: bool, weights: Any) -> None:
    """Pretrained classifiers accept only ``"softmax"`` or None (logits)."""
    if not include_top or weights is None:
        return
    if activation in ("softmax", None) or activation is keras.activations.softmax:
        return
    raise ValueError(
        "`classifier_activation` must be 'softmax' or None when loading pretrained weights "
        f"with include_top=True. Received: classifier_activation={activation!r}"
    )


def check_input_tensor(input_tensor: Any, builder: str) -> None:
    if input_tensor is None:
        return
    if not keras.backend.is_keras_tensor(input_tensor):
        raise ValueError(
            "`input_tensor` must be a Keras tensor, such as the output of keras.Input(...) or of a "
            f"layer. Received: input_tensor of type {type(input_tensor).__name__}"
        )
    if builder == "sequential":
        raise ValueError(
            "`input_tensor` can only be used with builder='functional' (a Sequential model has its "
            "own single input). Received: input_tensor together with builder='sequential'"
        )


def check_data_format() -> None:
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            "kapps models are channels-last. keras.config.image_data_format() must be "
            f"'channels_last'. Received: {keras.config.image_data_format()!r}"
        )


def resolve_input_shape(
    input_shape: Any,
    input_tensor: Any,
    *,
    default_size: int,
    min_size: int,
    include_top: bool,
    weights: Any,
    channels: int = 3,
    fixed_size_top: bool = True,
) -> tuple:
    """The model's input shape ``(rows, cols, channels)``, validated.

    Rules (keras.applications'): with ImageNet weights the input has 3 channels and is
    at least ``min_size`` square-ish pixels; with the ImageNet top the shape must be the
    default one; a top needs a static size; without a shape the default is used with
    a top, ``(None, None, 3)`` without.
    """
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    pretrained = weights is not None
    default_shape = (default_size, default_size, channels)
    if input_shape is None:
        return default_shape if include_top else (None, None, channels)
    try:
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        _fail("input_shape", input_shape, "a tuple of three integers (rows, cols, channels)")
    if len(input_shape) != 3:
        _fail("input_shape", input_shape, "a tuple of three integers (rows, cols, channels)")
    rows, cols, chans = input_shape
    if weights == "imagenet" and chans != 3:
        _fail("input_shape", input_shape, "3-channel (rows, cols, 3) when weights='imagenet'")
    if chans is None or chans < 1:
        _fail("input_shape", input_shape, "a shape with a known, positive channel count")
    for size in (rows, cols):
        if size is not None and size < min_size:
            _fail("input_shape", input_shape, f"at least {min_size}x{min_size} pixels for this model")
    if include_top and (rows is None or cols is None):
        _fail("input_shape", input_shape, "a static size (no None) when include_top=True")
    if weights == "imagenet" and include_top and fixed_size_top and input_shape != default_shape:
        _fail(
            "input_shape", input_shape,
            f"{default_shape} when include_top=True and weights='imagenet' "
            "(use include_top=False for other sizes)",
        )
    return input_shape


def check_common(
    *,
    include_top: Any,
    weights: Any,
    input_tensor: Any,
    pooling: Any,
    classes: Any,
    classifier_activation: Any,
    builder: Any,
) -> None:
    """Every check that does not depend on the family."""
    check_data_format()
    check_choice("builder", builder, BUILDERS)
    if not isinstance(include_top, bool):
        _fail("include_top", include_top, "True or False")
    check_weights(weights)
    check_classes(classes, include_top, weights)
    check_choice("pooling", pooling, POOLING_CHOICES)
    check_classifier_activation(classifier_activation, include_top, weights)
    check_input_tensor(input_tensor, builder)


def check_in(argument: str, value: Any, allowed: tuple, reason: str) -> None:
    """``value`` must be one of ``allowed`` (``reason`` says why, e.g. 'with ImageNet weights')."""
    if value not in allowed:
        _fail(argument, value, "one of " + ", ".join(repr(a) for a in allowed) + f" {reason}".rstrip())


Check = Callable[..., None]
