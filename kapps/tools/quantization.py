"""Post-training int8 preparation: weights on the int8 grid, biases that absorb the rounding.

Rounding a layer's weights to int8 (per output channel, symmetric, as TFLite does) shifts
the mean of each of its output channels, and the shifts add up through the network: on
the real MobileNet 0.25 classifier, rounding the weights alone changes the top-1 label of
23% of the shared ImageNet photos. Empirical bias correction (Nagel et al. 2019, "Data-Free
Quantization Through Weight Equalization and Bias Correction"; Finkelstein et al. 2019)
measures that shift on calibration images, in the quantized network itself, and takes it
out of the layer's bias. :func:`correct_int8_bias` returns a copy of a model whose kernels
already lie on the int8 grid the converter will use (so its rounding changes nothing) and
whose biases are corrected, layer after layer, against the float model's channel means.
With ``simulate_activations`` the quantized pass also rounds every activation to int8
(per tensor, over the calibration range), so the correction takes out the mean error
of activation rounding as well.

>>> import keras, numpy as np
>>> inputs = keras.Input((8, 8, 3))
>>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv")(inputs))
>>> images = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 3)).astype("float32")
>>> ready = correct_int8_bias(model, images)
>>> kernel = ready.get_layer("conv").kernel.numpy()
>>> step = np.abs(kernel).max(axis=(0, 1, 2)) / 127
>>> bool(np.allclose(kernel / step, np.round(kernel / step), atol=1e-4))
True
"""

from __future__ import annotations

__all__ = ["correct_int8_bias", "int8_grid"]

from typing import Any

import keras
import numpy as np

from kapps import _keras_compat as compat
from kapps.tools.graph import flatten
from kapps.utils.layers import has_linear_activation, has_plain_weights
from kapps.validation import check_positive_int

#: Layers whose kernel TFLite quantizes per output channel and whose bias can absorb the error.
_CORRECTABLE = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D, keras.layers.Dense,
)


def _correctable(layer: Any) -> bool:
    return (isinstance(layer, _CORRECTABLE) and not isinstance(layer, (keras.layers.Conv1DTranspose,
                                                                        keras.layers.Conv2DTranspose,
                                                                        keras.layers.Conv3DTranspose))
            and getattr(layer, "use_bias", False) and has_linear_activation(layer) and has_plain_weights(layer))


def int8_grid(layer: keras.layers.Layer, kernel: np.ndarray) -> np.ndarray:
    """``kernel`` rounded to symmetric int8 per output channel (scale ``max|w| / 127``), in float.

    The largest weight of each channel keeps its value, so TFLite's converter derives the
    same scale from the result and its own rounding leaves it unchanged.
    """
    kernel = np.asarray(kernel, dtype="float64")
    if isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        axes = tuple(range(kernel.ndim - 2))  # one scale per (input channel, multiplier)
    else:
        axes = tuple(range(kernel.ndim - 1))  # one scale per output channel (last axis)
    step = np.abs(kernel).max(axis=axes, keepdims=True) / 127.0
    step[step == 0] = 1.0
    return np.round(kernel / step) * step


def _channel_axis(layer: Any) -> int:
    return 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def _channel_mean(layer: Any, y: Any) -> np.ndarray:
    y = np.asarray(keras.ops.convert_to_numpy(y), dtype="float64")
    axis = _channel_axis(layer) % y.ndim
    return y.mean(axis=tuple(i for i in range(y.ndim) if i != axis))


def _fake_quant(x: Any, low: float, high: float) -> Any:
    """``x`` rounded to asymmetric int8 over ``[low, high]`` (widened to include 0), in float."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        return x
    scale = (high - low) / 255.0
    zero = np.round(-128.0 - low / scale)
    q = keras.ops.clip(keras.ops.round(x / scale) + zero, -128.0, 127.0)
    return (q - zero) * scale


def _is_float(x: Any) -> bool:
    return "float" in str(getattr(x, "dtype", ""))


def correct_int8_bias(model: keras.Model, calibration: np.ndarray, *, samples: int = 32,
                      simulate_activations: bool = True) -> keras.Model:
    """A flat copy of ``model`` with int8-grid kernels and biases corrected for the rounding.

    Args:
        model: any Keras model (it is flattened and copied; ``model`` itself is not changed).
        calibration: a batch of preprocessed inputs (the int8 calibration images).
        samples: at most this many of them are used (the quantized pass runs them as one batch).
        simulate_activations: round every activation to int8 in the quantized pass, as the
            int8 runtime will, so that the correction takes out that mean error too.

    Only convolutions and ``Dense`` layers with a bias and a linear activation are corrected
    (after :func:`kapps.optimize_for_inference` that is nearly every one); the rest are left
    to the converter.
    """
    check_positive_int("samples", samples)
    batch = np.asarray(calibration, dtype="float32")[:samples]
    if batch.ndim < 2 or not len(batch):
        raise ValueError(f"`calibration` must be a non-empty batch of model inputs. Received shape {batch.shape}")
    flat = flatten(model)
    copy = keras.models.clone_model(flat)
    copy.set_weights(flat.get_weights())
    targets = {id(layer): layer for layer in copy.layers if _correctable(layer)}

    ranges: dict[int, tuple[float, float]] = {}
    means: dict[int, np.ndarray] = {}

    def observe(op: Any, *args: Any, **kwargs: Any) -> Any:  # the float pass
        y = op(*args, **kwargs)
        if id(op) in targets:
            means[id(op)] = _channel_mean(op, y)
        if _is_float(y):
            values = keras.ops.convert_to_numpy(y)
            low, high = ranges.get(id(op), (np.inf, -np.inf))
            ranges[id(op)] = (min(low, float(values.min())), max(high, float(values.max())))
        return y

    compat.call_graph(copy, batch, observe)

    for layer in targets.values():
        weights = layer.get_weights()
        layer.set_weights([int8_grid(layer, weights[0]).astype(weights[0].dtype), *weights[1:]])

    def correct(op: Any, *args: Any, **kwargs: Any) -> Any:  # the quantized pass
        y = op(*args, **kwargs)
        if id(op) in targets:
            shift = _channel_mean(op, y) - means[id(op)]
            kernel, bias = op.get_weights()
            op.set_weights([kernel, (bias - shift).astype(bias.dtype)])
            shape = [1] * len(y.shape)
            shape[_channel_axis(op)] = -1
            y = y - keras.ops.convert_to_tensor(shift.reshape(shape).astype("float32"))
        elif simulate_activations and _is_float(y) and id(op) in ranges:
            y = _fake_quant(y, *ranges[id(op)])
        return y

    start = batch
    if simulate_activations:
        start = np.asarray(_fake_quant(keras.ops.convert_to_tensor(batch), float(batch.min()), float(batch.max())))
    compat.call_graph(copy, start, correct)
    return copy
