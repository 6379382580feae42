"""Dense connectivity (Huang et al. 2017): dense layers, dense blocks and transitions.

A *dense layer* computes ``growth_rate`` new feature maps from everything before it
(pre-activation BN-ReLU-conv, with a 1x1 bottleneck) and concatenates them to its input,
so channels grow by ``growth_rate`` per layer. A *transition* compresses the channels
with a 1x1 convolution and halves the resolution with 2x2 average pooling.

Layer names follow keras.applications' DenseNet: a dense layer with prefix
``"conv2_block1_"`` owns ``conv2_block1_0_bn``, ``conv2_block1_0_relu``,
``conv2_block1_1_conv``, ``conv2_block1_1_bn``, ``conv2_block1_1_relu``,
``conv2_block1_2_conv`` and ``conv2_block1_concat``; a transition with prefix
``"pool2_"`` owns ``pool2_bn``, ``pool2_relu``, ``pool2_conv`` and ``pool2_pool``.
"""

from __future__ import annotations

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DENSENET_BN_EPSILON"]

from typing import Any, Callable

import keras

from kapps.blocks.base import Block, Names, as_names
from kapps.blocks.conv import ConvBNAct
from kapps.blocks.resnet import BNAct

#: The BatchNorm epsilon of Keras' DenseNet weights (converted from Caffe/Torch).
DENSENET_BN_EPSILON = 1.001e-5


def _pre_activation(
    names: Names, unit: str, activation: Any, bn_epsilon: float, bn_momentum: float, data_format: str
) -> BNAct:
    return BNAct(
        activation=activation, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=data_format,
        names=Names("", {"bn": names(f"{unit}_bn"), "act": names(f"{unit}_relu"), "block": names(f"{unit}_preact")}),
    )


def _conv(filters: int, kernel_size: int, names: Names, unit: str, data_format: str) -> ConvBNAct:
    """A bare convolution (no BN, no activation, no bias) named ``{prefix}{unit}_conv``."""
    return ConvBNAct(
        filters, kernel_size, padding="same", bn=False, activation=None, use_bias=False, data_format=data_format,
        names=Names("", {"conv": names(f"{unit}_conv"), "block": names(f"{unit}_unit")}),
    )


@keras.saving.register_keras_serializable(package="kapps")
class DenseLayer(Block):
    """BN-ReLU-1x1 conv (``bottleneck * growth_rate``), BN-ReLU-3x3 conv (``growth_rate``), concat.

    The output is the input with ``growth_rate`` channels appended. Roles (with
    ``names`` as prefix): ``0_bn``, ``0_relu``, ``1_conv``, ``1_bn``, ``1_relu``,
    ``2_conv``, ``concat``.

    >>> import numpy as np
    >>> layer = DenseLayer(32, names="conv2_block1_")
    >>> tuple(layer(np.zeros((1, 8, 8, 64), "float32")).shape)
    (1, 8, 8, 96)
    >>> layer.concat.name
    'conv2_block1_concat'
    """

    def __init__(
        self,
        growth_rate: int = 32,
        *,
        bottleneck: int = 4,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = DENSENET_BN_EPSILON,
        bn_momentum: float = 0.99,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "dense_layer_")
        kwargs.setdefault("name", names("layer"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        bn = dict(activation=activation, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=fmt)
        self.growth_rate = growth_rate
        self.preact1 = _pre_activation(names, "0", **bn)
        self.conv1 = _conv(bottleneck * growth_rate, 1, names, "1", fmt)
        self.preact2 = _pre_activation(names, "1", **bn)
        self.conv2 = _conv(growth_rate, 3, names, "2", fmt)
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=names("concat"))

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        x = self.preact1.run(inputs, training=training)
        x = self.conv1.run(x, training=training)
        x = self.preact2.run(x, training=training)
        x = self.conv2.run(x, training=training)
        return self.concat([inputs, x])


@keras.saving.register_keras_serializable(package="kapps")
class DenseBlock(Block):
    """``num_layers`` :class:`DenseLayer` in a row; layer ``i`` (from 1) is named ``{prefix}block{i}_``.

    >>> import numpy as np
    >>> block = DenseBlock(6, growth_rate=32, names="conv2_")
    >>> tuple(block(np.zeros((1, 8, 8, 64), "float32")).shape)
    (1, 8, 8, 256)
    >>> block.dense_layers[0].conv1.conv.name
    'conv2_block1_1_conv'
    """

    def __init__(
        self,
        num_layers: int,
        growth_rate: int = 32,
        *,
        bottleneck: int = 4,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = DENSENET_BN_EPSILON,
        bn_momentum: float = 0.99,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "dense_block_")
        kwargs.setdefault("name", names("dense_block"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"`num_layers` must be a positive integer. Received: num_layers={num_layers!r}")
        self.dense_layers = [
            DenseLayer(
                growth_rate, bottleneck=bottleneck, activation=activation, bn_epsilon=bn_epsilon,
                bn_momentum=bn_momentum, names=names.sub(f"block{i}_"), data_format=fmt,
            )
            for i in range(1, num_layers + 1)
        ]

    def compose(self, x: Any, training: bool | None = None) -> Any:
        for layer in self.dense_layers:
            x = layer.run(x, training=training)
        return x


@keras.saving.register_keras_serializable(package="kapps")
class Transition(Block):
    """BN-ReLU, 1x1 convolution to ``filters`` channels, 2x2 average pooling with stride 2.

    DenseNet compresses by ``reduction`` (0.5): pass ``filters=int(channels * reduction)``.
    Roles (with ``names`` as prefix): ``bn``, ``relu``, ``conv``, ``pool``.

    >>> import numpy as np
    >>> block = Transition(128, names="pool2_")
    >>> tuple(block(np.zeros((1, 8, 8, 256), "float32")).shape)
    (1, 4, 4, 128)
    """

    def __init__(
        self,
        filters: int,
        *,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = DENSENET_BN_EPSILON,
        bn_momentum: float = 0.99,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "transition_")
        kwargs.setdefault("name", names("transition"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        self.preact = BNAct(
            activation=activation, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=fmt,
            names=Names("", {"bn": names("bn"), "act": names("relu"), "block": names("preact")}),
        )
        self.conv = ConvBNAct(
            filters, 1, bn=False, activation=None, use_bias=False, data_format=fmt,
            names=Names("", {"conv": names("conv"), "block": names("conv_unit")}),
        )
        self.pool = keras.layers.AveragePooling2D(2, strides=2, data_format=fmt, name=names("pool"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        x = self.preact.run(x, training=training)
        x = self.conv.run(x, training=training)
        return self.pool(x)
