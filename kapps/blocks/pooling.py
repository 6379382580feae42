"""Pooling as PyTorch computes it, for the torchvision-trained families."""

from __future__ import annotations

__all__ = ["ceil_max_pool"]

import keras


def ceil_max_pool(name: str, size: int = 3, strides: int = 2, data_format: str | None = None) -> list:
    """Max pooling that rounds its output size up (PyTorch's ``ceil_mode=True``), for non-negative inputs.

    ``strides - 1`` zero rows and columns on the bottom and right (``{name}_pad``), then a
    ``valid`` pooling (``name``): ``ceil((n - size) / strides) + 1`` outputs, the size torch
    gives. Torch never lets a window start in the padding, and here none does for ``size >=
    strides``; the zeros never win a maximum over ReLU outputs, so the values are torch's too.
    SqueezeNet and torchvision's GoogLeNet pool this way.

    >>> import numpy as np
    >>> pad, pool = ceil_max_pool("pool", 3, 2)
    >>> tuple(pool(pad(np.ones((1, 8, 8, 2), "float32"))).shape)  # torch: ceil(5 / 2) + 1 = 4
    (1, 4, 4, 2)
    """
    if size < strides:
        raise ValueError(f"`size` must be at least `strides` ({strides}). Received: size={size}")
    extra = strides - 1
    return [keras.layers.ZeroPadding2D(((0, extra), (0, extra)), data_format=data_format, name=f"{name}_pad"),
            keras.layers.MaxPooling2D(size, strides=strides, data_format=data_format, name=name)]
