"""SqueezeNet 1.0 and 1.1 (Iandola et al. 2016), with torchvision's ImageNet weights.

A convolution and ReLU, then fire modules (:class:`~kapps.blocks.FireModule`: a 1x1 squeeze,
then 1x1 and 3x3 expands, concatenated) between three 3x3/2 max poolings. Version 1.0 is the
paper's Table 1 (a 7x7/2 stem of 96 filters); 1.1, from the authors' repository, has a 3x3/2
stem of 64 and pools earlier (2.4x fewer FLOPs, the same accuracy). Convolutions have
biases and no BatchNorm.

The top is a convolution, not a dense layer: dropout 0.5, a 1x1 convolution to the classes,
ReLU, global average pooling, then ``classifier_activation``
(:class:`~kapps.blocks.ConvPoolClassifier`). The max poolings round their output size up
(PyTorch's ``ceil_mode=True``, :func:`~kapps.blocks.ceil_max_pool`): a zero row and column on
the bottom and right, then a ``valid`` pooling, which for 3x3/2 windows gives the same size
and, on the ReLU outputs it pools, the same values.

Layer names are torchvision's module paths with ``_`` for ``.`` (``features_0``,
``features_3_squeeze``, ``features_3_expand3x3``, ``classifier_1``), which is how
``weights="imagenet"`` converts torchvision's checkpoints. Preprocessing: ``"torch"``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import ConvBNAct, ConvPoolClassifier, FireModule, Names, ceil_max_pool
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["SqueezeNet1_0", "SqueezeNet1_1", "preprocess_input", "decode_predictions"]

#: Per version: the stem convolution (filters, kernel), then ``features`` from index 2 on:
#: ``"pool"`` (3x3/2 max pooling, rounding up) or a fire module (squeeze, expand 1x1, expand 3x3).
VERSIONS: dict[str, tuple] = {
    "1_0": ((96, 7), ("pool", (16, 64, 64), (16, 64, 64), (32, 128, 128), "pool", (32, 128, 128), (48, 192, 192),
                      (48, 192, 192), (64, 256, 256), "pool", (64, 256, 256))),
    "1_1": ((64, 3), ("pool", (16, 64, 64), (16, 64, 64), "pool", (32, 128, 128), (32, 128, 128), "pool",
                      (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))),
}
DROPOUT = 0.5

preprocess_input = family_preprocessor("torch")


def body(options: "SqueezeNetOptions", input_shape: tuple) -> list:
    (filters, kernel), features = VERSIONS[options.version]
    blocks: list = [ConvBNAct(filters, kernel, 2, padding="valid", use_bias=True, bn=False,
                              names=Names("", {"conv": "features_0", "act": "features_1", "block": "features_0_unit"}))]
    for index, entry in enumerate(features, start=2):
        if entry == "pool":
            blocks += ceil_max_pool(f"features_{index}", 3, 2)
        else:
            blocks.append(FireModule(*entry, names=f"features_{index}_"))
    return blocks


def top(options: Any, classes: int, activation: Any) -> ConvPoolClassifier:
    """Dropout, 1x1 convolution to the classes, ReLU, global average pooling (``classifier_0`` ... ``_3``)."""
    return ConvPoolClassifier(
        classes, activation=activation, dropout=DROPOUT, dropout_name="classifier_0", conv_name="classifier_1",
        conv_activation_name="classifier_2", pool_name="classifier_3", activation_name="predictions",
    )


@dataclasses.dataclass(frozen=True)
class SqueezeNetOptions(Options):
    """The version, ``"1_0"`` or ``"1_1"`` (fixed by each model)."""

    version: str


def squeezenet_spec(name: str, keras_name: str, min_size: int, params: int, flops: int, top1: float,
                    top5: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="squeezenet", body=body, top=top, default_size=224,
        min_size=min_size, options=SqueezeNetOptions, fixed={"version": name[-3:]},
        params=params, flops=flops, top1=top1, top5=top5,
        reference="Iandola et al. 2016, SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB "
                  "model size (torchvision's weights)",
    )


SPECS = {
    "squeezenet1_0": squeezenet_spec("squeezenet1_0", "SqueezeNet1_0", 21, 1_248_424, 1_637_849_152, 58.092, 80.42),
    "squeezenet1_1": squeezenet_spec("squeezenet1_1", "SqueezeNet1_1", 17, 1_235_496, 698_303_872, 58.178, 80.624),
}


@register(SPECS["squeezenet1_0"])
def SqueezeNet1_0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                  classes=1000, classifier_activation="softmax", name="squeezenet1_0", *, builder: str = "functional",
                  features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """SqueezeNet 1.0 (the paper's), with keras.applications' argument conventions.

    ``weights="imagenet"`` downloads torchvision's checkpoint once and converts it once into
    a Keras weights file in the kapps cache. Keyword-only ``builder`` is ``"functional"`` or
    ``"sequential"``. Preprocess inputs with :func:`preprocess_input` ("torch").

    >>> import kapps
    >>> kapps.SqueezeNet1_0(weights=None, include_top=False).output_shape
    (None, None, None, 512)
    """
    return build_model(**SPECS["squeezenet1_0"].bind(locals()))


@register(SPECS["squeezenet1_1"])
def SqueezeNet1_1(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                  classes=1000, classifier_activation="softmax", name="squeezenet1_1", *, builder: str = "functional",
                  features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """SqueezeNet 1.1 (3x3 stem, earlier pooling); arguments as :func:`SqueezeNet1_0`.

    >>> import kapps
    >>> kapps.SqueezeNet1_1(weights=None, classes=10).output_shape
    (None, 10)
    """
    return build_model(**SPECS["squeezenet1_1"].bind(locals()))
