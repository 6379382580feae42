"""The Keras runtime: a Keras model behind the predictor interface (the baseline of the others).

>>> from kapps.tools.runtimes.keras_runtime import KerasPredictor
>>> KerasPredictor(model).predict(x, batch_size=32).shape  # doctest: +SKIP
(2, 1000)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kapps.tools.runtimes.base import Predictor, default_threads

__all__ = ["KerasPredictor"]


class KerasPredictor(Predictor):
    """``model.predict_on_batch`` per batch, on the current Keras backend."""

    runtime = "keras"

    def __init__(self, model: Any) -> None:
        import keras

        self.model = model
        super().__init__(model.name, tuple(model.inputs[0].shape[1:]), default_threads(),
                         f"Keras ({keras.backend.backend()})")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(batch))
