"""EfficientNetV2 (Tan & Le 2021): fused-MBConv early stages, MBConv later, per-variant tables.

B0-B3 share one table scaled in width and depth (channels ``round_filters(c * width)``,
multiples of 8 with no 10% rule; repeats ``ceil(n * depth)``); S, M and L have tables
of their own. With ``include_preprocessing=True`` (the default) the model rescales its
input itself (pixels in [0, 255]), so :func:`preprocess_input` is the identity, as in
keras.applications.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import keras

from kapps.blocks import (
    FUSED_MBCONV_NAMES, MBCONV_NAMES, Chain, ConvBNAct, DenseClassifier, FusedMBConv, MBConv, Names,
)
from kapps.blocks.base import channel_axis, resolve_data_format
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = [
    "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
    "EfficientNetV2S", "EfficientNetV2M", "EfficientNetV2L",
    "preprocess_input", "decode_predictions",
]


class Stage(NamedTuple):
    """``repeats`` blocks of one kind (``"fused"`` or ``"mbconv"``), the first with ``strides``."""

    block: str
    kernel: int
    repeats: int
    filters_in: int
    filters_out: int
    expand_ratio: int
    strides: int
    se_ratio: float


F, M = "fused", "mbconv"
#: Tables of the paper / keras.applications' DEFAULT_BLOCKS_ARGS (B1-B3 reuse B0's).
TABLES: dict[str, tuple[Stage, ...]] = {
    "b": (
        Stage(F, 3, 1, 32, 16, 1, 1, 0.0),
        Stage(F, 3, 2, 16, 32, 4, 2, 0.0),
        Stage(F, 3, 2, 32, 48, 4, 2, 0.0),
        Stage(M, 3, 3, 48, 96, 4, 2, 0.25),
        Stage(M, 3, 5, 96, 112, 6, 1, 0.25),
        Stage(M, 3, 8, 112, 192, 6, 2, 0.25),
    ),
    "s": (
        Stage(F, 3, 2, 24, 24, 1, 1, 0.0),
        Stage(F, 3, 4, 24, 48, 4, 2, 0.0),
        Stage(F, 3, 4, 48, 64, 4, 2, 0.0),
        Stage(M, 3, 6, 64, 128, 4, 2, 0.25),
        Stage(M, 3, 9, 128, 160, 6, 1, 0.25),
        Stage(M, 3, 15, 160, 256, 6, 2, 0.25),
    ),
    "m": (
        Stage(F, 3, 3, 24, 24, 1, 1, 0.0),
        Stage(F, 3, 5, 24, 48, 4, 2, 0.0),
        Stage(F, 3, 5, 48, 80, 4, 2, 0.0),
        Stage(M, 3, 7, 80, 160, 4, 2, 0.25),
        Stage(M, 3, 14, 160, 176, 6, 1, 0.25),
        Stage(M, 3, 18, 176, 304, 6, 2, 0.25),
        Stage(M, 3, 5, 304, 512, 6, 1, 0.25),
    ),
    "l": (
        Stage(F, 3, 4, 32, 32, 1, 1, 0.0),
        Stage(F, 3, 7, 32, 64, 4, 2, 0.0),
        Stage(F, 3, 7, 64, 96, 4, 2, 0.0),
        Stage(M, 3, 10, 96, 192, 4, 2, 0.25),
        Stage(M, 3, 19, 192, 224, 6, 1, 0.25),
        Stage(M, 3, 25, 224, 384, 6, 2, 0.25),
        Stage(M, 3, 7, 384, 640, 6, 1, 0.25),
    ),
}
TOP_FILTERS = 1280
DROPOUT_RATE = 0.2  # before the classifier
DROP_CONNECT_RATE = 0.2  # stochastic depth, growing linearly with the block index
BN = dict(bn_epsilon=1e-3, bn_momentum=0.9)
#: V1-style ImageNet statistics used by the B variants' built-in normalization.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_VARIANCE = (0.229**2, 0.224**2, 0.225**2)


class Variant(NamedTuple):
    table: str
    width: float
    depth: float
    size: int
    top1: float  # ImageNet accuracies as the Keras documentation publishes them
    top5: float
    params: int
    flops: int


VARIANTS: dict[str, Variant] = {
    "b0": Variant("b", 1.0, 1.0, 224, 78.7, 94.3, 7_200_312, 1_436_172_352),
    "b1": Variant("b", 1.0, 1.1, 240, 79.8, 95.0, 8_212_124, 2_393_638_720),
    "b2": Variant("b", 1.1, 1.2, 260, 80.5, 95.1, 10_178_374, 3_395_085_664),
    "b3": Variant("b", 1.2, 1.4, 300, 82.0, 95.8, 14_467_622, 6_022_917_632),
    "s": Variant("s", 1.0, 1.0, 384, 83.9, 96.7, 21_612_360, 16_731_234_304),
    "m": Variant("m", 1.0, 1.0, 480, 85.3, 97.4, 54_431_388, 49_164_920_768),
    "l": Variant("l", 1.0, 1.0, 480, 85.7, 97.5, 119_027_848, 112_159_398_016),
}

preprocess_input = family_preprocessor("none")


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width``, rounded to the nearest multiple of 8 (at least 8)."""
    return int(max(divisor, int(filters * width + divisor / 2) // divisor * divisor))


def round_repeats(repeats: int, depth: float) -> int:
    """Repeats scaled by ``depth``, rounded up."""
    return int(math.ceil(depth * repeats))


def preprocessing(variant: str, channels: int) -> Chain:
    """B variants with 3 channels: [0, 255] -> [0, 1] -> ImageNet mean/std; others: -> [-1, 1]."""
    if variant.startswith("b") and channels == 3:
        layers: list = [
            keras.layers.Rescaling(1.0 / 255, name="rescaling"),
            keras.layers.Normalization(axis=channel_axis(resolve_data_format(None)), mean=IMAGENET_MEAN,
                                       variance=IMAGENET_VARIANCE, name="normalization"),
        ]
    else:
        layers = [keras.layers.Rescaling(1.0 / 128.0, offset=-1, name="rescaling")]
    return Chain(layers, name="preprocessing")


def body(options: EfficientNetV2Options, input_shape: tuple) -> list:
    variant = VARIANTS[options.variant]
    stages = TABLES[variant.table]
    width, depth = variant.width, variant.depth
    channels = input_shape[2]  # specs see (rows, cols, channels) in either data format
    blocks: list = [preprocessing(options.variant, channels)] if options.include_preprocessing else []
    blocks.append(ConvBNAct(
        round_filters(stages[0].filters_in, width), 3, strides=2, activation="swish",
        names=Names("", {"conv": "stem_conv", "bn": "stem_bn", "act": "stem_activation", "block": "stem"}), **BN,
    ))
    # keras.applications spreads the rate over the unscaled block count.
    total = float(sum(stage.repeats for stage in stages))
    index = 0
    for i, stage in enumerate(stages):
        channels, filters = round_filters(stage.filters_in, width), round_filters(stage.filters_out, width)
        for j in range(round_repeats(stage.repeats, depth)):
            common = dict(
                kernel_size=stage.kernel, se_ratio=stage.se_ratio, activation="swish",
                drop_rate=DROP_CONNECT_RATE * index / total, **BN,
            )
            args = (channels if j == 0 else filters, filters, stage.expand_ratio, stage.strides if j == 0 else 1)
            prefix = f"block{i + 1}{chr(j + 97)}_"
            if stage.block == F:
                blocks.append(FusedMBConv(*args, names=Names(prefix, FUSED_MBCONV_NAMES), **common))
            else:
                blocks.append(MBConv(
                    *args, strided_padding="same", names=Names(prefix, MBCONV_NAMES | {"dw_conv": "{p}dwconv2"}),
                    **common,
                ))
            index += 1
    blocks.append(ConvBNAct(round_filters(TOP_FILTERS, width), 1, activation="swish", names=Names("", {
        "conv": "top_conv", "bn": "top_bn", "act": "top_activation", "block": "top"}), **BN))
    return blocks


def top(options: EfficientNetV2Options, classes: int, activation: Any) -> DenseClassifier:
    return DenseClassifier(classes, activation=activation, dropout=DROPOUT_RATE, pool_name="avg_pool")


@dataclasses.dataclass(frozen=True)
class EfficientNetV2Options(Options):
    """The variant (a key of :data:`VARIANTS`, fixed by each model) and ``include_preprocessing``."""

    variant: str
    include_preprocessing: bool

    def check(self, weights: Any) -> None:
        value = self.include_preprocessing
        if not isinstance(value, bool):
            raise ValueError(f"`include_preprocessing` must be True or False. Received: include_preprocessing={value!r}")


def efficientnet_v2_spec(variant: str) -> ModelSpec:
    info = VARIANTS[variant]
    return ModelSpec(
        name=f"efficientnet_v2_{variant}", keras_name=f"EfficientNetV2{variant.upper()}", family="efficientnet_v2",
        body=body, top=top, default_size=info.size, min_size=32, options=EfficientNetV2Options,
        fixed={"variant": variant}, params=info.params, flops=info.flops, top1=info.top1, top5=info.top5,
        reference="Tan & Le 2021, EfficientNetV2: Smaller Models and Faster Training",
    )


SPECS = {f"efficientnet_v2_{variant}": efficientnet_v2_spec(variant) for variant in VARIANTS}


@register(SPECS["efficientnet_v2_b0"])
def EfficientNetV2B0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                     classes=1000, classifier_activation="softmax", include_preprocessing=True,
                     name="efficientnetv2-b0", *, builder: str = "functional",
                     features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetV2B0 (224 px), with keras.applications' signature and layer names.

    The arguments are those of ``keras.applications.EfficientNetV2B0``. With
    ``include_preprocessing=True`` (the default) the model rescales its input itself:
    feed pixels in [0, 255] (:func:`preprocess_input` is the identity); with False it
    expects pixels in [-1, 1]. Keyword-only ``builder`` is ``"functional"`` (a flat
    graph, the default) or ``"sequential"`` (a ``keras.Sequential`` of blocks).

    >>> import kapps
    >>> kapps.EfficientNetV2B0(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1280)
    """
    return build_model(**SPECS["efficientnet_v2_b0"].bind(locals()))


@register(SPECS["efficientnet_v2_b1"])
def EfficientNetV2B1(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                     classes=1000, classifier_activation="softmax", include_preprocessing=True,
                     name="efficientnetv2-b1", *, builder: str = "functional",
                     features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetV2B1 (240 px); arguments as :func:`EfficientNetV2B0`.

    >>> import kapps
    >>> kapps.EfficientNetV2B1(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1280)
    """
    return build_model(**SPECS["efficientnet_v2_b1"].bind(locals()))


@register(SPECS["efficientnet_v2_b2"])
def EfficientNetV2B2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                     classes=1000, classifier_activation="softmax", include_preprocessing=True,
                     name="efficientnetv2-b2", *, builder: str = "functional",
                     features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetV2B2 (260 px); arguments as :func:`EfficientNetV2B0`.

    >>> import kapps
    >>> kapps.EfficientNetV2B2(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1408)
    """
    return build_model(**SPECS["efficientnet_v2_b2"].bind(locals()))


@register(SPECS["efficientnet_v2_b3"])
def EfficientNetV2B3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                     classes=1000, classifier_activation="softmax", include_preprocessing=True,
                     name="efficientnetv2-b3", *, builder: str = "functional",
                     features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetV2B3 (300 px); arguments as :func:`EfficientNetV2B0`.

    >>> import kapps
    >>> kapps.EfficientNetV2B3(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1536)
    """
    return build_model(**SPECS["efficientnet_v2_b3"].bind(locals()))


@register(SPECS["efficientnet_v2_s"])
def EfficientNetV2S(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                    classes=1000, classifier_activation="softmax", include_preprocessing=True,
                    name="efficientnetv2-s", *, builder: str = "functional",
                    features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetV2S (384 px); arguments as :func:`EfficientNetV2B0`.

    >>> import kapps
    >>> kapps.EfficientNetV2S(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1280)
    """
    return build_model(**SPECS["efficientnet_v2_s"].bind(locals()))


@register(SPECS["efficientnet_v2_m"])
def EfficientNetV2M(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                    classes=1000, classifier_activation="softmax", include_preprocessing=True,
                    name="efficientnetv2-m", *, builder: str = "functional",
                    features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetV2M (480 px); arguments as :func:`EfficientNetV2B0`.

    >>> import kapps
    >>> kapps.EfficientNetV2M(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1280)
    """
    return build_model(**SPECS["efficientnet_v2_m"].bind(locals()))


@register(SPECS["efficientnet_v2_l"])
def EfficientNetV2L(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                    classes=1000, classifier_activation="softmax", include_preprocessing=True,
                    name="efficientnetv2-l", *, builder: str = "functional",
                    features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """EfficientNetV2L (480 px); arguments as :func:`EfficientNetV2B0`.

    >>> import kapps
    >>> kapps.EfficientNetV2L(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 1280)
    """
    return build_model(**SPECS["efficientnet_v2_l"].bind(locals()))

