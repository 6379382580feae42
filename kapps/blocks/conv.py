"""Convolution blocks shared by every family: conv-BN-activation and depthwise separable."""

from __future__ import annotations

__all__ = ["ConvBNAct", "DepthwiseSeparable", "batch_norm"]

from typing import Any, Callable

import keras

from kapps.blocks.activations import make_activation
from kapps.blocks.base import Block, Names, as_names
from kapps.blocks.padding import same_padding_for_stride


def batch_norm(
    name: str, epsilon: float = 1e-3, momentum: float = 0.99, scale: bool = True, axis: int = -1
) -> keras.layers.BatchNormalization:
    """BatchNormalization over channel ``axis`` (-1, or 1 for channels_first), Keras' defaults otherwise.

    ``scale=False`` leaves out gamma (the Inception families' BatchNorm).
    """
    return keras.layers.BatchNormalization(axis=axis, epsilon=epsilon, momentum=momentum, scale=scale, name=name)


@keras.saving.register_keras_serializable(package="kapps")
class ConvBNAct(Block):
    """Convolution (or depthwise convolution), then BatchNorm, then an activation.

    Roles (for :class:`~kapps.blocks.Names`): ``pad``, ``conv``, ``bn``, ``act``.

    Args:
        filters: output channels (ignored when ``depthwise=True``).
        kernel_size: kernel size, an int or a pair.
        strides: stride.
        padding: ``"same"``, ``"valid"`` or ``"pad_then_valid"`` (explicit zero padding
            sized like TensorFlow's SAME, then a valid convolution: what
            keras.applications does before strided depthwise convolutions).
        depthwise: use ``DepthwiseConv2D`` with ``depth_multiplier``.
        use_bias: convolution bias (False when followed by BatchNorm).
        activation: ``"relu6"``, any Keras activation, or None.
        bn: whether to add BatchNorm; ``bn_epsilon`` / ``bn_momentum`` set its constants.
        names: a :class:`Names` or prefix string.
        pad_mode: for ``"pad_then_valid"``: ``"correct"`` (size-aware, like Keras'
            ``correct_pad``) or ``"bottom_right"`` (always one pixel at bottom/right).
        bn_scale: whether BatchNorm has a learned scale (gamma); Inception has none.
        groups: grouped convolution (``Conv2D(groups=...)``), e.g. AlexNet's two towers.
        dilation_rate: atrous (dilated) convolution rate, e.g. DeepLab's ASPP (with ``strides=1``).
        data_format: ``"channels_last"``, ``"channels_first"``, or None for
            ``keras.config.image_data_format()`` at construction.

    >>> import numpy as np
    >>> block = ConvBNAct(8, 3, strides=2, activation="relu6", names="stem_")
    >>> tuple(block(np.zeros((1, 32, 32, 3), "float32")).shape)
    (1, 16, 16, 8)
    """

    def __init__(
        self,
        filters: int | None,
        kernel_size: int | tuple[int, int] = 3,
        strides: int | tuple[int, int] = 1,
        *,
        padding: str = "same",
        depthwise: bool = False,
        depth_multiplier: int = 1,
        use_bias: bool = False,
        activation: str | Callable | None = "relu",
        bn: bool = True,
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.99,
        names: Names | str | None = None,
        pad_mode: str = "correct",
        bn_scale: bool = True,
        groups: int = 1,
        dilation_rate: int | tuple[int, int] = 1,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "conv_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        if padding not in ("same", "valid", "pad_then_valid"):
            raise ValueError(
                f"`padding` must be 'same', 'valid' or 'pad_then_valid'. Received: padding={padding!r}"
            )
        fmt = self.use_data_format(data_format)
        self.kernel_size = kernel_size
        self.pad_role_name = names("pad")
        self.explicit_pad = padding == "pad_then_valid"
        self.pad_mode = pad_mode
        self.pad = None
        conv_padding = "valid" if self.explicit_pad else padding
        if depthwise:
            self.conv = keras.layers.DepthwiseConv2D(
                kernel_size, strides=strides, padding=conv_padding, depth_multiplier=depth_multiplier,
                use_bias=use_bias, dilation_rate=dilation_rate, data_format=fmt, name=names("conv"),
            )
        else:
            self.conv = keras.layers.Conv2D(
                filters, kernel_size, strides=strides, padding=conv_padding, use_bias=use_bias,
                groups=groups, dilation_rate=dilation_rate, data_format=fmt, name=names("conv"),
            )
        self.bn = batch_norm(names("bn"), bn_epsilon, bn_momentum, bn_scale, self.channel_axis) if bn else None
        self.act = make_activation(activation, names("act"))

    def create_shape_dependent(self, input_shape: Any) -> None:
        if self.explicit_pad:
            self.pad = keras.layers.ZeroPadding2D(
                same_padding_for_stride(input_shape, self.kernel_size, self.pad_mode, self.data_format),
                data_format=self.data_format, name=self.pad_role_name,
            )

    def compose(self, x: Any, training: bool | None = None) -> Any:
        if self.pad is not None:
            x = self.pad(x)
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x, training=training)
        if self.act is not None:
            x = self.act(x)
        return x


@keras.saving.register_keras_serializable(package="kapps")
class DepthwiseSeparable(Block):
    """Depthwise conv-BN-act followed by pointwise (1x1) conv-BN-act (MobileNet v1).

    ``names`` is a pair of :class:`Names`, one per half (``depthwise``, ``pointwise``).

    >>> import numpy as np
    >>> block = DepthwiseSeparable(16, strides=2, activation="relu6",
    ...                            names=(Names("dw_"), Names("pw_")))
    >>> tuple(block(np.zeros((1, 8, 8, 4), "float32")).shape)
    (1, 4, 4, 16)
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        *,
        kernel_size: int = 3,
        depth_multiplier: int = 1,
        activation: str | Callable | None = "relu6",
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.99,
        names: tuple[Names, Names] | None = None,
        pad_mode: str = "bottom_right",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        dw_names, pw_names = names or (Names("dw_"), Names("pw_"))
        kwargs.setdefault("name", pw_names("separable"))
        super().__init__(**kwargs)
        common = dict(activation=activation, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum,
                      data_format=self.use_data_format(data_format))
        self.depthwise = ConvBNAct(
            None, kernel_size, strides, depthwise=True, depth_multiplier=depth_multiplier,
            padding="same" if strides == 1 else "pad_then_valid", pad_mode=pad_mode, names=dw_names,
            **common,
        )
        self.pointwise = ConvBNAct(filters, 1, names=pw_names, **common)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        x = self.depthwise.run(x, training=training)
        return self.pointwise.run(x, training=training)
