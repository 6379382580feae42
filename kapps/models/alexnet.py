"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep
Convolutional Neural Networks), the original two-GPU network.

Variant: **the paper's original**, not the common single-tower re-implementation
(torchvision's 64-192-384-256-256 filters, after Krizhevsky 2014). The two GPU towers
are written as grouped convolutions (``groups=2``): conv2, conv4 and conv5 see only the
maps of their own tower, conv3 and the dense layers see both. Local response
normalization (k=2, n=5, alpha=1e-4, beta=0.75) follows the ReLU of conv1 and conv2,
overlapping 3x3 stride-2 max pooling follows both normalizations and conv5, and dropout
0.5 follows the first two dense layers.

=====  ==========================  =====================================
layer  paper                        kapps (input 227x227x3)
=====  ==========================  =====================================
conv1  96 11x11 stride 4            55x55x96, ReLU, LRN, max pool -> 27x27
conv2  256 5x5, 2 groups            27x27x256, ReLU, LRN, max pool -> 13x13
conv3  384 3x3                      13x13x384, ReLU
conv4  384 3x3, 2 groups            13x13x384, ReLU
conv5  256 3x3, 2 groups            13x13x256, ReLU, max pool -> 6x6
fc6    4096                         ReLU, dropout 0.5
fc7    4096                         ReLU, dropout 0.5
fc8    1000 (``predictions``)       softmax
=====  ==========================  =====================================

The input is 227x227, not the 224x224 the paper states: only 227 makes its own
arithmetic work ((227 - 11) / 4 + 1 = 55, the paper's conv1 size).

Parameters the paper implies (its "60 million"), weights + biases, 1000 classes:

* conv1: 11*11*3*96 + 96 = 34,944
* conv2: 5*5*(96/2)*256 + 256 = 307,456 (each tower: 128 filters on its 48 maps)
* conv3: 3*3*256*384 + 384 = 885,120
* conv4: 3*3*(384/2)*384 + 384 = 663,936
* conv5: 3*3*(384/2)*256 + 256 = 442,624
* fc6: 6*6*256*4096 + 4096 = 37,752,832
* fc7: 4096*4096 + 4096 = 16,781,312
* fc8: 4096*1000 + 1000 = 4,097,000

in all **60,965,224** (2,334,080 in the convolutions, 58,631,144 in the dense layers).

Initialization is Keras' default (Glorot uniform, zero biases), not the paper's
N(0, 0.01) with unit biases in conv2/4/5 and fc6/7. Preprocessing: ``"tf"`` (pixels to
[-1, 1]; the paper subtracted the mean image). No ImageNet weights exist.
"""

from __future__ import annotations

from typing import Any

import keras

from kapps.blocks import ConvBNAct, FlattenDenseClassifier, LocalResponseNormalization, Names
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["AlexNet", "preprocess_input", "decode_predictions"]

#: (name, filters, kernel, strides, groups, then "norm" and/or "pool") for the five convolutions.
CONVS: tuple[tuple, ...] = (
    ("conv1", 96, 11, 4, 1, ("norm", "pool")),
    ("conv2", 256, 5, 1, 2, ("norm", "pool")),
    ("conv3", 384, 3, 1, 1, ()),
    ("conv4", 384, 3, 1, 2, ()),
    ("conv5", 256, 3, 1, 2, ("pool",)),
)
HIDDEN_UNITS = (4096, 4096)
DROPOUT = 0.5

preprocess_input = family_preprocessor("tf")


def body(options: Options, input_shape: tuple) -> list:
    blocks: list = []
    for i, (name, filters, kernel, strides, groups, after) in enumerate(CONVS, start=1):
        blocks.append(ConvBNAct(
            filters, kernel, strides, padding="valid" if i == 1 else "same", use_bias=True, bn=False,
            activation="relu", groups=groups,
            names=Names("", {"conv": name, "act": f"{name}_relu", "block": f"{name}_unit"}),
        ))
        if "norm" in after:
            blocks.append(LocalResponseNormalization(name=f"norm{i}"))
        if "pool" in after:
            blocks.append(keras.layers.MaxPooling2D(3, strides=2, name=f"pool{i}"))
    return blocks


def top(options: Options, classes: int, activation: Any) -> FlattenDenseClassifier:
    return FlattenDenseClassifier(
        classes, hidden_units=HIDDEN_UNITS, dropout=DROPOUT, activation=activation,
        hidden_names=("fc6", "fc7"), dropout_names=("drop6", "drop7"),
    )


SPEC = ModelSpec(
    name="alexnet", keras_name="AlexNet", family="alexnet",
    body=body, top=top, default_size=227, min_size=67,
    params=60_965_224, flops=1_448_813_632,
    reference="Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks",
)


@register(SPEC)
def AlexNet(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None, classes=1000,
            classifier_activation="softmax", name="alexnet", *, builder: str = "functional",
            features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """AlexNet as in the 2012 paper: two towers (grouped convolutions), LRN, 60,965,224 parameters.

    The keras.applications argument pattern; ``weights`` defaults to None because no
    pretrained weights exist (``"imagenet"`` raises). Input 227x227x3 by default, at
    least 67x67 (the smallest size that survives the three poolings). With
    ``include_top=True`` the first dense layer's size follows the input size (6x6x256
    maps at 227 px). Keyword-only ``builder`` is ``"functional"`` or ``"sequential"``.
    See the module docs for the layer table and the parameter derivation.

    >>> import kapps
    >>> kapps.AlexNet().count_params()
    60965224
    >>> kapps.AlexNet(include_top=False, input_shape=(67, 67, 3)).output_shape
    (None, 1, 1, 256)
    """
    return build_model(**SPEC.bind(locals()))
