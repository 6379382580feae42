"""One test per shim in kapps._keras_compat: a Keras upgrade that breaks one fails here, by name."""

from __future__ import annotations

import keras
import numpy as np
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
def test_is_functional_tells_graph_models_apart():
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert compat.is_functional(functional)
    assert not compat.is_functional(sequential)
    assert not compat.is_functional(Subclassed())
    assert not compat.is_functional(keras.layers.Dense(2))


def test_call_graph_splices_a_nested_model_into_the_outer_graph():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, keras.layers.Dense(3, name="fc")(keras.layers.ReLU(name="act")(inner_in)))
    outer_in = keras.Input((4,))
    seen = []

    def call(op, *args, **kwargs):
        seen.append(op.name)
        return op(*args, **kwargs)

    outputs = compat.call_graph(inner, outer_in, call)
    flat = keras.Model(outer_in, outputs)
    assert seen == ["act", "fc"]
    assert [layer.name for layer in flat.layers] == [flat.layers[0].name, "act", "fc"]
    x = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
    np.testing.assert_allclose(flat(x), inner(x))



# -- training (fine_tune) -----------------------------------------------------------------


# -- saving and serialization ----------------------------------------------------------


# -- backends ---------------------------------------------------------------------------
