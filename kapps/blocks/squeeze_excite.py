"""Squeeze-and-excitation (Hu et al. 2018): channel weights computed from pooled features.

One block serves EfficientNet (swish, sigmoid gate, a reduction that is a fraction of
the block's *input* channels) and MobileNetV3 (ReLU, hard-sigmoid gate, a reduction
rounded with :func:`~kapps.blocks.make_divisible`); :func:`squeeze_channels` computes
either reduction.
"""

from __future__ import annotations

__all__ = ["SqueezeExcite", "squeeze_channels"]

from typing import Any, Callable

import keras

from kapps.blocks.activations import make_activation
from kapps.blocks.base import Block, Names, as_names
from kapps.blocks.widths import make_divisible


def squeeze_channels(channels: int, ratio: float, divisor: int | None = None) -> int:
    """Width of the squeeze (reduction) convolution: ``channels * ratio``, rounded.

    Without ``divisor``: truncated, at least 1 (EfficientNet, where ``channels`` is the
    block's input width). With ``divisor``: :func:`make_divisible` (MobileNetV3, where
    ``channels`` is the expanded width).

    >>> squeeze_channels(16, 0.25), squeeze_channels(72, 0.25, divisor=8)
    (4, 24)
    """
    if divisor is None:
        return max(1, int(channels * ratio))
    return make_divisible(channels * ratio, divisor)


@keras.saving.register_keras_serializable(package="kapps")
class SqueezeExcite(Block):
    """Global average pool, reduce (1x1 conv), activation, expand (1x1 conv), gate, multiply.

    Roles (for :class:`~kapps.blocks.Names`): ``pool``, ``reshape``, ``reduce``,
    ``reduce_act``, ``expand``, ``gate``, ``excite``.

    Args:
        filters: channels of the input (and of the expand convolution).
        squeeze_filters: channels of the reduce convolution (see :func:`squeeze_channels`).
        activation: activation after the reduce convolution.
        gate: activation after the expand convolution: ``"sigmoid"`` or ``"hard_sigmoid"``
            (``relu6(x + 3) / 6``) or any Keras activation.
        keep_dims_pool: pool straight to ``(1, 1, filters)`` (True, MobileNetV3), or pool
            to ``(filters,)`` and reshape in a separate ``reshape`` layer (False, EfficientNet).
        fused_activations: put ``activation`` and ``gate`` inside the two convolutions
            (True, EfficientNet), or make them separate ``reduce_act`` / ``gate`` layers
            (False, MobileNetV3). The numbers are the same; the layer graph differs.
        names: a :class:`~kapps.blocks.Names` or prefix string.
        data_format: ``"channels_last"``, ``"channels_first"`` or None (Keras' setting).

    >>> import numpy as np
    >>> se = SqueezeExcite(16, 4, activation="swish", names="se_")
    >>> tuple(se(np.ones((1, 5, 5, 16), "float32")).shape)
    (1, 5, 5, 16)
    """

    def __init__(
        self,
        filters: int,
        squeeze_filters: int,
        *,
        activation: str | Callable | None = "relu",
        gate: str | Callable = "sigmoid",
        keep_dims_pool: bool = True,
        fused_activations: bool = False,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "se_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        self.pool = keras.layers.GlobalAveragePooling2D(keepdims=keep_dims_pool, data_format=fmt, name=names("pool"))
        target = (filters, 1, 1) if fmt == "channels_first" else (1, 1, filters)
        self.reshape = None if keep_dims_pool else keras.layers.Reshape(target, name=names("reshape"))
        inner = dict(kernel_size=1, padding="same", data_format=fmt)
        if fused_activations:
            self.reduce = keras.layers.Conv2D(squeeze_filters, activation=activation, name=names("reduce"), **inner)
            self.expand = keras.layers.Conv2D(filters, activation=gate, name=names("expand"), **inner)
            self.reduce_act = self.gate = None
        else:
            self.reduce = keras.layers.Conv2D(squeeze_filters, name=names("reduce"), **inner)
            self.reduce_act = make_activation(activation, names("reduce_act"))
            self.expand = keras.layers.Conv2D(filters, name=names("expand"), **inner)
            self.gate = make_activation(gate, names("gate"))
        self.excite = keras.layers.Multiply(name=names("excite"))

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        x = self.pool(inputs)
        if self.reshape is not None:
            x = self.reshape(x)
        x = self.reduce(x)
        if self.reduce_act is not None:
            x = self.reduce_act(x)
        x = self.expand(x)
        if self.gate is not None:
            x = self.gate(x)
        return self.excite([inputs, x])
