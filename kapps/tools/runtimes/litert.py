"""LiteRT (TensorFlow Lite) predictors: float32 and full-integer int8 flatbuffers.

The interpreter is LiteRT's (``ai_edge_litert``), with XNNPACK, its default CPU delegate,
and ``threads`` threads. Batches of any size run in one ``invoke``: the input is resized
to the batch (one interpreter is kept per batch size, XNNPACK plans each shape once).
int8 files with int8 input/output are fed quantized images and their outputs dequantized,
so a float and an int8 predictor are called alike. With ``float_softmax`` the file computes
logits and the predictor applies the softmax in float32 (:mod:`kapps.tools.runtimes.softmax`).

>>> from kapps.tools.runtimes.litert import LiteRTPredictor
>>> predictor = LiteRTPredictor(open("m.tflite", "rb").read(), name="m")  # doctest: +SKIP
>>> predictor.predict(x).shape  # doctest: +SKIP
(2, 1000)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from kapps.tools.runtimes.base import Predictor, default_threads
from kapps.tools.runtimes.softmax import softmax
from kapps.utils.files import write_bytes_atomic

__all__ = ["LiteRTPredictor", "interpreter_class", "quantize", "dequantize"]


def interpreter_class() -> Any:
    """LiteRT's ``Interpreter``; an ImportError that says what to install when it is missing."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError("The LiteRT runtimes need the `ai-edge-litert` package: "
                          "`pip install ai-edge-litert` (or `pip install kapps[runtimes]`).") from None
    return Interpreter


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float values as the integer tensor ``detail`` describes (its scale and zero point)."""
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    """An integer tensor's values as float32 (its scale and zero point)."""
    scale, zero = detail["quantization"]
    return (y.astype("float32") - zero) * scale


class LiteRTPredictor(Predictor):
    """A TFLite flatbuffer run by LiteRT's interpreter (see the module docstring)."""

    def __init__(self, flatbuffer: bytes, *, name: str, threads: int | None = None,
                 float_softmax: bool = False, float_layers: int = 0) -> None:
        self.flatbuffer = flatbuffer
        self.float_softmax = float_softmax
        self._interpreters: dict[int, Any] = {}
        threads = threads or default_threads()
        self._threads = threads
        first = self._interpreter(1)
        source = first.get_input_details()[0]
        self.quantized = np.dtype(source["dtype"]) in (np.dtype("int8"), np.dtype("uint8")) or any(
            np.dtype(t["dtype"]) == np.dtype("int8") for t in first.get_tensor_details())
        self.runtime = "litert-int8" if self.quantized else "litert"
        delegate = _delegate(first) + (f"; {float_layers} layers kept in float32" if float_layers else "") + (
            "; logits layer in float32, softmax in float32 on the host" if float_softmax else "")
        super().__init__(name, tuple(source["shape"][1:]), threads, delegate)

    def _interpreter(self, batch: int) -> Any:
        if batch not in self._interpreters:
            if len(self._interpreters) >= 4:  # keep the most recent shapes only
                self._interpreters.pop(next(iter(self._interpreters)))
            interpreter = interpreter_class()(model_content=self.flatbuffer, num_threads=self._threads)
            source = interpreter.get_input_details()[0]
            if batch != source["shape"][0]:
                interpreter.resize_tensor_input(source["index"], [batch, *source["shape"][1:]], strict=False)
            interpreter.allocate_tensors()
            self._interpreters[batch] = interpreter
        return self._interpreters[batch]

    def save(self, path: str | os.PathLike) -> str:
        """Write the flatbuffer to ``path`` (``.tflite``), atomically; returns ``path``."""
        write_bytes_atomic(path, self.flatbuffer)
        return os.fspath(path)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        interpreter = self._interpreter(len(batch))
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        x = quantize(batch, source) if np.dtype(source["dtype"]) != np.dtype("float32") else batch
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(target["index"])
        y = dequantize(y, target) if np.dtype(target["dtype"]) != np.dtype("float32") else y.copy()
        return softmax(y) if self.float_softmax else y


def _delegate(interpreter: Any) -> str:
    """What runs the graph: the XNNPACK delegate and how many of the model's operations it took."""
    ops = interpreter._get_ops_details()  # LiteRT's node list: the model's operations, then delegate nodes
    partitions = [op for op in ops if op["op_name"] == "DELEGATE"]
    model_ops = [op for op in ops if op["op_name"] != "DELEGATE"]
    if not partitions:
        return f"LiteRT builtin kernels ({len(model_ops)} operations, no delegate)"
    return (f"XNNPACK ({len(partitions)} partition{'s' * (len(partitions) > 1)} over "
            f"{len(model_ops)} operations)")
