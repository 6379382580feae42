"""Separable-convolution units and residual stacks (Xception; reusable by NASNet and others).

A :class:`SeparableConvBN` unit is ``[act] -> SeparableConv2D -> BN -> [act]``: the
activation goes before the convolution (``preactivation=True``, Xception's entry and
middle flows, NASNet's separable blocks) or after the BatchNorm (Xception's exit flow).
A :class:`SeparableStack` chains such units, optionally ends with a strided max
pooling, and adds a shortcut (identity, or a strided 1x1 conv + BN) to the result.
"""

from __future__ import annotations

__all__ = ["SeparableConvBN", "SeparableStack", "separable_units"]

from typing import Any, Callable, Sequence

import keras

from kapps.blocks.activations import make_activation
from kapps.blocks.base import Block, Names, as_names, resolve_data_format
from kapps.blocks.conv import ConvBNAct, batch_norm
from kapps.blocks.padding import same_padding_for_stride
from kapps.blocks.residual import Chain, Residual, run_layer


@keras.saving.register_keras_serializable(package="kapps")
class SeparableConvBN(Block):
    """A separable convolution with BatchNorm and an activation before or after it.

    Roles (for :class:`~kapps.blocks.Names`): ``act``, ``pad``, ``conv``, ``bn``.

    Args:
        filters: output channels.
        kernel_size: depthwise kernel size.
        strides: stride of the separable convolution.
        activation: any Keras activation, ``"relu6"``, or None.
        preactivation: apply the activation before the convolution (True) or after
            the BatchNorm (False).
        padding: ``"same"``, ``"valid"`` or ``"pad_then_valid"`` (explicit zero padding
            sized like TensorFlow's SAME, then a valid convolution; see ``pad_mode``).
        use_bias: convolution bias.
        bn_epsilon, bn_momentum: BatchNorm constants.
        pad_mode: ``"correct"`` or ``"bottom_right"``, as in
            :func:`~kapps.blocks.same_padding_for_stride`.

    >>> import numpy as np
    >>> unit = SeparableConvBN(16, preactivation=True, names="block3_sepconv1_")
    >>> [unit.act.name, unit.conv.name, unit.bn.name]
    ['block3_sepconv1_act', 'block3_sepconv1_conv', 'block3_sepconv1_bn']
    >>> tuple(unit(np.zeros((1, 8, 8, 4), "float32")).shape)
    (1, 8, 8, 16)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int] = 3,
        strides: int | tuple[int, int] = 1,
        *,
        activation: str | Callable | None = "relu",
        preactivation: bool = False,
        padding: str = "same",
        depth_multiplier: int = 1,
        use_bias: bool = False,
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.99,
        pad_mode: str = "correct",
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "sepconv_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        if padding not in ("same", "valid", "pad_then_valid"):
            raise ValueError(
                f"`padding` must be 'same', 'valid' or 'pad_then_valid'. Received: padding={padding!r}"
            )
        self.kernel_size = kernel_size
        self.preactivation = preactivation
        self.explicit_pad = padding == "pad_then_valid"
        self.pad_mode = pad_mode
        self.pad_role_name = names("pad")
        self.pad = None
        self.act = make_activation(activation, names("act"))
        self.conv = keras.layers.SeparableConv2D(
            filters, kernel_size, strides=strides, padding="valid" if self.explicit_pad else padding,
            depth_multiplier=depth_multiplier, use_bias=use_bias, data_format=fmt, name=names("conv"),
        )
        self.bn = batch_norm(names("bn"), bn_epsilon, bn_momentum, axis=self.channel_axis)

    def create_shape_dependent(self, input_shape: Any) -> None:
        if self.explicit_pad:
            self.pad = keras.layers.ZeroPadding2D(
                same_padding_for_stride(input_shape, self.kernel_size, self.pad_mode, self.data_format),
                data_format=self.data_format, name=self.pad_role_name,
            )

    def compose(self, x: Any, training: bool | None = None) -> Any:
        if self.preactivation and self.act is not None:
            x = self.act(x)
        if self.pad is not None:
            x = self.pad(x)
        x = self.bn(self.conv(x), training=training)
        if not self.preactivation and self.act is not None:
            x = self.act(x)
        return x


def separable_units(
    filters: Sequence[int],
    names: Names | str,
    *,
    preactivation: bool = True,
    first_activation: bool = True,
    **unit_kwargs: Any,
) -> list[SeparableConvBN]:
    """One :class:`SeparableConvBN` per entry of ``filters``, named unit by unit.

    Unit ``i`` (from 1) takes the roles ``sepconv{i}`` (conv), ``sepconv{i}_bn`` and
    ``sepconv{i}_act`` of ``names``: with prefix ``"block4_"`` that is
    ``block4_sepconv1``, ``block4_sepconv1_bn``, ``block4_sepconv1_act``, Keras' Xception
    names. ``first_activation=False`` leaves out the first unit's activation (for an
    input that is already activated).

    >>> [u.conv.name for u in separable_units((8, 16), "block2_")]
    ['block2_sepconv1', 'block2_sepconv2']
    """
    names = as_names(names, "sepconv_")
    units = []
    for i, width in enumerate(filters, start=1):
        unit_names = Names("", {
            "conv": names(f"sepconv{i}"), "bn": names(f"sepconv{i}_bn"), "act": names(f"sepconv{i}_act"),
            "pad": names(f"sepconv{i}_pad"), "block": names(f"sepconv{i}_unit"),
        })
        kwargs = dict(unit_kwargs)
        if i == 1 and not first_activation:
            kwargs["activation"] = None
        units.append(SeparableConvBN(width, preactivation=preactivation, names=unit_names, **kwargs))
    return units


@keras.saving.register_keras_serializable(package="kapps")
class SeparableStack(Residual):
    """Separable units, an optional strided max pooling, and a residual shortcut.

    ``downsample=True`` ends the body with ``MaxPooling2D(pool_size, 2, "same")`` and
    makes the shortcut a strided 1x1 convolution with BatchNorm (roles ``conv`` and
    ``bn`` of ``shortcut_names``); otherwise the shortcut is the identity (the input
    and output channels must then agree). Body roles: see :func:`separable_units`,
    plus ``pool``. The sum ``body + shortcut`` (in that order, as Keras' Xception adds
    them, so that the Functional graph lists its layers in Keras' order) is not activated.

    >>> import numpy as np
    >>> stack = SeparableStack((16, 16), downsample=True, names="block3_")
    >>> tuple(stack(np.zeros((1, 8, 8, 4), "float32")).shape)
    (1, 4, 4, 16)
    """

    def __init__(
        self,
        filters: Sequence[int],
        *,
        downsample: bool = False,
        preactivation: bool = True,
        first_activation: bool = True,
        kernel_size: int = 3,
        pool_size: int = 3,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.99,
        names: Names | str | None = None,
        shortcut_names: Names | str | None = None,
        add_name: str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "separable_stack_")
        data_format = resolve_data_format(data_format)
        bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=data_format)
        shortcut = None
        if downsample:
            shortcut = ConvBNAct(
                filters[-1], 1, strides=2, activation=None, use_bias=False,
                names=as_names(shortcut_names, names("shortcut_")), **bn,
            )
        parts: list = separable_units(
            filters, names, preactivation=preactivation, first_activation=first_activation,
            kernel_size=kernel_size, activation=activation, **bn,
        )
        if downsample:
            parts.append(keras.layers.MaxPooling2D(
                pool_size, strides=2, padding="same", data_format=data_format, name=names("pool")))
        kwargs.setdefault("name", names("stack"))
        super().__init__(Chain(parts, name=names("body")), shortcut, activation=None,
                         add_name=add_name or names("add"), **kwargs)
        self.use_data_format(data_format)

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        skip = inputs if self.shortcut is None else run_layer(self.shortcut, inputs, training)
        return self.add([run_layer(self.body, inputs, training), skip])
