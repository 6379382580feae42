"""Losses kapps compiles into the models it trains, registered with Keras (``package="kapps"``),
so that a saved ``fine_tune`` model reloads after ``import kapps`` with its training config.

>>> import numpy as np
>>> y_true = np.array([[[0, 1], [1, 1]]])                     # (batch, h, w) class indices
>>> y_pred = np.eye(2, dtype="float32")[y_true]               # a perfect prediction
>>> float(SegmentationLoss()(y_true, y_pred)) < 1e-5
True
"""

from __future__ import annotations

__all__ = ["SegmentationLoss"]

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="kapps")
class SegmentationLoss(keras.losses.Loss):
    """Per-pixel cross-entropy plus ``dice_weight`` times Keras' Dice loss.

    The Dice term is :func:`keras.losses.dice` of the one-hot mask and the probabilities over
    each image's pixels, one per class, averaged over the classes present in that image (a
    class absent from an image has no Dice there). ``y_true``: ``(batch, h, w)`` class
    indices; ``y_pred``: ``(batch, h, w, classes)`` probabilities. The value is per pixel
    (cross-entropy plus the image's Dice term), so per-pixel sample weights apply.
    """

    def __init__(self, dice_weight: float = 1.0, name: str = "segmentation_loss", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.dice_weight = float(dice_weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        one_hot = ops.one_hot(y_true, y_pred.shape[-1], dtype=y_pred.dtype)
        dice = keras.losses.dice(one_hot, y_pred, axis=(1, 2))  # (batch, classes)
        present = ops.cast(ops.sum(one_hot, axis=(1, 2)) > 0, dice.dtype)
        dice = ops.sum(dice * present, axis=-1) / ops.maximum(ops.sum(present, axis=-1), 1.0)
        return cross_entropy + self.dice_weight * dice[:, None, None]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dice_weight": self.dice_weight}
