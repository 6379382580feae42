"""GoogLeNet, the Inception v1 network (Szegedy et al. 2014, Going Deeper with Convolutions).

The paper's Table 1: a stem (7x7/2 conv, 3x3/2 max pool, 1x1 reduce + 3x3 conv, 3x3/2
max pool), nine inception modules (3a, 3b, pool, 4a-4e, pool, 5a, 5b), global average
pooling, dropout 0.4 and a linear 1000-way classifier. Each module concatenates four
branches: 1x1; 1x1 reduce then 3x3; 1x1 reduce then 5x5; 3x3 max pool then 1x1
projection. Convolutions have biases and ReLU and no BatchNorm (which came later, with
Inception v2); local response normalization follows the first pooling and the second
convolution (the paper's Figure 3). Max poolings use "same" padding (the sizes of Table 1:
112, 56, 28, 14, 7 at 224 px). Layer names follow the paper's Caffe release
(``conv1_7x7_s2``, ``inception_3a_3x3_reduce``, ``inception_3a_output``, ...).

Auxiliary classifiers (section 5), with the keyword-only ``aux_classifiers=True``: on the
outputs of 4a and 4d, 5x5/3 average pooling, 1x1 conv with 128 filters + ReLU, a
1024-unit dense layer + ReLU, dropout 0.7 and a linear classifier. The model then has
three outputs ``[main, aux1, aux2]``; the paper weights the auxiliary losses by 0.3 in
training and drops them at inference (use the first output).

Parameters, derived from Table 1's filter columns (weights + biases; the table's own
"params" column counts weights only, rounded to K = 1024, and is not always consistent
with its filter columns, e.g. 2.7K for conv1 whose 7*7*3*64 weights are 9.2K):

==========  =====  ==================================  ===========
layer       in     #1x1 #3x3r #3x3 #5x5r #5x5 #pool      params
==========  =====  ==================================  ===========
conv1       3      64 (7x7/2)                                9,472
conv2       64     64 (1x1 reduce), 192 (3x3)              114,944
3a          192    64    96    128   16    32   32         163,696
3b          256    128   128   192   32    96   64         388,736
4a          480    192   96    208   16    48   64         376,176
4b          512    160   112   224   24    64   64         449,160
4c          512    128   128   256   24    64   64         510,104
4d          512    112   144   288   32    64   64         605,376
4e          528    256   160   320   32    128  128        868,352
5a          832    256   160   320   32    128  128      1,043,456
5b          832    384   192   384   48    128  128      1,444,080
linear      1024   1000                                  1,025,000
==========  =====  ==================================  ===========

A module with input ``c`` has ``c*(n1 + r3 + r5 + p) + 9*r3*n3 + 25*r5*n5`` weights and
``n1 + r3 + n3 + r5 + n5 + p`` biases. Total: **6,998,552** (6,990,272 weights, 8,280
biases). Each auxiliary classifier adds ``c*128 + 128`` (1x1 conv on ``c`` = 512 or 528
channels) + ``4*4*128*1024 + 1024`` + ``1024*1000 + 1000`` = 3,188,840 (4a) and
3,190,888 (4d): 13,378,280 with both.

Initialization is Keras' default (Glorot uniform, zero biases). Preprocessing:
``"tf"`` (pixels to [-1, 1]). No ImageNet weights exist.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import (
    Chain, Conv, ConvBNAct, DenseClassifier, FlattenDenseClassifier, InceptionModule, LocalResponseNormalization,
    Names, Pool, pool_layer,
)
from kapps import validation
from kapps.blocks.base import image_dims, resolve_data_format
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register
from kapps.weights import h5io, manifest

__all__ = ["GoogLeNet", "preprocess_input", "decode_predictions"]

#: Table 1: name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj; "pool" is a 3x3/2 max pool.
MODULES: tuple = (
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    "pool3_3x3_s2",
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    "pool4_3x3_s2",
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
)
#: Modules whose outputs feed the auxiliary classifiers.
AUX_TAPS = ("4a", "4d")
DROPOUT, AUX_DROPOUT = 0.4, 0.7

preprocess_input = family_preprocessor("tf")


def module_table(n1: int, r3: int, n3: int, r5: int, n5: int, proj: int) -> tuple:
    """The four branches of an Inception (v1) module (paper Figure 2b)."""
    return (
        (Conv(n1, 1, role="1x1"),),
        (Conv(r3, 1, role="3x3_reduce"), Conv(n3, 3, role="3x3")),
        (Conv(r5, 1, role="5x5_reduce"), Conv(n5, 5, role="5x5")),
        (Pool("max", 3, 1, "same", role="pool"), Conv(proj, 1, role="pool_proj")),
    )


def _conv(filters: int, kernel: int, name: str, strides: int = 1) -> ConvBNAct:
    """Convolution with bias, then ReLU (no BatchNorm), named ``name`` and ``name_relu``."""
    return ConvBNAct(
        filters, kernel, strides, padding="same", use_bias=True, bn=False, activation="relu",
        names=Names("", {"conv": name, "act": f"{name}_relu", "block": f"{name}_unit"}),
    )


def _max_pool(name: str) -> keras.layers.Layer:
    return keras.layers.MaxPooling2D(3, strides=2, padding="same", name=name)


def body(options: dict, input_shape: tuple) -> list:
    blocks: list = [Chain([
        _conv(64, 7, "conv1_7x7_s2", strides=2), _max_pool("pool1_3x3_s2"), LocalResponseNormalization(name="pool1_norm1"),
        _conv(64, 1, "conv2_3x3_reduce"), _conv(192, 3, "conv2_3x3"), LocalResponseNormalization(name="conv2_norm2"),
        _max_pool("pool2_3x3_s2"),
    ], name="stem")]
    for entry in MODULES:
        if isinstance(entry, str):
            blocks.append(_max_pool(entry))
            continue
        name, *filters = entry
        prefix = f"inception_{name}_"
        blocks.append(InceptionModule.from_table(
            module_table(*filters),
            make_conv=lambda conv, p=prefix: _conv(conv.filters, conv.kernel, p + conv.role),
            make_pool=lambda pool, p=prefix: pool_layer(pool, p + pool.role),
            concat_name=f"{prefix}output", name=f"inception_{name}",
        ))
    return blocks


def top(options: dict, classes: int, activation: Any) -> DenseClassifier:
    return DenseClassifier(
        classes, activation=activation, dropout=DROPOUT, pool_name="avg_pool", dropout_name="dropout",
    )


def aux_classifier(index: int, classes: int, activation: Any) -> Chain:
    """An auxiliary classifier (section 5), its layers named ``aux{index}_*``."""
    p = f"aux{index}_"
    return Chain([
        keras.layers.AveragePooling2D(5, strides=3, padding="valid", name=f"{p}pool"),
        _conv(128, 1, f"{p}conv"),
        FlattenDenseClassifier(
            classes, hidden_units=(1024,), dropout=AUX_DROPOUT, activation=activation, flatten_name=f"{p}flatten",
            hidden_names=(f"{p}fc",), dropout_names=(f"{p}dropout",), dense_name=f"{p}predictions",
            name=f"{p}classifier",
        ),
    ], name=f"{p}head")


def _add_aux_classifiers(model: keras.Model, classes: int, activation: Any) -> keras.Model:
    outputs = [model.outputs[0]]
    for index, tap in enumerate(AUX_TAPS, start=1):
        features = model.get_layer(f"inception_{tap}_output").output
        rows, cols, _ = image_dims(features.shape[1:], resolve_data_format(None))
        if rows is None or rows < 5 or cols < 5:
            raise ValueError(
                "`aux_classifiers=True` needs an input of at least 65x65 pixels (each auxiliary classifier "
                f"pools 5x5 windows of the inception {tap} maps, 1/16 of the input size). "
                f"Received: input_shape={tuple(model.inputs[0].shape[1:])}"
            )
        outputs.append(aux_classifier(index, classes, activation).apply_flat(features))
    return keras.Model(model.input, outputs, name=model.name)


@dataclasses.dataclass(frozen=True)
class GoogLeNetOptions(Options):
    """``aux_classifiers``: add the paper's two training heads (see :func:`GoogLeNet`)."""

    aux_classifiers: bool

    def check(self, weights: Any) -> None:
        if not isinstance(self.aux_classifiers, bool):
            raise ValueError(
                f"`aux_classifiers` must be True or False. Received: aux_classifiers={self.aux_classifiers!r}"
            )


SPEC = ModelSpec(
    name="googlenet", keras_name="GoogLeNet", family="googlenet",
    body=body, top=top, default_size=224, min_size=32, options=GoogLeNetOptions,
    params=6_998_552, flops=3_165_343_744,
    reference="Szegedy et al. 2014, Going Deeper with Convolutions",
)


@register(SPEC)
def GoogLeNet(
    input_shape=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="googlenet",
    *,
    builder: str = "functional",
    features_only: bool = False,
    out_indices: tuple[int, ...] | None = None,
    aux_classifiers: bool = False,
):
    """GoogLeNet (Inception v1) as in Table 1 of the paper: 6,998,552 parameters at 1000 classes.

    The keras.applications argument pattern; ``weights`` defaults to None because no
    pretrained weights exist (``"imagenet"`` raises). Input 224x224x3 by default.
    Keyword-only ``builder`` is ``"functional"`` or ``"sequential"``;
    ``aux_classifiers=True`` adds the two auxiliary classifiers of the paper for
    training: the model returns ``[main, aux1, aux2]`` (needs ``include_top=True``, the
    functional builder - a ``keras.Sequential`` has one output - and at least 65 px).
    Compile it with ``loss_weights=[1.0, 0.3, 0.3]`` as in the paper.

    >>> import kapps
    >>> kapps.GoogLeNet().count_params()
    6998552
    >>> model = kapps.GoogLeNet(aux_classifiers=True, input_shape=(96, 96, 3), classes=10)
    >>> [tuple(o.shape) for o in model.outputs]
    [(None, 10), (None, 10), (None, 10)]
    """
    if weights == "imagenet":
        manifest.find(SPEC.name, include_top)  # raises: GoogLeNet has no official ImageNet weights
    options = GoogLeNetOptions(aux_classifiers)
    options.check(weights)
    validation.check_features(features_only, out_indices, pooling, aux_classifiers)
    if aux_classifiers and not include_top:
        raise ValueError(
            "`aux_classifiers=True` needs include_top=True (the auxiliary classifiers are training heads "
            "beside the main classifier). Received: include_top=False"
        )
    if aux_classifiers and builder == "sequential":
        raise ValueError(
            "`aux_classifiers=True` needs builder='functional': a keras.Sequential model has a single output, "
            "and the auxiliary classifiers add two. Received: builder='sequential'"
        )
    validation.check_weights(weights)
    model = build_model(
        SPEC, options, input_shape=input_shape, include_top=include_top,
        weights=None if aux_classifiers else weights, input_tensor=input_tensor, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, builder=builder, features_only=features_only,
        out_indices=out_indices,
    )
    if not aux_classifiers:
        return model
    model = _add_aux_classifiers(model, classes, classifier_activation)
    if weights is not None:
        h5io.load_weights_by_name(model, weights)
    return model
