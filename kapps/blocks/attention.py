"""Multi-head self-attention and the transformer MLP (Vaswani et al. 2017), shared by ViT and Swin.

The query, key and value projections are one packed Dense layer (``in_proj``/``qkv``: ``D``
to ``3 D``, queries first, each head's channels contiguous), as PyTorch packs them
(``nn.MultiheadAttention.in_proj_weight``, Swin's ``qkv``), so converted checkpoints map
one tensor to one kernel. The attention itself is a weightless layer
(:class:`SelfAttentionCore`) between the two projections.
"""

from __future__ import annotations

__all__ = ["scaled_dot_product_attention", "SelfAttentionCore", "MultiHeadSelfAttention", "TransformerMLP",
           "split_heads", "merge_heads", "check_heads"]

import math
from typing import Any

import keras
from keras import ops

from kapps.blocks.base import Block, Names, as_names


def scaled_dot_product_attention(query: Any, key: Any, value: Any, bias: Any = None) -> Any:
    """``softmax(q k^T / sqrt(d) + bias) v`` over the last two axes (``(..., tokens, head_dim)``).

    >>> import numpy as np
    >>> q = k = np.zeros((1, 2, 3, 4), "float32"); v = np.arange(24, dtype="float32").reshape(1, 2, 3, 4)
    >>> np.asarray(scaled_dot_product_attention(q, k, v))[0, 0, 0].round(4).tolist()  # uniform weights: the mean
    [4.0, 5.0, 6.0, 7.0]
    """
    scale = 1.0 / math.sqrt(int(query.shape[-1]))
    logits = ops.matmul(query * scale, ops.swapaxes(key, -1, -2))
    if bias is not None:
        logits = logits + bias
    return ops.matmul(ops.softmax(logits, axis=-1), value)


def split_heads(packed: Any, num_heads: int) -> tuple[Any, Any, Any]:
    """A packed ``(batch, tokens, 3 D)`` projection as query, key and value of ``(batch, heads, tokens, D / heads)``."""
    tokens, width = int(packed.shape[1]), int(packed.shape[-1]) // 3
    x = ops.reshape(packed, (-1, tokens, 3, num_heads, width // num_heads))
    x = ops.transpose(x, (2, 0, 3, 1, 4))
    return x[0], x[1], x[2]


def merge_heads(x: Any) -> Any:
    """``(batch, heads, tokens, head_dim)`` -> ``(batch, tokens, heads * head_dim)``."""
    heads, tokens, dim = (int(d) for d in x.shape[1:])
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (-1, tokens, heads * dim))


def check_heads(num_heads: Any, dim: int | None = None) -> int:
    """``num_heads`` must be a positive integer that divides ``dim`` (when given); returns it.

    >>> check_heads(4, 32)
    4
    """
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
        raise ValueError(f"`num_heads` must be a positive integer. Received: num_heads={num_heads!r}")
    if dim is not None and dim % num_heads:
        raise ValueError(f"`dim` ({dim}) must be a multiple of `num_heads`. Received: num_heads={num_heads!r}")
    return num_heads


@keras.saving.register_keras_serializable(package="kapps")
class SelfAttentionCore(keras.layers.Layer):
    """Attention over a packed ``(batch, tokens, 3 D)`` query/key/value tensor; returns ``(batch, tokens, D)``.

    No weights: the projections around it are Dense layers.

    >>> import numpy as np
    >>> tuple(SelfAttentionCore(4)(np.zeros((2, 5, 48), "float32")).shape)
    (2, 5, 16)
    """

    def __init__(self, num_heads: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_heads = check_heads(num_heads)

    def call(self, inputs: Any) -> Any:
        width = int(inputs.shape[-1])
        if width % (3 * self.num_heads):
            raise ValueError(f"SelfAttentionCore {self.name!r}: the packed width {width} is not 3 x num_heads "
                             f"({self.num_heads}) x head_dim")
        return merge_heads(scaled_dot_product_attention(*split_heads(inputs, self.num_heads)))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], input_shape[-1] // 3)

    def flops(self, output_shape: tuple) -> int:
        """FLOPs per image of the two products (``q k^T`` and ``weights v``), for :mod:`kapps.tools.flops`."""
        tokens, dim = int(output_shape[1]), int(output_shape[2])
        return 2 * 2 * tokens * tokens * dim

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="kapps")
class MultiHeadSelfAttention(Block):
    """Self-attention over ``(batch, tokens, dim)``: packed ``in_proj``, attention, ``out_proj``.

    PyTorch's ``nn.MultiheadAttention`` (``batch_first``, self-attention, no dropout at inference).
    Roles (for :class:`~kapps.blocks.Names`): ``in_proj``, ``out_proj`` and ``attention`` (the
    core; default name: the prefix without its trailing ``_``, torch's module path).

    >>> import numpy as np
    >>> block = MultiHeadSelfAttention(32, 4, names="layer_0_self_attention_")
    >>> tuple(block(np.zeros((1, 5, 32), "float32")).shape), block.in_proj.name
    ((1, 5, 32), 'layer_0_self_attention_in_proj')
    """

    def __init__(self, dim: int, num_heads: int, *, names: Names | str | None = None, **kwargs: Any):
        names = as_names(names, "self_attention_")
        core = names.templates.get("attention", names.prefix.rstrip("_") or "self_attention")
        kwargs.setdefault("name", f"{core}_block")
        super().__init__(**kwargs)
        check_heads(num_heads, dim)
        self.in_proj = keras.layers.Dense(3 * dim, name=names("in_proj"))
        self.core = SelfAttentionCore(num_heads, name=core)
        self.out_proj = keras.layers.Dense(dim, name=names("out_proj"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        return self.out_proj(self.core(self.in_proj(x)))


@keras.saving.register_keras_serializable(package="kapps")
class TransformerMLP(Block):
    """Dense (``hidden`` units), GELU (exact, as ``torch.nn.GELU``), Dense (``dim`` units), per token.

    Roles: ``0``, ``1`` and ``3`` (torchvision's ``MLP`` positions: Linear, GELU, Dropout, Linear),
    so names are ``{prefix}0``, ``{prefix}1``, ``{prefix}3`` (``..._mlp_0``).

    >>> import numpy as np
    >>> mlp = TransformerMLP(8, 32, names="block_mlp_")
    >>> tuple(mlp(np.zeros((1, 5, 8), "float32")).shape), [layer.name for layer in (mlp.fc1, mlp.fc2)]
    ((1, 5, 8), ['block_mlp_0', 'block_mlp_3'])
    """

    def __init__(self, dim: int, hidden: int, *, names: Names | str | None = None, **kwargs: Any):
        names = as_names(names, "mlp_")
        kwargs.setdefault("name", names.prefix.rstrip("_") or "mlp")
        super().__init__(**kwargs)
        self.fc1 = keras.layers.Dense(hidden, name=names("0"))
        self.act = keras.layers.Activation("gelu", name=names("1"))  # Keras' gelu is exact by default
        self.fc2 = keras.layers.Dense(dim, name=names("3"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        return self.fc2(self.act(self.fc1(x)))
