"""The inverted residual (MobileNetV2) block: expand, depthwise, linear projection, skip."""

from __future__ import annotations

__all__ = ["InvertedResidual"]

from typing import Any, Callable

import keras

from kapps.blocks.base import Block, Names, as_names
from kapps.blocks.conv import ConvBNAct
from kapps.blocks.residual import run_layer
from kapps.blocks.stochastic_depth import drop_path


@keras.saving.register_keras_serializable(package="kapps")
class InvertedResidual(Block):
    """1x1 expansion, 3x3 depthwise, 1x1 linear bottleneck, and an identity skip.

    Sandler et al. 2018: the expansion and depthwise convolutions use ReLU6, the
    projection is linear, and the skip is added when the stride is 1 and the input and
    output channels agree. ``expansion == 1`` leaves out the expansion convolution.

    Optional, for the MobileNetV3 / EfficientNet variants of the block (the defaults
    give MobileNetV2's): ``hidden_channels`` sets the expanded width (default
    ``int(in_channels * expansion)``); ``squeeze_excite`` is a block applied after the
    depthwise activation (for example a :class:`~kapps.blocks.SqueezeExcite`);
    ``drop_rate > 0`` adds stochastic depth on the residual branch before the sum;
    ``data_format`` is the image layout (None: Keras' ``image_data_format()``, read at
    construction; a ``squeeze_excite`` block must be built for the same layout);
    ``strided_padding`` is how a strided depthwise convolution pads: ``"pad_then_valid"``
    (explicit TensorFlow-SAME zero padding, then a valid convolution) or ``"same"``.

    Roles (for :class:`Names`): ``expand_conv``, ``expand_bn``, ``expand_act``, ``pad``,
    ``dw_conv``, ``dw_bn``, ``dw_act``, ``project_conv``, ``project_bn``, ``drop``, ``add``.

    >>> import numpy as np
    >>> block = InvertedResidual(in_channels=16, filters=16, expansion=6, names="ir_")
    >>> tuple(block(np.zeros((1, 8, 8, 16), "float32")).shape)
    (1, 8, 8, 16)
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        expansion: float = 6,
        strides: int = 1,
        *,
        kernel_size: int = 3,
        activation: str | Callable | None = "relu6",
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.999,
        names: Names | str | None = None,
        hidden_channels: int | None = None,
        squeeze_excite: keras.layers.Layer | None = None,
        drop_rate: float = 0.0,
        strided_padding: str = "pad_then_valid",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "inverted_residual_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=self.use_data_format(data_format))

        def sub(part: str) -> Names:
            roles = {r: names(f"{part}_{r}") for r in ("conv", "bn", "act")}
            return Names("", roles | {"pad": names("pad"), "block": f"{names.prefix}{part}_unit"})

        hidden = int(in_channels * expansion) if hidden_channels is None else hidden_channels
        self.expand = (
            ConvBNAct(hidden, 1, activation=activation, names=sub("expand"), **bn) if expansion != 1 else None
        )
        self.depthwise = ConvBNAct(
            None, kernel_size, strides, depthwise=True, activation=activation,
            padding="same" if strides == 1 else strided_padding, names=sub("dw"), **bn,
        )
        self.squeeze_excite = squeeze_excite
        self.project = ConvBNAct(filters, 1, activation=None, names=sub("project"), **bn)
        residual = strides == 1 and in_channels == filters
        self.drop = drop_path(drop_rate, names("drop")) if residual and drop_rate > 0 else None
        self.add = keras.layers.Add(name=names("add")) if residual else None

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        x = inputs
        if self.expand is not None:
            x = self.expand.run(x, training=training)
        x = self.depthwise.run(x, training=training)
        if self.squeeze_excite is not None:
            x = run_layer(self.squeeze_excite, x, training)
        x = self.project.run(x, training=training)
        if self.drop is not None:
            x = self.drop(x, training=training)
        if self.add is not None:
            x = self.add([inputs, x])
        return x
