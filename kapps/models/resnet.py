"""ResNet v1 (He et al. 2016): bottleneck residual blocks, 50, 101 and 152 layers deep."""

from __future__ import annotations

import dataclasses

import keras

from kapps.blocks import Bottleneck, Chain, ConvBNAct, Names, RESNET_BN_EPSILON
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register
from kapps.models._heads import avg_pool_top as top, named_pool_no_top as no_top

__all__ = ["ResNet50", "ResNet101", "ResNet152", "preprocess_input", "decode_predictions"]

#: Bottleneck widths of the four stages (conv2 ... conv5); outputs are 4x wider.
WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
#: Stride of the first block of each stage.
STRIDES: tuple[int, ...] = (1, 2, 2, 2)
#: Blocks per stage, by depth (Table 1 of the paper).
DEPTHS: dict[str, tuple[int, ...]] = {
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
    "resnet152": (3, 8, 36, 3),
}

preprocess_input = family_preprocessor("caffe")


def stem(*, bn: bool) -> Chain:
    """7x7/2 convolution (with bias), [BN-ReLU], 3x3/2 max pooling, Keras' ``conv1``/``pool1`` names."""
    conv = ConvBNAct(
        64, 7, 2, padding="valid", use_bias=True, bn=bn, activation="relu" if bn else None,
        bn_epsilon=RESNET_BN_EPSILON,
        names=Names("", {"conv": "conv1_conv", "bn": "conv1_bn", "act": "conv1_relu", "block": "conv1"}),
    )
    return Chain([
        keras.layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad"),
        conv,
        keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad"),
        keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool"),
    ], name="stem")


def body(options: ResNetOptions, input_shape: tuple) -> list:
    blocks: list = [stem(bn=True)]
    for stage, (width, stride, depth) in enumerate(zip(WIDTHS, STRIDES, options.depths), start=2):
        blocks.append(Chain([
            Bottleneck(width, stride if i == 1 else 1, conv_shortcut=i == 1, names=f"conv{stage}_block{i}_")
            for i in range(1, depth + 1)
        ], name=f"conv{stage}"))
    return blocks


@dataclasses.dataclass(frozen=True)
class ResNetOptions(Options):
    """The bottlenecks per stage (fixed by each model, from :data:`DEPTHS`)."""

    depths: tuple[int, ...]


def resnet_spec(name: str, keras_name: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="resnet", body=body, top=top, no_top=no_top,
        default_size=224, min_size=32, options=ResNetOptions, fixed={"depths": DEPTHS[name]},
        params=params, flops=flops, top1=top1, top5=top5,
        reference="He et al. 2016, Deep Residual Learning for Image Recognition",
    )


SPECS = {
    "resnet50": resnet_spec("resnet50", "ResNet50", 25_636_712, 7_715_946_496, 74.9, 92.1),
    "resnet101": resnet_spec("resnet101", "ResNet101", 44_707_176, 15_140_388_864, 76.4, 92.8),
    "resnet152": resnet_spec("resnet152", "ResNet152", 60_419_944, 22_564_831_232, 76.6, 93.1),
}


@register(SPECS["resnet50"])
def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet50", *, builder: str = "functional",
             features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet50 (stages of 3, 4, 6, 3 bottlenecks), with keras.applications' signature and layer names.

    Arguments are those of ``keras.applications.ResNet50``; keyword-only ``builder`` is
    ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of a stem and one block per stage). Preprocess inputs with
    :func:`preprocess_input` ("caffe": RGB to BGR, minus the ImageNet mean).

    >>> import kapps
    >>> kapps.ResNet50(weights=None, include_top=False, pooling="avg").output_shape
    (None, 2048)
    """
    return build_model(**SPECS["resnet50"].bind(locals()))


@register(SPECS["resnet101"])
def ResNet101(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", name="resnet101", *, builder: str = "functional",
              features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet101 (stages of 3, 4, 23, 3 bottlenecks); arguments as :func:`ResNet50`.

    >>> import kapps
    >>> kapps.ResNet101(weights=None, input_shape=(64, 64, 3), include_top=False).output_shape
    (None, 2, 2, 2048)
    """
    return build_model(**SPECS["resnet101"].bind(locals()))


@register(SPECS["resnet152"])
def ResNet152(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", name="resnet152", *, builder: str = "functional",
              features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet152 (stages of 3, 8, 36, 3 bottlenecks); arguments as :func:`ResNet50`.

    >>> import kapps
    >>> kapps.ResNet152(weights=None, classes=10).output_shape
    (None, 10)
    """
    return build_model(**SPECS["resnet152"].bind(locals()))
