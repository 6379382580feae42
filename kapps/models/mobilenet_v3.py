"""MobileNetV3 Small and Large (Howard et al. 2019): inverted residuals with hard-swish and SE.

Each model is a per-layer table (expansion, output channels, kernel, stride,
squeeze-excite, activation: Tables 1 and 2 of the paper). ``minimalistic=True`` turns
every 5x5 kernel into 3x3, every hard-swish into ReLU and drops squeeze-excite.
With ``include_preprocessing=True`` (the default) the model rescales its input itself
(pixels in [0, 255]), so :func:`preprocess_input` is the identity, as in keras.applications.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, NamedTuple

import keras

from kapps.blocks import (
    Chain, ConvBNAct, ConvClassifier, InvertedResidual, Names, SqueezeExcite, make_divisible, squeeze_channels,
)
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["MobileNetV3Small", "MobileNetV3Large", "preprocess_input", "decode_predictions"]


class Layer(NamedTuple):
    """One inverted residual block; ``channels`` is scaled by ``alpha``."""

    expansion: float
    channels: int
    kernel: int
    strides: int
    se: bool
    activation: str


RE, HS = "relu", "hard_swish"
#: Table 2 of the paper (MobileNetV3-Small); then a 1024-wide classifier layer.
SMALL: tuple[Layer, ...] = (
    Layer(1, 16, 3, 2, True, RE),
    Layer(72 / 16, 24, 3, 2, False, RE),
    Layer(88 / 24, 24, 3, 1, False, RE),
    Layer(4, 40, 5, 2, True, HS),
    Layer(6, 40, 5, 1, True, HS),
    Layer(6, 40, 5, 1, True, HS),
    Layer(3, 48, 5, 1, True, HS),
    Layer(3, 48, 5, 1, True, HS),
    Layer(6, 96, 5, 2, True, HS),
    Layer(6, 96, 5, 1, True, HS),
    Layer(6, 96, 5, 1, True, HS),
)
#: Table 1 of the paper (MobileNetV3-Large); then a 1280-wide classifier layer.
LARGE: tuple[Layer, ...] = (
    Layer(1, 16, 3, 1, False, RE),
    Layer(4, 24, 3, 2, False, RE),
    Layer(3, 24, 3, 1, False, RE),
    Layer(3, 40, 5, 2, True, RE),
    Layer(3, 40, 5, 1, True, RE),
    Layer(3, 40, 5, 1, True, RE),
    Layer(6, 80, 3, 2, False, HS),
    Layer(2.5, 80, 3, 1, False, HS),
    Layer(2.3, 80, 3, 1, False, HS),
    Layer(2.3, 80, 3, 1, False, HS),
    Layer(6, 112, 3, 1, True, HS),
    Layer(6, 112, 3, 1, True, HS),
    Layer(6, 160, 5, 2, True, HS),
    Layer(6, 160, 5, 1, True, HS),
    Layer(6, 160, 5, 1, True, HS),
)


class Size(NamedTuple):
    layers: tuple[Layer, ...]
    last_point: int  # width of the classifier's hidden 1x1 convolution
    top1: float  # ImageNet top-1 of the 1.0 / 224 checkpoint, as keras.applications documents it
    params: int
    flops: int


SIZES = {
    "small": Size(SMALL, 1024, 68.1, 2_554_968, 113_020_800),
    "large": Size(LARGE, 1280, 75.6, 5_507_432, 433_179_520),
}
STEM_FILTERS = 16
SE_RATIO = 0.25
BN = dict(bn_epsilon=1e-3, bn_momentum=0.999)
WEIGHT_SIZE = 224

#: keras.applications' names for the roles of one block (``{p}`` is ``expanded_conv_[N_]``).
BLOCK_NAMES = {
    "expand_conv": "{p}expand", "expand_bn": "{p}expand_bn", "expand_act": "{p}expand_activation",
    "pad": "{p}depthwise_pad", "dw_conv": "{p}depthwise", "dw_bn": "{p}depthwise_bn",
    "dw_act": "{p}depthwise_activation", "project_conv": "{p}project", "project_bn": "{p}project_bn",
    "add": "{p}add", "block": "{p}unit",
}
SE_NAMES = {
    "pool": "{p}squeeze_excite_avg_pool", "reduce": "{p}squeeze_excite_conv", "reduce_act": "{p}squeeze_excite_relu",
    "expand": "{p}squeeze_excite_conv_1", "gate": "{p}squeeze_excite_hard_sigmoid",
    "excite": "{p}squeeze_excite_mul", "block": "{p}squeeze_excite",
}

preprocess_input = family_preprocessor("none")


def body(options: MobileNetV3Options, input_shape: tuple) -> list:
    alpha, minimalistic = options["alpha"], options["minimalistic"]
    activation = RE if minimalistic else HS
    blocks: list = []
    if options["include_preprocessing"]:
        blocks.append(Chain([keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")], name="preprocessing"))
    blocks.append(ConvBNAct(STEM_FILTERS, 3, strides=2, activation=activation, names=Names("", {
        "conv": "conv", "bn": "conv_bn", "act": "conv_activation", "block": "stem"}), **BN))
    channels = STEM_FILTERS
    for index, layer in enumerate(SIZES[options["size"]].layers):
        kernel, act, se = (3, RE, False) if minimalistic else (layer.kernel, layer.activation, layer.se)
        prefix = f"expanded_conv_{index}_" if index else "expanded_conv_"
        filters = make_divisible(layer.channels * alpha)
        hidden = make_divisible(channels * layer.expansion)
        excite = SqueezeExcite(
            hidden, squeeze_channels(hidden, SE_RATIO, divisor=8), activation="relu", gate="hard_sigmoid",
            names=Names(prefix, SE_NAMES),
        ) if se else None
        blocks.append(InvertedResidual(
            channels, filters, layer.expansion, layer.strides, kernel_size=kernel, activation=act,
            hidden_channels=hidden, squeeze_excite=excite, names=Names(prefix, BLOCK_NAMES), **BN,
        ))
        channels = filters
    blocks.append(ConvBNAct(make_divisible(channels * 6), 1, activation=activation, names=Names("", {
        "conv": "conv_1", "bn": "conv_1_bn", "act": "conv_1_activation", "block": "last_conv"}), **BN))
    return blocks


def top(options: MobileNetV3Options, classes: int, activation: Any) -> ConvClassifier:
    last_point = SIZES[options["size"]].last_point
    if options["alpha"] > 1.0:
        last_point = make_divisible(last_point * options["alpha"])
    rate = options["dropout_rate"]
    return ConvClassifier(
        classes, activation=activation, dropout=rate if rate > 0 else None, conv_name="logits",
        reshape_name="flatten", hidden_filters=last_point,
        hidden_activation=RE if options["minimalistic"] else HS,
    )


def weights_variant(options: MobileNetV3Options, input_shape: tuple) -> dict:
    rows, cols, _ = input_shape  # (rows, cols, channels) in either data format
    if rows != cols or rows != WEIGHT_SIZE:
        warnings.warn(
            "`input_shape` is undefined or non-square, or `rows` is not 224. Weights for input shape "
            "(224, 224) will be loaded as the default.",
            stacklevel=6,  # the constructor
        )
    return {"alpha": float(options["alpha"]), "minimalistic": bool(options["minimalistic"])}


def check_options(options: MobileNetV3Options, weights: Any) -> None:
    alpha, minimalistic = options["alpha"], options["minimalistic"]
    rate = options["dropout_rate"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"`alpha` must be a positive number (width multiplier). Received: alpha={alpha!r}")
    for argument in ("minimalistic", "include_preprocessing"):
        if not isinstance(options[argument], bool):
            raise ValueError(f"`{argument}` must be True or False. Received: {argument}={options[argument]!r}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"`dropout_rate` must be a number in [0, 1). Received: dropout_rate={rate!r}")
    if weights == "imagenet":
        allowed = (1.0,) if minimalistic else (0.75, 1.0)
        if alpha not in allowed:
            raise ValueError(
                f"`alpha` must be one of {', '.join(map(repr, allowed))} when loading ImageNet weights with "
                f"minimalistic={minimalistic} (the published files). Received: alpha={alpha!r}"
            )


@dataclasses.dataclass(frozen=True)
class MobileNetV3Options(Options):
    """The size (``"small"`` or ``"large"``, fixed by each model) and the constructor's options."""

    size: str
    alpha: float
    minimalistic: bool
    dropout_rate: float
    include_preprocessing: bool

    def check(self, weights: Any) -> None:
        check_options(self, weights)

    def weights_variant(self, input_shape: tuple) -> dict:
        return weights_variant(self, input_shape)


def mobilenet_v3_spec(size: str) -> ModelSpec:
    info = SIZES[size]
    return ModelSpec(
        name=f"mobilenet_v3_{size}", keras_name=f"MobileNetV3{size.capitalize()}", family="mobilenet_v3",
        body=body, top=top, default_size=WEIGHT_SIZE, min_size=32, options=MobileNetV3Options, fixed={"size": size},
        fixed_size_top=False, params=info.params, flops=info.flops, top1=info.top1, top5=None,
        reference="Howard et al. 2019, Searching for MobileNetV3",
    )


SPECS = {f"mobilenet_v3_{size}": mobilenet_v3_spec(size) for size in SIZES}


@register(SPECS["mobilenet_v3_small"])
def MobileNetV3Small(input_shape=None, alpha=1.0, minimalistic=False, include_top=True, weights="imagenet",
                     input_tensor=None, classes=1000, pooling=None, dropout_rate=0.2, classifier_activation="softmax",
                     include_preprocessing=True, name="MobileNetV3Small", *,
                     builder: str = "functional",
                     features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """MobileNetV3Small, with keras.applications' signature and layer names.

    The arguments are those of ``keras.applications.MobileNetV3Small``: ``alpha`` is the
    width multiplier (ImageNet files: 0.75 and 1.0, or 1.0 with ``minimalistic=True``,
    all at 224 px; other sizes load the 224 px file with a warning), ``minimalistic``
    uses 3x3 kernels, ReLU and no squeeze-excite, ``dropout_rate`` is the rate before the
    classifier. With ``include_preprocessing=True`` (the default) the model rescales its
    input itself: feed pixels in [0, 255] (:func:`preprocess_input` is the identity);
    with False it expects pixels in [-1, 1]. Without ``input_shape`` the input is
    224 x 224 with the top and of any size without it. Keyword-only ``builder`` is
    ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of blocks).

    >>> import kapps
    >>> model = kapps.MobileNetV3Small(weights=None, alpha=0.75, include_top=False, pooling="avg")
    >>> model.output_shape
    (None, 432)
    """
    return build_model(**SPECS["mobilenet_v3_small"].bind(locals()))


@register(SPECS["mobilenet_v3_large"])
def MobileNetV3Large(input_shape=None, alpha=1.0, minimalistic=False, include_top=True, weights="imagenet",
                     input_tensor=None, classes=1000, pooling=None, dropout_rate=0.2, classifier_activation="softmax",
                     include_preprocessing=True, name="MobileNetV3Large", *,
                     builder: str = "functional",
                     features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """MobileNetV3Large; arguments as :func:`MobileNetV3Small`.

    >>> import kapps
    >>> model = kapps.MobileNetV3Large(weights=None, alpha=0.75, include_top=False, pooling="avg")
    >>> model.output_shape
    (None, 720)
    """
    return build_model(**SPECS["mobilenet_v3_large"].bind(locals()))
