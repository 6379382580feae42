"""EfficientNet's blocks: MBConv (inverted residual + squeeze-excite) and fused-MBConv.

:class:`MBConv` is :class:`~kapps.blocks.InvertedResidual` with EfficientNet's settings
(swish, a squeeze-excite whose reduction is a fraction of the *input* channels,
stochastic depth on the residual branch). :class:`FusedMBConv` (EfficientNetV2) fuses
the expansion and depthwise convolutions into one full ``k x k`` convolution.
Layer names default to keras.applications' EfficientNet names.
"""

from __future__ import annotations

__all__ = ["FusedMBConv", "MBConv", "MBCONV_NAMES", "FUSED_MBCONV_NAMES"]

from typing import Any, Callable

import keras

from kapps.blocks.base import Block, Names, resolve_data_format
from kapps.blocks.conv import ConvBNAct
from kapps.blocks.inverted_residual import InvertedResidual
from kapps.blocks.squeeze_excite import SqueezeExcite, squeeze_channels
from kapps.blocks.stochastic_depth import drop_path

_SE_NAMES = {
    "se_pool": "{p}se_squeeze", "se_reshape": "{p}se_reshape", "se_reduce": "{p}se_reduce",
    "se_expand": "{p}se_expand", "se_excite": "{p}se_excite", "se_block": "{p}se_unit",
}
#: keras.applications.EfficientNet's names for the roles of an MBConv block
#: (EfficientNetV2 calls its depthwise convolution ``{p}dwconv2``).
MBCONV_NAMES = {
    "expand_act": "{p}expand_activation", "pad": "{p}dwconv_pad", "dw_conv": "{p}dwconv",
    "dw_bn": "{p}bn", "dw_act": "{p}activation", "block": "{p}unit", **_SE_NAMES,
}
#: keras.applications.EfficientNetV2's names for the roles of a fused-MBConv block.
FUSED_MBCONV_NAMES = {
    "expand_act": "{p}expand_activation", "project_act": "{p}project_activation", "block": "{p}unit",
    **_SE_NAMES,
}


def _names(names: Names | str | None, default_prefix: str, templates: dict) -> Names:
    if isinstance(names, Names):
        return names
    return Names(default_prefix if names is None else names, templates)


def _squeeze_excite(
    names: Names, filters: int, in_channels: int, se_ratio: float, activation: Any, data_format: str | None
) -> Block | None:
    """EfficientNet's squeeze-excite on ``filters`` channels, reduced to ``se_ratio`` of the input."""
    if not 0 < se_ratio <= 1:
        return None
    roles = ("pool", "reshape", "reduce", "expand", "excite", "block")
    return SqueezeExcite(
        filters, squeeze_channels(in_channels, se_ratio), activation=activation, gate="sigmoid",
        keep_dims_pool=False, fused_activations=True, data_format=data_format,
        names=Names("", {role: names(f"se_{role}") for role in roles}),
    )


@keras.saving.register_keras_serializable(package="kapps")
class MBConv(InvertedResidual):
    """Mobile inverted bottleneck with squeeze-excite and stochastic depth (EfficientNet).

    1x1 expansion (left out when ``expansion == 1``), ``k x k`` depthwise convolution,
    squeeze-excite (when ``0 < se_ratio <= 1``; reduction ``max(1, int(in_channels *
    se_ratio))``), linear 1x1 projection; when the stride is 1 and the widths agree,
    stochastic depth (``drop_rate > 0``) and the identity skip.

    Roles: those of :class:`~kapps.blocks.InvertedResidual` plus ``se_pool``,
    ``se_reshape``, ``se_reduce``, ``se_expand``, ``se_excite``; a prefix string gets
    keras.applications' EfficientNet names (:data:`MBCONV_NAMES`).

    >>> import numpy as np
    >>> block = MBConv(16, 24, expansion=6, strides=2, kernel_size=5, names="block2a_")
    >>> tuple(block(np.zeros((1, 8, 8, 16), "float32")).shape)
    (1, 4, 4, 24)
    >>> block.depthwise.conv.name, block.squeeze_excite.reduce.filters
    ('block2a_dwconv', 4)
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        expansion: float = 6,
        strides: int = 1,
        *,
        kernel_size: int = 3,
        se_ratio: float = 0.25,
        activation: str | Callable | None = "swish",
        drop_rate: float = 0.0,
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.99,
        strided_padding: str = "pad_then_valid",
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = _names(names, "mbconv_", MBCONV_NAMES)
        hidden = int(in_channels * expansion)
        data_format = resolve_data_format(data_format)
        super().__init__(
            in_channels, filters, expansion, strides, kernel_size=kernel_size, activation=activation,
            bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, names=names, hidden_channels=hidden,
            squeeze_excite=_squeeze_excite(names, hidden, in_channels, se_ratio, activation, data_format),
            drop_rate=drop_rate, strided_padding=strided_padding, data_format=data_format, **kwargs,
        )


@keras.saving.register_keras_serializable(package="kapps")
class FusedMBConv(Block):
    """Fused-MBConv (Tan & Le 2021): one ``k x k`` convolution instead of 1x1 + depthwise.

    With ``expansion != 1``: ``k x k`` expansion convolution (carrying the stride),
    optional squeeze-excite, linear 1x1 projection. With ``expansion == 1``: a single
    ``k x k`` projection convolution with the stride and the activation. Then, when the
    stride is 1 and the widths agree, stochastic depth (``drop_rate > 0``) and the
    identity skip. Convolutions pad ``"same"``.

    Roles: ``expand_conv``, ``expand_bn``, ``expand_act``, ``se_pool``, ``se_reshape``,
    ``se_reduce``, ``se_expand``, ``se_excite``, ``project_conv``, ``project_bn``,
    ``project_act``, ``drop``, ``add``; a prefix string gets keras.applications'
    EfficientNetV2 names (:data:`FUSED_MBCONV_NAMES`).

    >>> import numpy as np
    >>> block = FusedMBConv(24, 48, expansion=4, strides=2, names="block2a_")
    >>> tuple(block(np.zeros((1, 8, 8, 24), "float32")).shape)
    (1, 4, 4, 48)
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        expansion: float = 4,
        strides: int = 1,
        *,
        kernel_size: int = 3,
        se_ratio: float = 0.0,
        activation: str | Callable | None = "swish",
        drop_rate: float = 0.0,
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.9,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = _names(names, "fused_mbconv_", FUSED_MBCONV_NAMES)
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=fmt)

        def sub(part: str) -> Names:
            roles = {r: names(f"{part}_{r}") for r in ("conv", "bn", "act")}
            return Names("", roles | {"block": f"{names.prefix}{part}_unit"})

        hidden = int(in_channels * expansion)
        if expansion != 1:
            self.expand = ConvBNAct(hidden, kernel_size, strides, activation=activation, names=sub("expand"), **bn)
            self.project = ConvBNAct(filters, 1, activation=None, names=sub("project"), **bn)
        else:
            self.expand = None
            self.project = ConvBNAct(filters, kernel_size, strides, activation=activation, names=sub("project"), **bn)
        self.squeeze_excite = _squeeze_excite(names, hidden, in_channels, se_ratio, activation, fmt)
        residual = strides == 1 and in_channels == filters
        self.drop = drop_path(drop_rate, names("drop")) if residual and drop_rate > 0 else None
        self.add = keras.layers.Add(name=names("add")) if residual else None

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        x = inputs
        if self.expand is not None:
            x = self.expand.run(x, training=training)
        if self.squeeze_excite is not None:
            x = self.squeeze_excite.run(x, training=training)
        x = self.project.run(x, training=training)
        if self.drop is not None:
            x = self.drop(x, training=training)
        if self.add is not None:
            x = self.add([inputs, x])
        return x
