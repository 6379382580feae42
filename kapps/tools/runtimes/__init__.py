"""Runtimes: a model compiled for LiteRT (float32, int8), ONNX Runtime or Keras, checked against Keras.

:func:`kapps.compile` converts a model (BatchNorm folded first) and returns a predictor with
``predict(x, batch_size=...)`` that takes and returns what the Keras model does. Parts:
:mod:`.base` (the predictor, batching, the self-check), :mod:`.litert`, :mod:`.onnx_runtime`,
:mod:`.keras_runtime` and :mod:`.compiling` (``kapps.compile``).

>>> import kapps
>>> kapps.tools.runtimes.RUNTIMES
('keras', 'litert', 'litert-int8', 'onnxruntime')
"""

from kapps.tools.runtimes.base import Check, Predictor
from kapps.tools.runtimes.compiling import FLOAT_TOLERANCE, RUNTIMES, compile  # noqa: A004

__all__ = ["compile", "Check", "Predictor", "RUNTIMES", "FLOAT_TOLERANCE"]
