"""Issue 2: the real ImageNet files in ../shared load into kapps exactly as into Keras."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

import kapps
from conftest import photo
from kapps.weights import file_hash, manifest

OFFICIAL = "mobilenet_2_5_224_tf_no_top.h5"
CONVERTED = "mobilenet_v2_1.0_224_no_top.converted.h5"


def test_official_mobilenet_file_found_through_kapps_weights_dir(shared, monkeypatch):
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(shared / "weights"))
    entry = manifest.find("mobilenet", False, {"alpha": 0.25, "resolution": 224})
    assert entry.file == OFFICIAL and entry.hash_algorithm == "sha256"
    assert file_hash(str(shared / "weights" / OFFICIAL)) == entry.hash_value

    x = kapps.mobilenet.preprocess_input(photo(224))
    reference = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=str(shared / "weights" / OFFICIAL))
    expected = reference.predict(x, verbose=0)
    for builder in ("functional", "sequential"):
        model = kapps.MobileNet(alpha=0.25, include_top=False, weights="imagenet", builder=builder)
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5, rtol=0)
    assert float(np.abs(expected).max()) > 0.1  # real features, not zeros


@pytest.mark.fast
def test_official_file_with_wrong_hash_is_refused(shared, tmp_path, monkeypatch):
    corrupt = tmp_path / OFFICIAL
    shutil.copy(shared / "weights" / OFFICIAL, corrupt)
    data = bytearray(corrupt.read_bytes())
    data[-100] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(tmp_path))
    entry = manifest.find("mobilenet", False, {"alpha": 0.25, "resolution": 224})
    with pytest.raises(kapps.WeightsIntegrityError) as info:
        kapps.MobileNet(alpha=0.25, include_top=False, weights="imagenet")
    message = str(info.value)
    assert OFFICIAL in message and entry.hash_value in message and file_hash(str(corrupt)) in message


def test_converted_mobilenet_v2_loads_by_path_into_both_builders(shared):
    path = str(shared / "weights" / CONVERTED)
    x = kapps.mobilenet_v2.preprocess_input(photo(224, "coffee"))
    reference = keras.applications.MobileNetV2(include_top=False, pooling="avg", weights=path)
    expected = reference.predict(x, verbose=0)
    outputs = {}
    for builder in ("functional", "sequential"):
        model = kapps.MobileNetV2(include_top=False, pooling="avg", weights=path, builder=builder)
        outputs[builder] = model.predict(x, verbose=0)
        np.testing.assert_allclose(outputs[builder], expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(outputs["functional"], outputs["sequential"])
