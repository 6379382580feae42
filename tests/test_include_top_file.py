"""Issue 2: an include-top file in Keras' bucket layout loads by path and offline dir.

No official include-top file is available here, so the test writes one from a
keras.applications model with Keras' own legacy HDF5 writer (the layout of the files
Keras serves), under the official file name.
"""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

import kapps
from conftest import photo
from parity import randomize_batch_norm

FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5"


def write_keras_legacy_h5(model: keras.Model, path) -> None:
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def bucket_file(tmp_path_factory):
    keras.utils.set_random_seed(3)
    reference = keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None)
    randomize_batch_norm(reference, seed=3)
    directory = tmp_path_factory.mktemp("offline")
    write_keras_legacy_h5(reference, directory / FILE)
    return reference, directory / FILE


def test_written_file_has_keras_bucket_layout(bucket_file):
    _, path = bucket_file
    with h5py.File(path) as f:
        text = lambda values: [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        assert "layer_names" in f.attrs and "predictions" in text(f.attrs["layer_names"])
        assert text(f["predictions"].attrs["weight_names"]) == ["predictions/kernel", "predictions/bias"]


def test_include_top_file_by_path_and_offline_dir_classifies_identically(bucket_file, monkeypatch):
    reference, path = bucket_file
    images = np.concatenate([photo(96, "chelsea"), photo(96, "coffee"), photo(96, "astronaut")])
    x = kapps.mobilenet_v2.preprocess_input(images)
    expected = reference.predict(x, verbose=0)
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(path.parent))
    for builder in ("functional", "sequential"):
        for weights in (str(path), "imagenet"):
            model = kapps.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=weights, builder=builder)
            got = model.predict(x, verbose=0)
            np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
            labels = lambda preds: [[name for _, name, _ in row] for row in kapps.decode_predictions(preds, top=5)]
            assert labels(got) == labels(expected)
