"""Normalization layers of the pre-BatchNorm era."""

from __future__ import annotations

__all__ = ["LocalResponseNormalization"]

from typing import Any

import keras

from kapps.blocks.base import resolve_data_format


@keras.saving.register_keras_serializable(package="kapps")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across channels (Krizhevsky et al. 2012, section 3.3).

    ``b[c] = a[c] / (k + alpha * sum(a[j] ** 2 for j within size // 2 of c)) ** beta``,
    with the paper's constants ``k=2, size=5, alpha=1e-4, beta=0.75`` as defaults
    (``alpha`` is not divided by ``size``; Caffe's LRN divides it). No weights. The
    channels are the last axis, or axis 1 with ``data_format="channels_first"``
    (None: Keras' ``image_data_format()`` at construction).

    >>> import numpy as np
    >>> lrn = LocalResponseNormalization(bias=1.0, alpha=1.0, beta=1.0, size=3)
    >>> [round(float(v), 4) for v in np.ravel(lrn(np.array([[[[1.0, 2.0]]]], "float32")))]  # 1/(1+5), 2/(1+5)
    [0.1667, 0.3333]
    """

    def __init__(self, size: int = 5, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75,
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = resolve_data_format(data_format)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1 or size % 2 == 0:
            raise ValueError(f"`size` must be a positive odd integer (channels in the window). Received: size={size!r}")
        self.size, self.bias, self.alpha, self.beta = size, float(bias), float(alpha), float(beta)

    def call(self, inputs: Any) -> Any:
        if self.data_format == "channels_first":
            return keras.ops.moveaxis(self.normalize_last_axis(keras.ops.moveaxis(inputs, 1, -1)), -1, 1)
        return self.normalize_last_axis(inputs)

    def normalize_last_axis(self, inputs: Any) -> Any:
        """The normalization across the last axis."""
        channels = inputs.shape[-1]
        radius = self.size // 2
        squares = keras.ops.square(inputs)
        padded = keras.ops.pad(squares, [[0, 0]] * (len(inputs.shape) - 1) + [[radius, radius]])
        window = padded[..., 0:channels]
        for offset in range(1, self.size):
            window = window + padded[..., offset:offset + channels]
        return inputs / keras.ops.power(self.bias + self.alpha * window, self.beta)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "bias": self.bias, "alpha": self.alpha, "beta": self.beta,
                "data_format": self.data_format}
