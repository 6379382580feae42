"""ONNX: writing a Keras model as an ONNX file, and running one with ONNX Runtime.

:func:`write_onnx` uses Keras' own ``model.export(format="onnx")`` (tf2onnx underneath on
TensorFlow), with a dynamic batch dimension, after rewriting what tf2onnx cannot convert
(:mod:`kapps.tools.runtimes.onnx_compat`), and checks the file with ``onnx.checker``
before it replaces ``path``. :class:`ONNXRuntimePredictor` runs the file on ONNX Runtime's
CPU provider with all graph optimizations and ``threads`` intra-op threads.

>>> from kapps.tools.runtimes.onnx_runtime import ONNXRuntimePredictor, write_onnx
>>> write_onnx(model, "m.onnx")  # doctest: +SKIP
>>> ONNXRuntimePredictor(open("m.onnx", "rb").read(), name="m").predict(x).shape  # doctest: +SKIP
(2, 1000)
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from typing import Any

import numpy as np

from kapps.tools.runtimes.base import Predictor, default_threads
from kapps.utils.files import write_bytes_atomic

__all__ = ["ONNXRuntimePredictor", "onnx_bytes", "write_onnx"]


def _require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"ONNX needs the `{package}` package: `pip install {package}` "
                          "(or `pip install kapps[runtimes]`).") from None


def onnx_bytes(model: Any, input_shape: tuple[int, int, int]) -> bytes:
    """``model`` as a checked ONNX file's bytes, input ``(batch, *input_shape)`` float32 (grouped
    convolutions and the exact GELU rewritten first, :func:`kapps.tools.runtimes.onnx_compat.onnx_ready`)."""
    import tensorflow as tf

    from kapps.tools.runtimes.onnx_compat import onnx_ready

    model = onnx_ready(model)
    _require("tf2onnx", "tf2onnx")
    onnx = _require("onnx", "onnx")
    signature = [tf.TensorSpec((None, *input_shape), tf.float32, name="images")]
    with tempfile.TemporaryDirectory(prefix="kapps_onnx_") as tmp:
        path = os.path.join(tmp, "model.onnx")
        converter_log = logging.getLogger("tf2onnx")
        level = converter_log.level
        converter_log.setLevel(logging.CRITICAL)  # its optimizers log tracebacks they recover from
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf2onnx's NumPy deprecation warnings
                model.export(path, format="onnx", input_signature=signature, verbose=False)
        finally:
            converter_log.setLevel(level)
        onnx.checker.check_model(path)
        with open(path, "rb") as f:
            return f.read()


def write_onnx(model: Any, path: str | os.PathLike, input_shape: tuple[int, int, int] | None = None) -> str:
    """Write ``model`` to ``path`` as ONNX, atomically; returns ``path``."""
    shape = input_shape or tuple(model.inputs[0].shape[1:])
    write_bytes_atomic(path, onnx_bytes(model, shape))
    return os.fspath(path)


class ONNXRuntimePredictor(Predictor):
    """An ONNX file run by ONNX Runtime on the CPU (see the module docstring)."""

    runtime = "onnxruntime"

    def __init__(self, model_bytes: bytes, *, name: str, threads: int | None = None) -> None:
        ort = _require("onnxruntime", "onnxruntime")
        threads = threads or default_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.model_bytes = model_bytes
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        source = self.session.get_inputs()[0]
        self._input = source.name
        super().__init__(name, tuple(source.shape[1:]), threads, ", ".join(self.session.get_providers()))

    def save(self, path: str | os.PathLike) -> str:
        """Write the ONNX file to ``path``, atomically; returns ``path``."""
        write_bytes_atomic(path, self.model_bytes)
        return os.fspath(path)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]
