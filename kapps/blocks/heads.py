"""Network heads: global pooling and classifiers."""

from __future__ import annotations

__all__ = ["ConvClassifier", "ConvPoolClassifier", "DenseClassifier", "PoolingHead", "global_pool", "POOLING_CHOICES"]

from typing import Any, Callable

import keras

from kapps.blocks.activations import make_activation
from kapps.blocks.base import Block

POOLING_CHOICES = (None, "avg", "max")


def global_pool(
    pooling: str | None, name: str | None = None, keepdims: bool = False, data_format: str | None = None
) -> keras.layers.Layer | None:
    """``GlobalAveragePooling2D`` for ``"avg"``, ``GlobalMaxPooling2D`` for ``"max"``, None for None."""
    if pooling is None:
        return None
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(data_format=data_format, name=name, keepdims=keepdims)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(data_format=data_format, name=name, keepdims=keepdims)
    raise ValueError(f"`pooling` must be one of None, 'avg' or 'max'. Received: pooling={pooling!r}")


@keras.saving.register_keras_serializable(package="kapps")
class PoolingHead(Block):
    """The no-top head: optional global average or max pooling (``include_top=False``)."""

    def __init__(self, pooling: str | None, *, pool_name: str | None = None, data_format: str | None = None,
                 **kwargs: Any):
        kwargs.setdefault("name", "pooling_head")
        super().__init__(**kwargs)
        self.pooling = pooling
        self.pool = global_pool(pooling, pool_name, data_format=self.use_data_format(data_format))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        return x if self.pool is None else self.pool(x)


@keras.saving.register_keras_serializable(package="kapps")
class DenseClassifier(Block):
    """Global pooling, optional dropout, then a Dense classifier (``include_top=True``).

    >>> import numpy as np
    >>> head = DenseClassifier(10, dropout=0.2)
    >>> tuple(head(np.zeros((2, 7, 7, 32), "float32")).shape)
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
        data_format: str | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "classifier")
        super().__init__(**kwargs)
        self.pool = global_pool(pooling, pool_name, data_format=self.use_data_format(data_format))
        self.dropout = keras.layers.Dropout(dropout, name=dropout_name) if dropout else None
        self.dense = keras.layers.Dense(classes, activation=activation, name=dense_name)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        if self.pool is not None:
            x = self.pool(x)
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        return self.dense(x)


@keras.saving.register_keras_serializable(package="kapps")
class ConvClassifier(Block):
    """Pooling (kept 4-D), dropout, a 1x1 conv as classifier, flatten, activation.

    The MobileNet (v1) and MobileNetV3 top: ``conv_preds`` is a 1x1 convolution.
    MobileNetV3 adds a hidden 1x1 convolution with bias and its activation after the
    pooling (``hidden_filters``, ``hidden_activation``); ``dropout=None`` leaves the
    dropout layer out.

    >>> import numpy as np
    >>> head = ConvClassifier(10, hidden_filters=32, hidden_activation="hard_swish", dropout=None)
    >>> tuple(head(np.zeros((2, 7, 7, 16), "float32")).shape)
    (2, 10)
    """

    def __init__(
        self,
        classes: int,
        *,
        activation: str | Callable | None = "softmax",
        dropout: float | None = 1e-3,
        dropout_name: str = "dropout",
        conv_name: str = "conv_preds",
        reshape_name: str = "reshape_2",
        activation_name: str = "predictions",
        hidden_filters: int | None = None,
        hidden_activation: str | Callable | None = None,
        hidden_name: str = "conv_2",
        hidden_activation_name: str = "conv_2_activation",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "classifier")
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        self.pool = keras.layers.GlobalAveragePooling2D(keepdims=True, data_format=fmt)
        self.hidden = (
            keras.layers.Conv2D(hidden_filters, 1, padding="same", use_bias=True, data_format=fmt, name=hidden_name)
            if hidden_filters else None
        )
        self.hidden_act = make_activation(hidden_activation, hidden_activation_name) if hidden_filters else None
        self.dropout = keras.layers.Dropout(dropout, name=dropout_name) if dropout is not None else None
        self.conv = keras.layers.Conv2D(classes, 1, padding="same", data_format=fmt, name=conv_name)
        self.reshape = keras.layers.Reshape((classes,), name=reshape_name)
        self.act = keras.layers.Activation(activation, name=activation_name)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        x = self.pool(x)
        if self.hidden is not None:
            x = self.hidden(x)
        if self.hidden_act is not None:
            x = self.hidden_act(x)
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        return self.act(self.reshape(self.conv(x)))


@keras.saving.register_keras_serializable(package="kapps")
class ConvPoolClassifier(Block):
    """Dropout, a 1x1 convolution to ``classes`` (with bias), its activation, global average
    pooling, then ``activation``: the SqueezeNet top (the class scores are convolved per pixel,
    then averaged; unlike :class:`ConvClassifier`, which pools first).

    >>> import numpy as np
    >>> head = ConvPoolClassifier(10, dropout=0.5, activation=None)
    >>> tuple(head(np.zeros((2, 13, 13, 16), "float32")).shape)
    (2, 10)
    """

    def __init__(
        self,
        classes: int,
        *,
        activation: str | Callable | None = "softmax",
        dropout: float | None = 0.5,
        conv_activation: str | Callable | None = "relu",
        dropout_name: str = "dropout",
        conv_name: str = "conv_preds",
        conv_activation_name: str = "conv_preds_relu",
        pool_name: str = "avg_pool",
        activation_name: str = "predictions",
        data_format: str | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "classifier")
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        self.dropout = keras.layers.Dropout(dropout, name=dropout_name) if dropout else None
        self.conv = keras.layers.Conv2D(classes, 1, use_bias=True, data_format=fmt, name=conv_name)
        self.conv_act = make_activation(conv_activation, conv_activation_name)
        self.pool = keras.layers.GlobalAveragePooling2D(data_format=fmt, name=pool_name)
        self.act = keras.layers.Activation(activation, name=activation_name)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        x = self.conv(x)
        if self.conv_act is not None:
            x = self.conv_act(x)
        return self.act(self.pool(x))
