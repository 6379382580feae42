"""The grouped-convolution bottleneck (Xie et al. 2017, ResNeXt; Radosavovic et al. 2020, RegNet).

1x1 conv-BN-act, 3x3 *grouped* conv-BN-act (the strided one), optional squeeze-excite,
1x1 conv-BN; added to the shortcut (the identity, or a strided 1x1 conv-BN), then the
activation. With ``squeeze_filters`` it is RegNet's Y block, without it the X block; the
widths of the three convolutions are equal (RegNet's bottleneck ratio 1).
"""

from __future__ import annotations

__all__ = ["GroupedBottleneck"]

from typing import Any, Callable

import keras

from kapps.blocks.base import Names, as_names, resolve_data_format
from kapps.blocks.conv import ConvBNAct
from kapps.blocks.residual import Chain, Residual
from kapps.blocks.squeeze_excite import SqueezeExcite


def _conv_names(names: Names, unit: str) -> Names:
    """Roles of one conv-BN-act unit (``conv1`` -> ``conv1``, ``bn1``, ``act1``)."""
    n = unit[-1]
    return Names("", {"conv": names(unit), "bn": names(f"bn{n}"), "act": names(f"act{n}"),
                      "block": names(f"unit{n}")})


@keras.saving.register_keras_serializable(package="kapps")
class GroupedBottleneck(Residual):
    """``act(shortcut(x) + bn3(conv3(se(act(bn2(gconv2(act(bn1(conv1(x))))))))))``.

    The 3x3 convolution has ``filters // group_width`` groups (at least one) and carries the stride; the
    shortcut is a strided 1x1 convolution with BatchNorm when ``strides > 1`` or the width
    changes, else the identity. Convolutions have no bias. The sum is ``body + shortcut`` (the
    order of RegNet's layers in tf.keras).

    Roles (for :class:`~kapps.blocks.Names`): ``shortcut_conv``, ``shortcut_bn``,
    ``conv1``/``bn1``/``act1``, ``conv2``/``bn2``/``act2``, ``se_pool``, ``se_reduce``,
    ``se_expand``, ``se_excite``, ``conv3``/``bn3``, ``add``, ``out``.

    Args:
        filters_in: input channels.
        filters: output channels (and those of every convolution).
        group_width: channels per group of the 3x3 convolution.
        strides: stride of the 3x3 convolution and of the shortcut.
        squeeze_filters: width of the squeeze-excite reduction, or None for no squeeze-excite.
        activation: activation after the first two units and after the sum.
        bn_epsilon, bn_momentum: the BatchNorm constants.
        names: a :class:`~kapps.blocks.Names` or prefix string.
        data_format: ``"channels_last"``, ``"channels_first"`` or None (Keras' setting).

    >>> import numpy as np
    >>> block = GroupedBottleneck(16, 32, group_width=8, strides=2, squeeze_filters=4, names="y1_")
    >>> tuple(block(np.zeros((1, 8, 8, 16), "float32")).shape)
    (1, 4, 4, 32)
    """

    def __init__(
        self,
        filters_in: int,
        filters: int,
        group_width: int,
        strides: int = 1,
        *,
        squeeze_filters: int | None = None,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "grouped_bottleneck_")
        fmt = resolve_data_format(data_format)
        groups = max(1, filters // group_width)  # a group wider than the block: one group (RegNetX080's stage 1)
        common = dict(use_bias=False, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=fmt)
        shortcut = None
        if strides != 1 or filters_in != filters:
            shortcut = ConvBNAct(filters, 1, strides, activation=None, **common, names=Names("", {
                "conv": names("shortcut_conv"), "bn": names("shortcut_bn"), "block": names("shortcut")}))
        parts: list = [
            ConvBNAct(filters, 1, activation=activation, names=_conv_names(names, "conv1"), **common),
            ConvBNAct(filters, 3, strides, groups=groups, activation=activation,
                      names=_conv_names(names, "conv2"), **common),
        ]
        if squeeze_filters:
            parts.append(SqueezeExcite(
                filters, squeeze_filters, activation="relu", gate="sigmoid", keep_dims_pool=True,
                fused_activations=True, data_format=fmt, names=Names("", {
                    "pool": names("se_pool"), "reduce": names("se_reduce"), "expand": names("se_expand"),
                    "excite": names("se_excite"), "block": names("se")}),
            ))
        parts.append(ConvBNAct(filters, 1, activation=None, names=_conv_names(names, "conv3"), **common))
        kwargs.setdefault("name", names.prefix.rstrip("_") or "grouped_bottleneck")
        super().__init__(Chain(parts, name=names("body")), shortcut, activation=activation,
                         add_name=names("add"), act_name=names("out"), skip_first=False, **kwargs)
        self.use_data_format(fmt)
