"""Counting a model's floating-point operations from its layers' shapes.

Convention (the one torchvision and timm report): one multiply-add counts as two
FLOPs; only convolutions (plain, depthwise, separable) and dense layers are counted (their
multiply-adds dominate; BatchNorm, activations, pooling and additions are left out).
For a convolution with kernel ``kh x kw``, ``cin`` input and ``cout`` output channels,
``groups`` groups and an output of ``h x w``: ``2 * kh * kw * cin / groups * cout * h * w``.
"""

from __future__ import annotations

import math

import keras

from kapps.utils.layers import leaf_layers


def layer_flops(layer: keras.layers.Layer, output_shape: tuple) -> int:
    """FLOPs of one layer for one image, given its output shape (batch dim included)."""
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

    Output shapes are found by tracing the model once on a symbolic input, so nested
    blocks (the Sequential builder) are counted like a flat graph.

    >>> import keras
    >>> m = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1, use_bias=False)])
    >>> count_flops(m)  # 2 * 1*1*3*2 * 16 positions
    192
    """
    shapes: dict[int, tuple] = {}
    originals = {}
    for layer in leaf_layers(model):
        originals[id(layer)] = layer

    # Record each weighted layer's output shape during one symbolic pass.
    hooks = []
    for layer in originals.values():
        original_call = layer.call

        def recording_call(*args, _layer=layer, _call=original_call, **kwargs):
            out = _call(*args, **kwargs)
            shapes[id(_layer)] = tuple(out.shape)
            return out

        layer.call = recording_call
        hooks.append((layer, original_call))
    try:
        shape = input_shape or tuple(model.inputs[0].shape[1:])
        model(keras.ops.zeros((1, *shape)), training=False)
    finally:
        for layer, original_call in hooks:
            layer.call = original_call
    return sum(layer_flops(layer, shapes[id(layer)]) for layer in originals.values() if id(layer) in shapes)
