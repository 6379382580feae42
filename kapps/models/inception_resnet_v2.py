"""InceptionResNetV2 (Szegedy et al. 2016, Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning).

The InceptionV3 stem, an inception module (``mixed_5b``), then three stacks of
Inception-ResNet blocks separated by reduction modules: 10 x block35 (35x35, residual
scale 0.17), ``mixed_6a``, 20 x block17 (17x17, scale 0.1), ``mixed_7a``, 10 x block8
(8x8, scale 0.2; the last one unscaled and without ReLU), then a 1x1 conv to 1536
channels. Each block is ``relu(x + scale * conv1x1(concat(branches(x))))``.

Unnamed layers get the names Keras gives them in keras.applications (``conv2d_N``,
``batch_normalization_N``, ``activation_N``, ``custom_scale_layer_N``), the others keep
theirs (``block35_1_mixed``, ``block35_1_conv``, ``block35_1_ac``, ``conv_7b``, ...).
"""

from __future__ import annotations


import keras

from kapps.blocks import (
    AutoNames, Chain, Conv, ConvBNAct, InceptionModule, Names, Pool, ScaledResidual,
    inception_conv, output_channels, pool_layer,
)
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register
from kapps.models._heads import avg_pool_top as top

__all__ = ["InceptionResNetV2", "preprocess_input", "decode_predictions", "inception_module", "residual_block",
           "layout_blocks"]

MAX = Pool("max", 3, 2, "valid")

#: The stem (InceptionV3's): convolutions and "pool" (3x3 max, stride 2).
STEM = (Conv(32, 3, 2, "valid"), Conv(32, 3, 1, "valid"), Conv(64, 3), "pool", Conv(80, 1, 1, "valid"),
        Conv(192, 3, 1, "valid"), "pool")

MIXED_5B = ((Conv(96),), (Conv(48), Conv(64, 5)), (Conv(64), Conv(96, 3), Conv(96, 3)), (Pool("avg"), Conv(64)))
MIXED_6A = ((Conv(384, 3, 2, "valid"),), (Conv(256), Conv(256, 3), Conv(384, 3, 2, "valid")), (MAX,))
MIXED_7A = (
    (Conv(256), Conv(384, 3, 2, "valid")),
    (Conv(256), Conv(288, 3, 2, "valid")),
    (Conv(256), Conv(288, 3), Conv(320, 3, 2, "valid")),
    (MAX,),
)

#: Residual branches of the three Inception-ResNet block types (paper Figures 16, 17, 19).
BLOCK35 = ((Conv(32),), (Conv(32), Conv(32, 3)), (Conv(32), Conv(48, 3), Conv(64, 3)))
BLOCK17 = ((Conv(192),), (Conv(128), Conv(160, (1, 7)), Conv(192, (7, 1))))
BLOCK8 = ((Conv(192),), (Conv(192), Conv(224, (1, 3)), Conv(256, (3, 1))))

#: The network after the stem: ("module", name, table) or ("residual", name, table, repeats, scale).
LAYOUT: tuple[tuple, ...] = (
    ("module", "mixed_5b", MIXED_5B),
    ("residual", "block35", BLOCK35, 10, 0.17),
    ("module", "mixed_6a", MIXED_6A),
    ("residual", "block17", BLOCK17, 20, 0.1),
    ("module", "mixed_7a", MIXED_7A),
    ("residual", "block8", BLOCK8, 10, 0.2),
)
STEM_CHANNELS = 192

preprocess_input = family_preprocessor("tf")


def inception_module(table: tuple, names: AutoNames, concat_name: str, block_name: str) -> InceptionModule:
    """A table of branches as an inception module of Keras-style auto-named conv-BN-ReLU units."""
    return InceptionModule.from_table(
        table, make_conv=lambda conv: inception_conv(conv, names),
        make_pool=lambda pool: pool_layer(pool, names("average_pooling2d" if pool.kind == "avg" else "max_pooling2d")),
        concat_name=concat_name, name=block_name,
    )


def residual_block(table: tuple, names: AutoNames, prefix: str, channels: int, scale: float,
                   last: bool) -> ScaledResidual:
    """``x + scale * conv1x1(concat(branches))``, then ReLU (the network's very last block has none)."""
    mixed = inception_module(table, names, f"{prefix}_mixed", f"{prefix}_module")
    up = ConvBNAct(channels, 1, use_bias=True, bn=False, activation=None,
                   names=Names("", {"conv": f"{prefix}_conv", "block": f"{prefix}_up"}))
    return ScaledResidual(
        Chain([mixed, up], name=f"{prefix}_body"), 1.0 if last else scale, activation=None if last else "relu",
        scale_name=names("custom_scale_layer"), act_name=f"{prefix}_ac", name=prefix,
    )


def layout_blocks(stem: tuple, layout: tuple, stem_channels: int, names: AutoNames) -> list:
    """The stem (convolutions and ``"pool"``) and the ``layout`` of modules and residual blocks, as blocks;
    Inception-ResNet-v1 and -v2 differ only in these tables."""
    layers = [pool_layer(MAX, names("max_pooling2d")) if step == "pool" else inception_conv(step, names)
              for step in stem]
    blocks: list = [Chain(layers, name="stem")]
    channels = stem_channels
    for kind, name, table, *repeat in layout:
        if kind == "module":
            blocks.append(inception_module(table, names, name, f"{name}_module"))
            channels = output_channels(table, channels)
            continue
        repeats, scale = repeat
        for i in range(1, repeats + 1):
            last = name == layout[-1][1] and i == repeats
            blocks.append(residual_block(table, names, f"{name}_{i}", channels, scale, last))
    return blocks


def body(options: Options, input_shape: tuple) -> list:
    names = AutoNames()
    return layout_blocks(STEM, LAYOUT, STEM_CHANNELS, names) + [inception_conv(Conv(1536), names, name="conv_7b")]


SPEC = ModelSpec(
    name="inception_resnet_v2", keras_name="InceptionResNetV2", family="inception_resnet_v2",
    body=body, top=top, default_size=299, min_size=75,
    params=55_873_736, flops=26_311_588_032, top1=80.3, top5=95.3,
    reference="Szegedy et al. 2016, Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
)


@register(SPEC)
def InceptionResNetV2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                      classes=1000, classifier_activation="softmax", name="inception_resnet_v2", *,
                      builder: str = "functional",
                      features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """InceptionResNetV2, with keras.applications' signature and layer names.

    Arguments are those of ``keras.applications.InceptionResNetV2`` (input 299x299x3
    by default, at least 75x75 without the top). Keyword-only ``builder`` is
    ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of the stem, the modules and one block per residual block).
    Preprocess inputs with :func:`preprocess_input` (pixels to [-1, 1]).

    >>> import kapps
    >>> kapps.InceptionResNetV2(weights=None, include_top=False, input_shape=(75, 75, 3)).output_shape
    (None, 1, 1, 1536)
    """
    return build_model(**SPEC.bind(locals()))
