"""Residual blocks of ResNet v1 (He et al. 2016a: the basic block and the bottleneck) and v2 (He et al. 2016b).

The v1 block also makes ResNet-D (He et al. 2019, "Bag of Tricks") with squeeze-excite and
stochastic depth, the block of ResNet-RS (Bello et al. 2021).

Both are named after their keras.applications layers: a block with prefix
``"conv3_block1_"`` owns ``conv3_block1_1_conv``, ``conv3_block1_1_bn``, ...; the unit
number is the role's first part (``0`` the projection shortcut, ``1``-``3`` the 1x1, 3x3
and 1x1 convolutions).
"""

from __future__ import annotations

__all__ = ["BasicBlock", "Bottleneck", "PreActBottleneck", "BNAct", "RESNET_BN_EPSILON", "TORCH_BN_EPSILON"]

from typing import Any, Callable

import keras

from kapps.blocks.activations import make_activation
from kapps.blocks.base import Block, Names, as_names, resolve_data_format
from kapps.blocks.conv import ConvBNAct, batch_norm
from kapps.blocks.residual import Chain, Residual
from kapps.blocks.squeeze_excite import SqueezeExcite
from kapps.blocks.stochastic_depth import drop_path

#: The BatchNorm epsilon of Keras' ResNet weights (converted from Caffe).
RESNET_BN_EPSILON = 1.001e-5
#: PyTorch's BatchNorm epsilon (``nn.BatchNorm2d``'s default), that of torchvision's weights.
TORCH_BN_EPSILON = 1e-5


def _unit_names(names: Names, unit: int | str) -> Names:
    """Names for conv/bn/act of one unit: roles ``{unit}_conv``, ``_bn``, ``_relu`` of ``names``
    (by default ``{prefix}{unit}_conv``, ...; a template of ``names`` overrides one)."""
    roles = {"conv": "conv", "bn": "bn", "act": "relu", "pad": "pad", "block": "unit"}
    return Names("", {role: names(f"{unit}_{suffix}") for role, suffix in roles.items()})


@keras.saving.register_keras_serializable(package="kapps")
class BNAct(Block):
    """BatchNorm then an activation, without a convolution (pre-activation, ResNet v2's end).

    Roles (for :class:`~kapps.blocks.Names`): ``bn``, ``act``.

    >>> import numpy as np
    >>> tuple(BNAct(names=Names("post_", {"act": "{p}relu"}))(np.zeros((1, 4, 4, 8), "float32")).shape)
    (1, 4, 4, 8)
    """

    def __init__(
        self,
        *,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.99,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "bn_act_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        self.use_data_format(data_format)
        self.bn = batch_norm(names("bn"), bn_epsilon, bn_momentum, axis=self.channel_axis)
        self.act = make_activation(activation, names("act"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        x = self.bn(x, training=training)
        return x if self.act is None else self.act(x)


@keras.saving.register_keras_serializable(package="kapps")
class BasicBlock(Residual):
    """ResNet v1 basic block (ResNet-18/34): 3x3 conv-BN-act, 3x3 conv-BN; add; act.

    The first 3x3 convolution carries the stride; a strided one is preceded by a symmetric
    one-pixel zero padding and is ``valid`` (as PyTorch pads), the others are ``same``. The
    shortcut is the identity, or (``conv_shortcut=True``) a strided 1x1 convolution with
    BatchNorm. Convolutions have no bias by default (BatchNorm follows each).

    Roles (for :class:`~kapps.blocks.Names`; default names ``{p}<role>``): ``pad1``,
    ``conv1``, ``bn1``, ``act1``, ``conv2``, ``bn2``, ``shortcut_conv``, ``shortcut_bn``,
    ``add``, ``out``, ``body``. torchvision's names are templates:
    ``{"shortcut_conv": "{p}downsample_0", "shortcut_bn": "{p}downsample_1"}``.

    >>> import numpy as np
    >>> block = BasicBlock(16, strides=2, conv_shortcut=True, names="layer2_0_")
    >>> tuple(block(np.zeros((1, 8, 8, 8), "float32")).shape)
    (1, 4, 4, 16)
    >>> [layer.name for layer in block.body.parts][:2]
    ['layer2_0_pad1', 'layer2_0_unit1']
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        *,
        conv_shortcut: bool = False,
        use_bias: bool = False,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = TORCH_BN_EPSILON,
        bn_momentum: float = 0.9,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "basic_")
        data_format = resolve_data_format(data_format)
        common = dict(use_bias=use_bias, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=data_format)

        def unit(n: int | str) -> Names:
            return Names("", {"conv": names(f"conv{n}"), "bn": names(f"bn{n}"), "act": names(f"act{n}"),
                              "block": names(f"unit{n}")})

        shortcut = None
        if conv_shortcut:
            shortcut = ConvBNAct(filters, 1, strides, padding="valid", activation=None, names=Names("", {
                "conv": names("shortcut_conv"), "bn": names("shortcut_bn"), "block": names("shortcut")}), **common)
        parts: list = []
        if strides > 1:
            parts.append(keras.layers.ZeroPadding2D(1, data_format=data_format, name=names("pad1")))
        parts += [
            ConvBNAct(filters, 3, strides, padding="valid" if strides > 1 else "same", activation=activation,
                      names=unit(1), **common),
            ConvBNAct(filters, 3, padding="same", activation=None, names=unit(2), **common),
        ]
        kwargs.setdefault("name", names.prefix.rstrip("_") or "basic_block")
        super().__init__(Chain(parts, name=names("body")), shortcut, activation=activation, add_name=names("add"),
                         act_name=names("out"), **kwargs)
        self.use_data_format(data_format)


@keras.saving.register_keras_serializable(package="kapps")
class Bottleneck(Residual):
    """ResNet v1 bottleneck: 1x1, 3x3, 1x1 x ``expansion``; add; ReLU.

    The shortcut is the identity, or (``conv_shortcut=True``) a 1x1 convolution with
    BatchNorm, strided like the block. As in Keras' ResNet, by default the stride sits on
    the first 1x1 convolution and convolutions have biases (``use_bias``). The options
    make the later variants of the same block:

    * ``stride_at="middle"``: the 3x3 convolution carries the stride, after a fixed
      symmetric zero padding (ResNet v1.5 / ResNet-D, as TensorFlow's reference models pad);
    * ``avg_down=True``: a strided shortcut is a 2x2 average pooling, then a 1x1
      convolution with stride 1 (ResNet-D);
    * ``squeeze_filters``: squeeze-and-excitation on the last BatchNorm's output (pool,
      reshape, reduce to ``squeeze_filters`` with ``activation``, expand with a sigmoid);
    * ``drop_rate``: stochastic depth of the residual branch (:func:`drop_path`);
    * ``skip_first=False``: the sum is ``body + shortcut`` (see :class:`Residual`).

    Layer names with prefix ``p`` (roles of ``names``; a template overrides one):
    ``{p}0_conv``, ``{p}0_bn``, ``{p}0_pool`` (shortcut), ``{p}1_conv``, ``{p}1_bn``,
    ``{p}1_relu``, ``{p}2_pad``, ``{p}2_*``, ``{p}3_conv``, ``{p}3_bn``, ``{p}se_pool``,
    ``{p}se_reshape``, ``{p}se_reduce``, ``{p}se_expand``, ``{p}se_excite``, ``{p}drop``,
    ``{p}add``, ``{p}out``.

    >>> import numpy as np
    >>> block = Bottleneck(16, strides=2, conv_shortcut=True, names="conv3_block1_")
    >>> tuple(block(np.zeros((1, 8, 8, 32), "float32")).shape)
    (1, 4, 4, 64)
    >>> d = Bottleneck(16, strides=2, stride_at="middle", avg_down=True, squeeze_filters=16, drop_rate=0.1)
    >>> tuple(d(np.zeros((1, 9, 9, 32), "float32")).shape)
    (1, 5, 5, 64)
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        *,
        conv_shortcut: bool = True,
        kernel_size: int = 3,
        expansion: int = 4,
        use_bias: bool = True,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = RESNET_BN_EPSILON,
        bn_momentum: float = 0.99,
        stride_at: str = "first",
        avg_down: bool = False,
        squeeze_filters: int | None = None,
        drop_rate: float = 0.0,
        skip_first: bool = True,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        if stride_at not in ("first", "middle"):
            raise ValueError(f"`stride_at` must be 'first' or 'middle'. Received: stride_at={stride_at!r}")
        names = as_names(names, "bottleneck_")
        data_format = resolve_data_format(data_format)
        common = dict(use_bias=use_bias, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=data_format)
        shortcut = None
        if conv_shortcut:
            pooled = avg_down and strides > 1
            shortcut = ConvBNAct(expansion * filters, 1, 1 if pooled else strides, activation=None,
                                 names=_unit_names(names, 0), **common)
            if pooled:
                shortcut = Chain([keras.layers.AveragePooling2D(2, strides, padding="same", data_format=data_format,
                                                                name=names("0_pool")), shortcut],
                                 name=names("shortcut"))
        first, middle = (strides, 1) if stride_at == "first" else (1, strides)
        parts: list = [ConvBNAct(filters, 1, first, activation=activation, names=_unit_names(names, 1), **common)]
        if middle > 1:
            before = (kernel_size - 1) // 2
            after = kernel_size - 1 - before
            parts.append(keras.layers.ZeroPadding2D(((before, after), (before, after)), data_format=data_format,
                                                    name=names("2_pad")))
        parts += [
            ConvBNAct(filters, kernel_size, middle, padding="valid" if middle > 1 else "same",
                      activation=activation, names=_unit_names(names, 2), **common),
            ConvBNAct(expansion * filters, 1, activation=None, names=_unit_names(names, 3), **common),
        ]
        if squeeze_filters:
            parts.append(SqueezeExcite(
                expansion * filters, squeeze_filters, activation=activation, gate="sigmoid", keep_dims_pool=False,
                fused_activations=True, data_format=data_format, names=Names("", {
                    role: names(f"se_{role}") for role in ("pool", "reshape", "reduce", "expand", "excite")
                } | {"block": names("se")}),
            ))
        if drop_rate:
            parts.append(drop_path(drop_rate, names("drop")))
        body = Chain(parts, name=names("body"))
        kwargs.setdefault("name", names.prefix.rstrip("_") or "bottleneck")
        super().__init__(body, shortcut, activation=activation, add_name=names("add"), act_name=names("out"),
                         skip_first=skip_first, **kwargs)
        self.use_data_format(data_format)


@keras.saving.register_keras_serializable(package="kapps")
class PreActBottleneck(Block):
    """ResNet v2 pre-activation bottleneck: BN-ReLU first, then 1x1, 3x3 (strided), 1x1.

    The shortcut is a 1x1 convolution of the pre-activated input
    (``conv_shortcut=True``), or the input itself, subsampled by a 1x1 max pooling when
    ``strides > 1``. The last 1x1 convolution has a bias and no BatchNorm; the sum is
    not activated (the next block's pre-activation does it).

    Layer names with prefix ``p``: ``{p}preact_bn``, ``{p}preact_relu``, ``{p}0_conv``,
    ``{p}1_conv``, ``{p}1_bn``, ``{p}1_relu``, ``{p}2_pad``, ``{p}2_conv``, ``{p}2_bn``,
    ``{p}2_relu``, ``{p}3_conv``, ``{p}out``; the subsampling pool is ``pool_name``.

    >>> import numpy as np
    >>> block = PreActBottleneck(16, strides=2, names="conv2_block3_")
    >>> tuple(block(np.zeros((1, 8, 8, 64), "float32")).shape)
    (1, 4, 4, 64)
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        *,
        conv_shortcut: bool = False,
        kernel_size: int = 3,
        expansion: int = 4,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = RESNET_BN_EPSILON,
        bn_momentum: float = 0.99,
        names: Names | str | None = None,
        pool_name: str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "preact_bottleneck_")
        kwargs.setdefault("name", names.prefix.rstrip("_") or "preact_bottleneck")
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=fmt)
        self.preact = BNAct(activation=activation, names=Names("", {
            "bn": names("preact_bn"), "act": names("preact_relu"), "block": names("preact")}), **bn)
        if conv_shortcut:
            self.shortcut = keras.layers.Conv2D(
                expansion * filters, 1, strides=strides, data_format=fmt, name=names("0_conv"))
        elif strides > 1:
            self.shortcut = keras.layers.MaxPooling2D(
                1, strides=strides, data_format=fmt, name=pool_name or names("0_pool"))
        else:
            self.shortcut = None
        self.conv_shortcut = conv_shortcut
        pad = kernel_size // 2
        self.body = Chain([
            ConvBNAct(filters, 1, activation=activation, names=_unit_names(names, 1), **bn),
            keras.layers.ZeroPadding2D(((pad, pad), (pad, pad)), data_format=fmt, name=names("2_pad")),
            ConvBNAct(filters, kernel_size, strides, padding="valid", activation=activation,
                      names=_unit_names(names, 2), **bn),
            keras.layers.Conv2D(expansion * filters, 1, data_format=fmt, name=names("3_conv")),
        ], name=names("body"))
        self.add = keras.layers.Add(name=names("out"))

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        preact = self.preact.run(inputs, training=training)
        if self.shortcut is None:
            skip = inputs
        else:
            skip = self.shortcut(preact if self.conv_shortcut else inputs)
        x = self.body.run(preact, training=training)
        return self.add([skip, x])
