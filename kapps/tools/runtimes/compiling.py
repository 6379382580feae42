"""``kapps.compile``: a model on the runtime of your choice, checked against Keras.

>>> import kapps
>>> fast = kapps.compile("mobilenet_v2", "litert")  # doctest: +SKIP
>>> fast.predict(images, batch_size=32)  # doctest: +SKIP
>>> print(fast.describe())  # doctest: +SKIP
mobilenet_v2 on litert: XNNPACK (1 partition over 66 operations), 2 threads; vs Keras: max |diff| 2.1e-06 ...
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kapps.tools.runtimes.base import Predictor, compare_outputs
from kapps.tools import RUNTIMES
from kapps.validation import check_choice, check_non_negative_int, check_positive_int

__all__ = ["compile", "RUNTIMES", "FLOAT_TOLERANCE"]

#: A float runtime whose outputs differ from Keras' by more than this (relative to the largest
#: output) is refused: the conversion changed the model.
FLOAT_TOLERANCE = 1e-4


def compile(  # noqa: A001  (kapps.compile, as the issue and users name it)
    model_or_name: Any,
    runtime: str = "litert",
    *,
    calibration: Any = None,
    calibration_samples: int = 64,
    preprocessing: Any = None,
    input_size: int | None = None,
    weights: Any = "imagenet",
    include_top: bool = True,
    pooling: str | None = None,
    builder: str = "functional",
    model_options: dict[str, Any] | None = None,
    threads: int | None = None,
    optimize: bool = True,
    tolerance: float | None = None,
    keep_float: int = 0,
) -> Predictor:
    """Compile a model for ``runtime``; returns a :class:`~kapps.tools.runtimes.base.Predictor`.

    The predictor takes what the Keras model takes (preprocessed images at a fixed size) and
    returns its outputs (int8 outputs dequantized). Before it is returned it runs on the
    calibration batch next to the Keras model; ``predictor.check`` holds the difference.

    Args:
        model_or_name: a registry name (built with ``weights``), a ``.keras`` path or a Keras model.
        runtime: ``"keras"`` (the model, BatchNorm folded), ``"litert"`` (TFLite float32 on
            LiteRT/XNNPACK), ``"litert-int8"`` (full-integer int8, per-channel weights, calibrated)
            or ``"onnxruntime"`` (ONNX on ONNX Runtime's CPU provider). int8 quantizes a
            classifier up to its logits; its softmax runs in float32 (:mod:`kapps.tools.runtimes.softmax`).
        calibration: the images of the check (and of the int8 calibration): image files and/or
            folders, or an array of RGB images in [0, 255]; default: crops of scikit-image's
            sample photos. They are preprocessed with ``preprocessing``.
        calibration_samples: at most this many calibration images.
        preprocessing: ``"tf"``, ``"caffe"``, ``"torch"``, ``"none"``, a registry name or a
            callable; default for a registry name: its family's. Required for int8 of a model.
        input_size: the square input size (the compiled model's is fixed).
        weights, include_top, pooling, builder, model_options: for a registry name.
        threads: CPU threads of the runtime (default: the CPUs this process may use).
        optimize: fold BatchNorm and drop Dropout first (:func:`kapps.optimize_for_inference`).
        tolerance: the largest relative difference from Keras accepted on the check batch
            (default: :data:`FLOAT_TOLERANCE` for float runtimes; int8 is only reported).
        keep_float: for ``"litert-int8"``: leave this many layers in float32, those whose int8
            outputs are furthest from float on the calibration batch (0: int8 everywhere but a
            classifier's logits layer). int8 kernels are put on the int8 grid and the biases
            corrected for the rounding first (:mod:`kapps.tools.quantization`).

    Raises:
        ValueError: a bad argument, a runtime that cannot take the model (the reason is in the
            message), or outputs further from Keras' than ``tolerance``.
        ImportError: the runtime's package is not installed (the message says what to install).
    """
    from kapps.tools.export import calibration_batch, resolve_model, static_input_shape
    from kapps.tools.optimize import optimize_for_inference
    from kapps.utils.backend import require_tensorflow_backend

    check_choice("runtime", runtime, RUNTIMES)
    check_positive_int("calibration_samples", calibration_samples)
    check_non_negative_int("keep_float", keep_float)
    if keep_float and runtime != "litert-int8":
        raise ValueError(f"`keep_float` is for runtime='litert-int8'. Received: keep_float={keep_float!r} with "
                         f"runtime={runtime!r}")
    if threads is not None:
        check_positive_int("threads", threads)
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and tolerance > 0):
        raise ValueError(f"`tolerance` must be a positive number or None. Received: tolerance={tolerance!r}")
    if runtime != "keras":
        require_tensorflow_backend(f"kapps.compile(runtime={runtime!r})", "the converters read TensorFlow graphs")

    model, preprocess = resolve_model(model_or_name, weights=weights, include_top=include_top, pooling=pooling,
                                      input_size=input_size, preprocessing=preprocessing, builder=builder,
                                      model_options=model_options)
    shape = static_input_shape(model, input_size, model_or_name)
    if preprocess is None and runtime != "litert-int8":
        from kapps.imagenet import preprocessor

        preprocess = preprocessor("none")  # the check only compares two runtimes on the same numbers
    batch = calibration_batch(calibration, shape, preprocess, limit=calibration_samples, what="compile")
    expected = np.asarray(model.predict(batch, batch_size=16, verbose=0))
    ready = optimize_for_inference(model) if optimize else model
    predictor = _build(runtime, ready, shape, batch, threads, keep_float)
    predictor.check = compare_outputs(predictor.predict(batch, batch_size=16), expected)
    limit = tolerance if tolerance is not None else (None if runtime == "litert-int8" else FLOAT_TOLERANCE)
    if limit is not None and predictor.check.relative_diff > limit:
        raise ValueError(f"runtime {runtime!r} computes {model.name!r} differently from Keras: "
                         f"{predictor.check.describe()}, over the `tolerance` {limit:g}.")
    return predictor


def _build(runtime: str, model: Any, shape: tuple[int, int, int], batch: np.ndarray,
           threads: int | None, keep_float: int) -> Predictor:
    """The runtime's predictor for ``model``; a ValueError saying why a runtime cannot take it."""
    if runtime == "keras":
        from kapps.tools.runtimes.keras_runtime import KerasPredictor

        return KerasPredictor(model)
    convert: Callable[[], Predictor]
    if runtime == "onnxruntime":
        from kapps.tools.runtimes.onnx_runtime import ONNXRuntimePredictor, onnx_bytes

        convert = lambda: ONNXRuntimePredictor(onnx_bytes(model, shape), name=model.name, threads=threads)  # noqa: E731
    else:
        from kapps.tools.runtimes.litert import LiteRTPredictor
        from kapps.tools.export import tflite_bytes

        calibration, split = None, False
        if runtime == "litert-int8":  # int8 up to the logits layer; it and the softmax in float32
            from kapps.tools.runtimes.softmax import without_final_softmax

            calibration = batch
            model, split = without_final_softmax(model)
        convert = lambda: LiteRTPredictor(  # noqa: E731
            tflite_bytes(model, shape, calibration, int8_io=True, keep_float=keep_float, float_head=split),
            name=model.name, threads=threads, float_softmax=split, float_layers=keep_float)
    try:
        return convert()
    except ImportError:
        raise
    except Exception as e:  # the converter's or runtime's own words
        reason = str(e).strip().splitlines()
        raise ValueError(f"runtime {runtime!r} cannot take the model {model.name!r}: "
                         f"{reason[0] if reason else type(e).__name__}") from e
