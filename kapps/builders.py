"""The two builders: one list of blocks becomes a Functional or a Sequential model."""

from __future__ import annotations

from typing import Any, Sequence

import keras

from kapps.blocks.base import apply

BUILDERS = ("functional", "sequential")


def build_functional(
    blocks: Sequence[keras.layers.Layer], inputs: Any, name: str | None, input_tensor: Any = None
) -> keras.Model:
    """A flat Functional model: every block's sub-layers become top-level layers.

    The layer names, and so the order of weights, are those the blocks were given,
    which is how kapps reproduces keras.applications graphs exactly.
    """
    x = inputs
    for block in blocks:
        x = apply(block, x)
    sources = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else inputs
    return keras.Model(sources, x, name=name)


def build_sequential(
    blocks: Sequence[keras.layers.Layer], input_shape: tuple, name: str | None
) -> keras.Sequential:
    """A ``keras.Sequential`` whose layers are the blocks themselves (stem, blocks, head).

    The blocks are built first, outside the model: a Sequential builds its layers inside
    its own name scope, so their variable paths would start with the model name, and
    keras.applications' names hold dots (``mobilenetv2_1.00_224``), which torch refuses in
    parameter names. Built outside, the paths are the blocks' own (``stem/Conv1/kernel``).
    """
    x = keras.Input(shape=input_shape)
    for block in blocks:
        x = block(x)
    return keras.Sequential([keras.Input(shape=input_shape), *blocks], name=name)
