"""ResNet-18/34, SqueezeNet 1.0/1.1 and ShuffleNetV2 x0.5-x2.0 against torchvision itself (issue 12).

torchvision (``.[torch]``: torch 2.14.1, torchvision 0.29.1) is the reference and is required:
these tests fail, never skip, without it. Each torchvision model is built once per module with
random weights and **randomised BatchNorm** (scale, shift, running mean and variance), its
state dict saved with ``torch.save`` (the zip format, or the legacy one for three models), and
converted by ``kapps.convert`` into a ``.weights.h5``. Both kapps builders load that file and
must give torchvision's logits on a real photo, preprocessed by the family's
``preprocess_input``, within a relative max difference (``max|a - b| / max|b|``) of 1e-4: every
model at a small (partly odd) input size, one model per family at 224. Feature maps equal the
full model's own layers; parameter counts, the manifest's URLs, hashes, published accuracies and
evaluation transforms equal torchvision's weight enums.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

import kapps
from conftest import photo
from torch_reference import converted_reference, relative_difference, torch, torch_logits, torchvision
from kapps.registry import get_spec
from kapps.weights import manifest

#: registry name -> (torchvision builder, small input size, torch.save format of its checkpoint).
MODELS = {
    "resnet18": ("resnet18", 64, "zip"),
    "resnet34": ("resnet34", 65, "legacy"),
    "squeezenet1_0": ("squeezenet1_0", 67, "legacy"),
    "squeezenet1_1": ("squeezenet1_1", 64, "zip"),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x0_5", 65, "zip"),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", 64, "legacy"),
    "shufflenet_v2_x1_5": ("shufflenet_v2_x1_5", 64, "zip"),
    "shufflenet_v2_x2_0": ("shufflenet_v2_x2_0", 67, "zip"),
}
#: One model per family for the default-size (224) and feature-map checks.
PER_FAMILY = ["resnet18", "squeezenet1_1", "shufflenet_v2_x0_5"]
TOLERANCE = 1e-4
#: The measured differences, printed at the end of the module (``pytest -s``) for the record.
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``reference(name)`` -> (torchvision model, converted .weights.h5), each built once."""
    made: dict[str, tuple] = {}
    folder = tmp_path_factory.mktemp("torchvision")

    def get(name: str) -> tuple:
        if name not in made:
            builder, _, kind = MODELS[name]
            made[name] = converted_reference(folder, name, builder, kind, len(made))[:2]
        return made[name]

    yield get
    print("\nmeasured relative max differences:", {k: f"{v:.2e}" for k, v in sorted(MEASURED.items())})


def check_parity(reference, name: str, size: int) -> None:
    model, weights = reference(name)
    x = getattr(kapps, get_spec(name).family).preprocess_input(photo(size))
    want = torch_logits(model, x)
    for builder in ("functional", "sequential"):
        ours = kapps.get_model(name, weights=weights, input_shape=(size, size, 3), classifier_activation=None,
                               builder=builder)
        got = np.asarray(ours(x, training=False))
        error = relative_difference(got, want)
        MEASURED[f"{name}@{size}/{builder}"] = error
        assert error <= TOLERANCE, (name, size, builder, error)
        assert np.argmax(got) == np.argmax(want)
        keras.backend.clear_session()


@pytest.mark.parametrize("name", list(MODELS))
def test_both_builders_equal_torchvision_at_a_small_size(reference, name):
    check_parity(reference, name, MODELS[name][1])


@pytest.mark.parametrize("name", PER_FAMILY)
def test_both_builders_equal_torchvision_at_224(reference, name):
    check_parity(reference, name, 224)


@pytest.mark.parametrize("name", PER_FAMILY)
def test_features_are_the_full_models_own_layers(reference, name):
    """``features_only=True`` (both builders) equals the layers it names in the full kapps model
    holding the converted weights; ResNet's deepest level also equals torchvision's ``layer4``."""
    from parity import check_features

    model, weights = reference(name)
    size = 64
    x = getattr(kapps, get_spec(name).family).preprocess_input(photo(size))
    full = kapps.get_model(name, weights=weights, input_shape=(size, size, 3))
    for builder in ("functional", "sequential"):
        check_features(name, builder, full, x, lambda taps: keras.Model(
            full.input, [full.get_layer(n).output for n, _, _ in taps])(x, training=False))
    features = kapps.get_model(name, weights=weights, input_shape=(size, size, 3), features_only=True)
    # SqueezeNet reduces by 16 at most: a strided stem and three poolings
    assert [level["reduction"] for level in features.feature_info] == [2, 4, 8, 16] + ([] if "squeeze" in name else [32])
    if name == "resnet18":
        captured = []
        handle = model.layer4.register_forward_hook(lambda module, inputs, output: captured.append(output))
        torch_logits(model, x)
        handle.remove()
        deepest = np.asarray(features(x, training=False)[-1])
        assert relative_difference(deepest, captured[0].numpy().transpose(0, 2, 3, 1)) <= TOLERANCE
    keras.backend.clear_session()


@pytest.mark.parametrize("name", list(MODELS))
def test_registry_params_are_torchvisions_parameters_and_batchnorm_statistics(reference, name):
    """Keras counts BatchNorm's moving mean and variance as weights; torch keeps them as buffers."""
    model, _ = reference(name)
    parameters = sum(p.numel() for p in model.parameters())
    statistics = sum(b.numel() for key, b in model.named_buffers() if key.endswith(("running_mean", "running_var")))
    assert get_spec(name).params == parameters + statistics


def _weights_enum(name: str):
    return torchvision.models.get_model_weights(MODELS[name][0]).IMAGENET1K_V1


@pytest.mark.parametrize("name", list(MODELS))
def test_manifest_states_torchvisions_published_facts(name):
    weights = _weights_enum(name)
    (entry,) = manifest.files_for(name)
    assert entry.source == "torchvision" and entry.url == weights.url
    assert entry.file == weights.url.rsplit("/", 1)[1]
    assert entry.hash_algorithm == "sha256-prefix"
    assert entry.hash_value == re.search(r"-([a-f0-9]*)\.", entry.file).group(1)  # torch.hub's check_hash rule
    assert len(entry.hash_value) >= 8
    published = weights.meta["_metrics"]["ImageNet-1K"]
    assert entry.accuracy == {"acc@1": published["acc@1"], "acc@5": published["acc@5"]}
    spec = get_spec(name)
    assert (spec.top1, spec.top5) == (published["acc@1"], published["acc@5"])
    transform = weights.transforms()
    stated = entry.eval_transform
    assert stated["size"] == [transform.crop_size[0]] * 2
    assert stated["resize_size"] == transform.resize_size[0]
    assert stated["interpolation"] == transform.interpolation.value
    assert stated["mean"] == list(transform.mean) and stated["std"] == list(transform.std)
    assert kapps.eval_transform(name).resize_size == (transform.resize_size[0],) * 2
    assert manifest.model_entry(name)["torchvision_function"] == MODELS[name][0]
    assert entry.hash_source == f"torchvision.models.{type(weights).__name__}.IMAGENET1K_V1 " \
                                "(the hex digits of the URL's file name)"
    assert manifest.find(name, False) == entry  # the checkpoint also serves include_top=False
    if name.startswith("squeezenet"):
        assert (spec.min_size,) * 2 == weights.meta["min_size"]


@pytest.mark.parametrize("family", ["resnet_basic", "squeezenet", "shufflenet_v2"])
def test_preprocess_input_is_torchvisions_normalization(family):
    images = photo(32)
    ours = getattr(kapps, family).preprocess_input(images)
    theirs = torchvision.transforms.functional.normalize(
        torch.from_numpy(images.transpose(0, 3, 1, 2) / 255.0), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    np.testing.assert_allclose(ours, theirs.numpy().transpose(0, 2, 3, 1), atol=1e-5)
    assert getattr(kapps, family).decode_predictions is kapps.decode_predictions


def test_squeezenet_pools_round_up_like_torch_at_every_size():
    """ceil_mode max pooling: the padded pooling gives torch's sizes from the smallest input up."""
    for size in (17, 18, 19, 20, 33, 34):
        ours = kapps.SqueezeNet1_1(weights=None, include_top=False, input_shape=(size, size, 3)).output_shape
        model = torchvision.models.squeezenet1_1(weights=None).eval()
        with torch.no_grad():
            theirs = model.features(torch.zeros(1, 3, size, size)).shape
        assert ours[1:3] == tuple(theirs[2:]), size
        keras.backend.clear_session()
