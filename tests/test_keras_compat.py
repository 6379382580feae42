"""One test per shim in kapps._keras_compat: a Keras upgrade that breaks one fails here, by name."""

from __future__ import annotations

import keras
import pytest

from kapps import _keras_compat as compat

# -- layers and naming -----------------------------------------------------------------
def test_child_layers_is_one_level_deep():
    inner = keras.layers.Layer(name="inner")
    inner.d1 = keras.layers.Dense(2, name="d1")
    outer = keras.layers.Layer(name="outer")
    outer.inner, outer.d2 = inner, keras.layers.Dense(1, name="d2")
    assert [layer.name for layer in compat.child_layers(outer)] == ["inner", "d2"]
    assert [layer.name for layer in compat.child_layers(inner)] == ["d1"]


@pytest.mark.parametrize("cls, expected", [(keras.layers.Conv2D, "conv2d"),
                                           (keras.layers.BatchNormalization, "batch_normalization"),
                                           (keras.layers.DepthwiseConv2D, "depthwise_conv2d")])
def test_snake_case_matches_keras_auto_names(cls, expected):
    assert compat.snake_case(cls.__name__) == expected
    assert cls(**({"filters": 1, "kernel_size": 1} if cls is keras.layers.Conv2D else
                  {"kernel_size": 1} if cls is keras.layers.DepthwiseConv2D else {})).name.startswith(expected)



# -- functional graphs (optimize, flops) -----------------------------------------------


# -- training (fine_tune) -----------------------------------------------------------------


# -- saving and serialization ----------------------------------------------------------


# -- backends ---------------------------------------------------------------------------
