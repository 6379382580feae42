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



def test_tensor_graph_lists_every_tensor_once_inputs_first_also_for_a_reused_layer():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(3, name="shared")
    a = keras.layers.Dense(3, name="a")(inputs)
    out = keras.layers.Add(name="add")([a, dense(inputs)])
    keras.Model(inputs, dense(out))  # the layer's first graph: a second node follows
    again = dense(out)
    graph = compat.tensor_graph(again)
    assert isinstance(graph[0][1], keras.layers.InputLayer)
    assert [op.name for _, op, _ in graph][-2:] == ["add", "shared"]
    assert len({id(t) for t, _, _ in graph}) == len(graph) == 5
    assert [len(parents) for _, op, parents in graph if op.name == "add"] == [2]


# -- training (fine_tune) -----------------------------------------------------------------
MULTI_WORKER = """
import json, os
os.environ.pop("TF_CONFIG", None)
import tensorflow as tf
from kapps import _keras_compat as compat
one_worker = tf.distribute.MultiWorkerMirroredStrategy()
print(json.dumps([compat.in_multi_worker_mode(one_worker), compat.in_multi_worker_mode(tf.distribute.get_strategy())]))
"""


def test_in_multi_worker_mode_is_false_for_one_worker_and_other_strategies():
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", MULTI_WORKER], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, False]


def test_fit_on_multi_worker_keeps_fit_working_and_returns_logs_as_vectors():
    import numpy as np
    import tensorflow as tf

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="d")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    compat.fit_on_multi_worker(model, tf.distribute.get_strategy())
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    before = model.get_layer("d").kernel.numpy().copy()
    history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(np.asarray(history.history["loss"], dtype=float)).all()
    assert not np.allclose(before, model.get_layer("d").kernel.numpy())
    logs = model.train_step((tf.constant(x[:4]), tf.constant(y[:4])))
    assert {k: tuple(v.shape) for k, v in logs.items()} == {"loss": (1,), "accuracy": (1,)}


def test_fixed_seed_hands_out_its_seed_so_draws_repeat():
    import numpy as np
    import tensorflow as tf

    images = tf.zeros((4, 8, 8, 3))
    layer = keras.layers.RandomRotation(0.5)

    def factors(seed):
        generator = compat.fixed_seed(tf.constant(seed, tf.int64))
        assert isinstance(generator, keras.random.SeedGenerator) and generator.next().numpy().tolist() == seed
        transformation = layer.get_random_transformation(images, training=True, seed=generator)
        return np.concatenate([np.ravel(keras.ops.convert_to_numpy(v)) for v in keras.tree.flatten(transformation)
                               if v is not None])

    assert (factors([3, 7]) == factors([3, 7])).all()
    assert not (factors([3, 7]) == factors([3, 8])).all()



# -- saving and serialization ----------------------------------------------------------


# -- backends ---------------------------------------------------------------------------


# -- saving and serialization ----------------------------------------------------------
def test_keras_layer_scale_is_the_class_keras_convnext_saves():
    ref = keras.applications.ConvNeXtTiny(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert type(ref.get_layer("convnext_tiny_stage_0_block_0_layer_scale")) is compat.keras_layer_scale()
    layer = compat.keras_layer_scale()(0.5, 3, name="s")
    np.testing.assert_allclose(np.asarray(layer(np.ones((1, 3), "float32"))), [[0.5] * 3])
    assert keras.saving.serialize_keras_object(layer)["module"].startswith("keras.")  # plain Keras finds it


def test_keras_custom_scale_layer_is_the_class_keras_inception_resnet_saves():
    ref = keras.applications.InceptionResNetV2(weights=None, include_top=False, input_shape=(75, 75, 3))
    # Keras numbers the auto-names per process ("custom_scale_layer_40" after other builds): match the prefix
    scales = [layer for layer in ref.layers if layer.name.startswith("custom_scale_layer")]
    assert len(scales) == 40 and all(type(layer) is compat.keras_custom_scale_layer() for layer in scales)
    layer = compat.keras_custom_scale_layer()(0.5, name="s")
    np.testing.assert_allclose(np.asarray(layer([np.ones((1, 2)), np.full((1, 2), 4.0)])), [[3.0, 3.0]])
    assert keras.saving.serialize_keras_object(layer)["module"].startswith("keras.")
