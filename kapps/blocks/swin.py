"""The Swin Transformer's blocks (Liu et al. 2021): shifted-window attention with a relative
position bias, the Swin block and patch merging.

Feature maps stay ``(batch, rows, cols, channels)`` throughout. Attention runs inside
``window x window`` windows; every other block shifts the windows by half a window (a cyclic
roll, with a mask so that pixels rolled in from the far side do not attend to their new
neighbours). As torchvision computes it, a map that is not a multiple of the window is padded
with zeros at the bottom and right before the query/key/value projection, and no shift is made
along an axis whose padded size is a single window.
"""

from __future__ import annotations

__all__ = ["WindowPadShift", "WindowUnshiftCrop", "WindowAttentionCore", "ShiftedWindowAttention", "SwinBlock",
           "PatchGather", "PatchMerging", "relative_position_index", "shifted_window_mask", "effective_shift", "roll"]

from typing import Any

import keras
import numpy as np
from keras import ops

from kapps.blocks.attention import (
    TransformerMLP, check_heads, merge_heads, scaled_dot_product_attention, split_heads,
)
from kapps.blocks.base import Block, Names, as_names
from kapps.blocks.residual import run_layer
from kapps.blocks.stochastic_depth import drop_path_or_identity

#: The value added to the attention logits of pixel pairs the shifted windows must keep apart.
MASKED = -100.0


def padded(size: int, window: int) -> int:
    """``size`` rounded up to a multiple of ``window``."""
    return -(-size // window) * window


def effective_shift(padded_size: int, window: int, shift: int) -> int:
    """No shift along an axis that one window covers (torchvision's rule)."""
    return 0 if window >= padded_size else shift


def relative_position_index(window: int) -> np.ndarray:
    """``(window², window²)`` indices into the ``((2 window - 1)², heads)`` bias table.

    >>> relative_position_index(2).tolist()
    [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    """
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def shifted_window_mask(rows: int, cols: int, window: int, shifts: tuple[int, int]) -> np.ndarray:
    """``(windows, window², window²)``: 0 where two pixels of a window came from the same region
    of the unshifted map, :data:`MASKED` elsewhere (``rows``, ``cols``: the padded map)."""
    labels = np.zeros((rows, cols))
    count = 0
    for top, bottom in ((0, -window), (-window, -shifts[0]), (-shifts[0], None)):
        for left, right in ((0, -window), (-window, -shifts[1]), (-shifts[1], None)):
            labels[top:bottom, left:right] = count
            count += 1
    labels = labels.reshape(rows // window, window, cols // window, window).transpose(0, 2, 1, 3)
    labels = labels.reshape(-1, window * window)
    return np.where(labels[:, None, :] - labels[:, :, None] != 0, MASKED, 0.0).astype("float32")


def roll(x: Any, shift: int, axis: int) -> Any:
    """``numpy.roll`` along ``axis`` by a static ``shift``, as two slices concatenated (TFLite has no
    ``Roll`` operation; slices and concatenation run everywhere).

    >>> import numpy as np
    >>> np.asarray(roll(np.arange(5.0)[None], -2, axis=1)).tolist()
    [[2.0, 3.0, 4.0, 0.0, 1.0]]
    """
    size = int(x.shape[axis])
    shift %= size
    if not shift:
        return x
    index = [slice(None)] * len(x.shape)
    head, tail = list(index), list(index)
    head[axis], tail[axis] = slice(size - shift, size), slice(0, size - shift)
    return ops.concatenate([x[tuple(head)], x[tuple(tail)]], axis=axis)


def _window_config(window_size: Any, shift_size: Any) -> tuple[int, int]:
    for argument, value in (("window_size", window_size), ("shift_size", shift_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{argument}` must be a non-negative integer. Received: {argument}={value!r}")
    if window_size < 1 or shift_size >= window_size:
        raise ValueError(f"`shift_size` must be smaller than `window_size` (>= 1). Received: "
                         f"window_size={window_size!r}, shift_size={shift_size!r}")
    return window_size, shift_size


@keras.saving.register_keras_serializable(package="kapps")
class WindowPadShift(keras.layers.Layer):
    """Pad a map with zeros (bottom, right) to whole windows, then roll it up-left by the shift.

    >>> import numpy as np
    >>> tuple(WindowPadShift(7, 3)(np.zeros((1, 16, 16, 4), "float32")).shape)
    (1, 21, 21, 4)
    """

    def __init__(self, window_size: int = 7, shift_size: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.window_size, self.shift_size = _window_config(window_size, shift_size)

    def call(self, inputs: Any) -> Any:
        rows, cols = int(inputs.shape[1]), int(inputs.shape[2])
        rows_p, cols_p = padded(rows, self.window_size), padded(cols, self.window_size)
        if (rows_p, cols_p) != (rows, cols):
            inputs = ops.pad(inputs, [[0, 0], [0, rows_p - rows], [0, cols_p - cols], [0, 0]])
        shifts = [effective_shift(size, self.window_size, self.shift_size) for size in (rows_p, cols_p)]
        if any(shifts):
            inputs = roll(roll(inputs, -shifts[0], axis=1), -shifts[1], axis=2)
        return inputs

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], padded(input_shape[1], self.window_size), padded(input_shape[2], self.window_size),
                input_shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "window_size": self.window_size, "shift_size": self.shift_size}


@keras.saving.register_keras_serializable(package="kapps")
class WindowUnshiftCrop(keras.layers.Layer):
    """Undo :class:`WindowPadShift`: roll back, then crop to ``size`` (rows, cols).

    >>> import numpy as np
    >>> tuple(WindowUnshiftCrop(7, 3, size=(16, 16))(np.zeros((1, 21, 21, 4), "float32")).shape)
    (1, 16, 16, 4)
    """

    def __init__(self, window_size: int = 7, shift_size: int = 0, size: tuple[int, int] = (7, 7), **kwargs: Any):
        super().__init__(**kwargs)
        self.window_size, self.shift_size = _window_config(window_size, shift_size)
        self.size = tuple(int(s) for s in size)

    def call(self, inputs: Any) -> Any:
        shifts = [effective_shift(int(s), self.window_size, self.shift_size) for s in inputs.shape[1:3]]
        if any(shifts):
            inputs = roll(roll(inputs, shifts[0], axis=1), shifts[1], axis=2)
        if tuple(int(s) for s in inputs.shape[1:3]) != self.size:
            inputs = inputs[:, :self.size[0], :self.size[1], :]
        return inputs

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], *self.size, input_shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "window_size": self.window_size, "shift_size": self.shift_size,
                "size": self.size}


@keras.saving.register_keras_serializable(package="kapps")
class WindowAttentionCore(keras.layers.Layer):
    """Multi-head attention inside each window of a padded, shifted, packed ``(batch, rows, cols, 3 C)``
    map, plus the learned relative position bias (weight ``relative_position_bias_table``,
    ``((2 window - 1)², heads)``) and, when shifted, the mask of :func:`shifted_window_mask`.
    Returns ``(batch, rows, cols, C)``.

    >>> import numpy as np
    >>> core = WindowAttentionCore(2, 7, 3, name="attn")
    >>> tuple(core(np.zeros((1, 14, 14, 24), "float32")).shape), tuple(core.relative_position_bias_table.shape)
    ((1, 14, 14, 8), (169, 2))
    """

    def __init__(self, num_heads: int, window_size: int = 7, shift_size: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_heads = check_heads(num_heads)
        self.window_size, self.shift_size = _window_config(window_size, shift_size)

    def build(self, input_shape: tuple) -> None:
        self.relative_position_bias_table = self.add_weight(
            shape=((2 * self.window_size - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02), name="relative_position_bias_table")

    def call(self, inputs: Any) -> Any:
        window, heads = self.window_size, self.num_heads
        rows, cols, packed = (int(s) for s in inputs.shape[1:])
        channels, tokens = packed // 3, window * window
        windows = (rows // window) * (cols // window)
        x = ops.reshape(inputs, (-1, rows // window, window, cols // window, window, packed))
        x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, tokens, packed))
        index = ops.convert_to_tensor(relative_position_index(window).reshape(-1), "int32")
        bias = ops.take(ops.cast(self.relative_position_bias_table, inputs.dtype), index, axis=0)
        bias = ops.transpose(ops.reshape(bias, (tokens, tokens, heads)), (2, 0, 1))  # (heads, N, N)
        shifts = (effective_shift(rows, window, self.shift_size), effective_shift(cols, window, self.shift_size))
        query, key, value = split_heads(x, heads)
        if any(shifts):
            mask = ops.convert_to_tensor(shifted_window_mask(rows, cols, window, shifts), inputs.dtype)
            bias = ops.expand_dims(bias, 0) + ops.expand_dims(mask, 1)  # (windows, heads, N, N)
            head_dim = channels // heads
            query, key, value = (ops.reshape(t, (-1, windows, heads, tokens, head_dim)) for t in (query, key, value))
            out = ops.reshape(scaled_dot_product_attention(query, key, value, bias), (-1, heads, tokens, head_dim))
        else:
            out = scaled_dot_product_attention(query, key, value, bias)
        out = ops.reshape(merge_heads(out), (-1, rows // window, cols // window, window, window, channels))
        return ops.reshape(ops.transpose(out, (0, 1, 3, 2, 4, 5)), (-1, rows, cols, channels))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:3], input_shape[3] // 3)

    def flops(self, output_shape: tuple) -> int:
        """FLOPs per image of the two products in every window, for :mod:`kapps.tools.flops`."""
        rows, cols, channels = (int(d) for d in output_shape[1:])
        return 2 * 2 * rows * cols * self.window_size ** 2 * channels

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads, "window_size": self.window_size,
                "shift_size": self.shift_size}


@keras.saving.register_keras_serializable(package="kapps")
class ShiftedWindowAttention(Block):
    """(Shifted-)window multi-head self-attention over a ``(batch, rows, cols, dim)`` map.

    Pad and shift (:class:`WindowPadShift`), the packed ``qkv`` projection, attention in
    windows (:class:`WindowAttentionCore`, which owns the bias table), the ``proj``
    projection, unshift and crop. Roles: ``qkv``, ``proj``, ``attention`` (the core; default
    name: the prefix without its trailing ``_``, torchvision's ``attn`` module), ``pad_shift``,
    ``unshift_crop``.

    >>> import numpy as np
    >>> block = ShiftedWindowAttention(32, 4, 7, 3, names="features_1_1_attn_")
    >>> tuple(block(np.zeros((1, 9, 9, 32), "float32")).shape), block.core.name
    ((1, 9, 9, 32), 'features_1_1_attn')
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, shift_size: int = 0, *,
                 names: Names | str | None = None, **kwargs: Any):
        names = as_names(names, "attn_")
        core = names.templates.get("attention", names.prefix.rstrip("_") or "attn")
        kwargs.setdefault("name", f"{core}_block")
        super().__init__(**kwargs)
        check_heads(num_heads, dim)
        self.window_size, self.shift_size = window_size, shift_size
        self.pad_shift = WindowPadShift(window_size, shift_size, name=names("pad_shift"))
        self.qkv = keras.layers.Dense(3 * dim, name=names("qkv"))
        self.core = WindowAttentionCore(num_heads, window_size, shift_size, name=core)
        self.proj = keras.layers.Dense(dim, name=names("proj"))
        self.unshift_name = names("unshift_crop")
        self.unshift_crop: keras.layers.Layer | None = None

    def create_shape_dependent(self, input_shape: Any) -> None:
        self.unshift_crop = WindowUnshiftCrop(self.window_size, self.shift_size, size=tuple(input_shape[1:3]),
                                              name=self.unshift_name)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        return self.unshift_crop(self.proj(self.core(self.qkv(self.pad_shift(x)))))


@keras.saving.register_keras_serializable(package="kapps")
class SwinBlock(Block):
    """One Swin Transformer block: ``x + drop_path(attn(norm1(x)))``, then ``+ drop_path(mlp(norm2(.)))``.

    Roles (torchvision's ``SwinTransformerBlock`` modules): ``norm1``, ``attn_`` (a prefix:
    :class:`ShiftedWindowAttention`), ``norm2``, ``mlp_`` (a prefix: :class:`~kapps.blocks.TransformerMLP`),
    ``stochastic_depth_1``/``_2`` (or ``identity_1``/``_2`` without stochastic depth), ``add_1``, ``add_2``.

    >>> import numpy as np
    >>> block = SwinBlock(32, 4, shift_size=3, drop_path_rate=0.1, names="features_1_1_")
    >>> tuple(block(np.zeros((1, 14, 14, 32), "float32")).shape)
    (1, 14, 14, 32)
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, shift_size: int = 0, *,
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.0, layer_norm_epsilon: float = 1e-5,
                 names: Names | str | None = None, **kwargs: Any):
        names = as_names(names, "swin_block_")
        kwargs.setdefault("name", names.prefix.rstrip("_") or "swin_block")
        super().__init__(**kwargs)
        self.norm1 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=names("norm1"))
        self.attn = ShiftedWindowAttention(dim, num_heads, window_size, shift_size, names=names.sub("attn_"))
        self.norm2 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=names("norm2"))
        self.mlp = TransformerMLP(dim, int(dim * mlp_ratio), names=names.sub("mlp_"))
        self.drops = [drop_path_or_identity(drop_path_rate, names(f"stochastic_depth_{i}"), names(f"identity_{i}"))
                      for i in (1, 2)]
        self.add_1 = keras.layers.Add(name=names("add_1"))
        self.add_2 = keras.layers.Add(name=names("add_2"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        x = self.add_1([x, run_layer(self.drops[0], self.attn.run(self.norm1(x), training=training), training)])
        return self.add_2([x, run_layer(self.drops[1], self.mlp.run(self.norm2(x), training=training), training)])


@keras.saving.register_keras_serializable(package="kapps")
class PatchGather(keras.layers.Layer):
    """Each 2x2 patch's four pixels side by side: ``(b, r, c, C)`` -> ``(b, ceil(r/2), ceil(c/2), 4 C)``
    in torchvision's order (top-left, bottom-left, top-right, bottom-right); odd sizes are padded
    with zeros. ``strides`` is 2, so :mod:`kapps.features` counts it as a reduction.

    >>> import numpy as np
    >>> x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    >>> np.asarray(PatchGather()(x)).ravel().tolist()
    [0.0, 2.0, 1.0, 3.0]
    """

    strides = 2

    def call(self, inputs: Any) -> Any:
        rows, cols, channels = (int(s) for s in inputs.shape[1:])
        if rows % 2 or cols % 2:
            inputs = ops.pad(inputs, [[0, 0], [0, rows % 2], [0, cols % 2], [0, 0]])
        rows, cols = padded(rows, 2), padded(cols, 2)
        x = ops.reshape(inputs, (-1, rows // 2, 2, cols // 2, 2, channels))
        return ops.reshape(ops.transpose(x, (0, 1, 3, 4, 2, 5)), (-1, rows // 2, cols // 2, 4 * channels))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        half = [None if s is None else padded(s, 2) // 2 for s in input_shape[1:3]]
        return (input_shape[0], *half, 4 * input_shape[3])


@keras.saving.register_keras_serializable(package="kapps")
class PatchMerging(Block):
    """Swin's downsampling: :class:`PatchGather`, LayerNorm over the ``4 C`` channels, a Dense
    to ``2 C`` without bias. Roles: ``gather``, ``norm``, ``reduction``.

    >>> import numpy as np
    >>> tuple(PatchMerging(16, names="features_2_")(np.zeros((1, 7, 7, 16), "float32")).shape)
    (1, 4, 4, 32)
    """

    def __init__(self, dim: int, *, layer_norm_epsilon: float = 1e-5, names: Names | str | None = None,
                 **kwargs: Any):
        names = as_names(names, "patch_merging_")
        kwargs.setdefault("name", names.prefix.rstrip("_") or "patch_merging")
        super().__init__(**kwargs)
        self.gather = PatchGather(name=names("gather"))
        self.norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=names("norm"))
        self.reduction = keras.layers.Dense(2 * dim, use_bias=False, name=names("reduction"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        return self.reduction(self.norm(self.gather(x)))
