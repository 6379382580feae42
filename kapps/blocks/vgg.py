"""Plain convolution stages and the fully connected classifier of VGG-style networks."""

from __future__ import annotations

__all__ = ["ConvPoolStage", "FlattenDenseClassifier"]

from typing import Any, Callable, Sequence

import keras

from kapps.blocks.base import Block, Names, as_names


@keras.saving.register_keras_serializable(package="kapps")
class ConvPoolStage(Block):
    """``convs`` same-padded convolutions with a fused activation, then max pooling.

    The VGG stage (Simonyan & Zisserman 2015): no BatchNorm, the activation is the
    convolution's own (``Conv2D(activation=...)``), as in keras.applications.
    Roles (for :class:`~kapps.blocks.Names`): ``conv1`` ... ``conv{convs}``, ``pool``.

    >>> import numpy as np
    >>> stage = ConvPoolStage(8, convs=2, names="block1_")
    >>> [layer.name for layer in (*stage.convs, stage.pool)]
    ['block1_conv1', 'block1_conv2', 'block1_pool']
    >>> tuple(stage(np.zeros((1, 8, 8, 3), "float32")).shape)
    (1, 4, 4, 8)
    """

    def __init__(
        self,
        filters: int,
        convs: int,
        *,
        kernel_size: int = 3,
        activation: str | Callable | None = "relu",
        pool_size: int = 2,
        pool_strides: int = 2,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "stage_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        self.convs = [
            keras.layers.Conv2D(filters, kernel_size, activation=activation, padding="same", data_format=fmt,
                                name=names(f"conv{i}"))
            for i in range(1, convs + 1)
        ]
        self.pool = keras.layers.MaxPooling2D(pool_size, strides=pool_strides, data_format=fmt, name=names("pool"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        for conv in self.convs:
            x = conv(x)
        return self.pool(x)


@keras.saving.register_keras_serializable(package="kapps")
class FlattenDenseClassifier(Block):
    """Flatten, hidden Dense layers (each optionally followed by dropout), then the classifier.

    The VGG top is ``hidden_units=(4096, 4096)`` named ``fc1``, ``fc2`` with no dropout
    (keras.applications leaves it out); the classifier is ``dense_name``.

    >>> import numpy as np
    >>> head = FlattenDenseClassifier(10, hidden_units=(32, 16))
    >>> [layer.name for layer in head.hidden]
    ['fc1', 'fc2']
    >>> tuple(head(np.zeros((2, 3, 3, 4), "float32")).shape)
    (2, 10)

    For a PyTorch classifier (torchvision's AlexNet): ``pool`` is a layer applied first
    (``keras.layers.AdaptiveAveragePooling2D((6, 6))``), ``torch_flatten=True`` flattens the
    maps in torch's (channels, rows, cols) order whatever the data format, so that a torch
    ``Linear``'s weights apply unchanged, and ``dropout_first=True`` puts each dropout before
    its hidden layer (``Dropout, Linear, ReLU``) instead of after it.
    """

    def __init__(
        self,
        classes: int,
        *,
        hidden_units: Sequence[int] = (4096, 4096),
        hidden_activation: str | Callable | None = "relu",
        activation: str | Callable | None = "softmax",
        dropout: float = 0.0,
        flatten_name: str = "flatten",
        hidden_names: Sequence[str] | None = None,
        dropout_names: Sequence[str] | None = None,
        dense_name: str = "predictions",
        pool: keras.layers.Layer | None = None,
        torch_flatten: bool = False,
        dropout_first: bool = False,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "classifier")
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)
        self.pool = pool
        self.dropout_first = dropout_first
        # torch's order: channels first; a channels_last map is transposed to it, then flattened as it is
        self.to_torch_order = (keras.layers.Permute((3, 1, 2), name=f"{flatten_name}_chw")
                               if torch_flatten and fmt == "channels_last" else None)
        count = len(hidden_units)
        hidden_names = list(hidden_names or [f"fc{i}" for i in range(1, count + 1)])
        dropout_names = list(dropout_names or [f"{n}_dropout" for n in hidden_names])
        if len(hidden_names) != count or len(dropout_names) != count:
            raise ValueError(
                f"`hidden_names` and `dropout_names` must have one name per hidden layer ({count}). "
                f"Received: hidden_names={hidden_names!r}, dropout_names={dropout_names!r}"
            )
        self.flatten = keras.layers.Flatten(data_format="channels_last" if torch_flatten else fmt, name=flatten_name)
        self.hidden = [
            keras.layers.Dense(units, activation=hidden_activation, name=n)
            for units, n in zip(hidden_units, hidden_names)
        ]
        self.dropouts = [keras.layers.Dropout(dropout, name=n) for n in dropout_names] if dropout else []
        self.dense = keras.layers.Dense(classes, activation=activation, name=dense_name)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        if self.pool is not None:
            x = self.pool(x)
        if self.to_torch_order is not None:
            x = self.to_torch_order(x)
        x = self.flatten(x)
        for i, dense in enumerate(self.hidden):
            if self.dropouts and self.dropout_first:
                x = self.dropouts[i](x, training=training)
            x = dense(x)
            if self.dropouts and not self.dropout_first:
                x = self.dropouts[i](x, training=training)
        return self.dense(x)
