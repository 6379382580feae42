"""In-model input preprocessing: the rescaling/normalization layers some families start with."""

from __future__ import annotations

__all__ = ["Normalization"]

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="kapps")
class Normalization(keras.layers.Normalization):
    """``keras.layers.Normalization`` that always uses the statistics it currently holds.

    Keras' layer caches its mean and variance when it is built or adapted and refreshes
    them only when a Keras weights file is loaded; values written with ``set_weights``
    (which is how kapps loads files by layer name) would be ignored, and a layer built
    inside a traced function would keep tensors of that function. This subclass
    re-reads its variables at every call and, given ``channels``, is built at once (for
    a 4-D image batch whose channels are ``axis``: -1, or 1 for channels_first).
    Same class name, weights (``mean``, ``variance``, ``count``) and numbers as Keras'
    layer, so weight files and name-based matching treat it as Keras' own.

    >>> import numpy as np
    >>> norm = Normalization(channels=3, name="normalization")
    >>> norm.set_weights([np.full(3, 2.0), np.full(3, 4.0), np.array(1)])
    >>> np.asarray(norm(np.full((1, 1, 1, 3), 4.0, "float32"))).ravel().tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, axis: int = -1, mean: Any = None, variance: Any = None, *, channels: int | None = None,
                 **kwargs: Any):
        super().__init__(axis=axis, mean=mean, variance=variance, **kwargs)
        if channels is not None:
            self.build((None, channels, None, None) if axis in (1, -3) else (None, None, None, channels))

    def call(self, inputs: Any) -> Any:
        self.finalize_state()
        return super().call(inputs)
