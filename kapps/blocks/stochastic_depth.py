"""Stochastic depth (Huang et al. 2016) as keras.applications builds it."""

from __future__ import annotations

__all__ = ["drop_path"]

import keras


def drop_path(rate: float, name: str) -> keras.layers.Dropout:
    """Drop a residual branch for whole samples during training, with probability ``rate``.

    A ``Dropout`` whose noise is shared across height, width and channels
    (``noise_shape=(None, 1, 1, 1)``): kept samples are scaled by ``1 / (1 - rate)``,
    and inference is the identity. This is the ``..._drop`` layer of EfficientNet(V2);
    it has no weights.

    >>> layer = drop_path(0.2, "block2a_drop")
    >>> layer.rate, layer.noise_shape
    (0.2, (None, 1, 1, 1))
    """
    return keras.layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=name)
