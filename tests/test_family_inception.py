"""InceptionV3 and InceptionResNetV2, and the inception blocks they are built from.

Numerical parity with keras.applications is in tests/test_parity.py (-k inception);
here: the exact graph (every layer name, in keras.applications' order, and the weight
order that legacy weight files rely on), loading a weight file written in Keras'
legacy layout by name into both builders, the Sequential structure, and the blocks.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kapps
from kapps.blocks import (
    AutoNames, Conv, ConvBNAct, Fork, InceptionModule, Pool, ScaleAdd, ScaledResidual, inception_conv,
    output_channels,
)
from kapps.registry import get_spec
from kapps.weights import write_legacy_h5

MODELS = ("inception_v3", "inception_resnet_v2")
SMALL = (75, 75, 3)


@pytest.fixture(autouse=True)
def _fresh_session():
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


def _reference(name, **kwargs):
    """keras.applications' model, built first in a fresh session (so its automatic names start at 0)."""
    keras.backend.clear_session()
    return getattr(keras.applications, get_spec(name).keras_name)(weights=None, **kwargs)


@pytest.mark.parametrize("name", MODELS)
def test_graph_equals_keras_applications(name):
    """Every layer of keras.applications' model, same name, same order; same weight order."""
    ref = _reference(name, input_shape=SMALL)  # names do not depend on the size
    ref_layers = [(layer.name, type(layer).__name__) for layer in ref.layers[1:]]  # after the InputLayer
    ref_weights = [(w.path, tuple(w.shape)) for w in ref.weights]
    model = kapps.get_model(name, weights=None, input_shape=SMALL)
    layers = [(layer.name, type(layer).__name__) for layer in model.layers[1:]]
    assert [n for n, _ in layers] == [n for n, _ in ref_layers]
    assert layers == ref_layers  # kapps' ScaleAdd is Keras' CustomScaleLayer itself
    assert [(w.path, tuple(w.shape)) for w in model.weights] == ref_weights
    assert model.name == ref.name == name


@pytest.mark.parametrize("name, first_blocks", [
    ("inception_v3", ["stem", "mixed0_module", "mixed1_module"]),
    ("inception_resnet_v2", ["stem", "mixed_5b_module", "block35_1"]),
])
def test_both_builders_load_a_legacy_weight_file_by_layer_name(name, first_blocks, tmp_path):
    """A file in Keras' legacy HDF5 layout, written from keras.applications, loads by name
    into the flat graph and into the Sequential stack of blocks alike."""
    ref = _reference(name, include_top=False, input_shape=SMALL)
    rng = np.random.default_rng(0)
    ref.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") + (1.0 if "variance" in w.path else 0.0)
                     for w in ref.weights])
    path = tmp_path / f"{name}_notop.h5"
    write_legacy_h5(ref, path)
    x = np.random.default_rng(1).uniform(-1, 1, (1, *SMALL)).astype("float32")
    expected = ref(x)
    for builder in ("functional", "sequential"):
        model = kapps.get_model(name, weights=str(path), include_top=False, input_shape=SMALL, builder=builder)
        np.testing.assert_allclose(model(x), expected, atol=1e-4)
        if builder == "sequential":
            assert isinstance(model, keras.Sequential)
            assert [layer.name for layer in model.layers[:3]] == first_blocks


@pytest.mark.parametrize("name, channels", [("inception_v3", 2048), ("inception_resnet_v2", 1536)])
def test_no_top_shapes_and_pooling(name, channels):
    if name == "inception_v3":
        assert kapps.get_model(name, weights=None, include_top=False).output_shape == (None, None, None, channels)
    pooled = kapps.get_model(name, weights=None, include_top=False, pooling="max", input_shape=(139, 139, 3))
    assert pooled.output_shape == (None, channels)
    with pytest.raises(ValueError, match="input_shape"):
        kapps.get_model(name, weights=None, include_top=False, input_shape=(74, 74, 3))


@pytest.mark.fast
@pytest.mark.parametrize("name", MODELS)
def test_metadata(name):
    info = kapps.model_info(name)
    assert info["default_size"] == 299 and info["min_size"] == 75 and info["preprocessing"] == "tf"
    assert (info["top1"], info["top5"]) == {"inception_v3": (77.9, 93.7), "inception_resnet_v2": (80.3, 95.3)}[name]
    assert info["imagenet_weights"] is True and len(info["weight_files"]) == 2
    module = getattr(kapps, name)
    np.testing.assert_allclose(module.preprocess_input(np.array([[[0.0, 127.5, 255.0]]])), [[[-1.0, 0.0, 1.0]]])


@pytest.mark.fast
def test_imagenet_top_needs_the_default_size():
    with pytest.raises(ValueError, match=r"\(299, 299, 3\)"):
        kapps.InceptionV3(input_shape=(224, 224, 3))


# -- blocks -------------------------------------------------------------------------------

@pytest.mark.fast
def test_auto_names_follow_keras_counters():
    names = AutoNames()
    assert [names("conv2d"), names("conv2d"), names("activation"), names("conv2d")] == [
        "conv2d", "conv2d_1", "activation", "conv2d_2"]


@pytest.mark.fast
def test_inception_conv_is_conv_bn_without_scale_relu():
    unit = inception_conv(Conv(8, (1, 7)), AutoNames())
    assert not unit.conv.use_bias and not unit.bn.scale and unit.bn.center
    named = inception_conv(Conv(16), AutoNames(), name="conv_7b")
    assert (named.conv.name, named.bn.name, named.act.name) == ("conv_7b", "conv_7b_bn", "conv_7b_ac")


@pytest.mark.fast
@pytest.mark.parametrize("flat", [True, False])
def test_inception_module_from_table_with_a_fork(flat):
    """Branches concatenate in table order; a Fork concatenates its own sub-branches."""
    names = AutoNames()
    table = (
        (Conv(4),),
        (Conv(3), Fork(((Conv(5, (1, 3)),), (Conv(6, (3, 1)),)), name="inner")),
        (Pool("avg"), Conv(2)),
    )
    module = InceptionModule.from_table(
        table, make_conv=lambda c: inception_conv(c, names), concat_name="outer", name="module",
    )
    assert output_channels(table, 7) == 4 + 5 + 6 + 2
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 7)).astype("float32")
    if flat:
        inputs = keras.Input((6, 6, 7))
        model = keras.Model(inputs, module.apply_flat(inputs))
        assert {"outer", "inner", "conv2d_3"} <= {layer.name for layer in model.layers}
        out = model(x)
    else:
        out = module(x)
    assert tuple(out.shape) == (1, 6, 6, 17)
    first = module.branches[0]
    np.testing.assert_allclose(out[..., :4], first.run(x), atol=1e-6)


@pytest.mark.fast
def test_output_channels_of_a_reduction_keeps_pooled_channels():
    reduction = ((Conv(384, 3, 2, "valid"),), (Pool("max", 3, 2, "valid"),))
    assert output_channels(reduction, 320) == 384 + 320


@pytest.mark.fast
def test_inception_module_needs_two_branches():
    with pytest.raises(ValueError, match="at least two branches"):
        InceptionModule([ConvBNAct(4, 1)])
    with pytest.raises(ValueError, match="kind"):
        Pool("mean")


@pytest.mark.fast
def test_scaled_residual_adds_the_scaled_body():
    body = keras.layers.Dense(3, use_bias=False, kernel_initializer="ones")
    block = ScaledResidual(body, 0.1, activation=None, scale_name="scale", name="res")
    x = np.array([[1.0, 2.0, 3.0]], "float32")
    np.testing.assert_allclose(block(x), x + 0.1 * 6.0, rtol=1e-6)
    relu = ScaledResidual(keras.layers.Dense(3, kernel_initializer="ones"), 1.0, name="res2")
    np.testing.assert_allclose(relu(-x), np.zeros_like(x))
    assert ScaleAdd.from_config(ScaleAdd(0.17, name="s").get_config()).scale == pytest.approx(0.17)
