"""Network heads: global pooling and classifiers."""

from __future__ import annotations

__all__ = ["ConvClassifier", "DenseClassifier", "PoolingHead", "global_pool", "POOLING_CHOICES"]

from typing import Any, Callable

import keras

from kapps.blocks.base import Block

POOLING_CHOICES = (None, "avg", "max")


def global_pool(pooling: str | None, name: str | None = None, keepdims: bool = False) -> keras.layers.Layer | None:
    """``GlobalAveragePooling2D`` for ``"avg"``, ``GlobalMaxPooling2D`` for ``"max"``, None for None."""
    if pooling is None:
        return None
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name=name, keepdims=keepdims)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name=name, keepdims=keepdims)
    raise ValueError(f"`pooling` must be one of None, 'avg' or 'max'. Received: pooling={pooling!r}")


class PoolingHead(Block):
    """The no-top head: optional global average or max pooling (``include_top=False``)."""

    def __init__(self, pooling: str | None, *, pool_name: str | None = None, **kwargs: Any):
        kwargs.setdefault("name", "pooling_head")
        super().__init__(**kwargs)
        self.pooling = pooling
        self.pool = global_pool(pooling, pool_name)

    def forward(self, x: Any, training: bool | None = None) -> Any:
        return x if self.pool is None else self.pool(x)


class DenseClassifier(Block):
    """Global pooling, optional dropout, then a Dense classifier (``include_top=True``).

    >>> import numpy as np
    >>> head = DenseClassifier(10, dropout=0.2)
    >>> head(np.zeros((2, 7, 7, 32), "float32")).shape
    (2, 10)
    """

    def __init__(
        self,
        classes: int,
        *,
        activation: str | Callable | None = "softmax",
        pooling: str | None = "avg",
        dropout: float = 0.0,
        pool_name: str | None = None,
        dropout_name: str = "top_dropout",
        dense_name: str = "predictions",
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "classifier")
        super().__init__(**kwargs)
        self.pool = global_pool(pooling, pool_name)
        self.dropout = keras.layers.Dropout(dropout, name=dropout_name) if dropout else None
        self.dense = keras.layers.Dense(classes, activation=activation, name=dense_name)

    def forward(self, x: Any, training: bool | None = None) -> Any:
        if self.pool is not None:
            x = self.pool(x)
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        return self.dense(x)


class ConvClassifier(Block):
    """Pooling (kept 4-D), dropout, a 1x1 conv as classifier, flatten, activation.

    The MobileNet (v1) and MobileNetV3 top: ``conv_preds`` is a 1x1 convolution.
    """

    def __init__(
        self,
        classes: int,
        *,
        activation: str | Callable | None = "softmax",
        dropout: float = 1e-3,
        dropout_name: str = "dropout",
        conv_name: str = "conv_preds",
        reshape_name: str = "reshape_2",
        activation_name: str = "predictions",
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "classifier")
        super().__init__(**kwargs)
        self.pool = keras.layers.GlobalAveragePooling2D(keepdims=True)
        self.dropout = keras.layers.Dropout(dropout, name=dropout_name)
        self.conv = keras.layers.Conv2D(classes, 1, padding="same", name=conv_name)
        self.reshape = keras.layers.Reshape((classes,), name=reshape_name)
        self.act = keras.layers.Activation(activation, name=activation_name)

    def forward(self, x: Any, training: bool | None = None) -> Any:
        x = self.pool(x)
        x = self.dropout(x, training=training)
        return self.act(self.reshape(self.conv(x)))
