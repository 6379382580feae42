"""ResNet (v1, v2), VGG and Xception: what the generic parity and registry tests do not cover.

Layer names and weight order equal keras.applications' (Functional builder), the
Sequential builder is a keras.Sequential of blocks, the family modules mirror
keras.applications' (``preprocess_input`` included), signatures, one registration per
model, the architecture tables, weight-file round trips by layer name and the blocks.
"""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

import kapps
from kapps import blocks
from kapps.registry import get_spec
from kapps.utils.layers import leaf_layers
from kapps.weights.h5io import write_legacy_h5
from conftest import photo
from parity import keras_reference, randomize_batch_norm

MODELS = {
    "resnet50": ("resnet", "ResNet50"),
    "resnet101": ("resnet", "ResNet101"),
    "resnet152": ("resnet", "ResNet152"),
    "resnet50_v2": ("resnet_v2", "ResNet50V2"),
    "resnet101_v2": ("resnet_v2", "ResNet101V2"),
    "resnet152_v2": ("resnet_v2", "ResNet152V2"),
    "vgg16": ("vgg16", "VGG16"),
    "vgg19": ("vgg19", "VGG19"),
    "xception": ("xception", "Xception"),
}
FAMILY_MODULES = ("resnet", "resnet50", "resnet_v2", "vgg16", "vgg19", "xception")


def small_size(name: str) -> int:
    return max(get_spec(name).min_size, 64)


def layer_names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


@pytest.fixture(autouse=True)
def _fresh_session():
    """Keras' unnamed layers (Xception's shortcuts, ResNetV2's pools) get fresh-session names."""
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


# -- registry, modules, signatures ------------------------------------------------------
@pytest.mark.fast
def test_each_model_is_registered_once_under_its_keras_name():
    registered = {name: get_spec(name).keras_name for name in kapps.list_models()}
    for name, (_, keras_name) in MODELS.items():
        assert registered[name] == keras_name
    assert sorted(registered.values()).count("ResNet50") == 1
    assert kapps.__all__.count("ResNet50") == 1


@pytest.mark.fast
@pytest.mark.parametrize("name", MODELS)
def test_constructor_is_reachable_like_keras_applications(name):
    module, function = MODELS[name]
    assert getattr(getattr(kapps, module), function) is getattr(kapps, function)
    assert kapps.registry.model_function(name) is getattr(kapps, function)


@pytest.mark.fast
def test_resnet50_module_mirrors_keras_resnet50():
    assert kapps.resnet50.ResNet50 is kapps.resnet.ResNet50
    assert kapps.resnet50.preprocess_input is kapps.resnet.preprocess_input
    assert set(kapps.resnet50.__all__) == {"ResNet50", "preprocess_input", "decode_predictions"}


@pytest.mark.fast
@pytest.mark.parametrize("name", MODELS)
def test_signature_is_keras_plus_keyword_only_builder(name):
    _, function = MODELS[name]
    ours = inspect.signature(getattr(kapps, function)).parameters
    theirs = inspect.signature(getattr(keras.applications, function)).parameters
    positional = [p for p in ours.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert [(p.name, p.default) for p in positional] == [(p.name, p.default) for p in theirs.values()]
    assert ours["builder"].kind is inspect.Parameter.KEYWORD_ONLY and ours["builder"].default == "functional"


@pytest.mark.fast
@pytest.mark.parametrize("module", FAMILY_MODULES)
def test_preprocess_input_equals_keras_on_a_real_photo(module):
    image = photo(224)
    ours = np.asarray(getattr(kapps, module).preprocess_input(image.copy()))
    theirs = np.asarray(getattr(keras.applications, module).preprocess_input(image.copy()))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    assert not np.allclose(ours, image)  # every one of these families preprocesses


@pytest.mark.fast
def test_decode_predictions_is_the_imagenet_one():
    preds = np.zeros((1, 1000), "float32")
    preds[0, 281] = 1.0
    for module in FAMILY_MODULES:
        assert getattr(kapps, module).decode_predictions(preds, top=1)[0][0][1] == "tabby"


# -- architecture tables --------------------------------------------------------------
@pytest.mark.fast
def test_tables_are_the_published_configurations():
    assert kapps.resnet.DEPTHS == {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}
    assert [sum(convs for _, convs in kapps.vgg16.CONFIGS[n]) for n in ("vgg16", "vgg19")] == [13, 16]


@pytest.mark.parametrize("name", ["resnet101", "resnet152_v2"])
def test_one_residual_block_per_table_entry(name):
    model = kapps.get_model(name, weights=None, include_top=False, input_shape=(64, 64, 3))
    depths = kapps.resnet.DEPTHS[name.replace("_v2", "")]
    outputs = [n for n in layer_names(model) if n.endswith("_out")]
    for stage, depth in enumerate(depths, start=2):
        assert len([n for n in outputs if n.startswith(f"conv{stage}_")]) == depth


def test_default_model_names_are_keras():
    for name, (_, function) in MODELS.items():
        spec = get_spec(name)
        assert spec.default_model_name({}, (224, 224, 3), None) == function.lower()


# -- Functional builder: keras.applications' layers ----------------------------------------
#: Every layer's name, weightless ones included, on one model per family with its top and
#: on ResNet50's pooled heads. (Every model's weighted layers and weights: tests/test_parity.py.)
HEADS = [(name, dict(include_top=True, classes=7)) for name in ("resnet50", "resnet50_v2", "vgg16", "xception")] + [
    ("resnet50", dict(include_top=False, pooling=pooling)) for pooling in ("avg", "max")]


@pytest.mark.parametrize("name, head", HEADS)
def test_functional_layers_and_weights_equal_keras(name, head):
    size = small_size(name)
    kwargs = dict(weights=None, input_shape=(size, size, 3), **head)
    ref = keras_reference(name, **kwargs)
    model = kapps.get_model(name, **kwargs)
    assert layer_names(model) == layer_names(ref)
    assert [(w.path, tuple(w.shape)) for w in model.weights] == [(w.path, tuple(w.shape)) for w in ref.weights]
    assert model.name == ref.name


# -- Sequential builder: a keras.Sequential of blocks ----------------------------------------
SEQUENTIAL_BLOCKS = {
    "resnet50": ["stem", "conv2", "conv3", "conv4", "conv5", "classifier"],
    "resnet50_v2": ["stem", "conv2", "conv3", "conv4", "conv5", "post_activation", "classifier"],
    "vgg16": ["block1", "block2", "block3", "block4", "block5", "classifier"],
    "xception": ["block1", *[f"block{i}" for i in range(2, 14)], "block14", "classifier"],
}


@pytest.mark.parametrize("name", SEQUENTIAL_BLOCKS)
def test_sequential_builder_is_a_sequential_of_blocks(name):
    size = small_size(name)
    seq = kapps.get_model(name, weights=None, builder="sequential", input_shape=(size, size, 3), classes=5)
    flat = kapps.get_model(name, weights=None, input_shape=(size, size, 3), classes=5)
    assert isinstance(seq, keras.Sequential)
    assert all(isinstance(layer, blocks.Block) for layer in seq.layers)
    assert [layer.name for layer in seq.layers] == SEQUENTIAL_BLOCKS[name]
    # The blocks' weighted sub-layers carry the Functional (= Keras) names.
    assert sorted(layer.name for layer in leaf_layers(seq)) == sorted(layer.name for layer in leaf_layers(flat))
    assert seq.count_params() == flat.count_params()


# -- weights by layer name ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["resnet50", "resnet50_v2", "vgg16", "xception"])
def test_a_keras_weight_file_loads_by_name_into_both_builders(name, tmp_path):
    size = small_size(name)
    kwargs = dict(include_top=False, pooling="avg", input_shape=(size, size, 3))
    ref = keras_reference(name, weights=None, **kwargs)
    randomize_batch_norm(ref)
    path = tmp_path / f"{name}_notop.h5"
    write_legacy_h5(ref, path)
    x = getattr(kapps, get_spec(name).family).preprocess_input(photo(size))
    expected = np.asarray(ref(x, training=False))
    for builder in ("functional", "sequential"):
        model = kapps.get_model(name, weights=str(path), builder=builder, **kwargs)
        np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, rtol=0, atol=1e-4)


# -- validation ----------------------------------------------------------------------------
@pytest.mark.fast
def test_xception_refuses_inputs_below_71_pixels():
    with pytest.raises(ValueError, match=r"input_shape.*71x71"):
        kapps.Xception(weights=None, include_top=False, input_shape=(64, 64, 3))


@pytest.mark.fast
@pytest.mark.parametrize("function", ["ResNet50", "ResNet50V2", "VGG16", "Xception"])
def test_imagenet_top_needs_the_default_size(function):
    with pytest.raises(ValueError, match="input_shape"):
        getattr(kapps, function)(weights="imagenet", include_top=True, input_shape=(160, 160, 3))


@pytest.mark.fast
def test_resnet_accepts_any_size_without_top():
    model = kapps.ResNet50(weights=None, include_top=False, input_shape=(97, 131, 3), builder="sequential")
    assert model.output_shape == (None, 4, 5, 2048)


# -- blocks ----------------------------------------------------------------------------------
@pytest.mark.fast
def test_bottleneck_identity_and_projection_shortcuts():
    identity = blocks.Bottleneck(8, conv_shortcut=False, names="id_")
    assert identity.shortcut is None
    assert tuple(identity(np.ones((1, 6, 6, 32), "float32")).shape) == (1, 6, 6, 32)
    projection = blocks.Bottleneck(8, strides=2, names="proj_")
    assert projection.shortcut.conv.name == "proj_0_conv"
    assert tuple(projection(np.ones((1, 6, 6, 16), "float32")).shape) == (1, 3, 3, 32)


@pytest.mark.fast
def test_preact_bottleneck_subsamples_its_identity_with_a_pool():
    block = blocks.PreActBottleneck(8, strides=2, names="b_", pool_name="b_pool")
    assert isinstance(block.shortcut, keras.layers.MaxPooling2D) and block.shortcut.name == "b_pool"
    assert tuple(block(np.ones((1, 7, 7, 32), "float32")).shape) == (1, 4, 4, 32)


@pytest.mark.fast
def test_separable_stack_identity_and_downsampling():
    identity = blocks.SeparableStack((16, 16, 16), names="mid_")
    assert identity.shortcut is None
    assert tuple(identity(np.ones((1, 5, 5, 16), "float32")).shape) == (1, 5, 5, 16)
    down = blocks.SeparableStack((8, 24), downsample=True, names="down_")
    assert [u.conv.name for u in down.body.parts[:2]] == ["down_sepconv1", "down_sepconv2"]
    assert tuple(down(np.ones((1, 9, 9, 4), "float32")).shape) == (1, 5, 5, 24)


@pytest.mark.fast
def test_separable_unit_pads_like_same_before_a_strided_valid_conv():
    x = np.random.default_rng(0).normal(size=(1, 9, 9, 3)).astype("float32")
    padded = blocks.SeparableConvBN(4, 3, 2, padding="pad_then_valid", names="p_")
    same = blocks.SeparableConvBN(4, 3, 2, padding="same", names="s_")
    same(x)
    padded(x)
    padded.conv.set_weights(same.conv.get_weights())
    assert padded.pad is not None
    np.testing.assert_allclose(np.asarray(padded(x)), np.asarray(same(x)), atol=1e-6)


@pytest.mark.fast
def test_flatten_dense_classifier_with_dropout():
    head = blocks.FlattenDenseClassifier(3, hidden_units=(8,), dropout=0.5, activation=None)
    assert [d.name for d in head.dropouts] == ["fc1_dropout"]
    x = np.ones((2, 2, 2, 4), "float32")
    np.testing.assert_allclose(np.asarray(head(x, training=False)), np.asarray(head(x, training=False)))
    with pytest.raises(ValueError, match="hidden_names"):
        blocks.FlattenDenseClassifier(3, hidden_units=(8, 8), hidden_names=("a",))
