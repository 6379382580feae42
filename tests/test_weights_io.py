"""Loading weight files by layer name, in both layouts, into both builders."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import kapps
from conftest import photo
from kapps.weights import load_weights_by_name, read_weight_file, write_legacy_h5
from parity import randomize_batch_norm


@pytest.fixture(scope="module")
def source():
    model = kapps.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    randomize_batch_norm(model, seed=1)
    return model


@pytest.mark.parametrize("layout", ["keras3", "legacy"])
@pytest.mark.parametrize("saved_from", ["functional", "sequential"])
def test_roundtrip_across_builders(source, tmp_path, layout, saved_from):
    x = kapps.mobilenet_v2.preprocess_input(photo(96))
    expected = source.predict(x, verbose=0)
    if saved_from == "sequential":
        saver = kapps.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), builder="sequential")
        kapps.weights.copy_weights_by_name(source, saver)
    else:
        saver = source
    path = tmp_path / ("w.weights.h5" if layout == "keras3" else "w.h5")
    saver.save_weights(path) if layout == "keras3" else write_legacy_h5(saver, path)
    for builder in ("functional", "sequential"):
        model = kapps.MobileNetV2(weights=str(path), alpha=0.35, input_shape=(96, 96, 3), builder=builder)
        np.testing.assert_array_equal(model.predict(x, verbose=0), expected)


def test_legacy_writer_output_loads_in_keras(source, tmp_path):
    import keras

    path = tmp_path / "legacy.h5"
    write_legacy_h5(source, path)
    reference = keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=str(path))
    x = kapps.mobilenet_v2.preprocess_input(photo(96))
    np.testing.assert_array_equal(reference.predict(x, verbose=0), source.predict(x, verbose=0))
    assert not list(tmp_path.glob("*.part"))


def test_missing_layers_are_named(shared):
    model = kapps.MobileNetV2(weights=None, include_top=False)
    with pytest.raises(kapps.WeightsMismatchError) as info:
        load_weights_by_name(model, shared / "weights" / "mobilenet_2_5_224_tf_no_top.h5")
    message = str(info.value)
    assert "layers missing from the file" in message and "Conv1" in message and "bn_Conv1" in message


def test_shape_mismatch_is_named(shared):
    with pytest.raises(kapps.WeightsMismatchError) as info:
        kapps.MobileNetV2(alpha=0.35, include_top=False,
                          weights=str(shared / "weights" / "mobilenet_v2_1.0_224_no_top.converted.h5"))
    message = str(info.value)
    assert "shape mismatch: Conv1/kernel: model shape (3, 3, 3, 16), file shape (3, 3, 3, 32)" in message


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_group("something")
    with pytest.raises(kapps.WeightsMismatchError, match="neither a legacy Keras HDF5"):
        read_weight_file(path)


def test_auto_named_layers_pair_by_order_when_numbers_differ(tmp_path):
    """Official Xception/Inception files were saved by Keras 2, whose unnamed layers count
    from ``conv2d_1``; a fresh Keras 3 session (and kapps) counts from ``conv2d``."""
    import keras

    from test_include_top_file import write_keras_legacy_h5

    keras.backend.clear_session()
    keras.layers.Conv2D(1, 1), keras.layers.BatchNormalization()  # shift Keras' counters, as Keras 2 files are
    reference = keras.applications.Xception(weights=None, include_top=False, pooling="avg", input_shape=(96, 96, 3))
    assert "conv2d_1" in [l.name for l in reference.layers] and "conv2d" not in [l.name for l in reference.layers]
    randomize_batch_norm(reference, seed=2)
    path = tmp_path / "xception_keras2_names.h5"
    write_keras_legacy_h5(reference, path)
    x = kapps.xception.preprocess_input(photo(96))
    expected = reference.predict(x, verbose=0)
    for builder in ("functional", "sequential"):
        model = kapps.Xception(weights=str(path), include_top=False, pooling="avg", input_shape=(96, 96, 3),
                               builder=builder)
        np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
