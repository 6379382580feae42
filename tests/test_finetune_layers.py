"""ImagePreprocessing is registered and round-trips through .keras; a custom preprocessing function
is saved when Keras can serialize it and refused at save time otherwise; a model saved by fine_tune
reloads in a fresh process with equal outputs."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kapps
from kapps.finetune import ImagePreprocessing
from kapps.finetune.layers import is_serializable_function
from kapps.imagenet import preprocess_input
from test_finetune_support import make_image_folder, run_python, script, tiny_base

PIXELS = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")


@keras.saving.register_keras_serializable(package="kapps_tests")
def halve(x):
    return x / 2.0


def unregistered(x):
    return x - 1.0


def _tiny(function=None, mode="caffe"):
    inputs = keras.Input((8, 8, 3))
    x = ImagePreprocessing(mode, function, name="preprocessing")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(2, 1, name="conv")(x))


@pytest.mark.parametrize("mode", ["tf", "caffe", "torch", "none"])
def test_each_mode_equals_preprocess_input(mode):
    out = ImagePreprocessing(mode)(PIXELS)
    np.testing.assert_allclose(out, preprocess_input(PIXELS.copy(), mode=mode), rtol=1e-6, atol=1e-5)


def test_a_mode_layer_round_trips_through_a_keras_file(tmp_path):
    model = _tiny()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("preprocessing")) is ImagePreprocessing
    assert loaded.get_layer("preprocessing").mode == "caffe"
    np.testing.assert_allclose(loaded(PIXELS), model(PIXELS), rtol=1e-6)


def test_a_registered_function_is_saved_and_reloaded(tmp_path):
    assert is_serializable_function(halve) and not is_serializable_function(unregistered)
    model = _tiny(halve, mode="halve")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("preprocessing").function is halve
    np.testing.assert_allclose(loaded.get_layer("preprocessing")(PIXELS), PIXELS / 2.0)
    np.testing.assert_allclose(loaded(PIXELS), model(PIXELS), rtol=1e-6)


def test_an_unregistered_function_is_refused_at_save_time_and_leaves_no_file(tmp_path):
    model = _tiny(unregistered, mode="unregistered")
    with pytest.raises(ValueError, match=r"Cannot save layer 'preprocessing': its preprocessing function "
                                         r"'unregistered' is not registered with Keras.*Accepted: a mode name "
                                         r"\('tf', .*@keras.saving.register_keras_serializable\(\)"):
        kapps.finetune.result.save_model_atomic(model, tmp_path / "m.keras")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_mode_is_refused_by_name():
    with pytest.raises(ValueError, match=r"`preprocessing` must be one of 'tf', .* or a function. "
                                         r"Received: preprocessing='yuv'"):
        ImagePreprocessing("yuv")


RELOAD = """
    import sys
    import numpy as np, keras
    import kapps
    model = keras.saving.load_model(sys.argv[1])
    np.save(sys.argv[2], np.asarray(model(np.load(sys.argv[3]))))
"""


def test_a_model_saved_by_fine_tune_reloads_in_a_fresh_process_with_equal_outputs(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=6, size=32)
    result = kapps.fine_tune(tiny_base(32), data, preprocessing="tf", image_size=32, batch_size=4, epochs=1,
                             fine_tune_epochs=1, seed=0, verbose=0)
    written = result.save(tmp_path / "out", samples=0)
    assert json.loads((tmp_path / "out" / "class_names.json").read_text()) == ["blue", "red"]  # sorted folder names
    images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    run_python(script(tmp_path, "reload.py", RELOAD), written["model"], str(tmp_path / "out.npy"),
               str(tmp_path / "images.npy"))
    expected = np.asarray(result.model(tf.constant(images), training=False))
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-6)
