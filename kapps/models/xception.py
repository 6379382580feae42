"""Xception (Chollet 2017): depthwise separable convolutions in residual stacks."""

from __future__ import annotations


import keras

from kapps.blocks import (
    AutoNames, Chain, ConvBNAct, Names, PoolingHead, SeparableStack, separable_units,
)
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register
from kapps.models._heads import avg_pool_top as top

__all__ = ["Xception", "preprocess_input", "decode_predictions"]

#: Entry flow stem: (filters, stride) of two valid 3x3 convolutions (block1).
STEM: tuple[tuple[int, int], ...] = ((32, 2), (64, 1))
#: Residual stacks (blocks 2-13): (separable filters, downsample). The entry flow is
#: blocks 2-4, the middle flow blocks 5-12, the exit flow's residual stack block 13.
STACKS: tuple[tuple[tuple[int, ...], bool], ...] = (
    ((128, 128), True),
    ((256, 256), True),
    ((728, 728), True),
    *(((728, 728, 728), False),) * 8,
    ((728, 1024), True),
)
#: Exit flow tail (block14): separable convolutions activated after their BatchNorm.
TAIL: tuple[int, ...] = (1536, 2048)

preprocess_input = family_preprocessor("tf")


def body(options: Options, input_shape: tuple) -> list:
    blocks: list = [Chain([
        ConvBNAct(filters, 3, stride, padding="valid", names=Names(f"block1_conv{i}", {
            "conv": "{p}", "bn": "{p}_bn", "act": "{p}_act", "block": "{p}_unit"}))
        for i, (filters, stride) in enumerate(STEM, start=1)
    ], name="block1")]
    auto = AutoNames()  # Keras leaves the shortcut convolutions, their BatchNorms and the sums unnamed.
    for block, (filters, downsample) in enumerate(STACKS, start=2):
        shortcut_names = Names("", {
            "conv": auto("conv2d"), "bn": auto("batch_normalization"), "block": f"block{block}_shortcut",
        }) if downsample else None
        blocks.append(SeparableStack(
            filters, downsample=downsample, first_activation=block > 2, names=f"block{block}_",
            shortcut_names=shortcut_names, add_name=auto("add"), name=f"block{block}",
        ))
    blocks.append(Chain(separable_units(TAIL, f"block{len(STACKS) + 2}_", preactivation=False),
                        name=f"block{len(STACKS) + 2}"))
    return blocks


#: keras.applications leaves the no-top pooling unnamed; these are its fresh-session names.
KERAS_POOL_NAMES = {"avg": "global_average_pooling2d", "max": "global_max_pooling2d"}


def no_top(options: Options, pooling: str | None) -> PoolingHead | None:
    return None if pooling is None else PoolingHead(pooling, pool_name=KERAS_POOL_NAMES[pooling])


SPEC = ModelSpec(
    name="xception", keras_name="Xception", family="xception",
    body=body, top=top, no_top=no_top, default_size=299, min_size=71,
    params=22_910_480, flops=16_714_806_992, top1=79.0, top5=94.5,
    reference="Chollet 2017, Xception: Deep Learning with Depthwise Separable Convolutions",
)


@register(SPEC)
def Xception(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="xception", *, builder: str = "functional",
             features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """Xception, with keras.applications' signature and layer names (default input 299x299).

    Arguments are those of ``keras.applications.Xception`` (inputs at least 71x71);
    keyword-only ``builder`` is ``"functional"`` (a flat graph, the default) or
    ``"sequential"`` (a ``keras.Sequential`` of the stem, one block per residual stack
    and the exit tail). Preprocess inputs with :func:`preprocess_input` (pixels to
    [-1, 1]).

    >>> import kapps
    >>> kapps.Xception(weights=None, include_top=False, input_shape=(71, 71, 3)).output_shape
    (None, 3, 3, 2048)
    """
    return build_model(**SPEC.bind(locals()))
