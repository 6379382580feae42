"""ShuffleNetV2's unit (Ma et al. 2018): channel split, one convolution branch, concat, channel shuffle."""

from __future__ import annotations

__all__ = ["ChannelShuffle", "ChannelSplit", "ShuffleUnit", "shuffle_permutation"]

from typing import Any, Callable

import keras
import numpy as np

from kapps.blocks.base import Block, Names, as_names, channel_axis
from kapps.blocks.conv import ConvBNAct
from kapps.blocks.residual import Chain
from kapps.imagenet import resolve_data_format


def shuffle_permutation(channels: int, groups: int) -> np.ndarray:
    """Output channel ``k`` of a channel shuffle reads input channel ``perm[k]``.

    The shuffle views the channels as a ``(groups, channels // groups)`` grid and reads it
    column by column, so the groups interleave:

    >>> shuffle_permutation(6, 2).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    if groups < 1 or channels % groups:
        raise ValueError(f"`groups` must divide the channels ({channels}). Received: groups={groups!r}")
    return np.arange(channels).reshape(groups, channels // groups).T.ravel()


@keras.saving.register_keras_serializable(package="kapps")
class ChannelShuffle(keras.layers.Layer):
    """Interleave ``groups`` groups of channels (a fixed permutation of the channel axis; no weights).

    >>> import numpy as np
    >>> x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)
    >>> np.asarray(ChannelShuffle(2)(x)).ravel().tolist()
    [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """

    def __init__(self, groups: int = 2, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"`groups` must be a positive integer. Received: groups={groups!r}")
        self.groups = groups
        self.data_format = resolve_data_format(data_format)

    def call(self, inputs: Any) -> Any:
        axis = channel_axis(self.data_format)
        order = shuffle_permutation(inputs.shape[axis], self.groups)
        return keras.ops.take(inputs, keras.ops.convert_to_tensor(order, "int32"), axis=axis % len(inputs.shape))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": self.groups, "data_format": self.data_format}


@keras.saving.register_keras_serializable(package="kapps")
class ChannelSplit(keras.layers.Layer):
    """Split the channels into two equal halves: ``[first half, second half]`` (no weights).

    >>> import numpy as np
    >>> first, second = ChannelSplit()(np.arange(4, dtype="float32").reshape(1, 1, 1, 4))
    >>> np.asarray(first).ravel().tolist(), np.asarray(second).ravel().tolist()
    ([0.0, 1.0], [2.0, 3.0])
    """

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = resolve_data_format(data_format)

    def call(self, inputs: Any) -> Any:
        axis = channel_axis(self.data_format) % len(inputs.shape)
        half = inputs.shape[axis] // 2
        index = [slice(None)] * len(inputs.shape)
        first, second = list(index), list(index)
        first[axis], second[axis] = slice(0, half), slice(half, 2 * half)
        return [inputs[tuple(first)], inputs[tuple(second)]]

    def compute_output_shape(self, input_shape: tuple) -> list:
        axis = channel_axis(self.data_format) % len(input_shape)
        shape = list(input_shape)
        shape[axis] = None if shape[axis] is None else shape[axis] // 2
        return [tuple(shape), tuple(shape)]

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format}


@keras.saving.register_keras_serializable(package="kapps")
class ShuffleUnit(Block):
    """ShuffleNetV2's building block; ``filters`` output channels, half from each branch.

    * ``strides=1``: the input's channels are split in two (:class:`ChannelSplit`); the first
      half passes through, the second goes through branch 2;
    * ``strides>1``: both branches see the whole input (spatial downsampling). Branch 1 is a
      strided 3x3 depthwise conv-BN, then 1x1 conv-BN-act.

    Branch 2 is 1x1 conv-BN-act, 3x3 depthwise conv-BN (strided as the unit), 1x1
    conv-BN-act. The halves are concatenated, then shuffled (:class:`ChannelShuffle`, 2
    groups). Strided depthwise convolutions pad one pixel on every side (as PyTorch does),
    then are ``valid``. Convolutions have no bias.

    Roles (for :class:`~kapps.blocks.Names`; default names ``{p}<role>``, torchvision's module
    positions): ``branch1_0`` (depthwise conv), ``branch1_1`` (BN), ``branch1_2`` (1x1 conv),
    ``branch1_3`` (BN), ``branch1_4`` (act); ``branch2_0`` (1x1 conv), ``branch2_1``,
    ``branch2_2``, ``branch2_3`` (depthwise conv), ``branch2_4``, ``branch2_5`` (1x1 conv),
    ``branch2_6``, ``branch2_7``; ``branch1_pad``, ``branch2_pad``, ``split``, ``concat``,
    ``shuffle``, ``branch1``, ``branch2``.

    >>> import numpy as np
    >>> down = ShuffleUnit(48, strides=2, names="stage2_0_")
    >>> tuple(down(np.zeros((1, 8, 8, 24), "float32")).shape)
    (1, 4, 4, 48)
    >>> tuple(ShuffleUnit(48, names="stage2_1_")(np.zeros((1, 4, 4, 48), "float32")).shape)
    (1, 4, 4, 48)
    """

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        *,
        activation: str | Callable | None = "relu",
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "shuffle_")
        kwargs.setdefault("name", names.prefix.rstrip("_") or "shuffle_unit")
        super().__init__(**kwargs)
        if filters % 2:
            raise ValueError(f"`filters` must be even (half from each branch). Received: filters={filters!r}")
        if strides not in (1, 2, 3):
            raise ValueError(f"`strides` must be 1, 2 or 3. Received: strides={strides!r}")
        fmt = self.use_data_format(data_format)
        half = filters // 2
        common = dict(use_bias=False, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, data_format=fmt)
        self.strides = strides

        def unit(branch: int, first: int, act: bool) -> Names:
            roles = {"conv": names(f"branch{branch}_{first}"), "bn": names(f"branch{branch}_{first + 1}"),
                     "block": names(f"branch{branch}_unit{first}")}
            return Names("", roles | ({"act": names(f"branch{branch}_{first + 2}")} if act else {}))

        def depthwise(branch: int, first: int) -> list:
            pad = [keras.layers.ZeroPadding2D(1, data_format=fmt, name=names(f"branch{branch}_pad"))] \
                if strides > 1 else []
            return pad + [ConvBNAct(None, 3, strides, depthwise=True, padding="valid" if strides > 1 else "same",
                                    activation=None, names=unit(branch, first, False), **common)]

        self.branch1 = None
        if strides > 1:
            self.branch1 = Chain(depthwise(1, 0) + [
                ConvBNAct(half, 1, activation=activation, names=unit(1, 2, True), **common),
            ], name=names("branch1"))
            self.split = None
        else:
            self.split = ChannelSplit(data_format=fmt, name=names("split"))
        self.branch2 = Chain([ConvBNAct(half, 1, activation=activation, names=unit(2, 0, True), **common)]
                             + depthwise(2, 3)
                             + [ConvBNAct(half, 1, activation=activation, names=unit(2, 5, True), **common)],
                             name=names("branch2"))
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=names("concat"))
        self.shuffle = ChannelShuffle(2, data_format=fmt, name=names("shuffle"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        if self.split is not None:
            kept, x = self.split(x)
        else:
            kept = self.branch1.run(x, training=training)
        return self.shuffle(self.concat([kept, self.branch2.run(x, training=training)]))
