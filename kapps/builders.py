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

    The blocks' weights are created inside the model's name scope, so a dot in the
    model's name (``mobilenetv2_1.00_224``) would reach every variable path, which the
    torch backend refuses: the Sequential model's name has its dots replaced by ``_``.

    >>> build_sequential([keras.layers.Dense(2, name="fc")], (3,), "net_1.00").name
    'net_1_00'
    """
    safe_name = None if name is None else name.replace(".", "_")
    return keras.Sequential([keras.Input(shape=input_shape), *blocks], name=safe_name)
