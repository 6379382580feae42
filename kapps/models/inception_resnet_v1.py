"""Inception-ResNet-v1 (Szegedy et al. 2016), the paper's network; no ImageNet weights exist for it.

The paper's Figures 14 (stem), 10, 7, 11, 12 and 13, in the schema of Figure 15:

* stem: 3x3/2, 3x3 and 3x3 convolutions (32, 32, 64), 3x3/2 max pooling, 1x1 (80), 3x3 (192) and a
  3x3/2 convolution to 256 channels (35x35x256 at 299 px);
* 5 x Inception-ResNet-A (``block35``, 35x35: 32; 32 -> 32 3x3; 32 -> 32 3x3 -> 32 3x3; a linear 1x1
  back to 256, residual scale 0.17);
* Reduction-A with k, l, m, n = 192, 192, 256, 384 (Table 1): 17x17x896;
* 10 x Inception-ResNet-B (``block17``: 128; 128 -> 1x7 -> 7x1, back to 896, scale 0.1);
* Reduction-B (Figure 12: 3x3/2 max pooling and three strided branches, 384, 256, 256): 8x8x1792;
* 5 x Inception-ResNet-C (``block8``: 192; 192 -> 1x3 -> 3x1, back to 1792, scale 0.2; the last one
  unscaled and without ReLU, as kapps' InceptionResNetV2);
* global average pooling, dropout (keep 0.8) and the classifier.

Convolutions are conv - BatchNorm (no scale) - ReLU and the residual 1x1 convolutions are linear
with a bias, as in InceptionResNetV2, whose blocks this family shares
(:func:`kapps.inception_resnet_v2.layout_blocks`). Train it with ``weights=None``;
``weights="imagenet"`` is refused: neither Keras, torchvision nor timm publishes ImageNet weights
for it. Preprocessing: ``"tf"``.
"""

from __future__ import annotations

import keras

from kapps.blocks import AutoNames, Conv, DenseClassifier, Pool
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.models.inception_resnet_v2 import layout_blocks
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["InceptionResNetV1", "preprocess_input", "decode_predictions", "STEM", "LAYOUT"]

MAX = Pool("max", 3, 2, "valid")
#: The stem (Figure 14): convolutions and "pool" (3x3 max, stride 2).
STEM = (Conv(32, 3, 2, "valid"), Conv(32, 3, 1, "valid"), Conv(64, 3), "pool", Conv(80, 1, 1, "valid"),
        Conv(192, 3, 1, "valid"), Conv(256, 3, 2, "valid"))
#: Residual branches of the three block types (Figures 10, 11, 13).
BLOCK35 = ((Conv(32),), (Conv(32), Conv(32, 3)), (Conv(32), Conv(32, 3), Conv(32, 3)))
BLOCK17 = ((Conv(128),), (Conv(128), Conv(128, (1, 7)), Conv(128, (7, 1))))
BLOCK8 = ((Conv(192),), (Conv(192), Conv(192, (1, 3)), Conv(192, (3, 1))))
#: Reduction-A (Figure 7, k=192, l=192, m=256, n=384) and Reduction-B (Figure 12).
MIXED_6A = ((Conv(384, 3, 2, "valid"),), (Conv(192), Conv(192, 3), Conv(256, 3, 2, "valid")), (MAX,))
MIXED_7A = (
    (Conv(256), Conv(384, 3, 2, "valid")),
    (Conv(256), Conv(256, 3, 2, "valid")),
    (Conv(256), Conv(256, 3), Conv(256, 3, 2, "valid")),
    (MAX,),
)
#: The network after the stem: ("module", name, table) or ("residual", name, table, repeats, scale).
LAYOUT: tuple[tuple, ...] = (
    ("residual", "block35", BLOCK35, 5, 0.17),
    ("module", "mixed_6a", MIXED_6A),
    ("residual", "block17", BLOCK17, 10, 0.1),
    ("module", "mixed_7a", MIXED_7A),
    ("residual", "block8", BLOCK8, 5, 0.2),
)
STEM_CHANNELS = 256

preprocess_input = family_preprocessor("tf")


def body(options: Options, input_shape: tuple) -> list:
    return layout_blocks(STEM, LAYOUT, STEM_CHANNELS, AutoNames())


def top(options: Options, classes: int, activation: object) -> DenseClassifier:
    """Global average pooling (``avg_pool``), dropout 0.2 (the paper's keep 0.8), ``predictions``."""
    return DenseClassifier(classes, activation=activation, pool_name="avg_pool", dropout=0.2, dropout_name="dropout",
                           dense_name="predictions")


SPEC = ModelSpec(
    name="inception_resnet_v1", keras_name="InceptionResNetV1", family="inception_resnet_v1",
    body=body, top=top, default_size=299, min_size=75, params=22_769_848, flops=12_412_723_392,
    reference="Szegedy et al. 2016, Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning "
              "(no ImageNet weights published)",
)


@register(SPEC)
def InceptionResNetV1(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                      classes=1000, classifier_activation="softmax", name="inception_resnet_v1", *,
                      builder: str = "functional", features_only: bool = False,
                      out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """Inception-ResNet-v1, with keras.applications' argument conventions; ``weights=None`` by default
    (no ImageNet weights exist). Keyword-only ``builder`` is ``"functional"`` or ``"sequential"``.

    >>> import kapps
    >>> kapps.InceptionResNetV1(include_top=False, input_shape=(75, 75, 3)).output_shape
    (None, 1, 1, 1792)
    """
    return build_model(**SPEC.bind(locals()))
