"""DenseNet, ConvNeXt and NASNet: signatures, layer names, family rules, pair-passing cells.

Numerical parity at the default and alternative sizes is in tests/test_parity.py; the
cases here are the ones that harness does not reach (small sizes keep them cheap).
"""

from __future__ import annotations

import gc
import inspect

import h5py
import keras
import numpy as np
import pytest

KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY

import kapps
from kapps.blocks import ConvNeXtBlock, LayerScale, NASNetNormalCell, NASNetReductionCell
from kapps.registry import get_spec
from kapps.utils.layers import leaf_layers
from conftest import photo
from parity import compare

TOLERANCE = 1e-4
CONSTRUCTORS = {
    "densenet121": "DenseNet121", "densenet169": "DenseNet169", "densenet201": "DenseNet201",
    "convnext_tiny": "ConvNeXtTiny", "convnext_small": "ConvNeXtSmall", "convnext_base": "ConvNeXtBase",
    "convnext_large": "ConvNeXtLarge", "convnext_xlarge": "ConvNeXtXLarge",
    "nasnet_mobile": "NASNetMobile", "nasnet_large": "NASNetLarge",
}


def _free() -> None:
    keras.backend.clear_session()
    gc.collect()


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_signature_is_keras_plus_keyword_only_builder(name):
    ours = inspect.signature(getattr(kapps, CONSTRUCTORS[name]))
    theirs = inspect.signature(getattr(keras.applications, CONSTRUCTORS[name]))
    params = list(ours.parameters.values())
    assert [(p.name, p.default, p.kind) for p in params[-3:]] == [
        ("builder", "functional", KEYWORD_ONLY), ("features_only", False, KEYWORD_ONLY), ("out_indices", None, KEYWORD_ONLY)]
    assert [(p.name, p.default) for p in params[:-3]] == [(p.name, p.default) for p in theirs.parameters.values()]
    assert get_spec(name).keras_name == CONSTRUCTORS[name]
    assert name in kapps.list_models()


@pytest.mark.fast
@pytest.mark.parametrize("module,names", [
    ("densenet", ["DenseNet121", "DenseNet169", "DenseNet201"]),
    ("convnext", ["ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge"]),
    ("nasnet", ["NASNetMobile", "NASNetLarge"]),
])
def test_family_modules_mirror_keras_applications(module, names):
    family = getattr(kapps, module)
    for name in names + ["preprocess_input", "decode_predictions"]:
        assert hasattr(family, name), (module, name)
    images = photo(32)
    expected = getattr(keras.applications, module).preprocess_input(images.copy())
    np.testing.assert_allclose(family.preprocess_input(images.copy()), expected, rtol=1e-6, atol=1e-5)


# -- DenseNet ------------------------------------------------------------------------------


def test_densenet_sequential_is_stem_dense_blocks_transitions_and_head():
    model = kapps.DenseNet121(weights=None, include_top=False, pooling="max", input_shape=(64, 64, 3),
                              builder="sequential")
    assert [layer.name for layer in model.layers] == [
        "stem", "conv2", "pool2", "conv3", "pool3", "conv4", "pool4", "conv5", "post", "pooling_head"]
    assert model.output_shape == (None, 1024)
    _free()


@pytest.mark.fast
def test_densenet_no_top_pooling_has_keras_names():
    assert kapps.DenseNet121(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3)).layers[-1].name == "avg_pool"
    assert kapps.DenseNet121(weights=None, include_top=False, pooling="max", input_shape=(32, 32, 3)).layers[-1].name == "max_pool"
    _free()


# -- ConvNeXt ------------------------------------------------------------------------------


def test_convnext_without_preprocessing_matches_keras():
    diffs = compare("convnext_tiny", photo(64) / 255.0, include_top=True, classifier_activation=None,
                    include_preprocessing=False, input_shape=(64, 64, 3))
    assert max(diffs.values()) <= TOLERANCE, diffs
    model = kapps.ConvNeXtTiny(weights=None, include_preprocessing=False, include_top=False, input_shape=(32, 32, 3))
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in model.layers)
    _free()


def test_convnext_no_top_without_pooling_keeps_keras_layer_norm():
    diffs = compare("convnext_tiny", photo(64), include_top=False, pooling=None, input_shape=(64, 64, 3))
    assert max(diffs.values()) <= TOLERANCE, diffs
    model = kapps.ConvNeXtTiny(weights=None, include_top=False)
    assert model.input_shape == (None, None, None, 3) and model.layers[-1].name == "layer_normalization"
    _free()


def test_convnext_layer_names_follow_name_like_keras():
    ours = kapps.ConvNeXtTiny(weights=None, name="mine", include_top=False, input_shape=(32, 32, 3))
    theirs = keras.applications.ConvNeXtTiny(weights=None, name="mine", include_top=False, input_shape=(32, 32, 3))
    assert ours.name == "mine"
    assert [layer.name for layer in leaf_layers(ours)] == [layer.name for layer in leaf_layers(theirs)]
    assert "mine_stage_3_block_2_layer_scale" in [layer.name for layer in ours.layers]
    _free()


def test_convnext_imagenet_weights_keep_the_official_layer_names(monkeypatch):
    """With weights='imagenet' the layers carry the file's names whatever ``name`` is."""
    import kapps.models.convnext as family

    seen = {}

    def fake_build_model(spec, options, **arguments):
        seen.update(options, model_name=arguments["name"])
        return None

    monkeypatch.setattr(family, "build_model", fake_build_model)
    kapps.ConvNeXtTiny(name="my_convnext")
    assert seen["prefix"] == "convnext_tiny" and seen["model_name"] == "my_convnext"
    kapps.ConvNeXtTiny(weights=None, name="my_convnext")
    assert seen["prefix"] == "my_convnext"


@pytest.mark.fast
def test_convnext_rejects_a_non_boolean_include_preprocessing():
    with pytest.raises(ValueError, match=r"`include_preprocessing` must be True or False. Received: include_preprocessing='yes'"):
        kapps.ConvNeXtTiny(weights=None, include_preprocessing="yes")


def test_convnext_loads_a_legacy_file_with_nested_stem_groups(tmp_path):
    """Keras' ConvNeXt files keep the stem and downsampling layers inside nested groups."""
    from keras.src.legacy.saving import legacy_h5_format

    ref = keras.applications.ConvNeXtTiny(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    rng = np.random.default_rng(1)
    ref.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in ref.weights])
    path = tmp_path / "convnext_tiny_notop.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, ref)
    with h5py.File(path, "r") as f:  # the layout under test: one group for the whole stem
        assert "convnext_tiny_stem" in f and "convnext_tiny_stem_conv" not in f
    x = photo(32)
    expected = np.asarray(ref(x))
    for builder in ("functional", "sequential"):
        ours = kapps.ConvNeXtTiny(weights=str(path), include_top=False, pooling="avg", input_shape=(32, 32, 3),
                                  builder=builder)
        assert np.max(np.abs(np.asarray(ours(x)) - expected)) <= TOLERANCE
    _free()


@pytest.mark.fast
def test_convnext_block_layer_scale_and_stochastic_depth():
    block = ConvNeXtBlock(8, drop_path_rate=0.5, layer_scale_init_value=1e-6, names="b_")
    x = np.random.default_rng(0).normal(size=(64, 4, 4, 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(block(x, training=False)), np.asarray(block(x, training=False)))
    trained = np.asarray(block(x, training=True))
    kept = [not np.allclose(trained[i], x[i]) for i in range(64)]
    assert 0 < sum(kept) < 64, "stochastic depth drops whole samples, some but not all"
    assert block.scale.name == "b_layer_scale" and block.drop.name == "b_stochastic_depth"
    np.testing.assert_allclose(block.scale.get_weights()[0], np.full(8, 1e-6, "float32"))
    assert ConvNeXtBlock(8, names="c_").drop.name == "c_identity"
    assert ConvNeXtBlock(8, layer_scale_init_value=None, names="d_").scale is None
    with pytest.raises(ValueError, match="drop_path_rate"):
        ConvNeXtBlock(8, drop_path_rate=1.5)
    assert LayerScale(0.1, 3).get_config()["init_values"] == 0.1


# -- NASNet --------------------------------------------------------------------------------


def test_nasnet_sequential_cells_pass_pairs_and_match_keras_at_an_odd_size():
    model = kapps.NASNetMobile(weights=None, include_top=False, input_shape=(67, 67, 3), builder="sequential")
    cells = [layer for layer in model.layers if isinstance(layer, (NASNetNormalCell, NASNetReductionCell))]
    assert len(cells) == 2 + 4 * 3 + 2
    assert model.layers[0].name == "stem" and model.layers[-1].name == "final_relu"
    first = cells[0](np.zeros((1, 33, 33, 32), "float32"))
    assert isinstance(first, tuple) and len(first) == 2
    assert not cells[-1].return_pair
    _free()
    diffs = compare("nasnet_mobile", photo(67), include_top=False, pooling="avg", input_shape=(67, 67, 3))
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_nasnet_top_without_weights_at_another_size_follows_keras():
    """keras.applications accepts include_top=True at any size when weights=None."""
    diffs = compare("nasnet_mobile", photo(96), include_top=True, classifier_activation=None, input_shape=(96, 96, 3))
    assert max(diffs.values()) <= TOLERANCE, diffs
    with pytest.raises(ValueError, match=r"`input_shape` must be \(224, 224, 3\) when include_top=True and weights='imagenet'"):
        kapps.NASNetMobile(input_shape=(96, 96, 3))


def test_nasnet_default_input_shapes_without_top():
    assert kapps.NASNetMobile(weights=None, include_top=False).input_shape == (None, 224, 224, 3)
    _free()
    # keras.applications builds NASNetLarge on (None, None, 3) here, a model that cannot run;
    # kapps uses the default size (checked without building the 89M-parameter model).
    import kapps.models.nasnet as family
    assert family._static_input_shape("nasnet_large", None, None, include_top=False) == (331, 331, 3)
    assert family._static_input_shape("nasnet_large", (200, 200, 3), None, include_top=False) == (200, 200, 3)
    assert family._static_input_shape("nasnet_large", None, None, include_top=True) is None


@pytest.mark.fast
@pytest.mark.parametrize("weights", [None, "imagenet"])
def test_nasnet_refuses_unknown_spatial_sizes(weights):
    with pytest.raises(ValueError, match=r"`input_shape` must be static \(no None entries\).*Received: input_shape=\(None, None, 3\)"):
        kapps.NASNetMobile(weights=weights, include_top=False, input_shape=(None, None, 3))
