"""kapps.tools.flops.count_flops: read from the traced graph's shapes, for both builders."""

from __future__ import annotations

import keras
import pytest

import kapps
from kapps.tools.flops import count_flops


def test_every_counted_layer_kind_by_hand():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(inputs)   # 4x4 out
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)  # 4x4x8
    x = keras.layers.SeparableConv2D(5, 3, padding="valid", name="sep")(x)  # 2x2x5
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, name="fc")(x)
    model = keras.Model(inputs, outputs)
    expected = (2 * 3 * 3 * 3 * 4 * 16          # conv
                + 2 * 3 * 3 * 4 * 2 * 16        # depthwise
                + 2 * 3 * 3 * 8 * 1 * 4 + 2 * 8 * 5 * 4  # separable: depthwise + pointwise
                + 2 * 5 * 7)                    # dense
    assert count_flops(model) == expected


def test_both_builders_and_a_new_input_size_agree():
    functional = kapps.MobileNetV2(weights=None, alpha=0.35, include_top=False, input_shape=(64, 64, 3))
    sequential = kapps.MobileNetV2(weights=None, alpha=0.35, include_top=False, input_shape=(64, 64, 3),
                                   builder="sequential")
    calls = {id(layer): layer.call for layer in functional.layers}
    assert count_flops(functional) == count_flops(sequential) > 0
    assert all(layer.call == calls[id(layer)] for layer in functional.layers)  # nothing swapped
    flexible = kapps.MobileNetV2(weights=None, alpha=0.35, include_top=False)
    assert count_flops(flexible, input_shape=(64, 64, 3)) == count_flops(functional)
    with pytest.raises(ValueError, match="`input_shape` must be given"):
        count_flops(flexible)
