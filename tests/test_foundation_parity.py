"""Issue 2 parity: MobileNetV2 and MobileNet against keras.applications, both builders.

MobileNetV2 at alpha 0.35/1.0/1.4 and 96/160/224 px (each alpha and each size once), with the
ImageNet top and without (avg and max pooling); MobileNet at alpha 0.25 and 1.0. Weights (with
randomized BatchNorm statistics) are copied by name; the input is a real photo.
"""

from __future__ import annotations

import pytest

from conftest import photo
from parity import compare

TOLERANCE = 1e-5
HEADS = [dict(include_top=True, classifier_activation=None), dict(include_top=False, pooling="avg"),
         dict(include_top=False, pooling="max")]


@pytest.mark.parametrize("alpha, size", [(0.35, 160), (1.0, 224), (1.4, 96)])
def test_mobilenet_v2(alpha, size):
    images = photo(size)
    for head in HEADS:
        diffs = compare("mobilenet_v2", images, alpha=alpha, input_shape=(size, size, 3), **head)
        assert max(diffs.values()) <= TOLERANCE, (head, diffs)


@pytest.mark.parametrize("alpha", [0.25, 1.0])
def test_mobilenet(alpha):
    images = photo(224)
    for head in HEADS:
        diffs = compare("mobilenet", images, alpha=alpha, depth_multiplier=1, **head)
        assert max(diffs.values()) <= TOLERANCE, (head, diffs)


def test_functional_builder_reproduces_keras_layer_names_and_weight_order():
    import keras

    import kapps

    for name, fn in (("mobilenet_v2", keras.applications.MobileNetV2), ("mobilenet", keras.applications.MobileNet)):
        ours = kapps.get_model(name, weights=None)
        ref = fn(weights=None)
        auto = ("input_layer", "global_average_pooling2d")
        strip = lambda m: [l.name for l in m.layers if not l.name.startswith(auto)]
        assert strip(ours) == strip(ref)
        assert [w.path for w in ours.weights] == [w.path for w in ref.weights]
        assert ours.name == ref.name


def test_sequential_builder_is_a_sequential_of_blocks():
    import keras

    import kapps
    from kapps.blocks import Block, InvertedResidual

    model = kapps.MobileNetV2(weights=None, builder="sequential")
    assert isinstance(model, keras.Sequential)
    assert all(isinstance(layer, Block) for layer in model.layers)
    assert sum(isinstance(layer, InvertedResidual) for layer in model.layers) == 17
    assert [l.name for l in model.layers][:2] == ["stem", "expanded_conv_unit"]
