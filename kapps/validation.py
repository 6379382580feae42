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


def fail(argument: str, value: Any, accepted: str, context: str = "") -> None:
    """Raise kapps' ValueError, the one wording of every argument check: the argument, what it
    must be, the value received."""
    prefix = f"{context}: " if context else ""
    raise ValueError(f"{prefix}`{argument}` must be {accepted}. Received: {argument}={value!r}")


def check_choice(argument: str, value: Any, choices: tuple, context: str = "") -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        fail(argument, value, "one of " + ", ".join(repr(c) for c in choices), context)


def check_bool(argument: str, value: Any, context: str = "") -> None:
    """``value`` is True or False (not 0/1, not None)."""
    if not isinstance(value, bool):
        fail(argument, value, "True or False", context)


def check_positive_int(argument: str, value: Any, context: str = "") -> None:
    """``value`` is an int > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(argument, value, "a positive integer", context)


def check_non_negative_int(argument: str, value: Any, context: str = "") -> None:
    """``value`` is an int >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        fail(argument, value, "an integer >= 0", context)


def check_weights(weights: Any, argument: str = "weights") -> None:
    """``weights`` (the argument ``argument``) is None, ``"imagenet"`` or the path of an existing file."""
    if weights is None or weights == "imagenet":
        return
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return
    detail = " (no such file)" if isinstance(weights, (str, os.PathLike)) else ""
    fail(argument, weights, "None (random initialization), 'imagenet' (pre-training on ImageNet) "
         f"or the path to an existing weights file{detail}")


def check_classes(classes: Any, include_top: bool, weights: Any) -> None:
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        fail("classes", classes, "a positive integer")
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


#: Families keras.applications builds only channels-last (it refuses channels_first).
CHANNELS_LAST_ONLY = {"convnext": "ConvNeXt", "densenet": "DenseNet", "nasnet": "NASNet",
                      "vision_transformer": "ViT", "swin_transformer": "Swin"}


def check_data_format(family: str = "") -> None:
    """The global image data format is one Keras knows and, for some families, channels-last.

    The refusal is keras.applications' own (ConvNeXt, DenseNet and NASNet).
    """
    data_format = keras.config.image_data_format()
    if data_format not in ("channels_first", "channels_last"):
        fail("keras.config.image_data_format()", data_format, "'channels_first' or 'channels_last'")
    if data_format == "channels_first" and family in CHANNELS_LAST_ONLY:
        raise ValueError(
            f"{CHANNELS_LAST_ONLY[family]} does not support the `channels_first` image data format. "
            "Switch to `channels_last` with keras.config.set_image_data_format('channels_last') "
            "(or in ~/.keras/keras.json). Received: image_data_format='channels_first'"
        )


def to_channels_last(shape: tuple, data_format: str) -> tuple:
    """``(channels, rows, cols)`` to ``(rows, cols, channels)`` when ``data_format`` is channels_first."""
    return (*shape[1:], shape[0]) if data_format == "channels_first" else tuple(shape)


def from_channels_last(shape: tuple, data_format: str) -> tuple:
    """``(rows, cols, channels)`` in ``data_format``'s order."""
    return (shape[-1], *shape[:-1]) if data_format == "channels_first" else tuple(shape)


def _layout(data_format: str) -> str:
    return "(channels, rows, cols)" if data_format == "channels_first" else "(rows, cols, channels)"


def _as_shape(input_shape: Any, data_format: str) -> tuple:
    """``input_shape`` as a tuple of three int-or-None, in channels-last order."""
    accepted = f"a tuple of three integers {_layout(data_format)}"
    try:
        shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        fail("input_shape", input_shape, accepted)
    if len(shape) != 3:
        fail("input_shape", input_shape, accepted)
    return to_channels_last(shape, data_format)


def resolve_input_shape(
    input_shape: Any,
    input_tensor: Any,
    *,
    default_size: int | None,
    min_size: int,
    include_top: bool,
    weights: Any,
    channels: int = 3,
    fixed_size_top: bool = True,
    data_format: str | None = None,
) -> tuple:
    """The model's input shape in ``data_format`` order (default: the global one), validated.

    Rules (keras.applications'): with ImageNet weights the input has 3 channels and is
    at least ``min_size`` square-ish pixels; with the ImageNet top the shape must be the
    default one; a top needs a static size; without a shape the default is used with
    a top, ``(None, None, 3)`` (or ``(3, None, None)``) without.

    >>> resolve_input_shape(None, None, default_size=224, min_size=32, include_top=True,
    ...                     weights=None, data_format="channels_first")
    (3, 224, 224)
    """
    data_format = data_format or keras.config.image_data_format()
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        shape = (default_size, default_size, channels) if include_top else (None, None, channels)
        if include_top and default_size is None:
            fail("input_shape", input_shape, f"a static size {_layout(data_format)} when include_top=True")
        return from_channels_last(shape, data_format)
    shape = _as_shape(input_shape, data_format)
    _check_shape(shape, input_shape, default_size, min_size, include_top, weights, fixed_size_top, data_format)
    return from_channels_last(shape, data_format)


def _check_shape(shape: tuple, given: Any, default_size: int | None, min_size: int, include_top: bool,
                 weights: Any, fixed_size_top: bool, data_format: str) -> None:
    """The checks of :func:`resolve_input_shape` on a channels-last ``shape``."""
    rows, cols, chans = shape
    if weights == "imagenet" and chans != 3:
        fail("input_shape", given, "3-channel " + _layout(data_format).replace("channels", "3")
              + " when weights='imagenet'")
    if chans is None or chans < 1:
        fail("input_shape", given, "a shape with a known, positive channel count")
    for size in (rows, cols):
        if size is not None and size < min_size:
            fail("input_shape", given, f"at least {min_size}x{min_size} pixels for this model")
    if include_top and (rows is None or cols is None):
        fail("input_shape", given, "a static size (no None) when include_top=True")
    default_shape = (default_size, default_size, 3)
    if weights == "imagenet" and include_top and fixed_size_top and shape != default_shape:
        fail(
            "input_shape", given,
            f"{from_channels_last(default_shape, data_format)} when include_top=True and weights='imagenet' "
            "(use include_top=False for other sizes)",
        )


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
    check_choice("builder", builder, BUILDERS)
    if not isinstance(include_top, bool):
        fail("include_top", include_top, "True or False")
    check_weights(weights)
    check_classes(classes, include_top, weights)
    check_choice("pooling", pooling, POOLING_CHOICES)
    check_classifier_activation(classifier_activation, include_top, weights)
    check_input_tensor(input_tensor, builder)


def check_features(features_only: Any, out_indices: Any, pooling: Any, aux_classifiers: bool = False) -> None:
    """``features_only`` is a bool; ``out_indices`` and ``pooling`` fit it (levels are checked
    by :func:`check_out_indices` once the model's levels are known)."""
    check_bool("features_only", features_only)
    if not features_only and out_indices is not None:
        fail("out_indices", out_indices, "None unless features_only=True (it picks feature levels)")
    if features_only and pooling is not None:
        fail("pooling", pooling, "None with features_only=True (feature maps are not pooled)")
    if features_only and aux_classifiers:
        fail("aux_classifiers", aux_classifiers, "False with features_only=True (they are classifier heads)")


def check_out_indices(out_indices: Any, reductions: list[int], model: str) -> list[int]:
    """The chosen level positions, shallow to deep: ``out_indices`` (None: every level), each an
    int in ``[-n, n)`` for a model with ``n`` levels, no level twice.

    >>> check_out_indices((-1, 0), [2, 4, 8], "m")
    [0, 2]
    >>> check_out_indices((3,), [2, 4, 8], "m")
    Traceback (most recent call last):
    ...
    ValueError: m: `out_indices` must be distinct level indices in [-3, 3) (its levels are reductions 2, 4, 8). Received: out_indices=(3,)
    """
    count = len(reductions)
    if out_indices is None:
        return list(range(count))
    accepted = (f"distinct level indices in [-{count}, {count}) "
                f"(its levels are reductions {', '.join(map(str, reductions))})")
    if isinstance(out_indices, (str, bytes)) or not hasattr(out_indices, "__iter__"):
        fail("out_indices", out_indices, accepted, model)
    chosen = list(out_indices)
    if not chosen or any(not isinstance(i, int) or isinstance(i, bool) or not -count <= i < count for i in chosen):
        fail("out_indices", out_indices, accepted, model)
    positions = sorted(i % count for i in chosen)
    if len(set(positions)) != len(positions):
        fail("out_indices", out_indices, accepted, model)
    return positions


def check_in(argument: str, value: Any, allowed: tuple, reason: str) -> None:
    """``value`` must be one of ``allowed`` (``reason`` says why, e.g. 'with ImageNet weights')."""
    if value not in allowed:
        fail(argument, value, "one of " + ", ".join(repr(a) for a in allowed) + f" {reason}".rstrip())


Check = Callable[..., None]


def obtain_input_shape(
    input_shape: Any,
    default_size: int | None,
    min_size: int,
    data_format: str,
    require_flatten: bool,
    weights: Any = None,
) -> tuple:
    """keras.applications' input-shape rule (``imagenet_utils.obtain_input_shape``) on kapps' checks.

    ``require_flatten`` is ``include_top``; the shape is in ``data_format`` order.

    >>> obtain_input_shape(None, None, 32, "channels_first", require_flatten=False)
    (3, None, None)
    """
    from kapps.imagenet import resolve_data_format

    return resolve_input_shape(
        input_shape, None, default_size=default_size, min_size=min_size, include_top=require_flatten,
        weights=weights, data_format=resolve_data_format(data_format),
    )
