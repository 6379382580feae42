"""One way to write a model: explicit constructors that bind their arguments to the spec.

Every registered constructor is a real function of its family module whose parameters
are the standard keras.applications arguments plus the family's typed options; the
spec's metadata (preprocessing, default names, input-size rules) derives from one
statement each. Nothing here builds a large model.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import kapps
from kapps.factory import static_input_shape
from kapps.registry import STANDARD_ARGUMENTS, Options, get_spec, model_function

ALL = kapps.list_models()

#: Each family's preprocessing mode before the refactor (it was stated in every spec).
PREPROCESSING = {
    "alexnet": "torch", "convnext": "none", "densenet": "torch", "efficientnet": "none", "efficientnet_v2": "none",
    "googlenet": "tf", "inception_resnet_v2": "tf", "inception_v3": "tf", "lenet": "tf", "mobilenet": "tf",
    "mobilenet_v2": "tf", "mobilenet_v3": "none", "nasnet": "tf", "regnet": "none", "resnet": "caffe",
    "resnet_rs": "none", "resnet_v2": "tf",
    "vgg16": "caffe", "vgg19": "caffe", "xception": "tf",
    "resnet_basic": "torch", "squeezenet": "torch", "shufflenet_v2": "torch",  # torchvision's (issue 12)
    "vision_transformer": "torch", "swin_transformer": "torch", "inception_v4": "tf", "inception_resnet_v1": "tf",
}  # alexnet was "tf" until torchvision's AlexNet weights (issue 12): its preprocess_input fits them


@pytest.mark.parametrize("name", ALL)
def test_constructor_is_a_documented_function_of_its_family(name):
    spec, fn = get_spec(name), model_function(name)
    assert inspect.isfunction(fn) and fn.__name__ == spec.keras_name
    assert fn.__module__ == f"kapps.models.{spec.family}"
    assert getattr(kapps, spec.keras_name) is fn
    assert ">>> " in fn.__doc__
    for keyword in ("builder", "features_only", "out_indices"):  # what kapps adds is keyword-only
        assert inspect.signature(fn).parameters[keyword].kind is inspect.Parameter.KEYWORD_ONLY, keyword


@pytest.mark.parametrize("name", ALL)
def test_default_arguments_bind_to_the_family_options(name):
    spec = get_spec(name)
    arguments = spec.bind(spec.constructor_defaults())
    assert arguments["spec"] is spec
    assert isinstance(arguments["options"], spec.options) and dataclasses.is_dataclass(arguments["options"])
    assert set(arguments) == {"spec", "options", *STANDARD_ARGUMENTS}
    assert {k: v for k, v in arguments["options"].items() if k in spec.fixed} == dict(spec.fixed)


@pytest.mark.parametrize("name", ALL)
def test_preprocessing_is_stated_once_per_family(name):
    spec = get_spec(name)
    assert spec.preprocessing == getattr(kapps, spec.family).preprocess_input.mode == PREPROCESSING[spec.family]
    assert kapps.model_info(name)["preprocessing"] == PREPROCESSING[spec.family]


def test_a_parameter_that_is_no_option_is_refused():
    spec = get_spec("resnet50")
    with pytest.raises(TypeError, match="alpha"):
        spec.bind({**spec.constructor_defaults(), "alpha": 0.5})


def test_plain_mappings_take_the_signature_defaults():
    options = get_spec("mobilenet_v3_large").options_of({"alpha": 0.75})
    assert (options.size, options.alpha, options.minimalistic, options.dropout_rate, options.include_preprocessing) \
        == ("large", 0.75, False, 0.2, True)
    assert get_spec("mobilenet_v2").options_of({}) == get_spec("mobilenet_v2").options(alpha=1.0)


def test_options_read_as_a_mapping():
    options = get_spec("resnet101").options_of({})
    assert dict(options) == {"depths": (3, 4, 23, 3)} and options["depths"] == options.depths
    with pytest.raises(KeyError, match="blocks"):
        options["blocks"]
    assert isinstance(options, Options) and len(options) == 1


@pytest.mark.parametrize("name, shape, weights, expected", [
    ("resnet50_v2", (224, 224, 3), None, "resnet50v2"),
    ("efficientnet_v2_s", (384, 384, 3), "imagenet", "efficientnetv2-s"),
    ("mobilenet_v3_small", (224, 224, 3), None, "MobileNetV3Small"),
    ("mobilenet_v2", (160, 160, 3), "imagenet", "mobilenetv2_1.00_160"),
    ("mobilenet_v2", (100, 100, 3), "imagenet", "mobilenetv2_1.00_224"),
    ("mobilenet", (100, 100, 3), None, "mobilenet_1.00_100"),
])
def test_default_model_names(name, shape, weights, expected):
    assert get_spec(name).default_model_name({}, shape, weights) == expected


def test_default_size_follows_the_width_resolution_rule():
    spec = get_spec("mobilenet_v2")
    assert [spec.default_size_for({}, shape) for shape in [(160, 160, 3), (100, 100, 3), None]] == [160, 224, 224]
    assert get_spec("resnet50").default_size_for({}, (100, 100, 3)) == 224


def test_static_input_rule_is_the_factory_s():
    large = get_spec("nasnet_large")
    assert large.static_input and not get_spec("resnet50").static_input
    assert static_input_shape(large, None, None, include_top=False) == (331, 331, 3)
    assert static_input_shape(large, None, None, include_top=True) is None
    with pytest.raises(ValueError, match=r"`input_shape` must be static .*Received: input_shape=\(None, 64, 3\)"):
        static_input_shape(large, (None, 64, 3), (None, 64, 3), include_top=False)


def test_convnext_options_derive_the_layer_prefix():
    spec = get_spec("convnext_tiny")
    defaults = spec.constructor_defaults()
    assert spec.bind({**defaults, "name": "mine"})["options"].prefix == "convnext_tiny"  # ImageNet: file names
    assert spec.bind({**defaults, "name": "mine", "weights": None})["options"].prefix == "mine"


def test_model_without_imagenet_weights_refuses_them_first():
    """Before the other checks (here: classes=10 with the ImageNet top), as the classics did."""
    with pytest.raises(ValueError, match="`weights` must be None or a file path for lenet5: it has no official"):
        kapps.LeNet5(weights="imagenet", classes=7, input_shape=(10, 10, 3))
