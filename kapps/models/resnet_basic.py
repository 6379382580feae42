"""ResNet-18 and ResNet-34 (He et al. 2016): basic residual blocks, with torchvision's ImageNet weights.

The paper's Table 1: a 7x7/2 convolution and 3x3/2 max pooling, four stages of basic blocks
(two 3x3 convolutions; 2, 2, 2, 2 blocks for 18 layers, 3, 4, 6, 3 for 34) of 64, 128, 256
and 512 channels, the first block of stages 2-4 strided with a 1x1 projection shortcut,
global average pooling and a 1000-way classifier. Convolutions have no bias (BatchNorm,
epsilon 1e-5, follows each). As in PyTorch, strided convolutions and the max pooling pad
symmetrically (explicit zero padding, then ``valid``).

Layer names are torchvision's module paths with ``_`` for ``.`` (``conv1``, ``bn1``,
``layer1_0_conv1``, ``layer2_0_downsample_0``, ``fc``), which is how
``weights="imagenet"`` converts torchvision's checkpoints (:mod:`kapps.weights.torch_mapping`).
Preprocessing: ``"torch"`` (pixels to [0, 1], then the ImageNet mean and std).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import BasicBlock, Chain, ConvBNAct, DenseClassifier, Names, TORCH_BN_EPSILON
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register
from kapps.models._heads import named_pool_no_top as no_top

__all__ = ["ResNet18", "ResNet34", "preprocess_input", "decode_predictions"]

#: Channels of the four stages (``layer1`` ... ``layer4``).
WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
#: Stride of the first block of each stage.
STRIDES: tuple[int, ...] = (1, 2, 2, 2)
#: Basic blocks per stage, by depth (Table 1 of the paper).
DEPTHS: dict[str, tuple[int, ...]] = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
#: torchvision's module names of a block's parts that differ from :class:`~kapps.blocks.BasicBlock`'s roles.
TORCHVISION_NAMES = {"shortcut_conv": "{p}downsample_0", "shortcut_bn": "{p}downsample_1",
                     "shortcut": "{p}downsample"}

preprocess_input = family_preprocessor("torch")


def stem() -> Chain:
    """7x7/2 convolution, BN, ReLU, 3x3/2 max pooling (``conv1``, ``bn1``, ``relu``, ``maxpool``)."""
    return Chain([
        keras.layers.ZeroPadding2D(3, name="conv1_pad"),
        ConvBNAct(64, 7, 2, padding="valid", bn_epsilon=TORCH_BN_EPSILON, bn_momentum=0.9,
                  names=Names("", {"conv": "conv1", "bn": "bn1", "act": "relu", "block": "conv1_unit"})),
        keras.layers.ZeroPadding2D(1, name="maxpool_pad"),  # after ReLU: zeros never win the maximum
        keras.layers.MaxPooling2D(3, strides=2, name="maxpool"),
    ], name="stem")


def body(options: "ResNetBasicOptions", input_shape: tuple) -> list:
    blocks: list = [stem()]
    for stage, (width, stride, depth) in enumerate(zip(WIDTHS, STRIDES, options.depths), start=1):
        blocks.append(Chain([
            BasicBlock(width, stride if i == 0 else 1, conv_shortcut=i == 0 and stride > 1,
                       names=Names(f"layer{stage}_{i}_", TORCHVISION_NAMES))
            for i in range(depth)
        ], name=f"layer{stage}"))
    return blocks


def top(options: Any, classes: int, activation: Any) -> DenseClassifier:
    """Global average pooling (``avgpool``) and the ``fc`` classifier."""
    return DenseClassifier(classes, activation=activation, pool_name="avgpool", dense_name="fc")


@dataclasses.dataclass(frozen=True)
class ResNetBasicOptions(Options):
    """The basic blocks per stage (fixed by each model, from :data:`DEPTHS`)."""

    depths: tuple[int, ...]


def resnet_spec(name: str, keras_name: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="resnet_basic", body=body, top=top, no_top=no_top,
        default_size=224, min_size=32, options=ResNetBasicOptions, fixed={"depths": DEPTHS[name]},
        params=params, flops=flops, top1=top1, top5=top5,
        reference="He et al. 2016, Deep Residual Learning for Image Recognition (torchvision's weights)",
    )


SPECS = {
    "resnet18": resnet_spec("resnet18", "ResNet18", 11_699_112, 3_628_146_688, 69.758, 89.078),
    "resnet34": resnet_spec("resnet34", "ResNet34", 21_814_696, 7_327_522_816, 73.314, 91.42),
}


@register(SPECS["resnet18"])
def ResNet18(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet18", *, builder: str = "functional",
             features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-18 (stages of 2, 2, 2, 2 basic blocks), with keras.applications' argument conventions.

    ``weights="imagenet"`` downloads torchvision's checkpoint once and converts it once into
    a Keras weights file in the kapps cache. Keyword-only ``builder`` is ``"functional"``
    (a flat graph, the default) or ``"sequential"`` (a ``keras.Sequential`` of a stem and one
    block per stage). Preprocess inputs with :func:`preprocess_input` ("torch").

    >>> import kapps
    >>> kapps.ResNet18(weights=None, include_top=False, pooling="avg").output_shape
    (None, 512)
    """
    return build_model(**SPECS["resnet18"].bind(locals()))


@register(SPECS["resnet34"])
def ResNet34(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet34", *, builder: str = "functional",
             features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-34 (stages of 3, 4, 6, 3 basic blocks); arguments as :func:`ResNet18`.

    >>> import kapps
    >>> kapps.ResNet34(weights=None, input_shape=(64, 64, 3), include_top=False).output_shape
    (None, 2, 2, 512)
    """
    return build_model(**SPECS["resnet34"].bind(locals()))
