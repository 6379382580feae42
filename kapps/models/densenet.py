"""DenseNet (Huang et al. 2017): dense blocks joined by compressing transitions."""

from __future__ import annotations

import dataclasses

import keras

from kapps.blocks import (
    DENSENET_BN_EPSILON, BNAct, Chain, ConvBNAct, DenseBlock, Names, Transition,
)
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register
from kapps.models._heads import avg_pool_top as top, named_pool_no_top as no_top

__all__ = ["DenseNet121", "DenseNet169", "DenseNet201", "preprocess_input", "decode_predictions"]

#: Dense layers in each of the four dense blocks (conv2 ... conv5), by depth.
BLOCKS: dict[str, tuple[int, int, int, int]] = {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet201": (6, 12, 48, 32),
}
GROWTH_RATE = 32
STEM_FILTERS = 64
#: Channel compression of the transitions.
REDUCTION = 0.5

preprocess_input = family_preprocessor("torch")


def stem() -> Chain:
    """7x7/2 convolution, BN-ReLU, 3x3/2 max pooling, with Keras' ``conv1_*``/``pool1`` names."""
    return Chain([
        keras.layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad"),
        ConvBNAct(STEM_FILTERS, 7, 2, padding="valid", bn_epsilon=DENSENET_BN_EPSILON, names=Names("", {
            "conv": "conv1_conv", "bn": "conv1_bn", "act": "conv1_relu", "block": "conv1"})),
        keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad"),
        keras.layers.MaxPooling2D(3, strides=2, name="pool1"),
    ], name="stem")


def body(options: DenseNetOptions, input_shape: tuple) -> list:
    blocks: list = [stem()]
    channels = STEM_FILTERS
    layers_per_block = options.blocks
    for stage, num_layers in enumerate(layers_per_block, start=2):
        blocks.append(DenseBlock(num_layers, GROWTH_RATE, names=Names(f"conv{stage}_", {"dense_block": f"conv{stage}"})))
        channels += num_layers * GROWTH_RATE
        if stage < 1 + len(layers_per_block):
            channels = int(channels * REDUCTION)
            blocks.append(Transition(channels, names=Names(f"pool{stage}_", {"transition": f"pool{stage}"})))
    blocks.append(BNAct(bn_epsilon=DENSENET_BN_EPSILON, names=Names("", {"bn": "bn", "act": "relu", "block": "post"})))
    return blocks


@dataclasses.dataclass(frozen=True)
class DenseNetOptions(Options):
    """The dense layers per block (fixed by each model, from :data:`BLOCKS`)."""

    blocks: tuple[int, ...]


def densenet_spec(name: str, keras_name: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="densenet",
        body=body, top=top, no_top=no_top, default_size=224, min_size=32,
        options=DenseNetOptions, fixed={"blocks": BLOCKS[name]},
        params=params, flops=flops, top1=top1, top5=top5,
        reference="Huang et al. 2017, Densely Connected Convolutional Networks",
    )


SPECS = {
    "densenet121": densenet_spec("densenet121", "DenseNet121", 8_062_504, 5_668_323_328, 75.0, 92.3),
    "densenet169": densenet_spec("densenet169", "DenseNet169", 14_307_880, 6_719_686_656, 76.2, 93.2),
    "densenet201": densenet_spec("densenet201", "DenseNet201", 20_242_984, 8_582_731_776, 77.3, 93.6),
}


@register(SPECS["densenet121"])
def DenseNet121(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="densenet121", *, builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """DenseNet-121 (dense blocks of 6, 12, 24, 16 layers), with keras.applications' signature and layer names.

    Arguments are those of ``keras.applications.DenseNet121``; keyword-only ``builder``
    is ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of the stem, each dense block and transition, and the head).
    Preprocess inputs with :func:`preprocess_input` ("torch": scale to [0, 1], then
    normalize with the ImageNet mean and std).

    >>> import kapps
    >>> kapps.DenseNet121(weights=None, include_top=False, pooling="avg").output_shape
    (None, 1024)
    """
    return build_model(**SPECS["densenet121"].bind(locals()))


@register(SPECS["densenet169"])
def DenseNet169(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="densenet169", *, builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """DenseNet-169 (dense blocks of 6, 12, 32, 32 layers); arguments as :func:`DenseNet121`.

    >>> import kapps
    >>> kapps.DenseNet169(weights=None, include_top=False, input_shape=(64, 64, 3)).output_shape
    (None, 2, 2, 1664)
    """
    return build_model(**SPECS["densenet169"].bind(locals()))


@register(SPECS["densenet201"])
def DenseNet201(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="densenet201", *, builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """DenseNet-201 (dense blocks of 6, 12, 48, 32 layers); arguments as :func:`DenseNet121`.

    >>> import kapps
    >>> kapps.DenseNet201(weights=None, classes=10).output_shape
    (None, 10)
    """
    return build_model(**SPECS["densenet201"].bind(locals()))
