"""ViT B/16, B/32, L/16, L/32 and Swin T, S, B against torchvision itself (issue 12).

As in ``tests/test_torchvision_families.py``: torchvision (``.[torch]``) is the reference and is
required. Each torchvision model is built with random weights (the ones torch initialises to
zero, such as ViT's classifier and class token, get random values too), its state dict saved
with ``torch.save`` and converted by ``kapps.convert``; the kapps builders must give torchvision's
logits on a real photo within a relative max difference of 1e-4 (both builders for ViT-B/16 and Swin-T and
at 224, the Functional builder for the others, whose Sequential models are the same blocks: the
suite's budget; both everywhere with ``KAPPS_FULL_SWEEPS=1``). Every model is
checked at a small input size (ViT: torchvision's ``image_size`` set to it, so the position
embedding has that grid; Swin: sizes that are not multiples of the window, so padding, shifted
windows with their mask and odd patch merging all run), one model per family at 224 (ViT-B/32's
224 file also runs at 96 px). ViT-B/16's
checkpoint is saved with the legacy ``mlp.linear_1``/``linear_2`` keys torchvision 0.13 wrote.
A ViT converted at 224 and built at another size resamples its position embedding as
torchvision's ``interpolate_embeddings`` does. Parameter counts and FLOPs equal torchvision's.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

import kapps
from conftest import photo
from torch_reference import converted_reference, randomize, relative_difference, torch, torch_logits, torchvision
from kapps.blocks import PositionEmbedding
from kapps.registry import get_spec

#: registry name -> (small input size, torch.save format of its checkpoint).
MODELS = {
    "vit_b_16": (48, "zip"),
    "vit_b_32": (64, "legacy"),
    "vit_l_16": (32, "zip"),
    "vit_l_32": (64, "zip"),
    "swin_t": (64, "zip"),
    "swin_s": (97, "legacy"),
    "swin_b": (40, "zip"),
}
#: Checkpoints saved with torchvision 0.13's MLPBlock names (``mlp.linear_1`` for ``mlp.0``).
LEGACY_MLP_KEYS = {"vit_b_16"}
TOLERANCE = 1e-4
MEASURED: dict[str, float] = {}


def torch_model(name: str, size: int, seed: int) -> torch.nn.Module:
    """torchvision's ``name`` with random weights; ViT made for ``size`` (its position embedding's grid)."""
    torch.manual_seed(seed)
    kwargs = {"image_size": size} if name.startswith("vit") else {}
    return randomize(getattr(torchvision.models, name)(weights=None, **kwargs), seed=seed)


def legacy_mlp_keys(state: dict) -> dict:
    """``...mlp.0.weight`` -> ``...mlp.linear_1.weight`` (and ``mlp.3`` -> ``linear_2``), as torchvision 0.13 saved ViT."""
    return {re.sub(r"\.mlp\.([03])\.", lambda m: f".mlp.linear_{1 if m.group(1) == '0' else 2}.", key): value
            for key, value in state.items()}


def convert(folder, name: str, model: torch.nn.Module, size: int, kind: str) -> str:
    state = model.state_dict()
    if name in LEGACY_MLP_KEYS:
        state = legacy_mlp_keys(state)
        assert any(".mlp.linear_1." in key for key in state)
    checkpoint = folder / f"{name}_{size}.pth"
    torch.save(state, checkpoint, _use_new_zipfile_serialization=kind == "zip")
    return kapps.convert(checkpoint, name, folder / f"{name}_{size}.weights.h5", input_shape=(size, size, 3))


#: Both builders for the smallest model of each family; the Functional builder for the others, whose Sequential
#: models are the same block layers (the suite's time budget; both for every model with KAPPS_FULL_SWEEPS=1).
BOTH_BUILDERS = {"vit_b_16", "swin_t"}


def builders_of(name: str) -> tuple[str, ...]:
    from parity import full_sweeps

    return ("functional", "sequential") if full_sweeps() or name in BOTH_BUILDERS else ("functional",)


def check_parity(folder, name: str, size: int, kind: str, seed: int) -> torch.nn.Module:
    model = torch_model(name, size, seed)
    weights = convert(folder, name, model, size, kind)
    x = getattr(kapps, get_spec(name).family).preprocess_input(photo(size))
    want = torch_logits(model, x)
    for builder in builders_of(name):
        ours = kapps.get_model(name, weights=weights, input_shape=(size, size, 3), classifier_activation=None,
                               builder=builder)
        got = np.asarray(ours(x, training=False))
        error = relative_difference(got, want)
        MEASURED[f"{name}@{size}/{builder}"] = error
        assert ours.count_params() == sum(p.numel() for p in model.parameters())
        assert error <= TOLERANCE, (name, size, builder, error)
        assert np.argmax(got) == np.argmax(want)
        keras.backend.clear_session()
    return model


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nmeasured relative max differences:", {k: f"{v:.2e}" for k, v in sorted(MEASURED.items())})


@pytest.mark.parametrize("name", list(MODELS))
def test_both_builders_equal_torchvision_at_a_small_size(tmp_path, name):
    size, kind = MODELS[name]
    check_parity(tmp_path, name, size, kind, seed=list(MODELS).index(name))


def test_swin_t_equals_torchvision_at_224(tmp_path):
    check_parity(tmp_path, "swin_t", 224, "zip", seed=20)


def test_registry_params_and_flops_are_torchvisions():
    """At 224 (each parity check also counts both models' parameters at its own size). torchvision publishes
    GFLOPS as multiply-adds (``_ops``, 3 decimals); kapps counts a multiply-add as 2."""
    for name in MODELS:
        meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
        assert get_spec(name).params == meta["num_params"], name
        ops = meta["_ops"]
        assert abs(get_spec(name).flops / 2e9 - ops) <= 5e-4, (name, get_spec(name).flops, ops)


@pytest.mark.parametrize(("grid", "new_grid"), [(14, 20), (7, 2), (3, 3)])
def test_position_embedding_resamples_like_torchvision(grid, new_grid):
    """The numbers of :meth:`PositionEmbedding.adapt_weights` are torchvision's ``interpolate_embeddings``'."""
    from torchvision.models.vision_transformer import interpolate_embeddings

    stored = np.random.default_rng(grid).normal(size=(1, 1 + grid * grid, 8)).astype("float32")
    patch = 16
    theirs = interpolate_embeddings(new_grid * patch, patch, {"encoder.pos_embedding": torch.from_numpy(stored)})
    layer = PositionEmbedding(1, grid=(new_grid, new_grid), name="encoder_pos_embedding")
    layer.build((None, 1 + new_grid * new_grid, 8))
    (ours,) = layer.adapt_weights([stored])
    np.testing.assert_allclose(ours, theirs["encoder.pos_embedding"].numpy(), atol=1e-5)  # float64 here, float32 there


def test_vit_b_32_equals_torchvision_at_224_and_at_another_size_from_the_same_file(tmp_path):
    """The family's default-size check, then ``weights=`` the same file converted at 224 with ``input_shape`` 96
    (and 96x160): the position embedding is resampled on load; torchvision's model at 96, given
    ``interpolate_embeddings`` of the same state, computes the same logits."""
    from torchvision.models.vision_transformer import interpolate_embeddings

    model = torch_model("vit_b_32", 224, seed=30)
    weights = convert(tmp_path, "vit_b_32", model, 224, "zip")
    x = kapps.vision_transformer.preprocess_input(photo(224))
    want = torch_logits(model, x)
    for builder in ("functional", "sequential"):
        ours = kapps.ViTB32(weights=weights, classifier_activation=None, builder=builder)
        error = relative_difference(np.asarray(ours(x, training=False)), want)
        MEASURED[f"vit_b_32@224/{builder}"] = error
        assert error <= TOLERANCE, (builder, error)
    size = 96
    small = torchvision.models.vit_b_32(weights=None, image_size=size).eval()
    small.load_state_dict(interpolate_embeddings(size, 32, model.state_dict()))
    x = kapps.vision_transformer.preprocess_input(photo(size))
    want = torch_logits(small, x)
    for builder in builders_of("vit_b_32"):
        ours = kapps.ViTB32(weights=weights, input_shape=(size, size, 3), classifier_activation=None, builder=builder)
        error = relative_difference(np.asarray(ours(x, training=False)), want)
        MEASURED[f"vit_b_32 224->{size}/{builder}"] = error
        assert error <= TOLERANCE, (builder, error)
    wide = kapps.ViTB32(weights=weights, input_shape=(96, 160, 3), include_top=False)
    assert wide.output_shape == (None, 1 + 3 * 5, 768)
    keras.backend.clear_session()


def test_features_only_is_refused_for_vit_and_gives_swins_four_stages():
    with pytest.raises(ValueError, match=r"`features_only` must be False for ViTB16: it computes one sequence of "
                                         r"tokens.*Received: features_only=True"):
        kapps.ViTB16(weights=None, input_shape=(64, 64, 3), features_only=True)
    features = kapps.SwinT(weights=None, input_shape=(96, 96, 3), features_only=True)
    assert [(level["name"], level["reduction"], level["channels"]) for level in features.feature_info] == [
        ("features_1_1_add_2", 4, 96), ("features_3_1_add_2", 8, 192), ("features_5_5_add_2", 16, 384),
        ("features_7_1_add_2", 32, 768)]
    assert [tuple(out.shape) for out in features.outputs] == [
        (None, 24, 24, 96), (None, 12, 12, 192), (None, 6, 6, 384), (None, 3, 3, 768)]


def test_unknown_input_sizes_and_channels_first_are_refused():
    with pytest.raises(ValueError, match=r"`input_shape` must be static .*Received: input_shape=\(None, None, 3\)"):
        kapps.SwinT(weights=None, include_top=False, input_shape=(None, None, 3))
    assert kapps.ViTB32(weights=None, include_top=False).input_shape == (None, 224, 224, 3)  # the default size
    keras.config.set_image_data_format("channels_first")
    try:
        with pytest.raises(ValueError, match="ViT does not support the `channels_first` image data format"):
            kapps.ViTB16(weights=None, input_shape=(3, 64, 64))
    finally:
        keras.config.set_image_data_format("channels_last")


def test_no_top_pooling_reads_the_patch_tokens():
    model = kapps.ViTB32(weights=None, input_shape=(64, 64, 3), include_top=False)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    tokens = np.asarray(model(x))
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        pooled = kapps.ViTB32(weights=None, input_shape=(64, 64, 3), include_top=False, pooling=pooling)
        pooled.set_weights(model.get_weights())
        np.testing.assert_allclose(np.asarray(pooled(x)), reduce(tokens[:, 1:], axis=1), rtol=1e-5, atol=1e-5)
    keras.backend.clear_session()
