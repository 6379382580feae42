"""Swin Transformer T, S and B (Liu et al. 2021), with torchvision's ImageNet weights.

A 4x4/4 patch convolution and LayerNorm (``features_0``), then four stages of Swin blocks
(``features_1``, ``_3``, ``_5``, ``_7``: window attention over 7x7 windows, every second block
with windows shifted by 3, a relative position bias per head, an MLP of 4x the channels)
separated by patch merging (``features_2``, ``_4``, ``_6``: 2x2 patches side by side, LayerNorm,
a Dense to twice the channels), a final LayerNorm (``norm``), global average pooling and the
``head`` classifier. Sizes (Table 7 of the paper): T: 96 channels, 2, 2, 6, 2 blocks, 3, 6, 12,
24 heads; S: as T with 18 blocks in stage 3; B: 128 channels, 2, 2, 18, 2 blocks, 4, 8, 16, 32
heads. Stochastic depth grows linearly to 0.2 (T), 0.3 (S), 0.5 (B), as torchvision trained
them. LayerNorm epsilon 1e-5.

Layer names are torchvision's module paths with ``_`` for ``.`` (``features_1_0_attn_qkv``,
``features_2_reduction``, ``head``), so ``weights="imagenet"`` converts torchvision's
checkpoints. The model needs a known input size (``input_shape``; without a top and without
one, the default 224); other sizes work as in torchvision, windows padded where the map is not
a multiple of 7. ``features_only=True`` gives the four stages (reductions 4, 8, 16, 32).
Preprocessing: ``"torch"``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import Chain, DenseClassifier, PatchMerging, SwinBlock
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["SwinT", "SwinS", "SwinB", "preprocess_input", "decode_predictions", "CONFIGS"]


@dataclasses.dataclass(frozen=True)
class SwinConfig:
    """One Swin size: channels of stage 1, blocks and heads per stage, final stochastic depth rate."""

    dim: int
    depths: tuple[int, ...]
    heads: tuple[int, ...]
    stochastic_depth: float


#: The three models, by registry name.
CONFIGS: dict[str, SwinConfig] = {
    "swin_t": SwinConfig(96, (2, 2, 6, 2), (3, 6, 12, 24), 0.2),
    "swin_s": SwinConfig(96, (2, 2, 18, 2), (3, 6, 12, 24), 0.3),
    "swin_b": SwinConfig(128, (2, 2, 18, 2), (4, 8, 16, 32), 0.5),
}
WINDOW_SIZE = 7
PATCH_SIZE = 4
LAYER_NORM_EPSILON = 1e-5

preprocess_input = family_preprocessor("torch")


@dataclasses.dataclass(frozen=True)
class SwinOptions(Options):
    """The model's size, a key of :data:`CONFIGS` (fixed by each constructor)."""

    config: str

    @property
    def swin(self) -> SwinConfig:
        return CONFIGS[self.config]


def body(options: SwinOptions, input_shape: tuple) -> list:
    swin = options.swin
    blocks: list = [Chain([
        keras.layers.Conv2D(swin.dim, PATCH_SIZE, strides=PATCH_SIZE, name="features_0_0"),
        keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="features_0_2"),
    ], name="features_0")]
    total, index = sum(swin.depths), 0
    for stage, (depth, heads) in enumerate(zip(swin.depths, swin.heads)):
        dim = swin.dim * 2 ** stage
        units = []
        for i in range(depth):
            rate = swin.stochastic_depth * index / (total - 1)  # torchvision's linear rule
            units.append(SwinBlock(dim, heads, WINDOW_SIZE, 0 if i % 2 == 0 else WINDOW_SIZE // 2,
                                   drop_path_rate=rate, layer_norm_epsilon=LAYER_NORM_EPSILON,
                                   names=f"features_{2 * stage + 1}_{i}_"))
            index += 1
        blocks.append(Chain(units, name=f"features_{2 * stage + 1}"))
        if stage < len(swin.depths) - 1:
            blocks.append(PatchMerging(dim, layer_norm_epsilon=LAYER_NORM_EPSILON, names=f"features_{2 * stage + 2}_"))
    blocks.append(keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm"))
    return blocks


def top(options: Any, classes: int, activation: Any) -> DenseClassifier:
    """Global average pooling (``avgpool``) and the ``head`` classifier."""
    return DenseClassifier(classes, activation=activation, pool_name="avgpool", dense_name="head")


def swin_spec(name: str, keras_name: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="swin_transformer", body=body, top=top,
        default_size=224, min_size=32, options=SwinOptions, fixed={"config": name}, static_input=True,
        params=params, flops=flops, top1=top1, top5=top5,
        reference="Liu et al. 2021, Swin Transformer: Hierarchical Vision Transformer using Shifted Windows "
                  "(torchvision's weights)",
    )


SPECS = {
    "swin_t": swin_spec("swin_t", "SwinT", 28_288_354, 8_981_133_312, 81.474, 95.776),
    "swin_s": swin_spec("swin_s", "SwinS", 49_606_258, 17_481_750_528, 83.196, 96.36),
    "swin_b": swin_spec("swin_b", "SwinB", 87_768_224, 30_861_893_632, 83.582, 96.64),
}


@register(SPECS["swin_t"])
def SwinT(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="swin_t", *,
          builder: str = "functional", features_only: bool = False,
          out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """Swin-T, with keras.applications' argument conventions.

    ``weights="imagenet"`` downloads torchvision's checkpoint once and converts it once into
    a Keras weights file in the kapps cache. Keyword-only ``builder`` is ``"functional"`` or
    ``"sequential"``. Preprocess inputs with :func:`preprocess_input` ("torch").

    >>> import kapps
    >>> kapps.SwinT(weights=None, include_top=False, input_shape=(64, 64, 3)).output_shape
    (None, 2, 2, 768)
    """
    return build_model(**SPECS["swin_t"].bind(locals()))


@register(SPECS["swin_s"])
def SwinS(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="swin_s", *,
          builder: str = "functional", features_only: bool = False,
          out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """Swin-S; arguments as :func:`SwinT`.

    >>> import kapps
    >>> kapps.SwinS(weights=None, include_top=False, pooling="avg", input_shape=(64, 64, 3)).output_shape
    (None, 768)
    """
    return build_model(**SPECS["swin_s"].bind(locals()))


@register(SPECS["swin_b"])
def SwinB(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="swin_b", *,
          builder: str = "functional", features_only: bool = False,
          out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """Swin-B; arguments as :func:`SwinT`.

    >>> import kapps
    >>> [level["reduction"] for level in kapps.SwinB(weights=None, input_shape=(64, 64, 3),
    ...                                              features_only=True).feature_info]
    [4, 8, 16, 32]
    """
    return build_model(**SPECS["swin_b"].bind(locals()))
