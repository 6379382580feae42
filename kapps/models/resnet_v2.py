"""ResNet v2 (He et al. 2016, identity mappings): pre-activation bottlenecks, 50/101/152 layers."""

from __future__ import annotations

import keras

from kapps.blocks import AutoNames, BNAct, Chain, Names, PreActBottleneck, RESNET_BN_EPSILON
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.models.resnet import DEPTHS, WIDTHS, ResNetOptions, no_top, stem
from kapps.registry import ModelSpec, family_preprocessor, register
from kapps.models._heads import avg_pool_top as top

__all__ = ["ResNet50V2", "ResNet101V2", "ResNet152V2", "preprocess_input", "decode_predictions"]

#: Stride of the *last* block of each stage (v2 subsamples at the end of a stage).
STRIDES: tuple[int, ...] = (2, 2, 2, 1)

preprocess_input = family_preprocessor("tf")


def body(options: ResNetOptions, input_shape: tuple) -> list:
    blocks: list = [stem(bn=False)]
    auto = AutoNames()  # Keras leaves the subsampling pools unnamed: max_pooling2d, max_pooling2d_1, ...
    for stage, (width, stride, depth) in enumerate(zip(WIDTHS, STRIDES, options.depths), start=2):
        stage_blocks = []
        for i in range(1, depth + 1):
            block_stride = stride if i == depth else 1
            pool_name = auto("max_pooling2d") if i > 1 and block_stride > 1 else None
            stage_blocks.append(PreActBottleneck(
                width, block_stride, conv_shortcut=i == 1, names=f"conv{stage}_block{i}_", pool_name=pool_name,
            ))
        blocks.append(Chain(stage_blocks, name=f"conv{stage}"))
    blocks.append(BNAct(bn_epsilon=RESNET_BN_EPSILON, names=Names("", {
        "bn": "post_bn", "act": "post_relu", "block": "post_activation"})))
    return blocks


def resnet_v2_spec(name: str, keras_name: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="resnet_v2", body=body, top=top, no_top=no_top,
        default_size=224, min_size=32, options=ResNetOptions, fixed={"depths": DEPTHS[name.replace("_v2", "")]},
        params=params, flops=flops, top1=top1, top5=top5,
        reference="He et al. 2016, Identity Mappings in Deep Residual Networks",
    )


SPECS = {
    "resnet50_v2": resnet_v2_spec("resnet50_v2", "ResNet50V2", 25_613_800, 6_964_510_720, 76.0, 93.0),
    "resnet101_v2": resnet_v2_spec("resnet101_v2", "ResNet101V2", 44_675_560, 14_388_953_088, 77.2, 93.8),
    "resnet152_v2": resnet_v2_spec("resnet152_v2", "ResNet152V2", 60_380_648, 21_813_395_456, 78.0, 94.2),
}


@register(SPECS["resnet50_v2"])
def ResNet50V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
               classifier_activation="softmax", name="resnet50v2", *, builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet50V2 (3, 4, 6, 3 pre-activation bottlenecks), with keras.applications' signature and names.

    Arguments are those of ``keras.applications.ResNet50V2``; keyword-only ``builder`` is
    ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of a stem, one block per stage and the final BN-ReLU).
    Preprocess inputs with :func:`preprocess_input` (pixels to [-1, 1]).

    >>> import kapps
    >>> kapps.ResNet50V2(weights=None, include_top=False, pooling="max").output_shape
    (None, 2048)
    """
    return build_model(**SPECS["resnet50_v2"].bind(locals()))


@register(SPECS["resnet101_v2"])
def ResNet101V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="resnet101v2", *, builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet101V2 (3, 4, 23, 3 pre-activation bottlenecks); arguments as :func:`ResNet50V2`.

    >>> import kapps
    >>> kapps.ResNet101V2(weights=None, input_shape=(64, 64, 3), include_top=False).output_shape
    (None, 2, 2, 2048)
    """
    return build_model(**SPECS["resnet101_v2"].bind(locals()))


@register(SPECS["resnet152_v2"])
def ResNet152V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="resnet152v2", *, builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet152V2 (3, 8, 36, 3 pre-activation bottlenecks); arguments as :func:`ResNet50V2`.

    >>> import kapps
    >>> kapps.ResNet152V2(weights=None, classes=10).output_shape
    (None, 10)
    """
    return build_model(**SPECS["resnet152_v2"].bind(locals()))
