"""Argument validation, written once for every family, asserted by message.

Each error names the argument, the value received and what is accepted. The checks
that do not depend on the family run for every registered model (they fail before
anything is built, so this is quick).
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

import kapps
from kapps.registry import get_spec

ALL = kapps.list_models()
IMAGENET = [n for n in ALL if kapps.model_info(n)["imagenet_weights"]]


def raises(fragments, fn, **kwargs):
    with pytest.raises(ValueError) as info:
        fn(**kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.mark.parametrize("name", ALL)
def test_bad_weights(name):
    fn = kapps.registry.model_function(name)
    raises(["`weights`", "None", "'imagenet'", "Received: weights='imagenet21k'"], fn, weights="imagenet21k")
    raises(["no such file", "/nonexistent/file.h5"], fn, weights="/nonexistent/file.h5")


@pytest.mark.parametrize("name", IMAGENET)
def test_classes_with_imagenet_top(name):
    fn = kapps.registry.model_function(name)
    raises(["`classes` must be 1000", "include_top=True", "Received: classes=10"], fn, weights="imagenet", classes=10)


@pytest.mark.parametrize("name", ALL)
def test_bad_pooling_builder_and_input_tensor(name):
    fn = kapps.registry.model_function(name)
    raises(["`pooling`", "'avg'", "'max'", "Received: pooling='mean'"], fn, weights=None, include_top=False,
           pooling="mean")
    raises(["`builder`", "'functional'", "'sequential'", "Received: builder='graph'"], fn, weights=None,
           builder="graph")
    raises(["`input_tensor` must be a Keras tensor", "ndarray"], fn, weights=None,
           input_tensor=np.zeros((1, 224, 224, 3)))


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_input_rules(name):
    fn = kapps.registry.model_function(name)
    spec = get_spec(name)
    small = spec.min_size - 1
    raises(["`input_shape`", f"at least {spec.min_size}x{spec.min_size}", f"({small}, {small}, 3)"], fn,
           weights="imagenet", include_top=False, input_shape=(small, small, 3))
    raises(["`input_shape`", "3-channel", "(224, 224, 1)"], fn, weights="imagenet", include_top=False,
           input_shape=(224, 224, 1))
    raises(["`classifier_activation`", "'softmax' or None", "'relu'"], fn, weights="imagenet",
           classifier_activation="relu")


def test_imagenet_top_needs_default_shape():
    raises(["`input_shape`", "(224, 224, 3) when include_top=True", "(200, 200, 3)"], kapps.MobileNet,
           input_shape=(200, 200, 3))


def test_alpha_and_size_without_official_file():
    message = raises(["mobilenet_v2", "alpha=1.4", "resolution=96", "Combinations that exist",
                      "alpha=1.4, resolution=224"], kapps.MobileNetV2, alpha=1.4, include_top=False,
                     input_shape=(96, 96, 3))
    assert "alpha=0.35, resolution=96" in message
    raises(["alpha=0.6", "Combinations that exist"], kapps.MobileNetV2, alpha=0.6)
    raises(["mobilenet", "alpha=0.35", "alpha=0.25, resolution=224"], kapps.MobileNet, alpha=0.35)


def test_family_options():
    raises(["`depth_multiplier` must be 1", "Received: depth_multiplier=2"], kapps.MobileNet, depth_multiplier=2)
    raises(["`alpha` must be a positive number", "Received: alpha=-1"], kapps.MobileNetV2, alpha=-1, weights=None)
    raises(["`dropout`", "[0, 1)", "Received: dropout=1.5"], kapps.MobileNet, dropout=1.5, weights=None)


def test_sequential_refuses_input_tensor():
    tensor = keras.Input((96, 96, 3))
    raises(["`input_tensor` can only be used with builder='functional'"], kapps.MobileNetV2, weights=None,
           input_tensor=tensor, builder="sequential")


def test_input_tensor_is_used_by_functional_builder():
    tensor = keras.Input((128, 128, 3))
    model = kapps.MobileNetV2(weights=None, input_tensor=tensor, include_top=False)
    assert model.inputs[0] is tensor and model.output_shape == (None, 4, 4, 1280)


def test_unknown_model_name():
    with pytest.raises(ValueError, match=re.escape("`name` must be a registered model")):
        kapps.get_model("mobilenet_v9")


def test_keras_names_are_accepted_by_get_model():
    assert kapps.get_model("MobileNetV2", weights=None, alpha=0.35).name == "mobilenetv2_0.35_224"
