"""Vision Transformer B/16, B/32, L/16 and L/32 (Dosovitskiy et al. 2021), with torchvision's ImageNet weights.

The image is cut into ``patch x patch`` patches, each projected to ``dim`` channels (a strided
convolution, ``conv_proj``); a learned class token leads the sequence, learned position
embeddings are added (``encoder_pos_embedding``), then ``layers`` pre-norm encoder blocks
(multi-head self-attention with ``heads`` heads, an MLP of ``mlp_dim`` hidden units, GELU) and a
final LayerNorm (epsilon 1e-6). The classifier reads the class token (``heads_head``). Sizes
(Table 1 of the paper): Base 12 layers, 768 channels, 12 heads, MLP 3072; Large 24, 1024, 16,
4096.

Layer names are torchvision's module paths with ``_`` for ``.``
(``encoder_layers_encoder_layer_0_self_attention_in_proj``, ``..._mlp_0``, ``encoder_ln``), so
``weights="imagenet"`` converts torchvision's checkpoints. The model needs a known input size
(``input_shape``; without a top and without one, the default 224). At another size than the
weights' 224, the position embeddings are resampled bicubically (corners aligned), as
torchvision's ``interpolate_embeddings``. ``include_top=False`` gives the encoder's token
sequence ``(batch, 1 + patches, dim)``, or with ``pooling="avg"``/``"max"`` the mean/maximum of
the patch tokens. ``features_only`` is refused: the network has one scale. Preprocessing:
``"torch"``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import Chain, ClassToken, EncoderBlock, PatchEmbedding, PositionEmbedding, TokenPooling
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["ViTB16", "ViTB32", "ViTL16", "ViTL32", "preprocess_input", "decode_predictions", "CONFIGS"]


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """One ViT size: patch size, encoder blocks, channels, attention heads, MLP hidden units."""

    patch_size: int
    layers: int
    dim: int
    heads: int
    mlp_dim: int


#: The four models, by registry name.
CONFIGS: dict[str, ViTConfig] = {
    "vit_b_16": ViTConfig(16, 12, 768, 12, 3072),
    "vit_b_32": ViTConfig(32, 12, 768, 12, 3072),
    "vit_l_16": ViTConfig(16, 24, 1024, 16, 4096),
    "vit_l_32": ViTConfig(32, 24, 1024, 16, 4096),
}
LAYER_NORM_EPSILON = 1e-6

preprocess_input = family_preprocessor("torch")


@dataclasses.dataclass(frozen=True)
class ViTOptions(Options):
    """The model's size, a key of :data:`CONFIGS` (fixed by each constructor)."""

    config: str

    @property
    def vit(self) -> ViTConfig:
        return CONFIGS[self.config]


def body(options: ViTOptions, input_shape: tuple) -> list:
    vit = options.vit
    grid = (input_shape[0] // vit.patch_size, input_shape[1] // vit.patch_size)
    blocks: list = [Chain([
        PatchEmbedding(vit.dim, vit.patch_size),
        ClassToken(name="class_token"),
        PositionEmbedding(extra_tokens=1, grid=grid, name="encoder_pos_embedding"),
    ], name="embedding")]
    blocks += [EncoderBlock(vit.dim, vit.heads, vit.mlp_dim, layer_norm_epsilon=LAYER_NORM_EPSILON,
                            names=f"encoder_layers_encoder_layer_{i}_") for i in range(vit.layers)]
    blocks.append(keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="encoder_ln"))
    return blocks


def top(options: Any, classes: int, activation: Any) -> Chain:
    """The class token (``class_token_pool``) and the ``heads_head`` classifier."""
    return Chain([TokenPooling("token", name="class_token_pool"),
                  keras.layers.Dense(classes, activation=activation, name="heads_head")], name="classifier")


def no_top(options: Any, pooling: Any) -> keras.layers.Layer | None:
    """``pooling``: None (the token sequence), ``"avg"`` or ``"max"`` over the patch tokens."""
    return None if pooling is None else TokenPooling(pooling, name=f"{pooling}_pool")


def vit_spec(name: str, keras_name: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="vision_transformer", body=body, top=top, no_top=no_top,
        default_size=224, min_size=32, options=ViTOptions, fixed={"config": name}, static_input=True,
        multi_scale=False, params=params, flops=flops, top1=top1, top5=top5,
        reference="Dosovitskiy et al. 2021, An Image is Worth 16x16 Words: Transformers for Image Recognition at "
                  "Scale (torchvision's weights)",
    )


SPECS = {
    "vit_b_16": vit_spec("vit_b_16", "ViTB16", 86_567_656, 35_127_656_448, 81.072, 95.318),
    "vit_b_32": vit_spec("vit_b_32", "ViTB32", 88_224_232, 8_818_372_608, 75.912, 92.466),
    "vit_l_16": vit_spec("vit_l_16", "ViTL16", 304_326_632, 123_109_425_152, 79.662, 94.638),
    "vit_l_32": vit_spec("vit_l_32", "ViTL32", 306_535_400, 30_755_078_144, 76.972, 93.07),
}


@register(SPECS["vit_b_16"])
def ViTB16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
           classes=1000, classifier_activation="softmax", name="vit_b_16", *,
           builder: str = "functional", features_only: bool = False,
           out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ViT-B/16, with keras.applications' argument conventions.

    ``weights="imagenet"`` downloads torchvision's checkpoint once and converts it once into
    a Keras weights file in the kapps cache. Keyword-only ``builder`` is ``"functional"`` or
    ``"sequential"``. Preprocess inputs with :func:`preprocess_input` ("torch").

    >>> import kapps
    >>> kapps.ViTB16(weights=None, include_top=False, input_shape=(64, 64, 3)).output_shape
    (None, 17, 768)
    """
    return build_model(**SPECS["vit_b_16"].bind(locals()))


@register(SPECS["vit_b_32"])
def ViTB32(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
           classes=1000, classifier_activation="softmax", name="vit_b_32", *,
           builder: str = "functional", features_only: bool = False,
           out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ViT-B/32; arguments as :func:`ViTB16`.

    >>> import kapps
    >>> kapps.ViTB32(weights=None, include_top=False, pooling="avg", input_shape=(64, 96, 3)).output_shape
    (None, 768)
    """
    return build_model(**SPECS["vit_b_32"].bind(locals()))


@register(SPECS["vit_l_16"])
def ViTL16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
           classes=1000, classifier_activation="softmax", name="vit_l_16", *,
           builder: str = "functional", features_only: bool = False,
           out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ViT-L/16; arguments as :func:`ViTB16`.

    >>> import kapps
    >>> kapps.ViTL16(weights=None, input_shape=(32, 32, 3), classes=10).output_shape
    (None, 10)
    """
    return build_model(**SPECS["vit_l_16"].bind(locals()))


@register(SPECS["vit_l_32"])
def ViTL32(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
           classes=1000, classifier_activation="softmax", name="vit_l_32", *,
           builder: str = "functional", features_only: bool = False,
           out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ViT-L/32; arguments as :func:`ViTB16`.

    >>> import kapps
    >>> kapps.ViTL32(weights=None, include_top=False, input_shape=(64, 64, 3)).output_shape
    (None, 5, 1024)
    """
    return build_model(**SPECS["vit_l_32"].bind(locals()))
