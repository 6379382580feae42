"""EfficientNet, EfficientNetV2 and MobileNetV3: signatures, tables, names, preprocessing, weights.

Numerical parity of every model at full size is in test_parity.py; these tests are
small and check what that generic harness cannot see (keras' signatures, the in-model
preprocessing with ImageNet statistics, loading a weight file by name, the variants).
"""

from __future__ import annotations

import inspect
import math

import keras
import numpy as np
import pytest

import kapps
from kapps.blocks import FusedMBConv, InvertedResidual, MBConv, SqueezeExcite, squeeze_channels
from kapps.factory import imagenet_file
from kapps.models import efficientnet, efficientnet_v2, mobilenet_v3
from kapps.registry import get_spec
from kapps.utils.layers import leaf_layers, set_layer_weights
from kapps.weights.h5io import load_weights_by_name, write_legacy_h5
from conftest import photo

EFFICIENTNET = [f"EfficientNetB{i}" for i in range(8)]
EFFICIENTNET_V2 = [f"EfficientNetV2{v}" for v in ("B0", "B1", "B2", "B3", "S", "M", "L")]
MOBILENET_V3 = ["MobileNetV3Small", "MobileNetV3Large"]


def weighted(model: keras.Model) -> list[tuple[str, tuple]]:
    return [(layer.name, tuple(tuple(w.shape) for w in layer.weights)) for layer in leaf_layers(model)]


@pytest.fixture(autouse=True)
def _fresh_session():
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


@pytest.mark.fast
@pytest.mark.parametrize("keras_name", EFFICIENTNET + EFFICIENTNET_V2 + MOBILENET_V3)
def test_signature_is_keras_plus_keyword_only_builder(keras_name):
    ours = inspect.signature(getattr(kapps, keras_name)).parameters
    theirs = inspect.signature(getattr(keras.applications, keras_name)).parameters
    assert [(p.name, p.default) for p in theirs.values()] == [
        (p.name, p.default) for p in ours.values() if p.name not in ("builder", "features_only", "out_indices")
    ]
    assert ours["builder"].kind is inspect.Parameter.KEYWORD_ONLY and ours["builder"].default == "functional"


@pytest.mark.fast
def test_efficientnet_scaling_rules():
    # B0's table unchanged; B7: width 2.0, depth 3.1.
    assert [efficientnet.round_filters(f, 1.0) for f in (32, 16, 320, 1280)] == [32, 16, 320, 1280]
    assert [efficientnet.round_filters(f, 2.0) for f in (32, 1280)] == [64, 2560]
    assert efficientnet.round_filters(16, 1.1) == 16  # 17.6 rounds to 16 (within 10%)
    assert efficientnet.round_filters(24, 1.4) == 32  # 33.6 rounds to 32
    assert [efficientnet.round_repeats(s.repeats, 3.1) for s in efficientnet.STAGES] == [4, 7, 7, 10, 10, 13, 4]
    blocks = efficientnet.body(efficientnet.EfficientNetOptions(**{"variant": "b7", "imagenet_weights": False}), (64, 64, 3))
    mbconvs = [b for b in blocks if isinstance(b, MBConv)]
    assert len(mbconvs) == 55 and mbconvs[-1].name == "block7d_unit"
    # stochastic depth grows linearly: block k of n has rate 0.2 * k / n.
    assert mbconvs[1].drop is not None and math.isclose(mbconvs[1].drop.rate, 0.2 * 1 / 55)
    assert mbconvs[0].drop is None and mbconvs[0].add is None  # 64 -> 32 channels: no residual


@pytest.mark.fast
def test_efficientnet_v2_scaling_rules():
    # No 10% rule in V2: 16 * 1.2 = 19.2 rounds down to 16 (V1's rule would give 24).
    assert efficientnet_v2.round_filters(16, 1.2) == 16
    assert efficientnet.round_filters(16, 1.2) == 24
    assert efficientnet_v2.round_filters(1280, 1.1) == 1408
    blocks = efficientnet_v2.body(efficientnet_v2.EfficientNetV2Options(**{"variant": "b3", "include_preprocessing": True}), (64, 64, 3))
    fused = [b for b in blocks if isinstance(b, FusedMBConv)]
    mbconv = [b for b in blocks if isinstance(b, MBConv)]
    assert (len(fused), len(mbconv)) == (2 + 3 + 3, 5 + 7 + 12)
    # keras.applications spreads stochastic depth over the *unscaled* count (21 for B0's table).
    last = mbconv[-1]
    assert math.isclose(last.drop.rate, 0.2 * 31 / 21)
    assert mbconv[0].depthwise.conv.name == "block4a_dwconv2" and mbconv[0].depthwise.pad is None


@pytest.mark.fast
def test_mobilenet_v3_minimalistic_table():
    full = mobilenet_v3.body({"size": "large", "alpha": 1.0, "minimalistic": False, "include_preprocessing": True},
                             (224, 224, 3))
    minimal = mobilenet_v3.body({"size": "large", "alpha": 1.0, "minimalistic": True, "include_preprocessing": True},
                                (224, 224, 3))
    full_blocks = [b for b in full if isinstance(b, InvertedResidual)]
    minimal_blocks = [b for b in minimal if isinstance(b, InvertedResidual)]
    assert len(full_blocks) == len(minimal_blocks) == 15
    assert sum(b.squeeze_excite is not None for b in full_blocks) == 8
    assert all(b.squeeze_excite is None for b in minimal_blocks)
    assert {b.depthwise.conv.kernel_size for b in minimal_blocks} == {(3, 3)}
    assert full_blocks[3].squeeze_excite.reduce.filters == squeeze_channels(72, 0.25, divisor=8) == 24


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("efficientnet_b3", dict(include_top=False, input_shape=(65, 71, 3))),
        ("efficientnet_v2_s", dict(include_top=False, input_shape=(64, 64, 3), include_preprocessing=False)),
        ("mobilenet_v3_large", dict(input_shape=(96, 96, 3), minimalistic=True)),
        ("mobilenet_v3_large", dict(include_top=False, input_shape=(97, 97, 3), alpha=0.75)),
        ("mobilenet_v3_small", dict(input_shape=(64, 64, 3), alpha=1.5, dropout_rate=0.0)),
    ],
)
def test_weighted_layers_equal_keras(name, kwargs):
    """Same weighted layers (names, shapes, order) as keras.applications, so files load by name,
    for the options that change the graph (plain models: tests/test_parity.py)."""
    reference = getattr(keras.applications, get_spec(name).keras_name)(weights=None, **kwargs)
    expected = weighted(reference)
    functional = kapps.get_model(name, weights=None, **kwargs)
    assert weighted(functional) == expected
    assert functional.name == reference.name
    sequential = kapps.get_model(name, weights=None, builder="sequential", **kwargs)
    assert sorted(weighted(sequential)) == sorted(expected)
    # Layers without weights keep keras' names too, where keras names them.
    ours = {layer.name for layer in functional.layers}
    named = {layer.name for layer in reference.layers if not layer.name.startswith(
        ("input_layer", "re_lu", "activation", "global_average_pooling2d", "dropout", "flatten", "add", "multiply"))}
    assert named <= ours


def _efficientnet_reference_with_statistics(size: int) -> keras.Model:
    """keras' EfficientNetB0 with random BatchNorm and ImageNet-like normalization statistics."""
    from parity import randomize_batch_norm

    reference = keras.applications.EfficientNetB0(weights=None, include_top=False, input_shape=(size, size, 3))
    randomize_batch_norm(reference)
    # its one Normalization layer (Keras' auto-name counts per process: "normalization_3" after other builds)
    norm = next(layer for layer in reference.layers if type(layer) is keras.layers.Normalization)
    norm.set_weights([np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]), np.array(1)])
    norm.finalize_state()  # keras refreshes its cached statistics only when it loads a file itself
    return reference


@pytest.fixture(scope="module")
def efficientnet_file(tmp_path_factory):
    """keras' EfficientNetB0 (64 px, with statistics) saved in the legacy layout, and its output on a photo."""
    size = 64
    keras.backend.clear_session()
    reference = _efficientnet_reference_with_statistics(size)
    path = tmp_path_factory.mktemp("efficientnet") / "efficientnetb0_notop.h5"
    write_legacy_h5(reference, path)
    x = photo(size)
    return path, x, np.asarray(reference(x, training=False))


@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_efficientnet_loads_a_weight_file_with_normalization_statistics(efficientnet_file, builder):
    path, x, expected = efficientnet_file
    size = x.shape[1]
    model = kapps.EfficientNetB0(weights=str(path), include_top=False, input_shape=(size, size, 3), builder=builder)
    assert np.max(np.abs(np.asarray(model(x, training=False)) - expected)) <= 1e-4


@pytest.mark.fast
def test_efficientnet_imagenet_stem_undoes_the_variance_stored_as_stddev():
    """With weights='imagenet' keras adds ``rescaling_1``: the files hold the std as variance."""
    blocks = efficientnet.body(efficientnet.EfficientNetOptions(**{"variant": "b0", "imagenet_weights": True}), (32, 32, 3))
    stem = blocks[0]
    assert [layer.name for layer in stem.parts] == ["rescaling", "normalization", "rescaling_1"]
    std = np.array(efficientnet.IMAGENET_STDDEV_RGB)
    mean = np.array([0.485, 0.456, 0.406])
    x = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    stem(x)  # builds Keras' Normalization on the channel axis
    set_layer_weights(stem.parts[1], [mean, std, np.array(1)])
    expected = (x / 255.0 - mean) / std
    assert np.max(np.abs(np.asarray(stem(x)) - expected)) <= 1e-5
    plain = efficientnet.body(efficientnet.EfficientNetOptions(**{"variant": "b0", "imagenet_weights": False}), (32, 32, 3))[0]
    assert [layer.name for layer in plain.parts] == ["rescaling", "normalization"]


@pytest.mark.fast
@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_normalization_statistics_loaded_by_name_are_used(tmp_path, builder):
    """Keras' Normalization caches its statistics; kapps' by-name loader must refresh them."""
    model = kapps.EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3), builder=builder)
    norm = next(layer for layer in leaf_layers(model) if layer.name == "normalization")
    assert type(norm) is keras.layers.Normalization
    ones = np.ones((1, 1, 1, 3), "float32")
    np.testing.assert_allclose(np.asarray(norm(ones)).ravel(), [1.0] * 3)  # zero mean, unit variance
    source = kapps.EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3))
    source.get_layer("normalization").set_weights([np.full(3, 0.5), np.full(3, 4.0), np.array(1)])
    write_legacy_h5(source, tmp_path / "b0.h5")
    load_weights_by_name(model, tmp_path / "b0.h5")
    np.testing.assert_allclose(np.asarray(norm(ones)).ravel(), [0.25] * 3)


@pytest.mark.fast
def test_efficientnet_v2_preprocessing_by_variant_and_channels():
    def stem(variant, channels, include=True):
        blocks = efficientnet_v2.body(efficientnet_v2.EfficientNetV2Options(**{"variant": variant, "include_preprocessing": include}), (32, 32, channels))
        return blocks[0]

    b0 = stem("b0", 3)
    assert [type(layer) for layer in b0.parts] == [keras.layers.Rescaling, keras.layers.Normalization]
    x = np.full((1, 1, 1, 3), 255.0, "float32")
    expected = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(np.asarray(b0(x)).ravel(), expected, rtol=1e-5)
    for variant, channels in (("s", 3), ("b0", 1)):
        parts = stem(variant, channels).parts
        assert len(parts) == 1 and parts[0].scale == 1.0 / 128.0 and parts[0].offset == -1
    assert stem("b0", 3, include=False).name == "stem"


V2_WITHOUT_PREPROCESSING = dict(weights=None, include_top=False, input_shape=(48, 48, 3), include_preprocessing=False,
                                pooling="avg")


@pytest.fixture(scope="module")
def efficientnet_v2_reference():
    keras.backend.clear_session()
    return keras.applications.EfficientNetV2B0(**V2_WITHOUT_PREPROCESSING)


@pytest.mark.fast
@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_efficientnet_v2_without_preprocessing_matches_keras(efficientnet_v2_reference, builder):
    reference = efficientnet_v2_reference
    model = kapps.EfficientNetV2B0(builder=builder, **V2_WITHOUT_PREPROCESSING)
    from kapps.weights.h5io import copy_weights_by_name

    copy_weights_by_name(reference, model)
    x = photo(48) / 127.5 - 1.0
    assert np.max(np.abs(np.asarray(model(x)) - np.asarray(reference(x)))) <= 1e-4


@pytest.mark.fast
@pytest.mark.parametrize(
    "model, alpha, minimalistic, include_top, file",
    [
        ("small", 1.0, False, False, "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
        ("small", 0.75, False, True, "weights_mobilenet_v3_small_224_0.75_float.h5"),
        ("large", 1.0, True, True, "weights_mobilenet_v3_large_minimalistic_224_1.0_float.h5"),
        ("large", 0.75, False, False, "weights_mobilenet_v3_large_224_0.75_float_no_top_v2.h5"),
    ],
)
def test_mobilenet_v3_weight_variants(model, alpha, minimalistic, include_top, file):
    spec = get_spec(f"mobilenet_v3_{model}")
    options = {"size": model, "alpha": alpha, "minimalistic": minimalistic}
    assert spec.weights_variant(options, (224, 224, 3)) == {"alpha": alpha, "minimalistic": minimalistic}
    assert imagenet_file(spec, options, (224, 224, 3), include_top).file == file


@pytest.mark.fast
def test_mobilenet_v3_other_sizes_use_the_224_file_with_a_warning():
    spec = get_spec("mobilenet_v3_small")
    with pytest.warns(UserWarning, match="224"):
        variant = spec.weights_variant({"alpha": 1.0, "minimalistic": False}, (160, 160, 3))
    assert variant == {"alpha": 1.0, "minimalistic": False}


@pytest.mark.fast
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=0.5, weights="imagenet"), "alpha"),
        (dict(alpha=0.75, minimalistic=True, weights="imagenet"), "alpha"),
        (dict(alpha=-1.0, weights=None), "alpha"),
        (dict(minimalistic="yes", weights=None), "minimalistic"),
        (dict(dropout_rate=1.5, weights=None), "dropout_rate"),
        (dict(include_preprocessing=None, weights=None), "include_preprocessing"),
    ],
)
def test_mobilenet_v3_argument_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=f"`{message}`.*Received: {message}="):
        kapps.MobileNetV3Small(**kwargs)


@pytest.mark.fast
def test_efficientnet_v2_include_preprocessing_must_be_boolean():
    with pytest.raises(ValueError, match="`include_preprocessing` must be True or False"):
        kapps.EfficientNetV2B0(weights=None, include_preprocessing="yes")


def test_mobilenet_v3_top_at_other_sizes_and_without_dropout():
    model = kapps.MobileNetV3Small(weights=None, input_shape=(160, 160, 3), classes=10)
    assert model.output_shape == (None, 10)
    top = [layer.name for layer in model.layers[-6:]]
    assert top == ["conv_2", "conv_2_activation", "dropout", "logits", "flatten", "predictions"]
    assert "dropout" not in {layer.name for layer in kapps.MobileNetV3Small(weights=None, dropout_rate=0.0).layers}


@pytest.mark.fast
@pytest.mark.parametrize("module", ["efficientnet", "efficientnet_v2", "mobilenet_v3"])
def test_preprocess_input_is_the_identity(module):
    family = getattr(kapps, module)
    x = photo(8)
    np.testing.assert_array_equal(family.preprocess_input(x), x)
    assert family.decode_predictions is kapps.decode_predictions


@pytest.mark.fast
def test_blocks_are_shared_and_general():
    se = SqueezeExcite(8, 2, activation="relu", gate="hard_sigmoid", names="se_")
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 8)).astype("float32")
    assert tuple(se(x).shape) == (2, 3, 3, 8)
    fused = FusedMBConv(16, 16, expansion=1, drop_rate=0.1, names="f_")
    assert fused.project.act.name == "f_project_activation" and fused.drop.noise_shape == (None, 1, 1, 1)
    assert tuple(fused(np.zeros((1, 6, 6, 16), "float32")).shape) == (1, 6, 6, 16)
    # MobileNetV2's block keeps its defaults: no SE, no drop, explicit padding when strided.
    plain = InvertedResidual(16, 24, 6, 2, names="b_")
    assert plain.squeeze_excite is None and plain.drop is None and plain.depthwise.explicit_pad
