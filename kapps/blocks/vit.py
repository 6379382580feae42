"""The Vision Transformer's blocks (Dosovitskiy et al. 2021): patch embedding, class token,
position embedding, the pre-norm encoder block and the token-pooling head.

An image becomes a sequence: a ``patch x patch`` convolution with stride ``patch``
(:class:`PatchEmbedding`), a learned class token in front (:class:`ClassToken`), learned
position embeddings added (:class:`PositionEmbedding`, resampled bicubically when a model's
grid differs from the stored one), then pre-norm encoder blocks (:class:`EncoderBlock`).
"""

from __future__ import annotations

__all__ = ["PatchEmbedding", "ClassToken", "PositionEmbedding", "EncoderBlock", "TokenPooling",
           "TOKEN_POOLING"]

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from kapps.blocks.attention import MultiHeadSelfAttention, TransformerMLP
from kapps.blocks.base import Block, Names, as_names
from kapps.utils.resample import resize_grid

#: :class:`TokenPooling` modes: the class token, or the mean or maximum of the patch tokens.
TOKEN_POOLING = ("token", "avg", "max")


@keras.saving.register_keras_serializable(package="kapps")
class PatchEmbedding(Block):
    """Non-overlapping ``patch_size`` patches, each projected to ``dim`` (a strided convolution),
    as a ``(batch, patches, dim)`` sequence in row-major order.

    Roles: ``conv`` (default name ``conv_proj``, torchvision's) and ``flatten``.

    >>> import numpy as np
    >>> tuple(PatchEmbedding(8, 16)(np.zeros((1, 64, 32, 3), "float32")).shape)
    (1, 8, 8)
    """

    def __init__(self, dim: int, patch_size: int, *, names: Names | str | None = None, **kwargs: Any):
        names = as_names(names, "")
        names = Names(names.prefix, {"conv": "{p}conv_proj", "flatten": "{p}conv_proj_flatten", **names.templates})
        kwargs.setdefault("name", names("conv") + "_block")
        super().__init__(**kwargs)
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
            raise ValueError(f"`patch_size` must be a positive integer. Received: patch_size={patch_size!r}")
        self.dim, self.patch_size = dim, patch_size
        self.conv = keras.layers.Conv2D(dim, patch_size, strides=patch_size, padding="valid", name=names("conv"))
        self.flatten_name = names("flatten")
        self.flatten: keras.layers.Layer | None = None

    def create_shape_dependent(self, input_shape: Any) -> None:
        rows, cols = input_shape[1], input_shape[2]
        if rows is None or cols is None:
            raise ValueError(f"{self.name}: the input size must be known (a static `input_shape`); "
                             f"received an input of shape {tuple(input_shape)}")
        if rows < self.patch_size or cols < self.patch_size:
            raise ValueError(f"{self.name}: the input ({rows}x{cols}) is smaller than one patch "
                             f"({self.patch_size}x{self.patch_size})")
        tokens = (rows // self.patch_size) * (cols // self.patch_size)
        self.flatten = keras.layers.Reshape((tokens, self.dim), name=self.flatten_name)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        return self.flatten(self.conv(x))


@keras.saving.register_keras_serializable(package="kapps")
class ClassToken(keras.layers.Layer):
    """Prepend a learned token (weight ``class_token``, shape ``(1, 1, dim)``) to a sequence.

    >>> import numpy as np
    >>> tuple(ClassToken(name="class_token")(np.zeros((2, 4, 8), "float32")).shape)
    (2, 5, 8)
    """

    def build(self, input_shape: tuple) -> None:
        self.class_token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros", name="class_token")

    def call(self, inputs: Any) -> Any:
        token = ops.broadcast_to(ops.cast(self.class_token, inputs.dtype), (ops.shape(inputs)[0], 1, inputs.shape[-1]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], tokens, input_shape[2])


@keras.saving.register_keras_serializable(package="kapps")
class PositionEmbedding(keras.layers.Layer):
    """Add a learned embedding (weight ``pos_embedding``, ``(1, tokens, dim)``) to every token.

    ``extra_tokens`` leading tokens (the class token) have their own embedding; the others form
    a ``(rows, cols)`` grid. Loading stored weights of another grid (a model at another input
    size) resamples the grid bicubically, corners aligned, as torchvision does
    (:meth:`adapt_weights`, called by kapps' weight loaders).

    >>> import numpy as np
    >>> layer = PositionEmbedding(extra_tokens=1, name="encoder_pos_embedding")
    >>> tuple(layer(np.zeros((1, 17, 8), "float32")).shape)
    (1, 17, 8)
    >>> stored = [np.zeros((1, 1 + 2 * 2, 8), "float32")]  # a 2x2 grid, as a smaller model has
    >>> tuple(layer.adapt_weights(stored)[0].shape)
    (1, 17, 8)
    """

    def __init__(self, extra_tokens: int = 1, grid: tuple[int, int] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.extra_tokens = int(extra_tokens)
        self.grid = None if grid is None else tuple(int(g) for g in grid)

    def build(self, input_shape: tuple) -> None:
        tokens = input_shape[1]
        if tokens is None:
            raise ValueError(f"{self.name}: the number of tokens must be known. Received: input_shape={input_shape}")
        if self.grid is None:
            side = math.isqrt(tokens - self.extra_tokens)
            if side * side != tokens - self.extra_tokens:
                raise ValueError(f"{self.name}: {tokens - self.extra_tokens} patch tokens are not a square grid; "
                                 "pass `grid=(rows, cols)`")
            self.grid = (side, side)
        self.pos_embedding = self.add_weight(
            shape=(1, tokens, input_shape[-1]), initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="pos_embedding")

    def call(self, inputs: Any) -> Any:
        return inputs + ops.cast(self.pos_embedding, inputs.dtype)

    def adapt_weights(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """``arrays`` (stored weights of this layer) at this layer's grid: a stored square grid of
        another size is resampled; anything else is returned as it is (and then fails the shape check)."""
        (stored,) = arrays if len(arrays) == 1 else (None,)
        want = tuple(self.pos_embedding.shape)
        if stored is None or stored.ndim != 3 or stored.shape == want or stored.shape[2] != want[2]:
            return arrays
        extra, patches = stored[:, :self.extra_tokens], stored[0, self.extra_tokens:]
        side = math.isqrt(patches.shape[0])
        if side * side != patches.shape[0]:
            return arrays
        grid = resize_grid(patches.reshape(side, side, -1), *self.grid)
        return [np.concatenate([extra, grid.reshape(1, -1, want[2])], axis=1).astype(stored.dtype)]

    def get_config(self) -> dict:
        return {**super().get_config(), "extra_tokens": self.extra_tokens, "grid": self.grid}


@keras.saving.register_keras_serializable(package="kapps")
class EncoderBlock(Block):
    """ViT's pre-norm transformer block over ``(batch, tokens, dim)``:
    ``x + attention(ln_1(x))``, then ``+ mlp(ln_2(.))``.

    Roles (torchvision's ``EncoderBlock`` modules): ``ln_1``, ``self_attention_`` (a prefix:
    :class:`~kapps.blocks.MultiHeadSelfAttention`), ``add_1``, ``ln_2``, ``mlp_`` (a prefix:
    :class:`~kapps.blocks.TransformerMLP`), ``add_2``.

    >>> import numpy as np
    >>> block = EncoderBlock(32, 4, 64, names="encoder_layers_encoder_layer_0_")
    >>> tuple(block(np.zeros((1, 5, 32), "float32")).shape), block.ln_1.name
    ((1, 5, 32), 'encoder_layers_encoder_layer_0_ln_1')
    """

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, *, layer_norm_epsilon: float = 1e-6,
                 names: Names | str | None = None, **kwargs: Any):
        names = as_names(names, "encoder_block_")
        kwargs.setdefault("name", names.prefix.rstrip("_") or "encoder_block")
        super().__init__(**kwargs)
        self.ln_1 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=names("ln_1"))
        self.attention = MultiHeadSelfAttention(dim, num_heads, names=names.sub("self_attention_"))
        self.add_1 = keras.layers.Add(name=names("add_1"))
        self.ln_2 = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=names("ln_2"))
        self.mlp = TransformerMLP(dim, mlp_dim, names=names.sub("mlp_"))
        self.add_2 = keras.layers.Add(name=names("add_2"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        x = self.add_1([x, self.attention.run(self.ln_1(x), training=training)])
        return self.add_2([x, self.mlp.run(self.ln_2(x), training=training)])


@keras.saving.register_keras_serializable(package="kapps")
class TokenPooling(keras.layers.Layer):
    """A ``(batch, tokens, dim)`` sequence to ``(batch, dim)``: ``"token"`` takes the class token
    (the first ``extra_tokens``' first), ``"avg"``/``"max"`` pool the patch tokens (after the
    ``extra_tokens``), as timm's ``global_pool``.

    >>> import numpy as np
    >>> x = np.arange(6, dtype="float32").reshape(1, 3, 2)
    >>> [np.asarray(TokenPooling(mode)(x)).tolist() for mode in TOKEN_POOLING]
    [[[0.0, 1.0]], [[3.0, 4.0]], [[4.0, 5.0]]]
    """

    def __init__(self, mode: str = "token", extra_tokens: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        if mode not in TOKEN_POOLING:
            raise ValueError(f"`mode` must be one of {', '.join(map(repr, TOKEN_POOLING))}. Received: mode={mode!r}")
        self.mode, self.extra_tokens = mode, int(extra_tokens)

    def call(self, inputs: Any) -> Any:
        if self.mode == "token":
            return inputs[:, 0]
        patches = inputs[:, self.extra_tokens:]
        return ops.mean(patches, axis=1) if self.mode == "avg" else ops.max(patches, axis=1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[2])

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "extra_tokens": self.extra_tokens}
