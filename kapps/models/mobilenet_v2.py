"""MobileNetV2 (Sandler et al. 2018): inverted residuals with linear bottlenecks."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import ConvBNAct, DenseClassifier, InvertedResidual, Names, make_divisible
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.models._width_resolution import WidthResolution, WidthResolutionOptions
from kapps.registry import ModelSpec, family_preprocessor, register

__all__ = ["MobileNetV2", "preprocess_input", "decode_predictions"]

#: Table 2 of the paper: expansion t, output channels c, repeats n, first stride s.
STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
WEIGHT_SIZES = (96, 128, 160, 192, 224)
BN = dict(bn_epsilon=1e-3, bn_momentum=0.999)

#: keras.applications' layer names for the roles of an inverted residual block.
BLOCK_NAMES = {
    "expand_conv": "{p}expand", "expand_bn": "{p}expand_BN", "expand_act": "{p}expand_relu",
    "pad": "{p}pad", "dw_conv": "{p}depthwise", "dw_bn": "{p}depthwise_BN", "dw_act": "{p}depthwise_relu",
    "project_conv": "{p}project", "project_bn": "{p}project_BN", "add": "{p}add", "block": "{p}unit",
}

preprocess_input = family_preprocessor("tf")


def body(options: MobileNetV2Options, input_shape: tuple) -> list:
    alpha = options.alpha
    channels = make_divisible(32 * alpha, 8)
    blocks: list = [
        ConvBNAct(channels, 3, strides=2, activation="relu6", names=Names("", {
            "conv": "Conv1", "bn": "bn_Conv1", "act": "Conv1_relu", "block": "stem"}), **BN)
    ]
    block_id = 0
    for expansion, filters, repeats, stride in STAGES:
        out_channels = make_divisible(int(filters * alpha), 8)
        for i in range(repeats):
            prefix = "expanded_conv_" if block_id == 0 else f"block_{block_id}_"
            blocks.append(InvertedResidual(
                channels, out_channels, expansion, stride if i == 0 else 1,
                names=Names(prefix, BLOCK_NAMES), **BN,
            ))
            channels, block_id = out_channels, block_id + 1
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    blocks.append(ConvBNAct(last, 1, activation="relu6", names=Names("", {
        "conv": "Conv_1", "bn": "Conv_1_bn", "act": "out_relu", "block": "last_conv"}), **BN))
    return blocks


def top(options: MobileNetV2Options, classes: int, activation: Any) -> DenseClassifier:
    return DenseClassifier(classes, activation=activation)


@dataclasses.dataclass(frozen=True)
class MobileNetV2Options(WidthResolutionOptions):
    """``alpha``, the width multiplier (its rules: :class:`WidthResolutionOptions`)."""

    RULES = WidthResolution(sizes=WEIGHT_SIZES, name_prefix="mobilenetv2")


SPEC = ModelSpec(
    name="mobilenet_v2", keras_name="MobileNetV2", family="mobilenet_v2",
    body=body, top=top, default_size=224, min_size=32, options=MobileNetV2Options,
    params=3_538_984, flops=601_548_544, top1=71.3, top5=90.1,
    reference="Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks",
)


@register(SPEC)
def MobileNetV2(input_shape=None, alpha=1.0, include_top=True, weights="imagenet", input_tensor=None, pooling=None,
                classes=1000, classifier_activation="softmax", name=None, *,
                builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """MobileNetV2, with keras.applications' signature and layer names.

    Args are those of ``keras.applications.MobileNetV2``; ``alpha`` is the width
    multiplier (ImageNet files exist for 0.35, 0.5, 0.75, 1.0 at 96-224 px and for 1.3
    and 1.4 at 224 px). Keyword-only ``builder`` is ``"functional"`` (a flat graph, the
    default) or ``"sequential"`` (a ``keras.Sequential`` of blocks).

    Preprocess inputs with :func:`preprocess_input` (pixels to [-1, 1]).

    >>> import kapps
    >>> model = kapps.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    >>> model.output_shape
    (None, 1000)
    """
    return build_model(**SPEC.bind(locals()))
