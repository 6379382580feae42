"""Generic residual composition: ``activation(shortcut(x) + body(x))``."""

from __future__ import annotations

__all__ = ["Chain", "Residual", "run_layer"]

from typing import Any, Callable, Sequence

import keras

from kapps.blocks.activations import make_activation
from kapps.blocks.base import Block


def run_layer(layer: keras.layers.Layer, x: Any, training: bool | None = None) -> Any:
    """Apply a block inline (``run``) or a plain Keras layer, passing ``training`` on."""
    if isinstance(layer, Block):
        return layer.run(x, training=training)
    if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.Dropout)):
        return layer(x, training=training)
    return layer(x)


@keras.saving.register_keras_serializable(package="kapps")
class Chain(Block):
    """Blocks or layers applied one after another, as one block.

    >>> import numpy as np
    >>> from kapps.blocks import ConvBNAct
    >>> chain = Chain([ConvBNAct(4, 3, names="a_"), ConvBNAct(8, 3, strides=2, names="b_")], name="two")
    >>> tuple(chain(np.zeros((1, 8, 8, 3), "float32")).shape)
    (1, 4, 4, 8)
    """

    def __init__(self, parts: Sequence[keras.layers.Layer], **kwargs: Any):
        super().__init__(**kwargs)
        self.parts = list(parts)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        for part in self.parts:
            x = run_layer(part, x, training)
        return x


@keras.saving.register_keras_serializable(package="kapps")
class Residual(Block):
    """``activation(shortcut(x) + body(x))``, the skip connection of He et al. 2016.

    ``shortcut`` is None for the identity, or a block/layer (for example a strided 1x1
    ConvBNAct) when the shape changes. ``activation`` is applied after the sum
    (ResNet v1) or left out (ResNet v2, MobileNetV2). ``skip_first`` orders the sum's inputs
    (shortcut, body) or (body, shortcut): the same numbers, but the order of the layers of a
    Functional model follows it, as a reference's weight order does.

    >>> import numpy as np
    >>> from kapps.blocks import ConvBNAct
    >>> body = Chain([ConvBNAct(8, 3, names="r_a_"), ConvBNAct(8, 3, activation=None, names="r_b_")])
    >>> block = Residual(body, activation="relu", add_name="r_add", act_name="r_out", name="r")
    >>> tuple(block(np.ones((1, 6, 6, 8), "float32")).shape)
    (1, 6, 6, 8)
    """

    def __init__(
        self,
        body: keras.layers.Layer,
        shortcut: keras.layers.Layer | None = None,
        *,
        activation: str | Callable | None = None,
        add_name: str = "add",
        act_name: str = "out",
        skip_first: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.body = body
        self.shortcut = shortcut
        self.skip_first = skip_first
        self.add = keras.layers.Add(name=add_name)
        self.act = make_activation(activation, act_name)

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        skip = inputs if self.shortcut is None else run_layer(self.shortcut, inputs, training)
        x = run_layer(self.body, inputs, training)
        x = self.add([skip, x] if self.skip_first else [x, skip])
        return self.act(x) if self.act is not None else x
