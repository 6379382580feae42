"""Decoder blocks of encoder-decoder segmentation networks (U-Net, DeepLabV3+).

* :class:`DecoderStage`: upsample, concatenate an encoder skip (optional), convolutions;
  the U-Net stage (Ronneberger et al. 2015) and, with a projected skip, DeepLabV3+'s decoder.
* :class:`ASPP`: atrous spatial pyramid pooling (Chen et al. 2017, DeepLabV3).
* :class:`SegmentationHead`: 1x1 convolution to the classes, upsampling to the output size,
  activation.
* :func:`conv_stack`: convolutions (conv-BN-act each) as one block, U-Net's encoder stage.

Blocks taking two tensors (a stage with a skip) are called on the list ``[x, skip]``, as a
layer (``stage([x, skip])``) or spread flat (``stage.apply_flat([x, skip])``). Sizes follow
from the input shapes: where an encoder's "valid" padding leaves a feature map a few pixels
off the exact multiple, a bilinear ``Resizing`` (role ``resize``) brings it to the skip's
size (or the output size).
"""

from __future__ import annotations

__all__ = ["ASPP", "DecoderStage", "SegmentationHead", "conv_stack"]

from typing import Any, Callable, Sequence

import keras

from kapps.blocks.activations import make_activation
from kapps.blocks.base import Block, Names, as_names
from kapps.blocks.conv import ConvBNAct
from kapps.blocks.residual import Chain

#: ``upsampling`` values of :class:`DecoderStage`.
UPSAMPLING_CHOICES = ("bilinear", "transpose", None)


def conv_stack(
    filters: int, names: Names | str, *, convs: int = 2, kernel_size: int = 3, activation: str | None = "relu",
    data_format: str | None = None,
) -> Chain:
    """``convs`` same-padded convolutions, each conv-BN-act (no bias), as one :class:`Chain`.

    Sub-names ``conv1_``, ``conv2_``, ...; the chain is named ``names("block")``.

    >>> import numpy as np
    >>> stack = conv_stack(8, "encoder_stage1_")
    >>> [layer.name for layer in stack.parts], tuple(stack(np.zeros((1, 8, 8, 1), "float32")).shape)
    (['encoder_stage1_conv1_block', 'encoder_stage1_conv2_block'], (1, 8, 8, 8))
    """
    names = as_names(names, "stack_")
    parts = [ConvBNAct(filters, kernel_size, activation=activation, data_format=data_format,
                       names=names.sub(f"conv{i}_")) for i in range(1, convs + 1)]
    return Chain(parts, name=names("block"))


def _split(inputs: Any) -> tuple[Any, Any]:
    """``(x, skip)`` from ``x`` or ``[x]`` or ``[x, skip]`` (tensors or shapes)."""
    if isinstance(inputs, (tuple, list)) and inputs and not isinstance(inputs[0], (int, type(None))):
        if len(inputs) > 2:
            raise ValueError(f"Expected x or [x, skip]: {len(inputs)} inputs received")
        return inputs[0], (inputs[1] if len(inputs) == 2 else None)
    return inputs, None


def _spatial(shape: Sequence, data_format: str) -> tuple:
    """``(rows, cols)`` of a batched 4-D shape."""
    shape = tuple(shape)
    return shape[2:4] if data_format == "channels_first" else shape[1:3]


def _resize_to(size: tuple, current: tuple, name: str, data_format: str) -> keras.layers.Layer | None:
    """A bilinear layer taking ``current`` to ``size``: UpSampling2D for exact multiples, else Resizing.

    None when the sizes already agree or one of them is unknown.
    """
    if None in size or None in current or tuple(size) == tuple(current):
        return None
    factors = [target // have if have and target % have == 0 else 0 for target, have in zip(size, current)]
    if all(factors):
        return keras.layers.UpSampling2D(tuple(factors), interpolation="bilinear", data_format=data_format, name=name)
    return keras.layers.Resizing(*size, interpolation="bilinear", data_format=data_format, name=name)


@keras.saving.register_keras_serializable(package="kapps")
class DecoderStage(Block):
    """Upsample ``x``, concatenate the encoder's ``skip`` (if given), then conv-BN-act layers.

    The U-Net decoder stage; with ``skip_filters`` (a 1x1 conv-BN-act projection of the
    skip, 48 channels in the paper) and ``scale=4`` it is DeepLabV3+'s decoder (Chen et al. 2018).
    Call it on ``x`` or on ``[x, skip]``; the skip has ``scale`` times x's resolution
    (a few pixels off is resized to fit). Roles (for :class:`~kapps.blocks.Names`):
    ``upsample``, ``resize``, ``skip_`` (the projection's sub-names), ``concat``, ``conv1_``, ``conv2_``, ...

    Args:
        filters: output channels of each convolution (and of a transposed convolution).
        scale: upsampling factor.
        upsampling: ``"bilinear"`` (``UpSampling2D``), ``"transpose"`` (``Conv2DTranspose``
            with a ``scale`` x ``scale`` kernel, stride ``scale``, ``filters`` channels and a
            bias: the paper's "up-convolution") or None (no upsampling).
        skip_filters: channels of the skip's 1x1 projection; None concatenates the skip as it is.
        convs: 3x3 conv-BN-act layers after the concatenation.
        activation: activation of every conv-BN-act.
        names: a :class:`Names` or prefix string.
        data_format: ``"channels_last"``, ``"channels_first"``, or None for the global one.

    >>> import numpy as np
    >>> stage = DecoderStage(8, names="decoder_stage1_")
    >>> x, skip = np.zeros((1, 4, 4, 16), "float32"), np.zeros((1, 8, 8, 6), "float32")
    >>> tuple(stage([x, skip]).shape), tuple(DecoderStage(8, upsampling="transpose")(x).shape)
    ((1, 8, 8, 8), (1, 8, 8, 8))
    """

    def __init__(
        self,
        filters: int,
        *,
        scale: int = 2,
        upsampling: str | None = "bilinear",
        skip_filters: int | None = None,
        convs: int = 2,
        activation: str | Callable | None = "relu",
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "decoder_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        if upsampling not in UPSAMPLING_CHOICES:
            raise ValueError("`upsampling` must be one of 'bilinear', 'transpose' or None. "
                             f"Received: upsampling={upsampling!r}")
        fmt = self.use_data_format(data_format)
        self.names = names
        self.scale = scale
        self.upsample = None
        if upsampling == "bilinear" and scale != 1:
            self.upsample = keras.layers.UpSampling2D(scale, interpolation="bilinear", data_format=fmt,
                                                      name=names("upsample"))
        elif upsampling == "transpose":
            self.upsample = keras.layers.Conv2DTranspose(filters, scale, strides=scale, data_format=fmt,
                                                         name=names("upsample"))
        self.skip_projection = None
        if skip_filters is not None:
            self.skip_projection = ConvBNAct(skip_filters, 1, activation=activation, data_format=fmt,
                                             names=names.sub("skip_"))
        self.convs = [ConvBNAct(filters, 3, activation=activation, data_format=fmt, names=names.sub(f"conv{i}_"))
                      for i in range(1, convs + 1)]
        self.resize = None
        self.concat = None

    def create_shape_dependent(self, input_shape: Any) -> None:
        x_shape, skip_shape = _split(input_shape)
        if skip_shape is None:
            return
        rows, cols = _spatial(x_shape, self.data_format)
        upsampled = tuple(None if d is None else d * self.scale for d in (rows, cols))
        if self.upsample is None:
            upsampled = (rows, cols)
        skip_size = _spatial(skip_shape, self.data_format)
        if None not in upsampled and None not in skip_size and upsampled != tuple(skip_size):
            self.resize = keras.layers.Resizing(*skip_size, interpolation="bilinear", data_format=self.data_format,
                                                name=self.names("resize"))
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=self.names("concat"))

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        x, skip = _split(inputs)
        if self.upsample is not None:
            x = self.upsample(x)
        if skip is not None:
            if self.resize is not None:
                x = self.resize(x)
            if self.skip_projection is not None:
                skip = self.skip_projection.run(skip, training=training)
            x = self.concat([x, skip])
        for conv in self.convs:
            x = conv.run(x, training=training)
        return x


@keras.saving.register_keras_serializable(package="kapps")
class ASPP(Block):
    """Atrous spatial pyramid pooling (Chen et al. 2017, DeepLabV3), as in DeepLabV3+.

    Parallel branches, each conv-BN-act with ``filters`` channels: a 1x1 convolution
    (role ``b0_``), one 3x3 atrous convolution per rate (``b1_``, ``b2_``, ...) and image
    pooling (``pool``: global average pooling, 1x1 conv-BN-act ``pool_``, bilinear
    ``pool_upsample`` back to the input size); concatenated (``concat``) and projected by a
    1x1 conv-BN-act (``projection_``). The pooling branch needs a static spatial size.

    >>> import numpy as np
    >>> aspp = ASPP(16, rates=(2, 4), names="aspp_")
    >>> tuple(aspp(np.zeros((1, 6, 6, 8), "float32")).shape)
    (1, 6, 6, 16)
    """

    def __init__(
        self,
        filters: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        *,
        activation: str | Callable | None = "relu",
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "aspp_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        self.names = names
        conv = dict(activation=activation, data_format=fmt)
        self.branches = [ConvBNAct(filters, 1, names=names.sub("b0_"), **conv)] + [
            ConvBNAct(filters, 3, dilation_rate=int(rate), names=names.sub(f"b{i}_"), **conv)
            for i, rate in enumerate(rates, start=1)
        ]
        self.pool = keras.layers.GlobalAveragePooling2D(keepdims=True, data_format=fmt, name=names("pool"))
        self.pool_conv = ConvBNAct(filters, 1, names=names.sub("pool_"), **conv)
        self.pool_upsample = None
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=names("concat"))
        self.projection = ConvBNAct(filters, 1, names=names.sub("projection_"), **conv)

    def create_shape_dependent(self, input_shape: Any) -> None:
        size = _spatial(input_shape, self.data_format)
        if None in size:
            raise ValueError(f"{self.name}: ASPP's image pooling needs a static spatial size. "
                             f"Received: input shape {tuple(input_shape)}")
        self.pool_upsample = keras.layers.UpSampling2D(tuple(size), interpolation="bilinear",
                                                       data_format=self.data_format, name=self.names("pool_upsample"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        outputs = [branch.run(x, training=training) for branch in self.branches]
        pooled = self.pool_conv.run(self.pool(x), training=training)
        outputs.append(self.pool_upsample(pooled))
        return self.projection.run(self.concat(outputs), training=training)


@keras.saving.register_keras_serializable(package="kapps")
class SegmentationHead(Block):
    """1x1 convolution (with bias) to ``classes``, bilinear upsampling to ``size``, activation.

    ``size`` is the output's ``(rows, cols)``; None (or the input's size) leaves the size as
    it is. ``activation`` is a Keras activation name or None (logits); ``"softmax"`` is taken
    over the channel axis. Roles: ``conv``, ``upsample``, ``act``.

    >>> import numpy as np
    >>> head = SegmentationHead(3, size=(16, 16), names="segmentation_head_")
    >>> y = np.asarray(head(np.ones((1, 4, 4, 8), "float32")))
    >>> y.shape, bool(np.allclose(y.sum(-1), 1.0, atol=1e-5))
    ((1, 16, 16, 3), True)
    """

    def __init__(
        self,
        classes: int,
        activation: str | Callable | None = "softmax",
        *,
        size: tuple[int, int] | None = None,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "segmentation_head_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        self.names = names
        self.size = None if size is None else tuple(size)
        self.conv = keras.layers.Conv2D(classes, 1, data_format=fmt, name=names("conv"))
        self.upsample = None
        if activation == "softmax":
            self.act = keras.layers.Softmax(axis=self.channel_axis, name=names("act"))
        else:
            self.act = make_activation(activation, names("act"))

    def create_shape_dependent(self, input_shape: Any) -> None:
        if self.size is not None:
            current = _spatial(input_shape, self.data_format)
            self.upsample = _resize_to(self.size, current, self.names("upsample"), self.data_format)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        x = self.conv(x)
        if self.upsample is not None:
            x = self.upsample(x)
        return self.act(x) if self.act is not None else x
