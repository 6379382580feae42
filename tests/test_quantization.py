"""kapps.tools.quantization: int8-grid kernels and bias correction before int8 conversion.

The outcome on a real model (the MobileNet 0.25 classifier's top-1 agreement on the 1000 ImageNet
photos, 75.5% -> 92.0%) is asserted in tests/test_runtimes.py; here the mechanics, on a small
network with random weights and BatchNorm statistics, on real photos.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kapps
from conftest import photo
from kapps.tools.quantization import correct_int8_bias, int8_grid
from parity import randomize_batch_norm


def _network() -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.ReLU(6.0)(x)
    y = keras.layers.Conv2D(16, 1, name="pw")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    randomize_batch_norm(model)
    return kapps.optimize_for_inference(model)


def _images() -> np.ndarray:
    images = np.concatenate([photo(32, which) for which in ("chelsea", "coffee", "astronaut", "rocket")])
    return (images / 127.5 - 1.0).astype("float32")


def _plainly_rounded(model: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        if layer.get_weights() and not isinstance(layer, keras.layers.BatchNormalization):
            kernel, *rest = layer.get_weights()
            layer.set_weights([int8_grid(layer, kernel).astype("float32"), *rest])
    return copy


def test_kernels_lie_on_the_per_channel_int8_grid_and_the_model_is_untouched():
    model, images = _network(), _images()
    before = [w.copy() for w in model.get_weights()]
    ready = correct_int8_bias(model, images)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)
    for name, axes in (("stem", (0, 1, 2)), ("dw", (0, 1)), ("pw", (0, 1, 2)), ("logits", (0,))):
        kernel = ready.get_layer(name).get_weights()[0].astype("float64")
        original = model.get_layer(name).get_weights()[0].astype("float64")
        step = np.abs(original).max(axis=axes, keepdims=True) / 127
        np.testing.assert_allclose(np.abs(kernel).max(axis=axes), np.abs(original).max(axis=axes), rtol=1e-6)
        np.testing.assert_allclose(kernel / step, np.round(kernel / step), atol=1e-3)
        assert np.abs(kernel / step).max() <= 127.001


def test_bias_correction_takes_out_the_mean_error_of_rounding():
    model, images = _network(), _images()
    reference = np.asarray(model.predict(images, verbose=0))
    rounded = np.asarray(_plainly_rounded(model).predict(images, verbose=0))
    corrected = np.asarray(correct_int8_bias(model, images, simulate_activations=False).predict(images, verbose=0))
    mean_error = lambda y: np.abs((y - reference).mean(axis=0)).max()  # noqa: E731
    assert mean_error(rounded) > 0
    assert mean_error(corrected) < 0.2 * mean_error(rounded)
    # the correction changes only the biases, by what the rounding shifted
    assert np.abs(corrected - reference).max() < np.abs(reference).max() * 0.05


@pytest.mark.parametrize("kwargs, message", [
    (dict(samples=0), "`samples` must be a positive integer"),
    (dict(calibration=np.zeros((0, 32, 32, 3), "float32")), "`calibration` must be a non-empty batch"),
])
def test_bad_arguments_are_refused(kwargs, message):
    arguments = {"calibration": _images(), **kwargs}
    with pytest.raises(ValueError, match=message):
        correct_int8_bias(_network(), **arguments)
