"""RegNet and ResNet-RS against their reference, tf.keras (``tf_keras``): Keras 3 dropped both families.

Parity: each of the 31 models is built once in tf_keras at the smallest input it accepts
(32 px) with its top, random weights and random BatchNorm statistics; the functional builder
(and the Sequential builder for the smallest model of each family, whose blocks the larger
ones repeat at other depths and widths: the suite's budget) gets the weights by layer name and must compute its logits on a real photo and its pooled
features (read inside the model), within a relative 1e-4. ``include_top=False,
pooling="avg"`` models are built and compared for the smallest model of each family, at 32 px
and at the default size (the no-top head is the family's; building it for all 31 would add
about a minute and a half for ResNet-RS 270-420 alone). The Functional model must
have tf.keras' weighted layers (name, class, order), weight shapes and model name, and the
registry's parameter count and FLOPs (counted at the default size); the smallest of each family
must also compute the same after ``kapps.optimize_for_inference``. The smallest model of
each family is also compared at its default size, and a legacy HDF5 file written by tf_keras
(``save_weights("x.h5")``, the official files' layout) loads into both builders. The manifest's
files of these families are the ones tf_keras names, with its URLs and hashes.
"""

from __future__ import annotations

import gc
import inspect
import re

import keras
import numpy as np
import pytest

import tf_keras  # the reference: a dev dependency (setup.cfg)

import kapps
from conftest import photo
from kapps.registry import get_spec, model_function
from kapps.tools.flops import count_flops
from kapps.utils.layers import leaf_layers
from kapps.weights import manifest
from kapps.weights.h5io import assign_by_name
from parity import check_features, features_checked, randomize_batch_norm

TOLERANCE = 1e-4
FAMILIES = ("regnet", "resnet_rs")
MODELS = [n for n in kapps.list_models() if get_spec(n).family in FAMILIES]
SMALLEST = {"regnet": "regnetx002", "resnet_rs": "resnet_rs50"}
#: The layer whose output is the pooled feature vector of the reference's top.
POOL_LAYER = {"regnet": "1_head_gap", "resnet_rs": "avg_pool"}


#: BatchNorm scales of the reference. With tests/parity.py's (0.5, 1.5) the deep ResNet-RS models
#: (152 layers and more) grow their activations block after block (ResNetRS152's logits reach 1e3)
#: and differed by 14% (relative); ResNetRS101, made of the same blocks, passed, and with scales
#: below 1, which keep the activations bounded (as tests/test_parity.py does for folded BatchNorm),
#: every model agrees within 1e-4: float32 rounding amplified by depth, not a graph difference.
GAMMA = (0.3, 0.8)


def reference(name: str, **kwargs) -> tf_keras.Model:
    """The tf_keras model, built in a fresh tf_keras session (its session-numbered names start at 1),
    with random BatchNorm statistics."""
    tf_keras.backend.clear_session()
    ref = getattr(tf_keras.applications, get_spec(name).keras_name)(weights=None, **kwargs)
    rng = np.random.default_rng(0)
    for layer in ref.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.set_weights([
                rng.uniform(*GAMMA, w.shape) if "gamma" in w.name else
                rng.uniform(0.5, 1.5, w.shape) if "moving_variance" in w.name else rng.normal(0, 0.1, w.shape)
                for w in layer.weights
            ])
    return ref


def stored_weights(ref: tf_keras.Model) -> dict:
    """``{layer name: [(weight name, array), ...]}`` of a tf_keras model, as kapps' loader reads files."""
    return {layer.name: [(w.name.split("/")[-1].split(":")[0], w.numpy()) for w in layer.weights]
            for layer in ref.layers if layer.weights}


def relative(actual, expected) -> float:
    actual, expected = np.asarray(actual), np.asarray(expected)
    return float(np.max(np.abs(actual - expected)) / max(float(np.max(np.abs(expected))), 1e-12))


def same_graph(model: keras.Model, ref: tf_keras.Model) -> None:
    ours = [(layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in leaf_layers(model)]
    theirs = [(layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights])
              for layer in ref.layers if layer.weights]
    assert [n for n, _, _ in ours] == [n for n, _, _ in theirs], next(
        (a, b) for a, b in zip(ours, theirs) if a[0] != b[0])
    assert ours == theirs
    assert model.name == ref.name


def optimized_computes_the_same(model: keras.Model, x: np.ndarray) -> None:
    """``kapps.optimize_for_inference`` (BatchNorm folded, Dropout dropped) computes the same
    (tests/test_parity.py does this for the keras.applications models, tests/test_optimize.py for the rest;
    here the smallest model of each family at 32 px and at 224 px: the other models are the same blocks)."""
    randomize_batch_norm(model, seed=1, gamma=GAMMA)
    expected = np.asarray(model(x, training=False))
    fast = kapps.optimize_for_inference(model)
    assert relative(fast(x), expected) <= TOLERANCE, "optimize_for_inference"
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in fast.layers)


def pooled_features(model: keras.Model, builder: str, pool_name: str, x: np.ndarray) -> np.ndarray:
    """The global-average-pooled features inside a model with its top (the input of its classifier)."""
    if builder == "functional":
        return np.asarray(keras.Model(model.input, model.get_layer(pool_name).output)(x))
    *body, head = model.layers  # the Sequential builder's blocks; the last is the classifier
    for block in body:
        x = block(x, training=False)
    return np.asarray(head.pool(x))


def check(name: str, size: int, *, metadata: bool, build_no_top: bool) -> None:
    """Top logits and pooled features of both builders against one tf_keras model.

    With ``metadata`` (the smallest size), also ``features_only=True`` against the tf_keras layers
    it names, for the smallest model of each family (both builders; every model with
    ``KAPPS_FULL_SWEEPS=1``: tests/parity.py's ``features_checked``).
    The pooled features are read inside the model with the top; ``build_no_top`` also builds
    ``include_top=False, pooling="avg"`` and compares its output (the smallest model of each
    family: the no-top head is the family's, the same for all its models).
    """
    spec = get_spec(name)
    shape = (size, size, 3)
    ref = reference(name, input_shape=shape, classifier_activation=None)
    weights = stored_weights(ref)
    x = photo(size)
    features = tf_keras.Model(ref.input, ref.get_layer(POOL_LAYER[spec.family]).output)
    expected_logits, expected_pooled = ref(x, training=False).numpy(), features(x, training=False).numpy()
    # The Sequential builder for the smallest model of each family (the suite's budget; its blocks are the family's)
    builders = ("functional", "sequential") if name in SMALLEST.values() else ("functional",)
    for builder in builders:
        model = kapps.get_model(name, weights=None, input_shape=shape, classifier_activation=None, builder=builder)
        assert model.count_params() == ref.count_params() == spec.params, (builder, model.count_params())
        if builder == "functional":
            same_graph(model, ref)
            if metadata:
                assert count_flops(model, (spec.default_size, spec.default_size, 3)) == spec.flops, name
        assign_by_name(model, weights, f"model {ref.name!r}")
        assert relative(model(x, training=False), expected_logits) <= TOLERANCE, (builder, "top")
        assert relative(pooled_features(model, builder, POOL_LAYER[spec.family], x), expected_pooled) <= TOLERANCE, (builder, "pooled")
        if metadata and features_checked(name, MODELS):
            check_features(name, builder, model, x, lambda taps: [t.numpy() for t in tf_keras.Model(
                ref.input, [ref.get_layer(n).output for n, _, _ in taps])(x, training=False)])
        if build_no_top:
            pooled = kapps.get_model(name, weights=None, include_top=False, pooling="avg", input_shape=shape,
                                     builder=builder)
            assign_by_name(pooled, weights, f"model {ref.name!r}")
            assert relative(pooled(x, training=False), expected_pooled) <= TOLERANCE, (builder, "no top")
            del pooled
        if builder == "functional" and build_no_top:  # the smallest of each family (5 s more for ResNetRS420)
            optimized_computes_the_same(model, x)
        del model
    del ref, features
    keras.backend.clear_session()
    gc.collect()


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.fast) if n in SMALLEST.values() else n
                                  for n in MODELS])
def test_parity_smallest_size(name):
    check(name, get_spec(name).min_size, metadata=True, build_no_top=name in SMALLEST.values())


@pytest.mark.parametrize("family", FAMILIES)
def test_parity_default_size_and_the_softmax(family):
    name = SMALLEST[family]
    check(name, get_spec(name).default_size, metadata=False, build_no_top=True)
    # kapps applies classifier_activation (tf.keras' RegNet returns logits whatever it is given).
    ref = reference(name, classifier_activation=None)
    model = kapps.get_model(name, weights=None)
    assign_by_name(model, stored_weights(ref), "reference")
    x = photo(224)
    probabilities = np.asarray(model(x, training=False))
    assert relative(probabilities, keras.ops.softmax(ref(x, training=False).numpy())) <= TOLERANCE
    assert abs(float(probabilities.sum()) - 1.0) < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_legacy_h5_written_by_tf_keras_loads_into_both_builders(family, tmp_path):
    name, shape = SMALLEST[family], (32, 32, 3)
    ref = reference(name, input_shape=shape, classifier_activation=None)
    path = str(tmp_path / f"{name}.h5")
    ref.save_weights(path)  # the legacy HDF5 layout of the official files
    x = photo(32)
    expected = ref(x, training=False).numpy()
    for builder in ("functional", "sequential"):
        model = kapps.get_model(name, weights=path, input_shape=shape, classifier_activation=None, builder=builder)
        assert relative(model(x, training=False), expected) <= TOLERANCE, builder
    keras.backend.clear_session()


def test_files_from_a_later_tf_keras_session_load_too(tmp_path):
    """tf.keras numbers RegNet's head and ResNet-RS' stem by session (``2head_dense`` once a model was
    built before): kapps' loader pairs names that differ in that one number."""
    for name in SMALLEST.values():
        ref = reference(name, input_shape=(32, 32, 3), classifier_activation=None)
        again = getattr(tf_keras.applications, get_spec(name).keras_name)(
            weights=None, input_shape=(32, 32, 3), classifier_activation=None)  # same session: counters at 2
        renamed = [layer.name for layer in again.layers if layer.weights and re.search(r"(^2head|stem_2_)", layer.name)]
        assert renamed, name
        again.set_weights(ref.get_weights())
        path = str(tmp_path / f"{name}.h5")
        again.save_weights(path)
        x = photo(32)
        model = kapps.get_model(name, weights=path, input_shape=(32, 32, 3), classifier_activation=None)
        assert relative(model(x, training=False), ref(x, training=False).numpy()) <= TOLERANCE, name
    keras.backend.clear_session()


@pytest.mark.parametrize("name", MODELS)
def test_signature_is_tf_keras_s(name):
    ours = inspect.signature(model_function(name))
    theirs = inspect.signature(getattr(tf_keras.applications, get_spec(name).keras_name))
    assert [p for p in ours.parameters.values() if p.name not in ("builder", "features_only", "out_indices")] == \
        list(theirs.parameters.values())
    assert ours.parameters["builder"].kind is inspect.Parameter.KEYWORD_ONLY


def test_model_names_and_the_resnet_rs_weight_variants():
    assert kapps.RegNetX002(weights=None, model_name="mine", input_shape=(32, 32, 3)).name == "mine"
    spec = get_spec("resnet_rs152")
    options = spec.bind({**spec.constructor_defaults(), "weights": "imagenet-i224"})["options"]
    assert manifest.find("resnet_rs152", True, options.weights_variant((224, 224, 3))).file == "resnet-rs-152-i224.h5"
    default = spec.bind(spec.constructor_defaults())["options"]  # "imagenet": the largest resolution
    assert manifest.find("resnet_rs152", False, default.weights_variant((224, 224, 3))).file == \
        "resnet-rs-152-i256_notop.h5"
    with pytest.raises(ValueError, match=r"`weights` must be .*'imagenet-i192', 'imagenet-i224', 'imagenet-i256'.*"
                                         r"Received: weights='imagenet-i160'"):
        kapps.ResNetRS152(weights="imagenet-i160")
    with pytest.raises(ValueError, match="`model_name` must be a non-empty string"):
        kapps.RegNetY002(weights=None, model_name="")


# -- the manifest, against tf_keras' published tables ---------------------------------------------
def _published() -> dict:
    """(file, url, hash) of every file tf_keras' RegNet and ResNet-RS would download."""
    from tf_keras.src.applications import regnet, resnet_rs

    files = {}
    for key, hashes in regnet.WEIGHTS_HASHES.items():
        for top, suffix in ((True, ".h5"), (False, "_notop.h5")):
            file = f"regnet{key}{suffix}"  # model_name + file_suffix; model_name[-4:] is the key
            files[file] = (f"regnet{key}", top, {}, regnet.BASE_WEIGHTS_PATH + file, hashes[0 if top else 1])
    for depth, sizes in resnet_rs.DEPTH_TO_WEIGHT_VARIANTS.items():
        for size in sizes:
            for top in (True, False):
                file = f"resnet-rs-{depth}-i{size}{'' if top else '_notop'}.h5"
                files[file] = (f"resnet_rs{depth}", top, {"resolution": size}, resnet_rs.BASE_WEIGHTS_URL + file,
                               resnet_rs.WEIGHT_HASHES[file])
    assert set(resnet_rs.WEIGHT_HASHES) <= set(files)
    return files


def test_manifest_lists_exactly_tf_keras_files_with_its_urls_and_hashes():
    published = _published()
    ours = {f.file: f for f in manifest.all_files() if get_spec(f.model).family in FAMILIES}
    assert set(ours) == set(published) and len(ours) == 2 * 24 + 22
    for file, (model, top, variant, url, digest) in published.items():
        entry = ours[file]
        assert (entry.model, entry.include_top, entry.variant_dict, entry.url) == (model, top, variant, url), file
        assert (entry.hash_algorithm, entry.hash_value) == ("sha256" if len(digest) == 64 else "md5", digest), file
    for model in MODELS:
        assert manifest.model_entry(model)["keras_package"] == "tf_keras"


@pytest.mark.parametrize("name, kwargs", [
    ("regnetx002", {}), ("regnety002", {"include_top": False}), ("resnet_rs50", {"include_top": False}),
])
def test_tf_keras_requests_exactly_the_manifest_file(name, kwargs, monkeypatch):
    """tf_keras' own download call (file, URL, hash), intercepted, is the manifest's entry."""
    from tf_keras.src.utils import data_utils

    requested = []

    class Captured(Exception):
        pass

    def fake_get_file(fname=None, origin=None, **options):
        requested.append((fname, origin, options.get("file_hash")))
        raise Captured

    monkeypatch.setattr(data_utils, "get_file", fake_get_file)
    tf_keras.backend.clear_session()
    with pytest.raises(Captured):
        getattr(tf_keras.applications, get_spec(name).keras_name)(weights="imagenet", **kwargs)
    spec = get_spec(name)
    options = spec.bind({**spec.constructor_defaults(), **kwargs})["options"]
    entry = manifest.find(name, kwargs.get("include_top", True), options.weights_variant((224, 224, 3)))
    assert requested == [(entry.file, entry.url, entry.hash_value)]
    assert re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", entry.hash_value)
