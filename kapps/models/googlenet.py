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

Initialization is Keras' default (Glorot uniform, zero biases). No ImageNet weights exist for
the paper's network.

**torchvision's variant** (``variant="torchvision"``, chosen by ``weights="imagenet"``): the
network of torchvision's ``googlenet``, with its ImageNet checkpoint ``googlenet-1378be20.pth``
(acc@1 69.778, acc@5 89.530; ported from the paper's TensorFlow release). The same Table 1
filters, but every convolution is torchvision's ``BasicConv2d``: no bias, BatchNorm (epsilon
1e-3), ReLU; no LRN; max poolings round their size up (``ceil_mode=True``,
:func:`~kapps.blocks.ceil_max_pool`), and the last one (``maxpool4``) is 2x2/2; the "5x5"
branch of every module is a 3x3 convolution (a known torchvision quirk, pytorch/vision#906,
kept because the weights are shaped so); global average pooling, dropout 0.2, ``fc``. Layer
names are torchvision's module paths (``conv1_conv``, ``conv1_bn``, ``maxpool1``,
``inception3a_branch1_conv``, ``inception3a_branch2_1_bn``, ``inception3a_branch4_0`` (the
pool), ``fc``). 6,624,904 parameters (6,639,464 with BatchNorm's moving statistics, which
Keras counts) and 3.00 GFLOPs at 224 px; the registry's metadata are the paper variant's,
the default.

Preprocessing: ``"tf"`` (pixels to [-1, 1]) for both variants. torchvision's ImageNet GoogLeNet
is built with ``transform_input=True``: it takes the usual torch-normalized input
(``(x / 255 - mean) / std``) and first turns it back into ``x / 127.5 - 1``, the [-1, 1] input
of the TensorFlow weights it was ported from. kapps has no such layer: its model takes that
[-1, 1] input directly, which is the same numbers (``tests/test_torchvision_classics.py``
compares the two). A checkpoint trained with ``transform_input=False`` expects torch-normalized
input instead: preprocess with ``kapps.imagenet.preprocess_input(x, mode="torch")``.
The checkpoint also holds the untrained auxiliary heads torchvision builds to load it
(``aux1.*``, ``aux2.*``; torchvision drops them for evaluation): ``weights="imagenet"`` leaves
them out (the manifest's ``ignored_key_prefixes``); ``aux_classifiers=True`` is the paper
variant's only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import (
    Chain, Conv, ConvBNAct, DenseClassifier, FlattenDenseClassifier, InceptionModule, LocalResponseNormalization,
    Names, Pool, ceil_max_pool, pool_layer,
)
from kapps import validation
from kapps.blocks.base import image_dims, resolve_data_format
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.models._torchvision_variant import check_variant, resolve_variant
from kapps.registry import ModelSpec, Options, family_preprocessor, register
from kapps.weights import h5io

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
#: torchvision's variant: its names of the two poolings between module groups, with their window (stride 2).
TORCHVISION_POOLS = {"pool3_3x3_s2": ("maxpool3", 3), "pool4_3x3_s2": ("maxpool4", 2)}
TORCHVISION_DROPOUT = 0.2
#: torchvision's BasicConv2d: BatchNorm epsilon 1e-3 (torch's momentum 0.1 is Keras' 0.9).
TORCHVISION_BN = {"bn_epsilon": 1e-3, "bn_momentum": 0.9}

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


def basic_conv(filters: int, kernel: int, name: str, strides: int = 1, padding: str = "same") -> ConvBNAct:
    """torchvision's ``BasicConv2d`` at module path ``name``: ``{name}_conv`` (no bias), ``{name}_bn``, ReLU."""
    return ConvBNAct(
        filters, kernel, strides, padding=padding, use_bias=False, **TORCHVISION_BN,
        names=Names(f"{name}_", {"act": "{p}relu", "block": "{p}unit"}),
    )


def torchvision_module(name: str, n1: int, r3: int, n3: int, r5: int, n5: int, proj: int) -> InceptionModule:
    """torchvision's ``Inception`` block ``inception{name}``: its ``branch3`` is 1x1 then **3x3** (pytorch/vision#906)."""
    p = f"inception{name}_"
    return InceptionModule([
        basic_conv(n1, 1, f"{p}branch1"),
        Chain([basic_conv(r3, 1, f"{p}branch2_0"), basic_conv(n3, 3, f"{p}branch2_1")], name=f"{p}branch2"),
        Chain([basic_conv(r5, 1, f"{p}branch3_0"), basic_conv(n5, 3, f"{p}branch3_1")], name=f"{p}branch3"),
        Chain([pool_layer(Pool("max", 3, 1, "same"), f"{p}branch4_0"), basic_conv(proj, 1, f"{p}branch4_1")],
              name=f"{p}branch4"),
    ], concat_name=f"{p}concat", name=f"inception{name}")


def torchvision_body() -> list:
    """torchvision's GoogLeNet from ``conv1`` to ``inception5b``."""
    blocks: list = [Chain([
        keras.layers.ZeroPadding2D(3, name="conv1_pad"),  # torch pads symmetrically
        basic_conv(64, 7, "conv1", strides=2, padding="valid"), *ceil_max_pool("maxpool1", 3, 2),
        basic_conv(64, 1, "conv2"), basic_conv(192, 3, "conv3"), *ceil_max_pool("maxpool2", 3, 2),
    ], name="stem")]
    for entry in MODULES:
        if isinstance(entry, str):
            name, size = TORCHVISION_POOLS[entry]
            blocks += ceil_max_pool(name, size, 2)
        else:
            blocks.append(torchvision_module(*entry))
    return blocks


def body(options: "GoogLeNetOptions", input_shape: tuple) -> list:
    if options.variant == "torchvision":
        return torchvision_body()
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


def top(options: "GoogLeNetOptions", classes: int, activation: Any) -> DenseClassifier:
    if options.variant == "torchvision":
        return DenseClassifier(classes, activation=activation, dropout=TORCHVISION_DROPOUT, pool_name="avgpool",
                               dropout_name="dropout", dense_name="fc")
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
    """``aux_classifiers``: add the paper's two training heads; ``variant``: ``"paper"`` or
    ``"torchvision"`` (None chooses by ``weights``); see :func:`GoogLeNet`."""

    aux_classifiers: bool
    variant: str = "paper"

    @classmethod
    def from_arguments(cls, values: Any, standard: Any) -> "GoogLeNetOptions":
        return cls(aux_classifiers=values.get("aux_classifiers", False),
                   variant=resolve_variant(values.get("variant"), standard.get("weights")))

    def check(self, weights: Any) -> None:
        if not isinstance(self.aux_classifiers, bool):
            raise ValueError(
                f"`aux_classifiers` must be True or False. Received: aux_classifiers={self.aux_classifiers!r}"
            )
        check_variant("GoogLeNet", self.variant, weights)
        if self.aux_classifiers and self.variant == "torchvision":
            raise ValueError(
                "`aux_classifiers=True` is the paper variant's (its section 5 heads): torchvision's checkpoint "
                "holds untrained auxiliary heads that torchvision itself drops for evaluation. Use "
                "variant='paper' with weights=None or a file path. Received: aux_classifiers=True, "
                "variant='torchvision'"
            )

    def weights_variant(self, input_shape: tuple) -> dict:
        return {"variant": self.variant}


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
    variant: str | None = None,
):
    """GoogLeNet (Inception v1) as in Table 1 of the paper (6,998,552 parameters), or torchvision's.

    The keras.applications argument pattern; ``weights`` defaults to None. Keyword-only
    ``variant`` chooses the network: ``"paper"`` (Table 1 with LRN, no BatchNorm; no ImageNet
    weights exist), ``"torchvision"`` (torchvision's BatchNorm GoogLeNet, whose ImageNet
    weights ``weights="imagenet"`` downloads and converts once; see the module docs), or None
    (the default): ``"torchvision"`` with ``weights="imagenet"``, ``"paper"`` otherwise.
    ``variant="paper"`` with ``weights="imagenet"`` raises a ValueError. Both take
    :func:`preprocess_input` ("tf", [-1, 1]). Input 224x224x3 by default.
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
    >>> kapps.GoogLeNet(variant="torchvision").count_params()
    6639464
    """
    options = SPEC.options_of({"aux_classifiers": aux_classifiers, "variant": variant}, weights=weights)
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
