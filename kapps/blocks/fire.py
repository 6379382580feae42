"""SqueezeNet's fire module (Iandola et al. 2016): a 1x1 squeeze, then 1x1 and 3x3 expands side by side."""

from __future__ import annotations

__all__ = ["FireModule"]

from typing import Any, Callable

import keras

from kapps.blocks.base import Block, Names, as_names
from kapps.blocks.conv import ConvBNAct


@keras.saving.register_keras_serializable(package="kapps")
class FireModule(Block):
    """``concat(act(expand1x1(s)), act(expand3x3(s)))`` with ``s = act(squeeze(x))``.

    Convolutions have biases and no BatchNorm (SqueezeNet predates it); the 3x3 expand pads
    one pixel on each side (``same`` at stride 1). The concatenation is on the channel axis:
    ``expand1x1_filters + expand3x3_filters`` channels out.

    Roles (for :class:`~kapps.blocks.Names`; default names ``{p}<role>``, torchvision's module
    names): ``squeeze``, ``squeeze_activation``, ``expand1x1``, ``expand1x1_activation``,
    ``expand3x3``, ``expand3x3_activation``, ``concat``.

    >>> import numpy as np
    >>> fire = FireModule(16, 64, 64, names="features_3_")
    >>> tuple(fire(np.zeros((1, 9, 9, 96), "float32")).shape)
    (1, 9, 9, 128)
    """

    def __init__(
        self,
        squeeze_filters: int,
        expand1x1_filters: int,
        expand3x3_filters: int,
        *,
        activation: str | Callable | None = "relu",
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "fire_")
        kwargs.setdefault("name", names.prefix.rstrip("_") or "fire")
        super().__init__(**kwargs)
        fmt = self.use_data_format(data_format)

        def unit(role: str, filters: int, kernel: int) -> ConvBNAct:
            return ConvBNAct(filters, kernel, padding="same", use_bias=True, bn=False, activation=activation,
                             data_format=fmt, names=Names("", {"conv": names(role), "act": names(f"{role}_activation"),
                                                               "block": names(f"{role}_unit")}))

        self.squeeze = unit("squeeze", squeeze_filters, 1)
        self.expand1x1 = unit("expand1x1", expand1x1_filters, 1)
        self.expand3x3 = unit("expand3x3", expand3x3_filters, 3)
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=names("concat"))

    def compose(self, x: Any, training: bool | None = None) -> Any:
        x = self.squeeze.run(x, training=training)
        return self.concat([self.expand1x1.run(x, training=training), self.expand3x3.run(x, training=training)])
