"""The offline counterpart of Keras' ``test_application_base`` (deselected in test_keras_suite.py).

Keras' test downloads every model's ImageNet file and ``elephant.jpg``; here the real
include-top MobileNet 0.25 file and an elephant photo from ``../shared`` take their
place. The test body is Keras': the model built with ``weights`` classifies the photo
(African_elephant in the top 3) and survives serialization with all its weights.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kapps

WEIGHTS = "weights/mobilenet_2_5_224_tf.converted.h5"
PHOTO = "data/elephant/creative_commons_elephant.jpg"


def _elephant(path, model: keras.Model) -> np.ndarray:
    size = model.input_shape[1:3]
    image = keras.utils.load_img(str(path), target_size=tuple(size))
    return np.expand_dims(keras.utils.img_to_array(image), axis=0)


@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_application_base(shared, builder):
    model = kapps.MobileNet(alpha=0.25, weights=str(shared / WEIGHTS), builder=builder)

    x = kapps.mobilenet.preprocess_input(_elephant(shared / PHOTO, model))
    preds = model.predict(x, verbose=0)
    names = [p[1] for p in kapps.mobilenet.decode_predictions(preds)[0]]
    assert "African_elephant" in names[:3], names

    config = keras.saving.serialize_keras_object(model)
    reconstructed = keras.saving.deserialize_keras_object(config)
    assert len(reconstructed.weights) == len(model.weights)
    assert [w.shape for w in reconstructed.weights] == [w.shape for w in model.weights]
