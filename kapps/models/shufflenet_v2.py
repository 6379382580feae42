"""ShuffleNetV2 x0.5, x1.0, x1.5 and x2.0 (Ma et al. 2018), with torchvision's ImageNet weights.

A 3x3/2 convolution of 24 filters and a 3x3/2 max pooling, three stages of
:class:`~kapps.blocks.ShuffleUnit` (channel split, one branch of 1x1, 3x3 depthwise and 1x1
convolutions, concatenation, channel shuffle; the first unit of a stage downsamples with
two branches), 4, 8 and 4 units deep, a 1x1 convolution, global average pooling and a
1000-way classifier (the paper's Table 5). The width multiplier sets the stage channels
(:data:`WIDTHS`). Convolutions have no bias (BatchNorm, epsilon 1e-5, follows each); strided
convolutions and the max pooling pad symmetrically, as PyTorch does.

Layer names are torchvision's module paths with ``_`` for ``.`` (``conv1_0``,
``stage2_0_branch1_0``, ``stage3_4_branch2_5``, ``conv5_1``, ``fc``), which is how
``weights="imagenet"`` converts torchvision's checkpoints. Preprocessing: ``"torch"``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import Chain, ConvBNAct, DenseClassifier, Names, ShuffleUnit, TORCH_BN_EPSILON
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["ShuffleNetV2X0_5", "ShuffleNetV2X1_0", "ShuffleNetV2X1_5", "ShuffleNetV2X2_0", "preprocess_input",
           "decode_predictions"]

#: Units per stage (``stage2``, ``stage3``, ``stage4``).
REPEATS: tuple[int, ...] = (4, 8, 4)
#: Output channels of the stem, the three stages and ``conv5``, by width multiplier (Table 5 of the paper).
WIDTHS: dict[str, tuple[int, ...]] = {
    "x0_5": (24, 48, 96, 192, 1024),
    "x1_0": (24, 116, 232, 464, 1024),
    "x1_5": (24, 176, 352, 704, 1024),
    "x2_0": (24, 244, 488, 976, 2048),
}
_BN = dict(bn_epsilon=TORCH_BN_EPSILON, bn_momentum=0.9, use_bias=False)

preprocess_input = family_preprocessor("torch")


def _unit_names(name: str) -> Names:
    """torchvision's ``nn.Sequential`` of conv, BN, ReLU: ``{name}_0``, ``{name}_1``, ``{name}_2``."""
    return Names("", {"conv": f"{name}_0", "bn": f"{name}_1", "act": f"{name}_2", "block": name})


def body(options: "ShuffleNetV2Options", input_shape: tuple) -> list:
    stem, *stages, last = WIDTHS[options.width]
    blocks: list = [Chain([
        keras.layers.ZeroPadding2D(1, name="conv1_pad"),
        ConvBNAct(stem, 3, 2, padding="valid", names=_unit_names("conv1"), **_BN),
        keras.layers.ZeroPadding2D(1, name="maxpool_pad"),  # after ReLU: zeros never win the maximum
        keras.layers.MaxPooling2D(3, strides=2, name="maxpool"),
    ], name="stem")]
    for stage, (filters, repeats) in enumerate(zip(stages, REPEATS), start=2):
        blocks.append(Chain([ShuffleUnit(filters, 2 if i == 0 else 1, names=f"stage{stage}_{i}_")
                             for i in range(repeats)], name=f"stage{stage}"))
    blocks.append(ConvBNAct(last, 1, names=_unit_names("conv5"), **_BN))
    return blocks


def top(options: Any, classes: int, activation: Any) -> DenseClassifier:
    """Global average pooling (``globalpool``) and the ``fc`` classifier."""
    return DenseClassifier(classes, activation=activation, pool_name="globalpool", dense_name="fc")


@dataclasses.dataclass(frozen=True)
class ShuffleNetV2Options(Options):
    """The width multiplier, one of :data:`WIDTHS` (fixed by each model)."""

    width: str


def shufflenet_spec(width: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    name = f"shufflenet_v2_{width}"
    return ModelSpec(
        name=name, keras_name=f"ShuffleNetV2{width.upper()}", family="shufflenet_v2", body=body, top=top,
        default_size=224, min_size=32, options=ShuffleNetV2Options, fixed={"width": width},
        params=params, flops=flops, top1=top1, top5=top5,
        reference="Ma et al. 2018, ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design "
                  "(torchvision's weights)",
    )


SPECS = {
    "shufflenet_v2_x0_5": shufflenet_spec("x0_5", 1_374_744, 80_952_896, 60.552, 81.746),
    "shufflenet_v2_x1_0": shufflenet_spec("x1_0", 2_294_784, 289_815_984, 69.362, 88.316),
    "shufflenet_v2_x1_5": shufflenet_spec("x1_5", 3_527_064, 591_518_784, 72.996, 91.086),
    "shufflenet_v2_x2_0": shufflenet_spec("x2_0", 7_427_712, 1_166_506_928, 76.23, 93.006),
}


@register(SPECS["shufflenet_v2_x0_5"])
def ShuffleNetV2X0_5(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                     classes=1000, classifier_activation="softmax", name="shufflenet_v2_x0_5", *,
                     builder: str = "functional", features_only: bool = False,
                     out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ShuffleNetV2 at width 0.5, with keras.applications' argument conventions.

    ``weights="imagenet"`` downloads torchvision's checkpoint once and converts it once into
    a Keras weights file in the kapps cache. Keyword-only ``builder`` is ``"functional"`` or
    ``"sequential"``. Preprocess inputs with :func:`preprocess_input` ("torch").

    >>> import kapps
    >>> kapps.ShuffleNetV2X0_5(weights=None, include_top=False, pooling="avg").output_shape
    (None, 1024)
    """
    return build_model(**SPECS["shufflenet_v2_x0_5"].bind(locals()))


@register(SPECS["shufflenet_v2_x1_0"])
def ShuffleNetV2X1_0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                     classes=1000, classifier_activation="softmax", name="shufflenet_v2_x1_0", *,
                     builder: str = "functional", features_only: bool = False,
                     out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ShuffleNetV2 at width 1.0; arguments as :func:`ShuffleNetV2X0_5`.

    >>> import kapps
    >>> kapps.ShuffleNetV2X1_0(weights=None, input_shape=(64, 64, 3), include_top=False).output_shape
    (None, 2, 2, 1024)
    """
    return build_model(**SPECS["shufflenet_v2_x1_0"].bind(locals()))


@register(SPECS["shufflenet_v2_x1_5"])
def ShuffleNetV2X1_5(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                     classes=1000, classifier_activation="softmax", name="shufflenet_v2_x1_5", *,
                     builder: str = "functional", features_only: bool = False,
                     out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ShuffleNetV2 at width 1.5; arguments as :func:`ShuffleNetV2X0_5`.

    >>> import kapps
    >>> kapps.ShuffleNetV2X1_5(weights=None, classes=10).output_shape
    (None, 10)
    """
    return build_model(**SPECS["shufflenet_v2_x1_5"].bind(locals()))


@register(SPECS["shufflenet_v2_x2_0"])
def ShuffleNetV2X2_0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                     classes=1000, classifier_activation="softmax", name="shufflenet_v2_x2_0", *,
                     builder: str = "functional", features_only: bool = False,
                     out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ShuffleNetV2 at width 2.0 (a 2048-channel ``conv5``); arguments as :func:`ShuffleNetV2X0_5`.

    >>> import kapps
    >>> kapps.ShuffleNetV2X2_0(weights=None, include_top=False, pooling="max").output_shape
    (None, 2048)
    """
    return build_model(**SPECS["shufflenet_v2_x2_0"].bind(locals()))
