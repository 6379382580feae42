"""Activation layers by name, so specs can say ``"relu6"`` and get Keras' layer for it."""

from __future__ import annotations

__all__ = ["make_activation", "relu6"]

from typing import Callable

import keras


@keras.saving.register_keras_serializable(package="kapps")
def relu6(x):
    """ReLU capped at 6 (MobileNet's activation): ``min(max(x, 0), 6)``.

    >>> import numpy as np
    >>> np.asarray(relu6(np.array([-1.0, 3.0, 9.0]))).tolist()
    [0.0, 3.0, 6.0]
    """
    return keras.ops.relu6(x)


def make_activation(activation: "str | Callable | None", name: str) -> keras.layers.Layer | None:
    """Return a named activation layer, or None for a linear (no) activation.

    ``"relu6"`` becomes ``keras.layers.ReLU(6.0)``, exactly as keras.applications
    builds MobileNet; every other value goes to ``keras.layers.Activation``.
    """
    if activation is None or activation == "linear":
        return None
    if activation == "relu6":
        return keras.layers.ReLU(6.0, name=name)
    return keras.layers.Activation(activation, name=name)
