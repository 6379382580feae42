"""channels_first end to end: models (both builders), preprocess_input, weight files, refusals.

Parity: one small model per keras.applications family built by kapps with
``image_data_format="channels_first"`` gives the outputs of keras.applications'
channels_last twin (same weights, randomised BatchNorm statistics) on the transposed
input, transposed back. TensorFlow runs these channels_first graphs on CPU here.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kapps
from kapps.weights.h5io import copy_weights_by_name
from parity import keras_reference, randomize_batch_norm

#: (registry name, input size, extra arguments): one small model per family
#: (ConvNeXt, DenseNet and NASNet refuse channels_first, as in keras.applications).
CASES = [
    ("vgg16", 32, {}),
    ("vgg19", 32, {}),
    ("xception", 71, {}),
    ("inception_v3", 75, {}),
    ("inception_resnet_v2", 75, {}),
    ("mobilenet", 32, {"alpha": 0.25}),
    ("mobilenet_v2", 32, {"alpha": 0.35}),
    ("mobilenet_v3_small", 32, {"minimalistic": True}),
    ("resnet50", 32, {}),
    ("resnet50_v2", 32, {}),
    ("efficientnet_b0", 32, {}),
    ("efficientnet_v2_b0", 32, {}),
]
TO_FIRST, TO_LAST = (0, 3, 1, 2), (0, 2, 3, 1)


@pytest.fixture
def channels_first():
    """The global setting is channels_first inside the test, channels_last again after it."""
    keras.config.set_image_data_format("channels_first")
    yield
    keras.config.set_image_data_format("channels_last")


def _images(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (2, size, size, 3)).astype("float32")


def _assert_parity(name: str, size: int, builders=("functional", "sequential"), **kwargs) -> None:
    reference = keras_reference(name, weights=None, input_shape=(size, size, 3), **kwargs)
    randomize_batch_norm(reference)
    x = _images(size)
    expected = np.asarray(reference(x, training=False))
    keras.config.set_image_data_format("channels_first")
    for builder in builders:
        model = kapps.get_model(name, weights=None, input_shape=(3, size, size), builder=builder, **kwargs)
        assert model.input_shape == (None, 3, size, size)
        copy_weights_by_name(reference, model)
        got = np.asarray(model(x.transpose(TO_FIRST), training=False))
        if got.ndim == 4:
            got = got.transpose(TO_LAST)
        np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-4, err_msg=f"{name} {builder}")


@pytest.mark.parametrize("name, size, kwargs", CASES, ids=[c[0] for c in CASES])
def test_feature_maps_equal_keras_channels_last_transposed(channels_first, name, size, kwargs):
    keras.config.set_image_data_format("channels_last")
    _assert_parity(name, size, include_top=False, **kwargs)
    keras.backend.clear_session()


def test_vgg_flatten_then_dense_top(channels_first):
    """The Dense kernel after Flatten holds channels-last order: Flatten permutes in channels_first."""
    keras.config.set_image_data_format("channels_last")
    _assert_parity("vgg16", 32, include_top=True, classes=10)


def test_official_file_loads_into_channels_first_and_classifies_the_same(shared, channels_first):
    path = str(shared / "weights/mobilenet_2_5_224_tf.converted.h5")
    image = keras.utils.img_to_array(keras.utils.load_img(
        str(shared / "data/elephant/creative_commons_elephant.jpg"), target_size=(224, 224)),
        data_format="channels_last")[None]
    keras.config.set_image_data_format("channels_last")
    expected = kapps.MobileNet(alpha=0.25, weights=path).predict(kapps.mobilenet.preprocess_input(image.copy()),
                                                                  verbose=0)
    keras.config.set_image_data_format("channels_first")
    x = kapps.mobilenet.preprocess_input(image.transpose(TO_FIRST))  # the global format: channels_first
    for builder in ("functional", "sequential"):
        model = kapps.MobileNet(alpha=0.25, weights=path, builder=builder)
        assert model.input_shape == (None, 3, 224, 224)
        got = model.predict(x, verbose=0)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        assert kapps.mobilenet.decode_predictions(got, top=1)[0][0][1] == "African_elephant"


@pytest.mark.parametrize("module", ["vgg16", "resnet", "densenet", "mobilenet_v2", "efficientnet"])
def test_preprocess_input_follows_data_format_and_global_setting(channels_first, module):
    x = _images(8)
    expected = getattr(keras.applications, module).preprocess_input(x.copy(), data_format="channels_last")
    ours = getattr(kapps, module).preprocess_input
    explicit = ours(x.transpose(TO_FIRST).copy(), data_format="channels_first")
    global_setting = ours(x.transpose(TO_FIRST).copy())  # data_format=None: the global channels_first
    for got in (explicit, global_setting):
        np.testing.assert_allclose(np.asarray(got).transpose(TO_LAST), expected, rtol=1e-6, atol=1e-5)
    tensor = ours(keras.ops.convert_to_tensor(x.transpose(TO_FIRST)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor).transpose(TO_LAST), expected, rtol=1e-6, atol=1e-5)


def test_preprocess_input_rejects_unknown_data_format():
    with pytest.raises(ValueError, match=r"`data_format` must be None .*'channels_first' or 'channels_last'\. "
                                         r"Received: data_format='nchw'"):
        kapps.preprocess_input(np.zeros((1, 2, 2, 3)), data_format="nchw")


@pytest.mark.parametrize("app, family", [(kapps.ConvNeXtTiny, "ConvNeXt"), (kapps.DenseNet121, "DenseNet"),
                                         (kapps.NASNetMobile, "NASNet")])
def test_channels_first_refused_as_keras_refuses(channels_first, app, family):
    with pytest.raises(ValueError, match=rf"^{family} does not support the `channels_first` image data format\. "
                                         r"Switch to `channels_last`.*Received: image_data_format='channels_first'"):
        app(weights=None, include_top=False, input_shape=(3, 64, 64))


def test_input_shape_errors_name_the_channels_first_layout(channels_first):
    with pytest.raises(ValueError, match=r"`input_shape` must be 3-channel \(3, rows, cols\) when weights='imagenet'"):
        kapps.MobileNetV2(weights="imagenet", include_top=False, input_shape=(1, 96, 96))
    with pytest.raises(ValueError, match=r"\(3, 224, 224\) when include_top=True and weights='imagenet'"):
        kapps.MobileNet(input_shape=(3, 200, 200))
