"""A model rewritten into operations that tf2onnx converts, computing the same numbers.

Two things in kapps' graphs do not reach ONNX through tf2onnx on TensorFlow:

* a grouped ``Conv2D`` (``groups > 1``: AlexNet's towers, RegNet's and ResNeXt-style blocks,
  ConvNeXt's depthwise 7x7): Keras runs it as an XLA-compiled function that tf2onnx leaves
  as an unsupported ``StatefulPartitionedCall``. It becomes a ``DepthwiseConv2D`` when each
  group is one channel in and one out, else one ``Conv2D`` per group between a split and a
  concatenation, with the same weights;
* the exact GELU, which TensorFlow computes with ``Erfc`` (no ONNX operator): it becomes
  ``0.5 x (1 + erf(x / sqrt 2))``, the same function;
* a ``Normalization`` layer given its mean and variance (ConvNeXt's and EfficientNet's
  input normalization): they are tensors outside the graph, which tf2onnx turns into
  extra inputs. It becomes ``(x - mean) / max(sqrt(variance), epsilon)`` with constants.

>>> import keras, numpy as np
>>> inputs = keras.Input((8, 8, 4))
>>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, groups=2, activation="gelu")(inputs))
>>> ready = onnx_ready(model)
>>> x = np.random.default_rng(0).normal(size=(1, 8, 8, 4)).astype("float32")
>>> bool(np.allclose(ready(x), model(x), atol=1e-5))
True
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

__all__ = ["onnx_ready", "exact_gelu"]


def exact_gelu(x: Any) -> Any:
    """``0.5 x (1 + erf(x / sqrt 2))``: the exact GELU from operators ONNX has."""
    return 0.5 * x * (1.0 + keras.ops.erf(x / math.sqrt(2.0)))


def _is_exact_gelu(activation: Any) -> bool:
    return getattr(activation, "__name__", "") == "gelu"


def _activate(layer: Any, y: Any) -> Any:
    """``layer``'s activation on ``y``, the exact GELU written with ``erf``."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return y
    return exact_gelu(y) if _is_exact_gelu(activation) else activation(y)


def _grouped_conv(layer: keras.layers.Conv2D, x: Any) -> Any:
    """A grouped convolution as a depthwise convolution or as one convolution per group."""
    config = layer.get_config()
    kernel, *bias = layer.get_weights()
    axis = -1 if layer.data_format == "channels_last" else 1
    channels_in = kernel.shape[2] * layer.groups
    common = {k: config[k] for k in ("strides", "padding", "data_format", "dilation_rate", "use_bias")}
    if kernel.shape[2] == 1 and layer.filters == channels_in:  # one channel in, one out per group
        depthwise = keras.layers.DepthwiseConv2D(config["kernel_size"], depth_multiplier=1, name=f"{layer.name}_dw",
                                                 **common)
        y = depthwise(x)
        depthwise.set_weights([kernel.transpose(0, 1, 3, 2), *bias])
        return _activate(layer, y)
    per_group = layer.filters // layer.groups
    parts = keras.ops.split(x, layer.groups, axis=axis)
    outputs = []
    for g, part in enumerate(parts):
        conv = keras.layers.Conv2D(per_group, config["kernel_size"], name=f"{layer.name}_g{g}", **common)
        outputs.append(conv(part))
        sl = slice(g * per_group, (g + 1) * per_group)
        conv.set_weights([kernel[..., sl], *(b[sl] for b in bias)])
    return _activate(layer, keras.ops.concatenate(outputs, axis=axis))


def _with_exact_gelu(layer: keras.layers.Layer, args: tuple, kwargs: dict) -> Any:
    """Call ``layer`` without its GELU, then apply :func:`exact_gelu`."""
    if isinstance(layer, keras.layers.Activation):
        return exact_gelu(args[0])
    linear = type(layer).from_config({**layer.get_config(), "activation": None, "name": f"{layer.name}_linear"})
    y = linear(*args, **kwargs)
    linear.set_weights(layer.get_weights())
    return exact_gelu(y)


def _normalize(layer: keras.layers.Normalization, x: Any) -> Any:
    """``Normalization`` with its statistics as constants of the graph."""
    if layer.invert:
        raise ValueError(f"layer {layer.name!r}: an inverting Normalization is not rewritten for ONNX")
    mean = keras.ops.convert_to_numpy(layer.mean).astype("float32")
    std = np.maximum(np.sqrt(keras.ops.convert_to_numpy(layer.variance).astype("float32")), keras.config.epsilon())
    return (x - mean) / std


def onnx_ready(model: keras.Model) -> keras.Model:
    """``model`` as a flat Functional model without grouped convolutions, ``Erfc`` or captured
    normalization statistics (see above)."""
    from kapps.tools.graph import flatten, rebuild

    def call(op: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(op, keras.layers.Conv2D) and not isinstance(op, keras.layers.DepthwiseConv2D) \
                and getattr(op, "groups", 1) > 1:
            return _grouped_conv(op, args[0])
        if isinstance(op, keras.layers.Normalization):
            return _normalize(op, args[0])
        if _is_exact_gelu(getattr(op, "activation", None)):
            return _with_exact_gelu(op, args, kwargs)
        return op(*args, **kwargs)

    return rebuild(flatten(model), call, name=model.name)
