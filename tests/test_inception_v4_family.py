"""Inception-v4 against timm, and Inception-ResNet-v1 against the paper (issue 12).

Inception-v4's reference is timm's ``inception_v4`` (``.[torch]``: timm beside torch and
torchvision; required, never skipped). timm's model is built with random weights and randomised
BatchNorm, its state dict saved as ``.safetensors`` (timm's own format on the Hugging Face hub) and
converted by ``kapps.convert``; both kapps builders must give timm's logits on a real photo within a
relative max difference of 1e-4, at the smallest input (75, odd) and the default 299. The
``weights="imagenet"`` path for a timm file runs against a real HTTP server on 127.0.0.1
(``KAPPS_TIMM_MIRROR``): downloaded once, converted once, equal to timm. The manifest's facts equal
timm's ``pretrained_cfg``.

Inception-ResNet-v1 has no ImageNet checkpoint anywhere: its feature-map shapes are the paper's
Figure 15 (35x35x256, 17x17x896, 8x8x1792 at 299 px), its parameter count is recomputed here from
the paper's figures (not from kapps' tables), and it trains (the loss falls on real photos).
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import pytest

import kapps
from conftest import photo, shared_dir
from httpserver import WeightsServer
from torch_reference import randomize, relative_difference, torch, torch_logits

sys.modules.setdefault("triton", None)  # as torch_reference: timm imports torchvision
import timm  # noqa: E402  (the reference: the .[torch] extra)

from kapps.registry import get_spec  # noqa: E402
from kapps.weights import manifest, store  # noqa: E402

TOLERANCE = 1e-4
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """timm's Inception-v4 (random weights, randomised BatchNorm), its .safetensors file and the converted file."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("timm")
    torch.manual_seed(4)
    model = randomize(timm.create_model("inception_v4", pretrained=False), seed=4)
    checkpoint = folder / "inception_v4.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(checkpoint))
    converted = kapps.convert(checkpoint, "inception_v4", folder / "inception_v4.weights.h5")
    yield model, checkpoint, converted
    print("\nmeasured relative max differences:", {k: f"{v:.2e}" for k, v in sorted(MEASURED.items())})


@pytest.mark.parametrize("size", [75, 299])
def test_both_builders_equal_timm(reference, size):
    model, _, weights = reference
    x = kapps.inception_v4.preprocess_input(photo(size))
    want = torch_logits(model, x)
    for builder in ("functional", "sequential"):
        ours = kapps.InceptionV4(weights=weights, input_shape=(size, size, 3), classifier_activation=None,
                                 builder=builder)
        got = np.asarray(ours(x, training=False))
        MEASURED[f"{size}/{builder}"] = error = relative_difference(got, want)
        assert error <= TOLERANCE, (size, builder, error)
        assert np.argmax(got) == np.argmax(want)
        keras.backend.clear_session()


def test_params_are_timms_parameters_and_batchnorm_statistics(reference):
    model, _, _ = reference
    statistics = sum(b.numel() for key, b in model.named_buffers() if key.endswith(("running_mean", "running_var")))
    assert get_spec("inception_v4").params == sum(p.numel() for p in model.parameters()) + statistics


def test_manifest_states_timms_published_facts():
    cfg = timm.create_model("inception_v4", pretrained=False).pretrained_cfg
    (entry,) = manifest.files_for("inception_v4")
    assert entry.source == "timm" and manifest.model_entry("inception_v4")["timm_model"] == cfg["architecture"]
    assert entry.url == f"https://huggingface.co/{cfg['hf_hub_id']}/resolve/main/model.safetensors"
    assert entry.file == f"{cfg['hf_hub_id'].split('/')[1]}.safetensors"
    assert entry.hash_value is None  # timm publishes none; nothing is invented
    transform = entry.eval_transform
    assert transform["size"] == list(cfg["input_size"][1:]) and transform["crop_pct"] == cfg["crop_pct"]
    assert transform["interpolation"] == cfg["interpolation"] and transform["preprocessing"] == "tf"
    assert transform["mean"] == list(cfg["mean"]) and transform["std"] == list(cfg["std"])
    assert (get_spec("inception_v4").top1, get_spec("inception_v4").top5) == (80.0, 95.0)  # the paper's Table 2
    assert manifest.find("inception_v4", False) == entry


def test_imagenet_weights_download_from_the_hub_once_and_convert_once(reference, tmp_path, monkeypatch):
    """``weights="imagenet"`` against a loopback server laid out as the hub (``KAPPS_TIMM_MIRROR``)."""
    model, checkpoint, _ = reference
    (entry,) = manifest.files_for("inception_v4")
    relative = entry.url[len(manifest.TIMM_URL):]
    served = tmp_path / "www" / relative
    served.parent.mkdir(parents=True)
    served.write_bytes(checkpoint.read_bytes())
    x = kapps.inception_v4.preprocess_input(photo(299))
    with WeightsServer(tmp_path / "www") as server:
        monkeypatch.setenv("KAPPS_TIMM_MIRROR", server.url)
        ours = kapps.InceptionV4(weights="imagenet", classifier_activation=None)
        again = kapps.InceptionV4(weights="imagenet", include_top=False, input_shape=(75, 75, 3))
        assert server.requests == [relative]  # once, for both
    cached = sorted(os.listdir(store.kapps_cache_dir()))
    assert [name for name in cached if not name.startswith(".")] == [
        "inception_v4.tf_in1k.safetensors", "inception_v4.tf_in1k.weights.h5"]
    MEASURED["imagenet path"] = error = relative_difference(np.asarray(ours(x, training=False)),
                                                            torch_logits(model, x))
    assert error <= TOLERANCE
    assert again.output_shape == (None, 1, 1, 1536)
    keras.backend.clear_session()


# -- Inception-ResNet-v1 ------------------------------------------------------------------------------------------
#: The paper's modules as (kernel area, output channels) per convolution unit of each branch, and the channels
#: of its linear 1x1 convolution back to the block's width: Figures 14 (stem), 10, 7, 11, 12, 13.
PAPER_STEM = [(9, 32), (9, 32), (9, 64), (1, 80), (9, 192), (9, 256)]
PAPER_BLOCKS = {
    "A": ([[(1, 32)], [(1, 32), (9, 32)], [(1, 32), (9, 32), (9, 32)]], 256, 5),
    "B": ([[(1, 128)], [(1, 128), (7, 128), (7, 128)]], 896, 10),
    "C": ([[(1, 192)], [(1, 192), (3, 192), (3, 192)]], 1792, 5),
}
PAPER_REDUCTIONS = {  # Reduction-A with k, l, m, n = 192, 192, 256, 384 (Table 1); Reduction-B; plus a max pooling
    "A": [[(9, 384)], [(1, 192), (9, 192), (9, 256)]],
    "B": [[(1, 256), (9, 384)], [(1, 256), (9, 256)], [(1, 256), (9, 256), (9, 256)]],
}


def paper_parameters(classes: int = 1000) -> int:
    """Weights of the network the paper draws: conv kernels, BatchNorm without scale (beta and the two
    statistics), the residual blocks' linear 1x1 convolutions with bias, the classifier."""
    def chain(units, channels):
        total = 0
        for area, out in units:
            total += area * channels * out + 3 * out
            channels = out
        return total, channels

    total, channels = chain(PAPER_STEM, 3)
    for block, reduction in (("A", "A"), ("B", "B"), ("C", None)):
        branches, width, repeats = PAPER_BLOCKS[block]
        per_block = 0
        concat = 0
        for units in branches:
            params, out = chain(units, width)
            per_block += params
            concat += out
        per_block += concat * width + width
        total += repeats * per_block
        channels = width
        if reduction:
            outs = [chain(units, channels) for units in PAPER_REDUCTIONS[reduction]]
            total += sum(p for p, _ in outs)
            channels += sum(out for _, out in outs)
    return total + channels * classes + classes


def test_inception_resnet_v1_has_the_papers_shapes_and_parameters():
    model = kapps.InceptionResNetV1()
    assert model.count_params() == paper_parameters() == get_spec("inception_resnet_v1").params
    assert [tuple(model.get_layer(n).output.shape[1:]) for n in ("block35_5_ac", "mixed_6a", "mixed_7a",
                                                                 "block8_5_conv")] == [
        (35, 35, 256), (17, 17, 896), (8, 8, 1792), (8, 8, 1792)]
    stem = [tuple(model.get_layer(f"activation_{i}" if i else "activation").output.shape[1:]) for i in range(6)]
    assert stem == [(149, 149, 32), (147, 147, 32), (147, 147, 64), (73, 73, 80), (71, 71, 192), (35, 35, 256)]
    with pytest.raises(ValueError, match="inception_resnet_v1"):
        kapps.InceptionResNetV1(weights="imagenet")
    keras.backend.clear_session()


def test_inception_resnet_v1_trains_on_real_photos():
    """Ants and bees from ../shared at 75 px, both builders' model classes: the training loss falls."""
    from kapps.images import load_image

    folder = shared_dir() / "data" / "hymenoptera" / "train"
    files = [sorted((folder / label).glob("*.jpg"))[:8] for label in ("ants", "bees")]
    x = np.stack([load_image(path, (75, 75)) for group in files for path in group]).astype("float32")
    y = np.repeat([0, 1], 8)
    keras.utils.set_random_seed(0)
    model = kapps.InceptionResNetV1(input_shape=(75, 75, 3), classes=2, builder="sequential")
    # eager steps: tracing the training graph once costs more than these few steps
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", run_eagerly=True)
    history = model.fit(kapps.inception_resnet_v1.preprocess_input(x), y, epochs=5, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0], losses
    keras.backend.clear_session()
