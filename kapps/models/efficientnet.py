"""EfficientNet B0-B7 (Tan & Le 2019): MBConv stages scaled in width, depth and resolution.

One base table (B0) and, per variant, a width and a depth coefficient: channels are
``round_filters(c * width)`` (multiples of 8, never more than 10% below), repeats are
``ceil(n * depth)``. The model rescales its input itself (pixels in [0, 255]), so
:func:`preprocess_input` is the identity, as in keras.applications.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import keras

from kapps.blocks import (
    MBCONV_NAMES, Chain, ConvBNAct, DenseClassifier, MBConv, Names, make_divisible,
)
from kapps.blocks.base import channel_axis, resolve_data_format
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = [
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3",
    "EfficientNetB4", "EfficientNetB5", "EfficientNetB6", "EfficientNetB7",
    "preprocess_input", "decode_predictions",
]


class Stage(NamedTuple):
    """One row of the B0 table: ``repeats`` MBConv blocks, the first with ``strides``."""

    kernel: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float


#: Table 1 of the paper (EfficientNet-B0), as keras.applications' DEFAULT_BLOCKS_ARGS.
STAGES: tuple[Stage, ...] = (
    Stage(3, 1, 32, 16, 1, 1, 0.25),
    Stage(3, 2, 16, 24, 6, 2, 0.25),
    Stage(5, 2, 24, 40, 6, 2, 0.25),
    Stage(3, 3, 40, 80, 6, 2, 0.25),
    Stage(5, 3, 80, 112, 6, 1, 0.25),
    Stage(5, 4, 112, 192, 6, 2, 0.25),
    Stage(3, 1, 192, 320, 6, 1, 0.25),
)
STEM_FILTERS, TOP_FILTERS = 32, 1280
DROP_CONNECT_RATE = 0.2  # stochastic depth of the last block; grows linearly from 0


class Variant(NamedTuple):
    width: float
    depth: float
    size: int
    dropout: float  # before the classifier
    top1: float  # ImageNet accuracies as the Keras documentation publishes them
    top5: float
    params: int
    flops: int


VARIANTS: dict[str, Variant] = {
    "b0": Variant(1.0, 1.0, 224, 0.2, 77.1, 93.3, 5_330_571, 771_629_504),
    "b1": Variant(1.0, 1.1, 240, 0.2, 79.1, 94.4, 7_856_239, 1_373_605_664),
    "b2": Variant(1.1, 1.2, 260, 0.3, 80.1, 94.9, 9_177_569, 1_987_123_744),
    "b3": Variant(1.2, 1.4, 300, 0.3, 81.6, 95.7, 12_320_535, 3_654_282_784),
    "b4": Variant(1.4, 1.8, 380, 0.4, 82.9, 96.4, 19_466_823, 8_787_542_048),
    "b5": Variant(1.6, 2.2, 456, 0.4, 83.6, 96.7, 30_562_527, 20_532_769_504),
    "b6": Variant(1.8, 2.6, 528, 0.5, 84.0, 96.8, 43_265_143, 38_135_187_072),
    "b7": Variant(2.0, 3.1, 600, 0.5, 84.3, 97.0, 66_658_687, 75_491_768_384),
}
#: ImageNet RGB standard deviations. Keras' weight files store them as the
#: normalization *variance*; models that load those files divide once more by their
#: square root (the ``rescaling_1`` layer) to undo it.
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)

preprocess_input = family_preprocessor("none")


def round_filters(filters: int, width: float) -> int:
    """Channels scaled by ``width``, rounded to a multiple of 8 (never 10% below)."""
    return make_divisible(filters * width, 8)


def round_repeats(repeats: int, depth: float) -> int:
    """Repeats scaled by ``depth``, rounded up."""
    return int(math.ceil(depth * repeats))


def preprocessing(channels: int, imagenet_weights: bool) -> Chain:
    """Pixels [0, 255] -> [0, 1] -> per-channel normalization (keras' layer names).

    The normalization statistics are weights (zero mean, unit variance until a file
    is loaded).
    """
    layers: list = [
        keras.layers.Rescaling(1.0 / 255.0, name="rescaling"),
        keras.layers.Normalization(axis=channel_axis(resolve_data_format(None)), name="normalization"),
    ]
    if imagenet_weights:
        layers.append(keras.layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB], name="rescaling_1"))
    return Chain(layers, name="preprocessing")


def body(options: EfficientNetOptions, input_shape: tuple) -> list:
    variant = VARIANTS[options.variant]
    width, depth = variant.width, variant.depth
    blocks: list = [
        preprocessing(input_shape[2], options.imagenet_weights),
        ConvBNAct(round_filters(STEM_FILTERS, width), 3, strides=2, padding="pad_then_valid", activation="swish",
                  names=Names("", {"pad": "stem_conv_pad", "conv": "stem_conv", "bn": "stem_bn",
                                   "act": "stem_activation", "block": "stem"})),
    ]
    total = float(sum(round_repeats(stage.repeats, depth) for stage in STAGES))
    index = 0
    for i, stage in enumerate(STAGES):
        channels, filters = round_filters(stage.filters_in, width), round_filters(stage.filters_out, width)
        for j in range(round_repeats(stage.repeats, depth)):
            blocks.append(MBConv(
                channels if j == 0 else filters, filters, stage.expand_ratio, stage.strides if j == 0 else 1,
                kernel_size=stage.kernel, se_ratio=stage.se_ratio, activation="swish",
                drop_rate=DROP_CONNECT_RATE * index / total,
                names=Names(f"block{i + 1}{chr(j + 97)}_", MBCONV_NAMES),
            ))
            index += 1
    blocks.append(ConvBNAct(round_filters(TOP_FILTERS, width), 1, activation="swish", names=Names("", {
        "conv": "top_conv", "bn": "top_bn", "act": "top_activation", "block": "top"})))
    return blocks


def top(options: EfficientNetOptions, classes: int, activation: Any) -> DenseClassifier:
    return DenseClassifier(
        classes, activation=activation, dropout=VARIANTS[options.variant].dropout, pool_name="avg_pool",
    )


@dataclasses.dataclass(frozen=True)
class EfficientNetOptions(Options):
    """The variant (a key of :data:`VARIANTS`, fixed by each model) and whether ImageNet
    weights are loaded (they need the ``rescaling_1`` layer, see :data:`IMAGENET_STDDEV_RGB`)."""

    variant: str
    imagenet_weights: bool

    @classmethod
    def from_arguments(cls, values: Mapping[str, Any], standard: Mapping[str, Any]) -> "EfficientNetOptions":
        return cls(**values, imagenet_weights=standard["weights"] == "imagenet")


def efficientnet_spec(variant: str) -> ModelSpec:
    info = VARIANTS[variant]
    return ModelSpec(
        name=f"efficientnet_{variant}", keras_name=f"EfficientNet{variant.upper()}", family="efficientnet",
        body=body, top=top, default_size=info.size, min_size=32, options=EfficientNetOptions,
        fixed={"variant": variant}, params=info.params, flops=info.flops, top1=info.top1, top5=info.top5,
        reference="Tan & Le 2019, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
    )


SPECS = {f"efficientnet_{variant}": efficientnet_spec(variant) for variant in VARIANTS}


@register(SPECS["efficientnet_b0"])
def EfficientNetB0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                   classes=1000, classifier_activation="softmax", name="efficientnetb0", *,
                   builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetB0 (224 px, width x1.0, depth x1.0), with keras.applications' signature and layer names.

    The arguments are those of ``keras.applications.EfficientNetB0``. The model rescales
    and normalizes its input itself: feed pixels in [0, 255] (:func:`preprocess_input`
    is the identity). Keyword-only ``builder`` is ``"functional"`` (a flat graph, the
    default) or ``"sequential"`` (a ``keras.Sequential`` of blocks).

    >>> import kapps
    >>> kapps.EfficientNetB0(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1280)
    """
    return build_model(**SPECS["efficientnet_b0"].bind(locals()))


@register(SPECS["efficientnet_b1"])
def EfficientNetB1(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                   classes=1000, classifier_activation="softmax", name="efficientnetb1", *,
                   builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetB1 (240 px, width x1.0, depth x1.1); arguments as :func:`EfficientNetB0`.

    >>> import kapps
    >>> kapps.EfficientNetB1(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1280)
    """
    return build_model(**SPECS["efficientnet_b1"].bind(locals()))


@register(SPECS["efficientnet_b2"])
def EfficientNetB2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                   classes=1000, classifier_activation="softmax", name="efficientnetb2", *,
                   builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetB2 (260 px, width x1.1, depth x1.2); arguments as :func:`EfficientNetB0`.

    >>> import kapps
    >>> kapps.EfficientNetB2(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1408)
    """
    return build_model(**SPECS["efficientnet_b2"].bind(locals()))


@register(SPECS["efficientnet_b3"])
def EfficientNetB3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                   classes=1000, classifier_activation="softmax", name="efficientnetb3", *,
                   builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetB3 (300 px, width x1.2, depth x1.4); arguments as :func:`EfficientNetB0`.

    >>> import kapps
    >>> kapps.EfficientNetB3(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1536)
    """
    return build_model(**SPECS["efficientnet_b3"].bind(locals()))


@register(SPECS["efficientnet_b4"])
def EfficientNetB4(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                   classes=1000, classifier_activation="softmax", name="efficientnetb4", *,
                   builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetB4 (380 px, width x1.4, depth x1.8); arguments as :func:`EfficientNetB0`.

    >>> import kapps
    >>> kapps.EfficientNetB4(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1792)
    """
    return build_model(**SPECS["efficientnet_b4"].bind(locals()))


@register(SPECS["efficientnet_b5"])
def EfficientNetB5(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                   classes=1000, classifier_activation="softmax", name="efficientnetb5", *,
                   builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetB5 (456 px, width x1.6, depth x2.2); arguments as :func:`EfficientNetB0`.

    >>> import kapps
    >>> kapps.EfficientNetB5(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 2048)
    """
    return build_model(**SPECS["efficientnet_b5"].bind(locals()))


@register(SPECS["efficientnet_b6"])
def EfficientNetB6(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                   classes=1000, classifier_activation="softmax", name="efficientnetb6", *,
                   builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetB6 (528 px, width x1.8, depth x2.6); arguments as :func:`EfficientNetB0`.

    >>> import kapps
    >>> kapps.EfficientNetB6(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 2304)
    """
    return build_model(**SPECS["efficientnet_b6"].bind(locals()))


@register(SPECS["efficientnet_b7"])
def EfficientNetB7(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                   classes=1000, classifier_activation="softmax", name="efficientnetb7", *,
                   builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetB7 (600 px, width x2.0, depth x3.1); arguments as :func:`EfficientNetB0`.

    >>> import kapps
    >>> kapps.EfficientNetB7(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 2560)
    """
    return build_model(**SPECS["efficientnet_b7"].bind(locals()))

