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
N(0, 0.01) with unit biases in conv2/4/5 and fc6/7. No ImageNet weights exist for it.

**torchvision's variant** (``variant="torchvision"``, chosen by ``weights="imagenet"``): the
one-tower network of Krizhevsky 2014 ("One weird trick") as torchvision builds it, with
torchvision's ImageNet checkpoint ``alexnet-owt-7be5be79.pth`` (acc@1 56.522, acc@5 79.066).
Five convolutions with biases and ReLU (64 11x11/4 with 2 pixels of zero padding, 192 5x5,
384, 256, 256 3x3, ``same``), no LRN and no groups, 3x3/2 max poolings after conv1, conv2 and
conv5; then adaptive average pooling to 6x6 (``avgpool``: any input of at least 67 pixels
reaches the classifier), flattening in torch's (channels, rows, cols) order, and dropout 0.5,
4096 + ReLU, dropout 0.5, 4096 + ReLU, 1000 (dropout *before* each hidden layer, as torch
orders it). Layer names are torchvision's module paths (``features_0`` ... ``features_12``,
``avgpool``, ``classifier_0`` ... ``classifier_6``), which is how the checkpoint converts.
Default input 224x224; 61,100,840 parameters and 1.43 GFLOPs at 224 px (the registry's
metadata are the paper variant's, the default).

Preprocessing: ``"torch"`` (pixels to [0, 1], then the ImageNet mean and std), what
torchvision's weights expect; the paper variant, which has no weights, uses it too (the paper
subtracted the mean image).
"""

from __future__ import annotations

from typing import Any

import dataclasses

import keras

from kapps.blocks import ConvBNAct, FlattenDenseClassifier, LocalResponseNormalization, Names
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.models._torchvision_variant import check_variant, resolve_variant
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
#: torchvision's variant: (filters, kernel, stride, zero padding) of each convolution, or "pool" (3x3/2).
TORCHVISION_FEATURES: tuple = (
    (64, 11, 4, 2), "pool", (192, 5, 1, 2), "pool", (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), "pool",
)
#: torchvision's variant: the maps its adaptive average pooling gives the classifier.
TORCHVISION_POOLED = (6, 6)

preprocess_input = family_preprocessor("torch")


def body(options: "AlexNetOptions", input_shape: tuple) -> list:
    if options.variant == "torchvision":
        return torchvision_body()
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


def torchvision_body() -> list:
    """torchvision's ``features``: each convolution is ``features_{i}`` and its ReLU ``features_{i+1}``."""
    blocks: list = []
    index = 0
    for entry in TORCHVISION_FEATURES:
        if entry == "pool":
            blocks.append(keras.layers.MaxPooling2D(3, strides=2, name=f"features_{index}"))
            index += 1
            continue
        filters, kernel, strides, padding = entry
        same = strides == 1 and padding == kernel // 2
        if not same:  # torch pads symmetrically: explicit zeros, then a valid convolution
            blocks.append(keras.layers.ZeroPadding2D(padding, name=f"features_{index}_pad"))
        blocks.append(ConvBNAct(
            filters, kernel, strides, padding="same" if same else "valid", use_bias=True, bn=False, activation="relu",
            names=Names("", {"conv": f"features_{index}", "act": f"features_{index + 1}",
                             "block": f"features_{index}_unit"}),
        ))
        index += 2
    return blocks


def top(options: "AlexNetOptions", classes: int, activation: Any) -> FlattenDenseClassifier:
    if options.variant == "torchvision":
        return FlattenDenseClassifier(
            classes, hidden_units=HIDDEN_UNITS, dropout=DROPOUT, activation=activation,
            pool=keras.layers.AdaptiveAveragePooling2D(TORCHVISION_POOLED, name="avgpool"), torch_flatten=True,
            dropout_first=True, hidden_names=("classifier_1", "classifier_4"),
            dropout_names=("classifier_0", "classifier_3"), dense_name="classifier_6",
        )
    return FlattenDenseClassifier(
        classes, hidden_units=HIDDEN_UNITS, dropout=DROPOUT, activation=activation,
        hidden_names=("fc6", "fc7"), dropout_names=("drop6", "drop7"),
    )


@dataclasses.dataclass(frozen=True)
class AlexNetOptions(Options):
    """``variant``: ``"paper"`` or ``"torchvision"`` (None chooses by ``weights``; see :func:`AlexNet`)."""

    variant: str

    @classmethod
    def from_arguments(cls, values: Any, standard: Any) -> "AlexNetOptions":
        return cls(variant=resolve_variant(values.get("variant"), standard.get("weights")))

    def check(self, weights: Any) -> None:
        check_variant("AlexNet", self.variant, weights)

    def weights_variant(self, input_shape: tuple) -> dict:
        return {"variant": self.variant}

    def default_size(self, input_shape: Any) -> int | None:
        return 224 if self.variant == "torchvision" else None


SPEC = ModelSpec(
    name="alexnet", keras_name="AlexNet", family="alexnet",
    body=body, top=top, default_size=227, min_size=67, options=AlexNetOptions,
    params=60_965_224, flops=1_448_813_632,
    reference="Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks",
)


@register(SPEC)
def AlexNet(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None, classes=1000,
            classifier_activation="softmax", name="alexnet", *, builder: str = "functional",
            features_only: bool = False, out_indices: tuple[int, ...] | None = None,
            variant: str | None = None) -> keras.Model:
    """AlexNet as in the 2012 paper (two towers, LRN, 60,965,224 parameters), or torchvision's.

    The keras.applications argument pattern; ``weights`` defaults to None. Keyword-only
    ``variant`` chooses the network: ``"paper"`` (the 2012 paper's; no ImageNet weights
    exist), ``"torchvision"`` (torchvision's one-tower AlexNet, 61,100,840 parameters, whose
    ImageNet weights ``weights="imagenet"`` downloads and converts once), or None (the
    default): ``"torchvision"`` with ``weights="imagenet"``, ``"paper"`` otherwise.
    ``variant="paper"`` with ``weights="imagenet"`` raises a ValueError.
    Input 227x227x3 by default (the paper's; torchvision's variant: 224x224x3), at
    least 67x67 (the smallest size that survives the three poolings). With
    ``include_top=True`` the paper's first dense layer's size follows the input size (6x6x256
    maps at 227 px); torchvision's pools any size to 6x6. Keyword-only ``builder`` is
    ``"functional"`` or ``"sequential"``. Preprocess inputs with :func:`preprocess_input`
    ("torch"). See the module docs for the layer tables and the parameter derivation.

    >>> import kapps
    >>> kapps.AlexNet().count_params()
    60965224
    >>> kapps.AlexNet(include_top=False, input_shape=(67, 67, 3)).output_shape
    (None, 1, 1, 256)
    >>> kapps.AlexNet(variant="torchvision").count_params()
    61100840
    """
    return build_model(**SPEC.bind(locals()))
