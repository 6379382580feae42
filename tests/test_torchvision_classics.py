"""AlexNet and GoogLeNet as torchvision trained them (``variant="torchvision"``, issue 12), against torchvision.

As in ``tests/test_torchvision_families.py``: torchvision (``.[torch]``) is the reference and is
required. torchvision's ``alexnet`` and ``googlenet`` (``aux_logits=False, transform_input=True,
init_weights=True``: the evaluation model of its ImageNet weights) are built once per module with
random weights and randomised BatchNorm, saved with ``torch.save`` and converted by
``kapps.convert``; both kapps builders must give torchvision's logits on a real photo within a
relative max difference of 1e-4, at a small input size (odd sizes exercise the round-up poolings;
AlexNet at 160 px averages 4x4 maps to 6x6 in its adaptive pooling) and at 224.

Inputs: AlexNet gets ``kapps.alexnet.preprocess_input`` (``"torch"``) on both sides. torchvision's
GoogLeNet gets the torch-normalized photo and converts it itself (``transform_input=True``);
kapps' gets ``kapps.googlenet.preprocess_input`` (``"tf"``, [-1, 1]) of the same photo, which is
what that conversion computes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil

import h5py
import keras
import numpy as np
import pytest

import kapps
from conftest import photo
from torch_reference import converted_reference, randomize, relative_difference, torch, torch_logits, torchvision
from kapps.errors import CheckpointError
from kapps.registry import get_spec
from kapps.weights import manifest

#: registry name -> (torchvision's keyword arguments, torch.save format of the checkpoint).
MODELS = {
    "alexnet": ({}, "zip"),
    "googlenet": ({"aux_logits": False, "transform_input": True, "init_weights": True}, "legacy"),
}
SMALL = [("alexnet", 67), ("alexnet", 160), ("googlenet", 65)]
TOLERANCE = 1e-4
TV = {"variant": "torchvision"}
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``reference(name)`` -> (torchvision model, converted .weights.h5, checkpoint path), each built once."""
    made: dict[str, tuple] = {}
    folder = tmp_path_factory.mktemp("torchvision_classics")

    def get(name: str) -> tuple:
        if name not in made:
            kwargs, kind = MODELS[name]
            made[name] = converted_reference(folder, name, name, kind, 11 + len(made), kwargs, **TV)
        return made[name]

    yield get
    print("\nmeasured relative max differences:", {k: f"{v:.2e}" for k, v in sorted(MEASURED.items())})


def inputs(name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(kapps' input, torchvision's input) for the photo at ``size``."""
    images = photo(size)
    ours = getattr(kapps, name).preprocess_input(images)
    theirs = kapps.imagenet.preprocess_input(images, mode="torch")
    return ours, theirs


def check_parity(reference, name: str, size: int, builders=("functional", "sequential")) -> None:
    model, weights, _ = reference(name)
    x, x_torch = inputs(name, size)
    want = torch_logits(model, x_torch)
    for builder in builders:
        ours = kapps.get_model(name, weights=weights, input_shape=(size, size, 3), classifier_activation=None,
                               builder=builder, **TV)
        got = np.asarray(ours(x, training=False))
        error = relative_difference(got, want)
        MEASURED[f"{name}@{size}/{builder}"] = error
        assert error <= TOLERANCE, (name, size, builder, error)
        assert np.argmax(got) == np.argmax(want)
        del ours
        keras.backend.clear_session()


@pytest.mark.parametrize("name, size", SMALL)
def test_both_builders_equal_torchvision_at_a_small_size(reference, name, size):
    check_parity(reference, name, size)


@pytest.mark.parametrize("name", list(MODELS))
def test_both_builders_equal_torchvision_at_224(reference, name):
    check_parity(reference, name, 224)


@pytest.mark.parametrize("name", list(MODELS))
def test_features_are_the_full_models_own_layers(reference, name):
    """``features_only=True`` (both builders) equals the layers it names in the full kapps model holding the
    converted weights; the deepest level also equals torchvision's own last feature map."""
    from parity import check_features

    model, weights, _ = reference(name)
    size = 67
    x, x_torch = inputs(name, size)
    full = kapps.get_model(name, weights=weights, input_shape=(size, size, 3), **TV)
    for builder in ("functional", "sequential"):
        check_features(name, builder, full, x, lambda taps: keras.Model(
            full.input, [full.get_layer(n).output for n, _, _ in taps])(x, training=False), **TV)
    features = kapps.get_model(name, weights=weights, input_shape=(size, size, 3), features_only=True, **TV)
    info = features.feature_info
    deepest_module = model.features if name == "alexnet" else model.inception5b
    captured = []
    handle = deepest_module.register_forward_hook(lambda module, args, output: captured.append(output))
    torch_logits(model, x_torch)
    handle.remove()
    deepest = np.asarray(features(x, training=False)[-1])
    assert relative_difference(deepest, captured[0].numpy().transpose(0, 2, 3, 1)) <= TOLERANCE
    expected = {"alexnet": ["features_1", "features_4", "features_11", "features_12"],
                "googlenet": ["conv1_relu", "conv3_relu", "inception3b_concat", "inception4e_concat",
                              "inception5b_concat"]}[name]
    assert [level["name"] for level in info] == expected
    del full, features
    keras.backend.clear_session()


@pytest.mark.parametrize("name", list(MODELS))
def test_parameters_are_torchvisions_and_batchnorm_statistics(reference, name):
    """Keras counts BatchNorm's moving mean and variance as weights; torch keeps them as buffers.
    The registry's metadata stay the paper variant's (the default)."""
    model, _, _ = reference(name)
    parameters = sum(p.numel() for p in model.parameters())
    statistics = sum(b.numel() for key, b in model.named_buffers() if key.endswith(("running_mean", "running_var")))
    weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    assert parameters == weights.meta["num_params"]
    ours = kapps.get_model(name, **TV)
    assert ours.count_params() == parameters + statistics
    assert {"alexnet": 61_100_840, "googlenet": 6_639_464}[name] == ours.count_params()
    assert get_spec(name).params == {"alexnet": 60_965_224, "googlenet": 6_998_552}[name]
    assert get_spec(name).top1 is None and get_spec(name).top5 is None
    del ours
    keras.backend.clear_session()


@pytest.mark.parametrize("name", list(MODELS))
def test_manifest_states_torchvisions_published_facts(name):
    weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    (entry,) = manifest.files_for(name)
    assert entry.source == "torchvision" and entry.url == weights.url
    assert entry.file == weights.url.rsplit("/", 1)[1] == {"alexnet": "alexnet-owt-7be5be79.pth",
                                                            "googlenet": "googlenet-1378be20.pth"}[name]
    assert entry.hash_algorithm == "sha256-prefix"
    assert entry.hash_value == re.search(r"-([a-f0-9]*)\.", entry.file).group(1)  # torch.hub's check_hash rule
    assert entry.variant_dict == TV
    published = weights.meta["_metrics"]["ImageNet-1K"]
    assert entry.accuracy == {"acc@1": published["acc@1"], "acc@5": published["acc@5"]}
    transform = weights.transforms()
    stated = entry.eval_transform
    assert stated["size"] == [transform.crop_size[0]] * 2
    assert stated["resize_size"] == transform.resize_size[0]
    assert stated["interpolation"] == transform.interpolation.value
    assert stated["mean"] == list(transform.mean) and stated["std"] == list(transform.std)
    assert stated["preprocessing"] == getattr(kapps, name).preprocess_input.mode == {"alexnet": "torch",
                                                                                      "googlenet": "tf"}[name]
    assert kapps.eval_transform(name).resize_size == (transform.resize_size[0],) * 2
    assert manifest.model_entry(name)["torchvision_function"] == name
    assert entry.hash_source == f"torchvision.models.{type(weights).__name__}.IMAGENET1K_V1 " \
                                "(the hex digits of the URL's file name)"
    assert manifest.find(name, False, TV) == entry  # the checkpoint also serves include_top=False
    assert entry.ignored_key_prefixes == (("aux1.", "aux2.") if name == "googlenet" else ())


def test_googlenet_transform_input_is_tf_preprocessing():
    """torchvision's ``transform_input`` on torch-normalized pixels gives kapps' ``"tf"`` preprocessing."""
    images = photo(32)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=False)
    x_torch = torch.from_numpy(kapps.imagenet.preprocess_input(images, mode="torch").transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        transformed = model._transform_input(x_torch).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(kapps.googlenet.preprocess_input(images), transformed, atol=2e-6)


@pytest.mark.fast
def test_variant_defaults_and_errors():
    """The paper's networks stay the default without ImageNet weights; the paper variant refuses them."""
    assert kapps.AlexNet().count_params() == 60_965_224 and kapps.AlexNet().input_shape == (None, 227, 227, 3)
    assert kapps.AlexNet(variant="torchvision").input_shape == (None, 224, 224, 3)
    assert kapps.GoogLeNet(include_top=False).count_params() == kapps.GoogLeNet(
        include_top=False, variant="paper").count_params()
    for constructor in (kapps.AlexNet, kapps.GoogLeNet):
        with pytest.raises(ValueError, match=r"`weights='imagenet'` needs variant='torchvision'.*"
                                             r"Received: variant='paper', weights='imagenet'"):
            constructor(weights="imagenet", variant="paper")
        with pytest.raises(ValueError, match=r"`variant` must be None, 'paper' or 'torchvision'. "
                                             r"Received: variant='caffe'"):
            constructor(variant="caffe")
    with pytest.raises(ValueError, match=r"`aux_classifiers=True` is the paper variant's.*Received: "
                                         r"aux_classifiers=True, variant='torchvision'"):
        kapps.GoogLeNet(aux_classifiers=True, variant="torchvision")
    with pytest.raises(ValueError, match=r"No official ImageNet weight file exists for alexnet with variant='paper'"):
        kapps.eval_transform("alexnet", variant="paper")
    keras.backend.clear_session()


def _fake_converted(weights: str, entry: manifest.WeightFile, folder) -> None:
    """``weights`` under the converted name of ``entry``, recording a sha256 with the published prefix."""
    from kapps.weights.converted import SOURCE_ATTRIBUTE, converted_file_name

    target = folder / converted_file_name(entry)
    shutil.copy(weights, target)
    with h5py.File(target, "a") as f:
        f.attrs[SOURCE_ATTRIBUTE] = entry.hash_value + "0" * (64 - len(entry.hash_value))


@pytest.mark.parametrize("name", list(MODELS))
def test_imagenet_weights_choose_torchvisions_variant(reference, name, tmp_path, monkeypatch):
    """``weights="imagenet"`` without ``variant`` builds torchvision's network and loads its converted file
    (here: the test's converted checkpoint under the real file's converted name, found in KAPPS_WEIGHTS_DIR)."""
    model, weights, _ = reference(name)
    entry = manifest.find(name, True, TV)
    _fake_converted(weights, entry, tmp_path)
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(tmp_path))
    size = 67
    x, x_torch = inputs(name, size)
    ours = kapps.get_model(name, weights="imagenet", include_top=False, input_shape=(size, size, 3))
    captured = []
    module = model.features if name == "alexnet" else model.inception5b
    handle = module.register_forward_hook(lambda m, args, output: captured.append(output))
    torch_logits(model, x_torch)
    handle.remove()
    got = np.asarray(ours(x, training=False))
    assert relative_difference(got, captured[0].numpy().transpose(0, 2, 3, 1)) <= TOLERANCE
    del ours
    keras.backend.clear_session()


def test_googlenet_checkpoint_aux_heads_are_left_out(tmp_path, monkeypatch):
    """torchvision's googlenet file holds its (untrained) auxiliary heads: ``kapps.convert`` names those keys
    as unexpected, and the ImageNet path leaves them out (``ignored_key_prefixes``)."""
    from kapps.weights.converted import resolve_converted
    from kapps.factory import build_model

    torch.manual_seed(3)
    model = randomize(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False), seed=3)
    entry = manifest.find("googlenet", True, TV)
    folder = tmp_path / "weights"
    folder.mkdir()
    checkpoint = folder / entry.file
    torch.save(model.state_dict(), checkpoint)
    with pytest.raises(CheckpointError, match=r"unexpected keys.*'aux1\.conv\.bn\.bias'"):
        kapps.convert(checkpoint, "googlenet", tmp_path / "googlenet.weights.h5", **TV)
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(folder))
    local = dataclasses.replace(entry, hash_value=digest[:8])  # the test's file stands in for torchvision's
    spec = get_spec("googlenet")
    options = spec.options_of(TV)
    converted = resolve_converted(local, lambda: build_model(
        spec, options, input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None,
        classes=1000, classifier_activation=None, name=None, builder="functional"), download=False, progress=False)
    ours = kapps.GoogLeNet(weights=converted, classifier_activation=None, input_shape=(65, 65, 3), **TV)
    x, x_torch = inputs("googlenet", 65)
    model.transform_input = True
    assert relative_difference(np.asarray(ours(x, training=False)), torch_logits(model, x_torch)) <= TOLERANCE
    del ours
    keras.backend.clear_session()
