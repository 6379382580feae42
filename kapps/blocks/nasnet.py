"""NASNet-A cells (Zoph et al. 2018): the normal and reduction cells found by architecture search.

A cell reads the outputs of the two cells before it, ``x`` (the last) and ``p`` (the one
before), so cells pass a pair along: a cell takes ``(x, p)`` (or a single tensor: the
first cell, whose ``p`` is then ``x`` itself) and returns ``(new_x, x)``, which the next
cell reads as its ``(x, p)``; a cell built with ``return_pair=False`` returns ``new_x``
alone, to end the chain. Used as layers (the Sequential builder) they pass the pair as a
tuple; spread flat (the Functional builder) the same code runs on symbolic tensors.

Before use, ``p`` is adjusted to ``x``'s shape (:class:`FactorizedReduction` when it
has twice the resolution, a ReLU-1x1 conv-BN projection when only its channels differ).
Separable branches are two :class:`~kapps.blocks.SeparableConvBN` units (ReLU, separable
convolution, BN), the first strided in reduction cells.

Layer names are keras.applications' (``normal_conv_1_0``, ``separable_conv_1_normal_left1_0``,
``adjust_bn_0``, ``reduction_concat_stem_1``, ...). Layers Keras leaves unnamed (ReLUs,
the padding and cropping of the factorized reduction, one addition) get descriptive names.
"""

from __future__ import annotations

__all__ = ["NASNetNormalCell", "NASNetReductionCell", "FactorizedReduction", "nasnet_separable_branch"]

from typing import Any

import keras

from kapps.blocks.base import Block, Names, channel_axis
from kapps.blocks.conv import batch_norm
from kapps.blocks.padding import same_padding_for_stride
from kapps.blocks.residual import Chain
from kapps.blocks.separable import SeparableConvBN

#: BatchNorm constants of NASNet (TF-slim's).
NASNET_BN = {"bn_epsilon": 1e-3, "bn_momentum": 0.9997}


def _bn(name: str, bn: dict, data_format: str) -> keras.layers.BatchNormalization:
    return batch_norm(name, bn["bn_epsilon"], bn["bn_momentum"], axis=channel_axis(data_format))


def _conv1x1(filters: int, name: str, data_format: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(
        filters, 1, padding="same", use_bias=False, kernel_initializer="he_normal", data_format=data_format,
        name=name,
    )


def nasnet_separable_branch(
    filters: int, kernel_size: int, strides: int, block_id: str, *, bn_epsilon: float = 1e-3,
    bn_momentum: float = 0.9997, data_format: str | None = None,
) -> Chain:
    """Two (ReLU, separable conv, BN) units; the first has ``strides`` (zero-padded like TF SAME).

    Keras' names with ``block_id="normal_left1_0"``: ``separable_conv_1_normal_left1_0``,
    ``separable_conv_1_bn_normal_left1_0``, ``separable_conv_2_...``; the strided
    unit's padding is ``separable_conv_1_pad_...``.

    >>> import numpy as np
    >>> branch = nasnet_separable_branch(8, 5, 2, "reduction_left1_stem_1")
    >>> tuple(branch(np.zeros((1, 9, 9, 4), "float32")).shape)
    (1, 5, 5, 8)
    """
    units = []
    for i in (1, 2):
        stride = strides if i == 1 else 1
        units.append(SeparableConvBN(
            filters, kernel_size, stride, activation="relu", preactivation=True,
            padding="same" if stride == 1 else "pad_then_valid", pad_mode="correct",
            bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=data_format,
            names=Names("", {
                "act": f"separable_conv_{i}_relu_{block_id}", "pad": f"separable_conv_{i}_pad_{block_id}",
                "conv": f"separable_conv_{i}_{block_id}", "bn": f"separable_conv_{i}_bn_{block_id}",
                "block": f"separable_conv_{i}_unit_{block_id}",
            }),
        ))
    return Chain(units, name=f"separable_conv_block_{block_id}")


@keras.saving.register_keras_serializable(package="kapps")
class FactorizedReduction(Block):
    """Halves the resolution of ``p`` without losing half its pixels: two offset 1x1/2 paths.

    ReLU; path 1: 1x1 average pooling with stride 2, 1x1 conv to ``filters // 2``; path 2:
    the same on the input shifted by one pixel (pad bottom-right, crop top-left); concat;
    BN. Keras' names with ``block_id="stem_2"``: ``adjust_relu_1_stem_2``,
    ``adjust_avg_pool_1_stem_2``, ``adjust_conv_1_stem_2``, ``adjust_avg_pool_2_stem_2``,
    ``adjust_conv_2_stem_2``, ``adjust_bn_stem_2``.

    >>> import numpy as np
    >>> tuple(FactorizedReduction(16, "0")(np.zeros((1, 8, 8, 4), "float32")).shape)
    (1, 4, 4, 16)
    """

    def __init__(self, filters: int, block_id: str, *, bn_epsilon: float = 1e-3, bn_momentum: float = 0.9997,
                 data_format: str | None = None, **kwargs: Any):
        kwargs.setdefault("name", f"adjust_reduction_block_{block_id}")
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        bn = {"bn_epsilon": bn_epsilon, "bn_momentum": bn_momentum}
        pool = dict(strides=2, padding="valid", data_format=fmt)
        self.act = keras.layers.Activation("relu", name=f"adjust_relu_1_{block_id}")
        self.pool1 = keras.layers.AveragePooling2D(1, name=f"adjust_avg_pool_1_{block_id}", **pool)
        self.conv1 = _conv1x1(filters // 2, f"adjust_conv_1_{block_id}", fmt)
        self.shift_pad = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), data_format=fmt, name=f"adjust_pad_{block_id}")
        self.shift_crop = keras.layers.Cropping2D(((1, 0), (1, 0)), data_format=fmt, name=f"adjust_crop_{block_id}")
        self.pool2 = keras.layers.AveragePooling2D(1, name=f"adjust_avg_pool_2_{block_id}", **pool)
        self.conv2 = _conv1x1(filters // 2, f"adjust_conv_2_{block_id}", fmt)
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=f"adjust_concat_{block_id}")
        self.bn = _bn(f"adjust_bn_{block_id}", bn, fmt)

    def compose(self, p: Any, training: bool | None = None) -> Any:
        p = self.act(p)
        path1 = self.conv1(self.pool1(p))
        path2 = self.conv2(self.pool2(self.shift_crop(self.shift_pad(p))))
        return self.bn(self.concat([path1, path2]), training=training)


def _split_shapes(input_shape: Any) -> tuple[tuple, tuple | None]:
    """``(x_shape, p_shape)`` from a single shape or a pair of shapes."""
    if isinstance(input_shape, (tuple, list)) and input_shape and isinstance(input_shape[0], (tuple, list)):
        return tuple(input_shape[0]), tuple(input_shape[1])
    return tuple(input_shape), None


class _Cell(Block):
    """What normal and reduction cells share: the pair protocol, ``p``'s adjustment, the 1x1 on ``x``."""

    kind = ""

    def __init__(
        self,
        filters: int,
        block_id: str | int,
        *,
        keep_previous: bool = False,
        return_pair: bool = True,
        bn_epsilon: float = 1e-3,
        bn_momentum: float = 0.9997,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        block_id = str(block_id)
        kwargs.setdefault("name", f"{self.kind}_A_block_{block_id}")
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 2:
            raise ValueError(f"`filters` must be an integer of at least 2. Received: filters={filters!r}")
        self.filters = filters
        self.block_id = block_id
        self.keep_previous = keep_previous
        self.return_pair = return_pair
        self.bn_constants = {"bn_epsilon": bn_epsilon, "bn_momentum": bn_momentum}
        self.adjust = None
        k, b = self.kind, block_id
        self.x_relu = keras.layers.Activation("relu", name=f"{k}_relu_1_{b}")
        self.x_conv = _conv1x1(filters, f"{k}_conv_1_{b}", fmt)
        self.x_bn = _bn(f"{k}_bn_1_{b}", self.bn_constants, fmt)

    def branch(self, kernel_size: int, strides: int, side: str) -> Chain:
        return nasnet_separable_branch(
            self.filters, kernel_size, strides, f"{self.kind}_{side}_{self.block_id}", **self.bn_constants,
            data_format=self.data_format,
        )

    def pool(self, layer: type, strides: int, padding: str, name: str) -> keras.layers.Layer:
        """A 3x3 pooling layer (``layer`` is Keras' average or max pooling class) in this cell's layout."""
        return layer(3, strides=strides, padding=padding, data_format=self.data_format, name=name)

    def create_shape_dependent(self, input_shape: Any) -> None:
        x_shape, p_shape = _split_shapes(input_shape)
        if p_shape is None:
            return
        width, channels = (-1, 1) if self.data_format == "channels_first" else (2, -1)
        if p_shape[width] is None or x_shape[width] is None:
            raise ValueError(
                f"NASNet cell {self.name!r} needs static spatial sizes to match its two inputs. "
                f"Received: input shapes {x_shape} and {p_shape}"
            )
        b = self.block_id
        if p_shape[width] != x_shape[width]:
            self.adjust = FactorizedReduction(self.filters, b, **self.bn_constants, data_format=self.data_format)
        elif p_shape[channels] != self.filters:
            self.adjust = Chain([
                keras.layers.Activation("relu", name=f"adjust_relu_projection_{b}"),
                _conv1x1(self.filters, f"adjust_conv_projection_{b}", self.data_format),
                _bn(f"adjust_bn_{b}", self.bn_constants, self.data_format),
            ], name=f"adjust_projection_block_{b}")

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        if isinstance(inputs, (tuple, list)):
            x, p_in = inputs
        else:
            x, p_in = inputs, None
        p = x if p_in is None else p_in
        if self.adjust is not None:
            p = self.adjust.run(p, training=training)
        h = self.x_bn(self.x_conv(self.x_relu(x)), training=training)
        out = self.combine(h, p, training)
        if not self.return_pair:
            return out
        return (out, p_in) if self.keep_previous and p_in is not None else (out, x)

    def combine(self, h: Any, p: Any, training: bool | None) -> Any:  # pragma: no cover
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="kapps")
class NASNetNormalCell(_Cell):
    """The NASNet-A normal cell (Fig. 4 of the paper): keeps the resolution, outputs ``6 * filters`` channels.

    Input ``(x, p)`` or ``x``; output ``(new_x, x)``, or ``new_x`` with ``return_pair=False``.

    >>> import numpy as np
    >>> cell = NASNetNormalCell(8, block_id="0")
    >>> x, p = np.zeros((1, 6, 6, 32), "float32"), np.zeros((1, 12, 12, 16), "float32")
    >>> [tuple(t.shape) for t in cell((x, p))]
    [(1, 6, 6, 48), (1, 6, 6, 32)]
    """

    kind = "normal"

    def __init__(self, filters: int, block_id: str | int, **kwargs: Any):
        super().__init__(filters, block_id, **kwargs)
        b = self.block_id
        self.left1, self.right1 = self.branch(5, 1, "left1"), self.branch(3, 1, "right1")
        self.left2, self.right2 = self.branch(5, 1, "left2"), self.branch(3, 1, "right2")
        self.left5 = self.branch(3, 1, "left5")
        avg = keras.layers.AveragePooling2D
        self.left3 = self.pool(avg, 1, "same", f"normal_left3_{b}")
        self.left4 = self.pool(avg, 1, "same", f"normal_left4_{b}")
        self.right4 = self.pool(avg, 1, "same", f"normal_right4_{b}")
        self.adds = [keras.layers.Add(name=f"normal_add_{i}_{b}") for i in range(1, 6)]
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=f"normal_concat_{b}")

    def combine(self, h: Any, p: Any, training: bool | None) -> Any:
        run = lambda branch, t: branch.run(t, training=training)  # noqa: E731
        x1 = self.adds[0]([run(self.left1, h), run(self.right1, p)])
        x2 = self.adds[1]([run(self.left2, p), run(self.right2, p)])
        x3 = self.adds[2]([self.left3(h), p])
        x4 = self.adds[3]([self.left4(p), self.right4(p)])
        x5 = self.adds[4]([run(self.left5, h), h])
        return self.concat([p, x1, x2, x3, x4, x5])


@keras.saving.register_keras_serializable(package="kapps")
class NASNetReductionCell(_Cell):
    """The NASNet-A reduction cell: halves the resolution, outputs ``4 * filters`` channels.

    ``keep_previous=True`` passes the cell's own ``p`` input on instead of its ``x``
    (NASNet's ``skip_reduction``). Input and output as :class:`NASNetNormalCell`.

    >>> import numpy as np
    >>> cell = NASNetReductionCell(8, block_id="stem_1")
    >>> [tuple(t.shape) for t in cell(np.zeros((1, 11, 11, 16), "float32"))]
    [(1, 6, 6, 32), (1, 11, 11, 16)]
    """

    kind = "reduction"

    def __init__(self, filters: int, block_id: str | int, **kwargs: Any):
        super().__init__(filters, block_id, **kwargs)
        b = self.block_id
        self.h_pad = None
        self.left1, self.right1 = self.branch(5, 2, "left1"), self.branch(7, 2, "right1")
        self.right2, self.right3 = self.branch(7, 2, "right2"), self.branch(5, 2, "right3")
        self.left5 = self.branch(3, 1, "left4")  # Keras names this branch "left4".
        avg, top = keras.layers.AveragePooling2D, keras.layers.MaxPooling2D
        self.left2 = self.pool(top, 2, "valid", f"reduction_left2_{b}")
        self.left3 = self.pool(avg, 2, "valid", f"reduction_left3_{b}")
        self.left4 = self.pool(avg, 1, "same", f"reduction_left4_{b}")
        self.right5 = self.pool(top, 2, "valid", f"reduction_right5_{b}")
        self.adds = [
            keras.layers.Add(name=f"reduction_add_1_{b}"), keras.layers.Add(name=f"reduction_add_2_{b}"),
            keras.layers.Add(name=f"reduction_add3_{b}"), keras.layers.Add(name=f"reduction_add_left4_{b}"),
            keras.layers.Add(name=f"reduction_add4_{b}"),
        ]
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=f"reduction_concat_{b}")

    def create_shape_dependent(self, input_shape: Any) -> None:
        super().create_shape_dependent(input_shape)
        x_shape, _ = _split_shapes(input_shape)
        self.h_pad = keras.layers.ZeroPadding2D(
            same_padding_for_stride(x_shape, 3, "correct", self.data_format), data_format=self.data_format,
            name=f"reduction_pad_1_{self.block_id}",
        )

    def combine(self, h: Any, p: Any, training: bool | None) -> Any:
        run = lambda branch, t: branch.run(t, training=training)  # noqa: E731
        h3 = self.h_pad(h)
        x1 = self.adds[0]([run(self.left1, h), run(self.right1, p)])
        x2 = self.adds[1]([self.left2(h3), run(self.right2, p)])
        x3 = self.adds[2]([self.left3(h3), run(self.right3, p)])
        x4 = self.adds[3]([x2, self.left4(x1)])
        x5 = self.adds[4]([run(self.left5, x1), self.right5(h3)])
        return self.concat([x2, x3, x4, x5])
