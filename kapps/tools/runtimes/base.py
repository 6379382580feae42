"""What every runtime's predictor shares: batching, the self-check, and its report.

A :class:`Predictor` takes the inputs the Keras model takes (preprocessed float images,
``(n, rows, cols, channels)``) and returns its outputs as NumPy, whatever runs underneath.
Subclasses implement :meth:`Predictor._run` on one batch.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from kapps.validation import check_positive_int

__all__ = ["Check", "Predictor", "default_threads", "compare_outputs"]


def default_threads() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class Check:
    """A runtime's outputs against the Keras model's on the same batch.

    ``max_abs_diff`` is ``max |runtime - keras|``; ``relative_diff`` divides it by
    ``max |keras|``; ``top1_agreement`` is the share of rows whose arg-max agrees (for
    ``(n, classes)`` outputs, else None).
    """

    n: int
    max_abs_diff: float
    relative_diff: float
    top1_agreement: float | None

    def describe(self) -> str:
        text = f"max |diff| {self.max_abs_diff:.3g} (relative {self.relative_diff:.3g}) on {self.n} images"
        if self.top1_agreement is not None:
            text += f", top-1 agreement {100 * self.top1_agreement:.1f}%"
        return text


def compare_outputs(actual: np.ndarray, expected: np.ndarray) -> Check:
    """The :class:`Check` of ``actual`` against ``expected``.

    >>> compare_outputs(np.array([[0.1, 0.9]]), np.array([[0.2, 0.8]])).top1_agreement
    1.0
    """
    actual, expected = np.asarray(actual, "float64"), np.asarray(expected, "float64")
    if actual.shape != expected.shape:
        raise ValueError(f"the runtime's outputs have shape {actual.shape}, the Keras model's {expected.shape}")
    diff = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-12)
    agreement = None
    if actual.ndim == 2 and actual.shape[1] > 1:
        agreement = float(np.mean(np.argmax(actual, axis=1) == np.argmax(expected, axis=1)))
    return Check(n=len(expected), max_abs_diff=diff, relative_diff=diff / scale, top1_agreement=agreement)


class Predictor:
    """A model compiled for one runtime; call :meth:`predict` as on the Keras model.

    Attributes:
        runtime: the runtime's name (``"litert"``, ``"litert-int8"``, ``"onnxruntime"``, ``"keras"``).
        name: the model's name.
        input_shape: ``(rows, cols, channels)``, fixed at compile time.
        threads: the CPU threads the runtime uses.
        delegate: what executes the graph (``"XNNPACK (1 partition)"``, ``"CPUExecutionProvider"``, ...).
        check: the self-check against the Keras model made by :func:`kapps.compile`.
    """

    runtime = "?"

    def __init__(self, name: str, input_shape: tuple[int, int, int], threads: int, delegate: str) -> None:
        self.name = name
        self.input_shape = tuple(int(d) for d in input_shape)
        self.threads = threads
        self.delegate = delegate
        self.check: Check | None = None

    def predict(self, x: Any, batch_size: int = 32) -> np.ndarray:
        """The outputs for ``x`` (``(n, *input_shape)`` floats), ``batch_size`` images per call."""
        check_positive_int("batch_size", batch_size)
        x = np.asarray(x, dtype="float32")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"`x` must be a batch of shape (n, {', '.join(map(str, self.input_shape))}) for this "
                             f"compiled {self.name!r}. Received: shape {x.shape}")
        if not len(x):
            raise ValueError("`x` must hold at least one image. Received: an empty batch")
        return np.concatenate([self._run(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    __call__ = predict

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        """One line: runtime, model, threads, delegate and the self-check."""
        text = f"{self.name} on {self.runtime}: {self.delegate}, {self.threads} threads"
        return text + (f"; vs Keras: {self.check.describe()}" if self.check else "")

    def __repr__(self) -> str:
        return f"<kapps {type(self).__name__} {self.describe()}>"
