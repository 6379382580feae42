"""InceptionV3 (Szegedy et al. 2016, Rethinking the Inception Architecture for Computer Vision).

A stem of plain convolutions, then eleven inception modules (keras.applications'
``mixed0`` ... ``mixed10``): three 35x35 A modules, a grid reduction, four 17x17 B modules
with factorized 7x7 convolutions (1x7 then 7x1), a second reduction and two 8x8 C
modules whose 3x3 branches fork into parallel 1x3 and 3x1 convolutions. Every
convolution is conv - BatchNorm (no scale) - ReLU.

keras.applications leaves these layers unnamed, so Keras names them by class in
creation order (``conv2d``, ``conv2d_1``, ..., ``batch_normalization_93``); kapps
creates its layers in that same order and gives them the same names explicitly.
"""

from __future__ import annotations


import keras

from kapps.blocks import (
    AutoNames, Chain, Conv, Fork, InceptionModule, Pool, inception_conv, pool_layer,
)
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register
from kapps.models._heads import avg_pool_top as top

__all__ = ["InceptionV3", "preprocess_input", "decode_predictions"]

AVG = Pool("avg", 3, 1, "same")
MAX = Pool("max", 3, 2, "valid")

#: The stem: (filters, kernel, strides, padding) convolutions and "pool" (3x3 max, stride 2).
STEM = (Conv(32, 3, 2, "valid"), Conv(32, 3, 1, "valid"), Conv(64, 3), "pool", Conv(80, 1, 1, "valid"),
        Conv(192, 3, 1, "valid"), "pool")


def module_a(pool_filters: int) -> tuple:
    """35x35 module (paper Figure 5, 5x5 kept as in the released model)."""
    return (
        (Conv(64),),
        (Conv(48), Conv(64, 5)),
        (Conv(64), Conv(96, 3), Conv(96, 3)),
        (AVG, Conv(pool_filters)),
    )


def module_b(width: int) -> tuple:
    """17x17 module with n x n convolutions factorized into 1x7 and 7x1 (Figure 6)."""
    return (
        (Conv(192),),
        (Conv(width), Conv(width, (1, 7)), Conv(192, (7, 1))),
        (Conv(width), Conv(width, (7, 1)), Conv(width, (1, 7)), Conv(width, (7, 1)), Conv(192, (1, 7))),
        (AVG, Conv(192)),
    )


def module_c(index: int) -> tuple:
    """8x8 module with expanded filter banks: 3x3 outputs fork into 1x3 and 3x1 (Figure 7)."""
    split = ((Conv(384, (1, 3)),), (Conv(384, (3, 1)),))
    return (
        (Conv(320),),
        (Conv(384), Fork(split, name=f"mixed9_{index}")),
        (Conv(448), Conv(384, 3), Fork(split)),
        (AVG, Conv(192)),
    )


REDUCTION_A = ((Conv(384, 3, 2, "valid"),), (Conv(64), Conv(96, 3), Conv(96, 3, 2, "valid")), (MAX,))
REDUCTION_B = (
    (Conv(192), Conv(320, 3, 2, "valid")),
    (Conv(192), Conv(192, (1, 7)), Conv(192, (7, 1)), Conv(192, 3, 2, "valid")),
    (MAX,),
)

#: The modules in order, with keras.applications' name for each output.
MODULES: tuple[tuple[str, tuple], ...] = (
    ("mixed0", module_a(32)), ("mixed1", module_a(64)), ("mixed2", module_a(64)),
    ("mixed3", REDUCTION_A),
    ("mixed4", module_b(128)), ("mixed5", module_b(160)), ("mixed6", module_b(160)), ("mixed7", module_b(192)),
    ("mixed8", REDUCTION_B),
    ("mixed9", module_c(0)), ("mixed10", module_c(1)),
)

preprocess_input = family_preprocessor("tf")


def _pool(pool: Pool, names: AutoNames) -> keras.layers.Layer:
    return pool_layer(pool, names("average_pooling2d" if pool.kind == "avg" else "max_pooling2d"))


def body(options: Options, input_shape: tuple) -> list:
    names = AutoNames()
    stem = [_pool(MAX, names) if step == "pool" else inception_conv(step, names) for step in STEM]
    blocks: list = [Chain(stem, name="stem")]
    for name, table in MODULES:
        blocks.append(InceptionModule.from_table(
            table, make_conv=lambda conv: inception_conv(conv, names), make_pool=lambda pool: _pool(pool, names),
            fork_name=lambda fork: fork.name or names("concatenate"), concat_name=name, name=f"{name}_module",
        ))
    return blocks


SPEC = ModelSpec(
    name="inception_v3", keras_name="InceptionV3", family="inception_v3",
    body=body, top=top, default_size=299, min_size=75,
    params=23_851_784, flops=11_426_432_192, top1=77.9, top5=93.7,
    reference="Szegedy et al. 2016, Rethinking the Inception Architecture for Computer Vision",
)


@register(SPEC)
def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="inception_v3", *, builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """InceptionV3, with keras.applications' signature and layer names.

    Arguments are those of ``keras.applications.InceptionV3`` (input 299x299x3 by
    default, at least 75x75 without the top). Keyword-only ``builder`` is
    ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of a stem block and one block per inception module).
    Preprocess inputs with :func:`preprocess_input` (pixels to [-1, 1]).

    >>> import kapps
    >>> kapps.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3)).output_shape
    (None, 1, 1, 2048)
    """
    return build_model(**SPEC.bind(locals()))
