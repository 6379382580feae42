"""MobileNet (v1, Howard et al. 2017): depthwise separable convolutions with ReLU6."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import ConvBNAct, ConvClassifier, DepthwiseSeparable, Names
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.models._width_resolution import WidthResolution, WidthResolutionOptions
from kapps.registry import ModelSpec, family_preprocessor, register

__all__ = ["MobileNet", "preprocess_input", "decode_predictions"]

#: Table 1 of the paper after the stem: (pointwise filters, depthwise stride).
LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)
WEIGHT_SIZES = (128, 160, 192, 224)

preprocess_input = family_preprocessor("tf")


def _separable_names(i: int) -> tuple[Names, Names]:
    dw = Names("", {"pad": f"conv_pad_{i}", "conv": f"conv_dw_{i}", "bn": f"conv_dw_{i}_bn",
                    "act": f"conv_dw_{i}_relu", "block": f"conv_dw_{i}_unit"})
    pw = Names("", {"conv": f"conv_pw_{i}", "bn": f"conv_pw_{i}_bn", "act": f"conv_pw_{i}_relu",
                    "block": f"conv_pw_{i}_unit", "separable": f"separable_{i}"})
    return dw, pw


def body(options: MobileNetOptions, input_shape: tuple) -> list:
    alpha, multiplier = options.alpha, options.depth_multiplier
    blocks: list = [ConvBNAct(int(32 * alpha), 3, strides=2, activation="relu6", names=Names("", {
        "conv": "conv1", "bn": "conv1_bn", "act": "conv1_relu", "block": "stem"}))]
    for i, (filters, stride) in enumerate(LAYERS, start=1):
        blocks.append(DepthwiseSeparable(
            int(filters * alpha), stride, depth_multiplier=multiplier, names=_separable_names(i),
        ))
    return blocks


def top(options: MobileNetOptions, classes: int, activation: Any) -> ConvClassifier:
    return ConvClassifier(classes, activation=activation, dropout=options.dropout)


@dataclasses.dataclass(frozen=True)
class MobileNetOptions(WidthResolutionOptions):
    """``alpha`` (width), ``depth_multiplier`` (depthwise channels), ``dropout`` (before the classifier)."""

    RULES = WidthResolution(sizes=WEIGHT_SIZES, name_prefix="mobilenet")
    depth_multiplier: int
    dropout: float

    def check(self, weights: Any) -> None:
        super().check(weights)
        check_options(self.depth_multiplier, self.dropout, weights)


def check_options(multiplier: Any, dropout: Any, weights: Any) -> None:
    """``depth_multiplier`` a positive integer (1 for ImageNet), ``dropout`` in [0, 1)."""
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 1:
        raise ValueError(f"`depth_multiplier` must be a positive integer. Received: depth_multiplier={multiplier!r}")
    if weights == "imagenet" and multiplier != 1:
        raise ValueError(
            "`depth_multiplier` must be 1 when loading ImageNet weights (the only one published). "
            f"Received: depth_multiplier={multiplier!r}"
        )
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a number in [0, 1). Received: dropout={dropout!r}")


SPEC = ModelSpec(
    name="mobilenet", keras_name="MobileNet", family="mobilenet",
    body=body, top=top, default_size=224, min_size=32, options=MobileNetOptions,
    params=4_253_864, flops=1_137_480_704, top1=70.4, top5=89.5,
    reference="Howard et al. 2017, MobileNets: Efficient Convolutional Neural Networks for Mobile Vision",
)


@register(SPEC)
def MobileNet(input_shape=None, alpha=1.0, depth_multiplier=1, dropout=1e-3, include_top=True, weights="imagenet",
              input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax", name=None, *,
              builder: str = "functional",
              features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """MobileNet (v1), with keras.applications' signature and layer names.

    ``alpha`` is the width multiplier (ImageNet files: 0.25, 0.5, 0.75, 1.0 at 128-224
    px), ``depth_multiplier`` the depthwise channel multiplier (1 for ImageNet),
    ``dropout`` the rate before the classifier. Keyword-only ``builder`` is
    ``"functional"`` or ``"sequential"``.

    >>> import kapps
    >>> kapps.MobileNet(weights=None, alpha=0.25, include_top=False, pooling="avg").output_shape
    (None, 256)
    """
    return build_model(**SPEC.bind(locals()))
