"""Export a model for serving and for mobile: SavedModel, TFLite float32, TFLite int8, ONNX.

:func:`export` takes a registry name (built with ImageNet weights, or a weights file),
a ``.keras`` file or a model, folds its BatchNorm layers with
:func:`kapps.optimize_for_inference`, and writes one of:

* ``"savedmodel"``: a TensorFlow SavedModel directory (``model.export``), endpoint ``serve``;
* ``"tflite"``: a float32 TFLite flatbuffer;
* ``"tflite-int8"``: a full-integer TFLite model (int8 weights, per channel, and int8
  activations; int8 input and output by default) calibrated on a representative dataset:
  the images you give (files or folders), or by default crops of scikit-image's sample
  photos, always preprocessed the way the model's family expects;
* ``"onnx"``: an ONNX file (Keras' ``model.export(format="onnx")``), batch size free.

The exported models take *preprocessed* images, as the Keras model does; use
:func:`run_tflite` to run a TFLite file on preprocessed float images (it quantizes the
input and dequantizes the output of int8 models). Files are written atomically.

>>> import kapps
>>> kapps.export("mobilenet_v2", "tflite-int8", "mnv2_int8.tflite")  # doctest: +SKIP
'mnv2_int8.tflite'
"""

from __future__ import annotations

__all__ = ["export", "run_tflite", "representative_batch", "require_tensorflow_backend", "resolve_model",
           "static_input_shape", "tflite_bytes", "FORMATS"]

import importlib
import os
import shutil
import tempfile
from typing import Any, Callable, Iterable

import keras
import numpy as np

from kapps import images as image_io
from kapps.tools import EXPORT_FORMATS
from kapps.registry import get_model, get_spec
from kapps.tools.optimize import optimize_for_inference
from kapps.utils.backend import require_tensorflow_backend
from kapps.utils.files import write_bytes_atomic
from kapps.validation import check_non_negative_int, check_positive_int

FORMATS = EXPORT_FORMATS
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def export(
    model_or_name: Any,
    format: str,
    out: str | os.PathLike,
    *,
    representative_images: Any = None,
    weights: Any = "imagenet",
    include_top: bool = True,
    pooling: str | None = None,
    input_size: int | None = None,
    preprocessing: Any = None,
    calibration_samples: int = 64,
    int8_io: bool = True,
    optimize: bool = True,
    builder: str = "functional",
    model_options: dict[str, Any] | None = None,
) -> str:
    """Write ``model_or_name`` to ``out`` in ``format``; returns ``out``.

    Args:
        model_or_name: a registry name (``"mobilenet_v2"``), a path to a ``.keras``
            file, or a Keras model.
        format: ``"savedmodel"`` (a directory), ``"tflite"`` (float32),
            ``"tflite-int8"`` (full integer) or ``"onnx"``.
        out: the file (or, for SavedModel, directory) to write.
        representative_images: for ``"tflite-int8"``: image files and/or folders of
            images, or an array of RGB images in [0, 255] ``(n, h, w, 3)``. Default: crops
            of scikit-image's sample photos (needs scikit-image).
        weights: for a registry name: ``"imagenet"`` (default), a weights file path, or None.
        include_top, pooling: for a registry name, as in its constructor.
        input_size: the square input size to export (default: the model's own, else the
            registry's default size). The exported model has this static size.
        preprocessing: how calibration images are preprocessed: a mode of
            ``kapps.imagenet.MODES`` (``"tf"``, ``"caffe"``, ``"torch"``, ``"none"``), a
            registry name (its family's preprocessing) or a callable. Default for a
            registry name: its family's. Required for int8 export of other models.
        calibration_samples: at most this many representative images are used.
        int8_io: for ``"tflite-int8"``: int8 input and output tensors (True) or float32
            ones around the integer model (False).
        optimize: fold BatchNorm and drop Dropout first (:func:`kapps.optimize_for_inference`).
        builder: for a registry name: ``"functional"`` or ``"sequential"``.
        model_options: for a registry name: the model's own arguments (``{"alpha": 0.25}``).

    >>> import kapps
    >>> path = kapps.export("mobilenet_v2", "tflite", "/tmp/m.tflite", weights=None,
    ...                     include_top=False, pooling="avg", input_size=96)  # doctest: +SKIP
    """
    require_tensorflow_backend("kapps.export", "SavedModel and TFLite are TensorFlow formats")
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(map(repr, FORMATS))}. Received: format={format!r}")
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise ValueError(f"`out` must be a file path. Received: out={out!r}")
    check_positive_int("calibration_samples", calibration_samples)
    out = os.fspath(out)
    model, preprocess = resolve_model(model_or_name, weights=weights, include_top=include_top, pooling=pooling,
                                       input_size=input_size, preprocessing=preprocessing, builder=builder,
                                       model_options=model_options)
    shape = static_input_shape(model, input_size, model_or_name)
    calibration = None
    if format == "tflite-int8":
        calibration = calibration_batch(representative_images, shape, preprocess, limit=calibration_samples,
                                        what="export")
    if optimize:
        model = optimize_for_inference(model)

    if format == "onnx":
        from kapps.tools.runtimes.onnx_runtime import onnx_bytes

        write_bytes_atomic(out, onnx_bytes(model, shape))
        return out
    if format != "savedmodel":
        write_bytes_atomic(out, tflite_bytes(model, shape, calibration, int8_io=int8_io))
        return out
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".kapps_export_") as tmp:
        saved = os.path.join(tmp, "saved_model")
        _write_saved_model(model, saved, shape)
        _replace_directory(saved, out)
    return out


def calibration_batch(images: Any, shape: tuple[int, int, int], preprocess: Callable | None, *, limit: int,
                      what: str) -> np.ndarray:
    """Representative images (see :func:`representative_batch`) at ``shape``, preprocessed for the model."""
    if preprocess is None:
        raise ValueError(
            f"`preprocessing` must be given to {what} a model that is not a registry name with int8 "
            f"(calibration images are preprocessed with it): one of {', '.join(map(repr, _modes()))}, a "
            "registry name or a callable. Received: preprocessing=None"
        )
    batch = representative_batch(images, shape[:2], limit=limit)
    if shape[2] == 1:  # a grayscale model (LeNet-5): calibrate on luminance
        batch = batch.mean(axis=-1, keepdims=True)
    return np.asarray(preprocess(batch.copy()), dtype="float32")


def tflite_bytes(model: Any, shape: tuple[int, int, int], calibration: np.ndarray | None = None, *,
                 int8_io: bool = True, keep_float: int = 0, float_head: bool = False,
                 bias_correction: bool = True) -> bytes:
    """``model`` as a TFLite flatbuffer: float32, or int8 calibrated on ``calibration``.

    int8 only:

    * ``bias_correction``: put the kernels on the int8 grid and correct the biases for the
      rounding first (:func:`kapps.tools.quantization.correct_int8_bias`).
    * ``keep_float``: the number of layers left in float32, those whose int8 outputs are
      furthest from float on the calibration batch (:func:`worst_quantized_layers`).
    * ``float_head``: leave the last weighted layer (a classifier's logits) and what follows
      it in float32, with a float32 output: int8 logits move in steps of about 0.1, larger
      than the gap between the top two classes of many photos.

    With none of them the result is a full-integer model.
    """
    check_non_negative_int("keep_float", keep_float)
    if calibration is not None and bias_correction:
        from kapps.tools.quantization import correct_int8_bias

        model = correct_int8_bias(model, calibration)
    with tempfile.TemporaryDirectory(prefix="kapps_tflite_") as tmp:
        saved = os.path.join(tmp, "saved_model")
        _write_saved_model(model, saved, shape)
        return _convert(saved, calibration, int8_io, keep_float, float_head)


# -- what to export ---------------------------------------------------------------------


def _family_preprocess(name: str) -> Callable[[np.ndarray], Any]:
    """The ``preprocess_input`` of a registry name's family module (``kapps.models.<family>``)."""
    return importlib.import_module(f"kapps.models.{get_spec(name).family}").preprocess_input


def _modes() -> tuple[str, ...]:
    from kapps.imagenet import MODES

    return tuple(MODES)


def _preprocessor(preprocessing: Any) -> Callable[[np.ndarray], Any] | None:
    if preprocessing is None or callable(preprocessing):
        return preprocessing
    from kapps.imagenet import MODES, preprocessor

    if preprocessing in MODES:
        return preprocessor(preprocessing)
    try:
        return _family_preprocess(preprocessing)
    except ValueError:
        raise ValueError(
            f"`preprocessing` must be one of {', '.join(map(repr, MODES))}, a registry name or a callable. "
            f"Received: preprocessing={preprocessing!r}"
        ) from None


def resolve_model(model_or_name: Any, *, weights: Any = "imagenet", include_top: bool = True, pooling: Any = None,
                  input_size: Any = None, preprocessing: Any = None, builder: str = "functional",
                  model_options: dict[str, Any] | None = None) -> tuple[Any, Callable | None]:
    """The model a registry name, ``.keras`` path or model stands for, and how to preprocess its images."""
    if isinstance(model_or_name, keras.Model):
        return model_or_name, _preprocessor(preprocessing)
    if not isinstance(model_or_name, (str, os.PathLike)):
        raise TypeError(
            "`model_or_name` must be a registry name, a path to a .keras file or a keras.Model. "
            f"Received: {model_or_name!r} of type {type(model_or_name).__name__}"
        )
    text = os.fspath(model_or_name)
    if text.endswith(".keras") or os.path.exists(text):
        if not os.path.isfile(text):
            raise ValueError(f"`model_or_name` {text!r} looks like a model file but does not exist.")
        try:
            model = keras.saving.load_model(text, compile=False)
        except Exception as e:
            raise ValueError(f"`model_or_name` {text!r} could not be loaded as a Keras model: {e}") from None
        return model, _preprocessor(preprocessing)

    spec = get_spec(text)  # a ValueError naming the unknown model
    kwargs: dict[str, Any] = dict(weights=None if weights in (None, "none") else weights, include_top=include_top,
                                  builder=builder)
    if not include_top:
        kwargs["pooling"] = pooling
    size = input_size or spec.default_size
    if input_size is not None or not include_top:
        kwargs["input_shape"] = (size, size, spec.input_channels)
    model = get_model(spec.name, **kwargs, **(model_options or {}))
    return model, _preprocessor(preprocessing) or _family_preprocess(spec.name)


def static_input_shape(model: Any, input_size: int | None, what: Any) -> tuple[int, int, int]:
    """The model's ``(rows, cols, channels)``, fixed by ``input_size`` where the model accepts any size."""
    shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else tuple(model.input_shape[1:])
    if len(model.inputs) != 1 or len(shape) != 3:
        raise ValueError(f"`model_or_name` must be an image model with one (rows, cols, channels) input. "
                         f"Received: {what!r} with inputs {[tuple(t.shape) for t in model.inputs]}")
    rows, cols, channels = shape
    if input_size is not None:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"`input_size` must be a positive integer. Received: input_size={input_size!r}")
        if rows is not None and (rows, cols) != (input_size, input_size):
            raise ValueError(f"`input_size` must match the model's input ({rows}x{cols}). "
                             f"Received: input_size={input_size!r}")
        rows = cols = input_size
    if rows is None or cols is None:
        raise ValueError(f"`input_size` must be given: the model {getattr(model, 'name', what)!r} accepts any size "
                         "and an exported model needs a fixed one. Received: input_size=None")
    return int(rows), int(cols), int(channels)


# -- representative images --------------------------------------------------------------


def image_files(sources: Iterable[Any]) -> list[str]:
    files: list[str] = []
    for source in sources:
        path = os.fspath(source)
        if os.path.isdir(path):
            for root, _, names in sorted(os.walk(path)):
                files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS)]
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ValueError(f"`representative_images` must be image files or folders. Received: {path!r} "
                             "(no such file or folder)")
    return files


def _sample_views(size: tuple[int, int]) -> np.ndarray:
    try:
        return image_io.sample_photo_views(size)
    except ValueError:  # no scikit-image
        raise ValueError(
            "`representative_images` must be given when scikit-image is not installed (the default calibration "
            "images are its sample photos): pass image files or a folder, or `pip install scikit-image`."
        ) from None


def representative_batch(images: Any, size: tuple[int, int], limit: int | None = None) -> np.ndarray:
    """RGB images in [0, 255] resized to ``size``: from files/folders, an array, or sample photos.

    >>> representative_batch(None, (32, 32)).shape  # scikit-image's sample photos, 6 views each
    (42, 32, 32, 3)
    """
    if images is None:
        batch = _sample_views(size)
    elif isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"`representative_images` as an array must be (n, rows, cols, 3). "
                             f"Received shape {images.shape}")
        batch = np.stack([np.asarray(image_io.fit_image(image.astype("float32"), size)) for image in images])
    else:
        sources = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        files = image_files(sources)
        if limit is not None:
            files = files[:limit]
        if not files:
            raise ValueError(f"`representative_images` must contain at least one image "
                             f"({', '.join(IMAGE_EXTENSIONS)}). Received: {images!r} (none found)")
        loaded, unreadable = [], []
        for f in files:
            try:
                loaded.append(image_io.load_image(f, size))
            except ValueError:
                unreadable.append(f)
        if unreadable:
            import warnings

            warnings.warn(f"skipped {len(unreadable)} unreadable calibration file(s): {', '.join(unreadable[:5])}",
                          stacklevel=3)
        if not loaded:
            raise ValueError(f"`representative_images` must contain at least one readable image. Received: "
                             f"{images!r} (none could be read)")
        batch = np.stack(loaded)
    return batch[:limit] if limit is not None else batch


# -- writing ----------------------------------------------------------------------------


def _write_saved_model(model: Any, path: str, shape: tuple[int, int, int]) -> None:
    import tensorflow as tf

    signature = [tf.TensorSpec((None, *shape), tf.float32, name="images")]
    model.export(path, format="tf_saved_model", input_signature=signature, verbose=False)


def worst_quantized_layers(debugger: Any, count: int) -> list[str]:
    """The output tensors of the ``count`` layers whose int8 error is largest, in units of their
    quantization step (root-mean-square error / scale, LiteRT's ``QuantizationDebugger`` statistics)."""
    rows = [r for r in _layer_statistics(debugger) if float(r["scale"] or 0) > 0]
    rows.sort(key=lambda r: -float(r["mean_squared_error"]) ** 0.5 / float(r["scale"]))
    return [r["tensor_name"] for r in rows[:count]]


#: TFLite operations with weights: the head of a model ends at the last of them.
_WEIGHTED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "CONV_3D"})


def head_layers(debugger: Any) -> list[str]:
    """The output tensors of the last weighted operation and of every operation after it."""
    rows = _layer_statistics(debugger)
    for i in range(len(rows) - 1, -1, -1):
        if rows[i]["op_name"] in _WEIGHTED_OPS:
            return [r["tensor_name"] for r in rows[i:]]
    return []


def _layer_statistics(debugger: Any) -> list[dict]:
    import csv
    import io

    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    return list(csv.DictReader(dump))


def _selectively_quantized(converter: Any, samples: Callable, keep_float: int, float_head: bool) -> bytes:
    """int8 with the ``keep_float`` least faithful layers (and the head) left in float32."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the debugger runs TensorFlow's deprecated interpreter
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=samples)
        debugger.run()
        denied = (head_layers(debugger) if float_head else []) + worst_quantized_layers(debugger, keep_float)
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(dict.fromkeys(denied)))
        selective = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=samples,
                                                               debug_options=options)
        return selective.get_nondebug_quantized_model()


def _convert(saved_model: str, calibration: np.ndarray | None, int8_io: bool, keep_float: int = 0,
             float_head: bool = False) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if calibration is None:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()

    def samples():
        for image in calibration:
            yield [image[None]]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.float32 if float_head else tf.int8
    try:
        if keep_float or float_head:
            return _selectively_quantized(converter, samples, keep_float, float_head)
        return converter.convert()
    except Exception as e:  # the converter's message names the op that has no int8 kernel
        raise ValueError(f"full-integer int8 conversion failed (an operation may lack an int8 kernel): {e}") from None


def _replace_directory(source: str, target: str) -> None:
    """Move a finished directory into place; an existing ``target`` is swapped out, then removed."""
    if os.path.isfile(target):
        raise ValueError(f"`out` must be a directory path for format='savedmodel'. Received: {target!r} (a file)")
    old = None
    if os.path.exists(target):
        old = tempfile.mkdtemp(prefix=".kapps_old_", dir=os.path.dirname(os.path.abspath(target)))
        os.rename(target, os.path.join(old, "previous"))
    os.rename(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- running a TFLite file --------------------------------------------------------------


def _interpreter(path: str) -> Any:
    """LiteRT's interpreter when ``ai_edge_litert`` is installed, else TensorFlow's (deprecated) one."""
    from kapps.tools.runtimes.litert import interpreter_class

    try:
        return interpreter_class()(model_path=path)
    except ImportError:
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=path)


def run_tflite(path: str | os.PathLike, images: np.ndarray) -> np.ndarray:
    """Run a TFLite file on a batch of *preprocessed* float images, one image at a time.

    int8 inputs are quantized with the file's scale and zero point, int8 outputs
    dequantized, so float and int8 files are called alike.

    >>> from kapps.tools.export import run_tflite
    >>> run_tflite("m.tflite", x).shape  # doctest: +SKIP
    (2, 1280)
    """
    from kapps.tools.runtimes.litert import dequantize, quantize

    interpreter = _interpreter(os.fspath(path))
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    outputs = []
    for image in np.asarray(images, dtype="float32"):
        x = image[None]
        if source["dtype"] in (np.int8, np.uint8):
            x = quantize(x, source)
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(target["index"])
        if target["dtype"] in (np.int8, np.uint8):
            y = dequantize(y, target)
        outputs.append(y[0])
    return np.stack(outputs)
