"""Stochastic depth (Huang et al. 2016) as keras.applications builds it."""

from __future__ import annotations

__all__ = ["drop_path", "drop_path_or_identity"]

from typing import Any

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


def drop_path_or_identity(rate: Any, name: str, identity_name: str) -> keras.layers.Layer:
    """:func:`drop_path` of ``rate`` named ``name``, or, for a rate of 0, an identity layer named
    ``identity_name`` (where keras.applications puts one); ``rate`` must be a number in [0, 1).

    >>> drop_path_or_identity(0.0, "b_stochastic_depth", "b_identity").name
    'b_identity'
    >>> drop_path_or_identity(1.5, "b_stochastic_depth", "b_identity")
    Traceback (most recent call last):
    ...
    ValueError: `drop_path_rate` must be a number in [0, 1). Received: drop_path_rate=1.5
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"`drop_path_rate` must be a number in [0, 1). Received: drop_path_rate={rate!r}")
    return drop_path(float(rate), name) if rate else keras.layers.Activation("linear", name=identity_name)
