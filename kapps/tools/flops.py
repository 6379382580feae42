"""Counting a model's floating-point operations from its layers' shapes.

Convention (the one torchvision and timm report): one multiply-add counts as two
FLOPs; only convolutions (plain, depthwise, separable), dense layers and attention's two matrix
products (a layer with a ``flops(output_shape)`` method counts its own: ViT's and Swin's
attention) are counted (their multiply-adds dominate; BatchNorm, activations, pooling and
additions are left out).
For a convolution with kernel ``kh x kw``, ``cin`` input and ``cout`` output channels,
``groups`` groups and an output of ``h x w``: ``2 * kh * kw * cin / groups * cout * h * w``.

Shapes come from the model's symbolic graph (:mod:`kapps.tools.graph`): every call of a
layer counts, with its own output shape (a layer shared by two calls counts twice).
"""

from __future__ import annotations

import math

import keras

from kapps.tools.graph import flatten, trace

_COUNTED = (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.Conv2D, keras.layers.Dense)


def layer_flops(layer: keras.layers.Layer, output_shape: tuple) -> int:
    """FLOPs of one layer for one image, given its output shape (batch dim included)."""
    own = getattr(layer, "flops", None)
    if callable(own):
        return int(own(output_shape))
    positions = math.prod(int(d) for d in output_shape[1:-1]) if len(output_shape) > 2 else 1
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, cin, mult = layer.kernel.shape
        return 2 * kh * kw * cin * mult * positions
    if isinstance(layer, keras.layers.SeparableConv2D):
        # Depthwise then pointwise, both at the output positions (the stride is the depthwise one's).
        kh, kw, cin, mult = layer.depthwise_kernel.shape
        cout = layer.pointwise_kernel.shape[-1]
        return 2 * kh * kw * cin * mult * positions + 2 * cin * mult * cout * positions
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, cin_per_group, cout = layer.kernel.shape
        return 2 * kh * kw * cin_per_group * cout * positions
    if isinstance(layer, keras.layers.Dense):
        cin, cout = layer.kernel.shape
        return 2 * cin * cout * positions
    return 0


def count_flops(model: keras.Model, input_shape: tuple | None = None) -> int:
    """FLOPs of one forward pass of one image through ``model`` (see module docs).

    Read from the symbolic graph: the model is flattened (nested models and blocks of the
    Sequential builder count like a flat graph) and each layer call's output shape is
    combined with the layer's kernel shape. Nothing runs on data.

    Args:
        model: a Functional or Sequential model with known inputs.
        input_shape: count at this input shape (no batch axis) instead of the model's.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1, use_bias=False)])
    >>> count_flops(m)  # 2 * 1*1*3*2 * 16 positions
    192
    """
    total = 0
    for call in trace(flatten(model, input_shape)).calls:
        if not isinstance(call.operation, _COUNTED) and not callable(getattr(call.operation, "flops", None)):
            continue
        shape = tuple(call.outputs[0].shape)
        if any(d is None for d in shape[1:]):
            raise ValueError(
                "`input_shape` must be given: the model accepts any input size and FLOPs depend on it. "
                f"Received: input_shape={input_shape!r} (layer {call.operation.name!r} outputs {shape})"
            )
        total += layer_flops(call.operation, shape)
    return total
