"""kapps.optimize_for_inference: same outputs (1e-4) on real photos, fewer layers.

The 40 keras.applications architectures are optimized in ``tests/test_parity.py`` (the model
built there for parity, at its smallest size), RegNet and ResNet-RS (the smallest of each family)
in ``tests/test_tf_keras_families.py``; here the others, at a reduced input size
with their top (logits compared) and randomized BatchNorm statistics (as in
tests/parity.py) so that the folding is exercised with non-trivial numbers.

Tolerance: 1e-4, relative to the output scale when outputs exceed 1. Folding changes
the order of float32 operations; deep residual nets with random statistics have logits
in the hundreds (ResNet152: about 300 at 64 px), where the original model's own outputs
for one photo already differ by about 3e-4 between batch sizes 1 and 4.
The Sequential builder (flattened first) is checked on a representative subset.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import kapps
from kapps.tools.optimize import optimize_for_inference
from kapps.registry import get_spec
from conftest import photo
from parity import TF_KERAS_FAMILIES, family_preprocess, randomize_batch_norm

TOLERANCE = 1e-4
SIZE = 64
#: Models for the Sequential builder: plain, pre-activation, squeeze-excite + drop-connect, ConvNeXt.
REPRESENTATIVE = ("mobilenet_v3_small", "resnet50_v2", "efficientnet_b0", "convnext_tiny")


def _count(model: keras.Model, cls: type) -> int:
    return sum(isinstance(layer, cls) for layer in model.layers)


def _photos(spec, size: int, which: tuple[str, ...]) -> np.ndarray:
    images = np.concatenate([photo(size, w) for w in which])
    return images.mean(axis=-1, keepdims=True) if spec.input_channels == 1 else images


def _tolerance(max_y: float) -> float:
    return TOLERANCE * max(1.0, max_y)


def _check(name: str, builder: str, **kwargs) -> tuple[float, float, keras.Model, keras.Model]:
    spec = get_spec(name)
    size = kwargs.pop("size", max(spec.min_size, SIZE))
    kwargs.setdefault("include_top", True)
    if kwargs["include_top"]:
        kwargs.setdefault("classifier_activation", None)  # compare logits, not a softmax
    kwargs.setdefault("input_shape", (size, size, spec.input_channels))
    model = kapps.get_model(name, weights=None, builder=builder, **kwargs)
    x = family_preprocess(name, _photos(spec, size, ("chelsea",)))
    randomize_batch_norm(model)
    expected = np.asarray(model(x, training=False))
    fast = optimize_for_inference(model)
    got = np.asarray(fast(x))
    return float(np.max(np.abs(got - expected))), float(np.max(np.abs(expected))), model, fast


def _free():
    keras.backend.clear_session()
    gc.collect()


#: Registered models without a keras.applications or tf.keras twin (the others: tests/test_parity.py and
#: tests/test_tf_keras_families.py, on the models they build).
NOT_IN_KERAS = [n for n in kapps.list_models() if not hasattr(keras.applications, get_spec(n).keras_name)
                and get_spec(n).family not in TF_KERAS_FAMILIES]


@pytest.mark.parametrize("name", NOT_IN_KERAS)
def test_every_architecture_functional(name):
    t0 = time.perf_counter()
    diff, max_y, model, fast = _check(name, "functional")
    bn_before = _count(model, keras.layers.BatchNormalization)
    bn_after = _count(fast, keras.layers.BatchNormalization)
    print(f"{name}: max |diff| {diff:.2e} (max |y| {max_y:.3g}), BatchNorm {bn_before} -> {bn_after}, "
          f"layers {len(model.layers)} -> {len(fast.layers)} ({time.perf_counter() - t0:.1f} s)")
    assert diff <= _tolerance(max_y), (name, diff, max_y)
    assert bn_after <= bn_before
    assert _count(fast, keras.layers.Dropout) == 0
    del model, fast
    _free()


@pytest.mark.parametrize("name", [n for n in REPRESENTATIVE if n in kapps.list_models()])
def test_sequential_builder(name):
    diff, max_y, model, fast = _check(name, "sequential")
    assert diff <= _tolerance(max_y), (name, diff, max_y)
    assert not any(isinstance(layer, kapps.blocks.Block) for layer in fast.layers)
    del model, fast
    _free()


def test_bn_folded_only_where_it_can_be():
    """Dense+BN folds; BN after a ReLU-activated conv, after a shared conv, or read twice stays."""
    inputs = keras.Input((16, 16, 3))
    shared = keras.layers.Conv2D(4, 3, padding="same", name="shared")
    a = keras.layers.BatchNormalization(name="bn_shared")(shared(inputs))
    b = shared(a[..., :3])
    c = keras.layers.Conv2D(4, 1, activation="relu", name="relu_conv")(b)
    c = keras.layers.BatchNormalization(name="bn_after_relu")(c)
    d = keras.layers.Conv2D(4, 1, name="read_twice")(c)
    e = keras.layers.BatchNormalization(name="bn_read_twice")(d)
    e = keras.layers.Add()([e, d])
    f = keras.layers.SeparableConv2D(6, 3, padding="same", use_bias=False, name="sep")(e)
    f = keras.layers.BatchNormalization(name="bn_sep")(f)
    g = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(f)
    g = keras.layers.BatchNormalization(name="bn_dw")(g)
    h = keras.layers.Dense(5, name="dense")(keras.layers.GlobalAveragePooling2D()(g))
    h = keras.layers.BatchNormalization(name="bn_dense")(keras.layers.Dropout(0.5)(h))
    h = keras.layers.BatchNormalization(name="bn_dense2")(keras.layers.Dense(3, name="dense2")(h))
    model = keras.Model(inputs, h)
    randomize_batch_norm(model)
    fast = optimize_for_inference(model)
    kept = {layer.name for layer in fast.layers if isinstance(layer, keras.layers.BatchNormalization)}
    # bn_dense follows a Dropout (removed), not the Dense itself in the graph: kept (honest, conservative).
    assert kept == {"bn_shared", "bn_after_relu", "bn_read_twice", "bn_dense"}
    x = photo(16)[..., :3] / 127.5 - 1
    np.testing.assert_allclose(fast(x), model(x, training=False), atol=TOLERANCE)


def test_nested_models_are_flattened_and_original_untouched():
    base = kapps.MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3), builder="sequential")
    randomize_batch_norm(base)
    inputs = keras.Input((64, 64, 3))
    x = base(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    before = [w.copy() for w in model.get_weights()]
    fast = optimize_for_inference(model, name="fast")
    assert fast.name == "fast"
    assert all(not isinstance(l, (keras.Model, kapps.blocks.Block)) for l in fast.layers)
    assert _count(fast, keras.layers.BatchNormalization) == 0
    x = family_preprocess("mobilenet_v2", photo(64))
    np.testing.assert_allclose(fast(x), model(x, training=False), atol=TOLERANCE)
    after = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    fast.get_layer("head").set_weights([np.zeros((1280, 2), "float32"), np.zeros(2, "float32")])
    assert not np.array_equal(model.get_layer("head").get_weights()[0], 0)  # layers are copies


def test_xla():
    model = kapps.MobileNetV2(weights=None, alpha=0.35, include_top=False, input_shape=(64, 64, 3))
    randomize_batch_norm(model)
    fast = optimize_for_inference(model, xla=True)
    assert fast.jit_compile is True
    x = family_preprocess("mobilenet_v2", photo(64))
    np.testing.assert_allclose(fast.predict_on_batch(x), model(x, training=False), atol=TOLERANCE)


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        optimize_for_inference("mobilenet_v2")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(TypeError, match="`xla` must be True or False"):
        optimize_for_inference(model, xla="yes")
    with pytest.raises(ValueError, match="known inputs"):
        optimize_for_inference(keras.Sequential([keras.layers.Dense(2)]))


class _Scale(keras.layers.Layer):
    """A weighted layer whose constructor takes an array: Keras cannot write its config."""

    def __init__(self, init: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.factor = self.add_weight(shape=self.init.shape, initializer="ones")

    def call(self, x):
        return x * self.factor


def test_uncopyable_weighted_layer_is_refused_not_shared():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, _Scale(np.ones(4, "float32"), name="scale")(keras.layers.Dense(4)(inputs)))
    with pytest.raises(ValueError, match=r"Layer 'scale' \(_Scale\) cannot be rebuilt from its get_config\(\)"):
        optimize_for_inference(model)


def _run(code: str, *args: str) -> str:
    """Run ``code`` in a fresh Python process on TensorFlow; returns its stdout."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(root), str(root / "tests")]))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_optimized_model_round_trips_through_keras_file(tmp_path):
    model = kapps.MobileNetV2(weights=None, alpha=0.35, include_top=False, input_shape=(32, 32, 3))
    randomize_batch_norm(model)
    fast = optimize_for_inference(model)
    path, x_path, y_path = tmp_path / "fast.keras", tmp_path / "x.npy", tmp_path / "y.npy"
    fast.save(path)
    x = family_preprocess("mobilenet_v2", photo(32))
    np.save(x_path, x)
    _run("import sys, keras, numpy as np, kapps\n"
         "m = keras.saving.load_model(sys.argv[1])\n"
         "np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]))))\n", str(path), str(x_path), str(y_path))
    np.testing.assert_allclose(np.load(y_path), fast(x), atol=1e-6)
    np.testing.assert_allclose(np.load(y_path), model(x, training=False), atol=TOLERANCE)


# On JAX and PyTorch: tests/test_backends.py::test_optimize_for_inference_computes_the_same (folding,
# the .keras reload, no BatchNorm left) runs in the backend workers.
