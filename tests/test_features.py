"""``features_only=True``: level choice, argument errors, weight files, reload, channels_first.

The every-model sweep (maps equal to the layers they name, in kapps' full model and in the
reference) runs inside the parity tests: tests/test_parity.py, tests/test_tf_keras_families.py,
tests/test_classics.py.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kapps
from kapps.weights.h5io import write_legacy_h5

SHAPE = (64, 64, 3)


def small(weights=None, **kwargs) -> keras.Model:
    return kapps.MobileNetV2(alpha=0.35, weights=weights, input_shape=SHAPE, features_only=True, **kwargs)


def test_out_indices_pick_levels_shallow_to_deep_negative_from_the_end():
    model = small(out_indices=(-1, 1))
    assert [level["reduction"] for level in model.feature_info] == [4, 32]
    assert [tuple(o.shape)[1:3] for o in model.outputs] == [(16, 16), (2, 2)]
    assert [level["channels"] for level in model.feature_info] == [o.shape[-1] for o in model.outputs]


@pytest.mark.parametrize("kwargs, message", [
    ({"features_only": True, "out_indices": (5,)}, r"`out_indices` must be distinct level indices in \[-5, 5\) "
                                                   r"\(its levels are reductions 2, 4, 8, 16, 32\)\. Received: out_indices=\(5,\)"),
    ({"features_only": True, "out_indices": (0, -5)}, r"Received: out_indices=\(0, -5\)"),
    ({"features_only": True, "out_indices": "0"}, r"Received: out_indices='0'"),
    ({"features_only": True, "out_indices": ()}, r"Received: out_indices=\(\)"),
    ({"features_only": True, "pooling": "avg"}, r"`pooling` must be None with features_only=True.*Received: pooling='avg'"),
    ({"out_indices": (1,)}, r"`out_indices` must be None unless features_only=True.*Received: out_indices=\(1,\)"),
    ({"features_only": 1}, r"`features_only` must be True or False. Received: features_only=1"),
])
def test_bad_feature_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kapps.MobileNetV2(alpha=0.35, weights=None, input_shape=SHAPE, **kwargs)


def test_a_weights_file_loads_into_the_feature_model_of_both_builders(tmp_path):
    full = kapps.MobileNetV2(alpha=0.35, weights=None, include_top=False, input_shape=SHAPE)
    rng = np.random.default_rng(0)
    for weight in full.weights:
        weight.assign(rng.normal(0, 0.1, weight.shape).astype("float32") + (1.0 if "variance" in weight.path else 0))
    path = tmp_path / "notop.h5"
    write_legacy_h5(full, path)
    x = rng.uniform(-1, 1, (2, *SHAPE)).astype("float32")
    for builder in ("functional", "sequential"):
        features = small(weights=str(path), builder=builder)
        names = [level["name"] for level in features.feature_info]
        expected = keras.Model(full.input, [full.get_layer(n).output for n in names])(x, training=False)
        for got, want in zip(features(x, training=False), expected):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_a_saved_feature_model_reloads_and_tells_its_levels(tmp_path):
    model = small(builder="sequential")
    path = tmp_path / "features.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert kapps.features_of(loaded) == list(model.feature_info)
    x = np.random.default_rng(1).uniform(-1, 1, (1, *SHAPE)).astype("float32")
    for got, want in zip(loaded(x), model(x)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


def test_channels_first_features_have_channels_on_axis_one():
    keras.config.set_image_data_format("channels_first")
    try:
        model = kapps.MobileNetV2(alpha=0.35, weights=None, input_shape=(3, 64, 64), features_only=True)
        assert [(level["channels"], level["reduction"]) for level in model.feature_info] == [
            (tuple(o.shape)[1], 2 ** i) for i, o in enumerate(model.outputs, start=1)]
        assert tuple(model.outputs[-1].shape) == (None, 1280, 2, 2)
    finally:
        keras.config.set_image_data_format("channels_last")


def test_imagenet_weights_give_the_imagenet_models_own_maps(shared, monkeypatch):
    """The official MobileNet 0.25 file in ../shared, found through the manifest, loads into the features."""
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(shared / "weights"))
    kwargs = dict(alpha=0.25, weights="imagenet", input_shape=(224, 224, 3))
    features = kapps.MobileNet(**kwargs, features_only=True)
    full = kapps.MobileNet(**kwargs, include_top=False)
    assert [level["reduction"] for level in features.feature_info] == [2, 4, 8, 16, 32]
    x = np.random.default_rng(2).uniform(-1, 1, (1, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(features(x)[-1]), np.asarray(full(x)), atol=1e-5)
    assert float(np.std(np.asarray(full(x)))) > 0.01  # real weights, not an empty model
