"""The two builders: one list of blocks becomes a Functional or a Sequential model."""

from __future__ import annotations

import sys
from typing import Any, Sequence

import keras

from kapps.blocks.base import apply

BUILDERS = ("functional", "sequential")

#: Python frames Keras needs to build or reload kapps' deepest Functional graphs: its graph walk
#: (``keras.Model(inputs, outputs)``, ``Functional.from_config``) recurses once per layer on the
#: longest path. ResNetRS420 (2258 layers) needs between 1300 and 1800 (tf.keras raises the limit to
#: 1800 for it); Python's default is 1000. The rest is headroom for the caller's own stack.
GRAPH_RECURSION_LIMIT = 3000


def allow_deep_graphs(limit: int = GRAPH_RECURSION_LIMIT) -> None:
    """Raise Python's recursion limit to ``limit``; never lower it (a caller may need more).

    Importing this module calls it (kapps imports it when Keras is imported), so that every kapps
    model builds and every saved one reloads with ``keras.saving.load_model`` after ``import kapps``.

    >>> import sys
    >>> allow_deep_graphs()
    >>> sys.getrecursionlimit() >= GRAPH_RECURSION_LIMIT
    True
    """
    if sys.getrecursionlimit() < limit:
        sys.setrecursionlimit(limit)


allow_deep_graphs()


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


@keras.saving.register_keras_serializable(package="kapps")
class BlockSequential(keras.Sequential):
    """The Sequential builder's model: a ``keras.Sequential`` that reloads in linear time.

    ``keras.Sequential.from_config`` adds the layers one by one and rebuilds the model after
    each, so loading a saved Sequential of *n* blocks runs the blocks' graph *n* times
    (InceptionResNetV2's 47 blocks: 33 s instead of 10 s). This class deserializes the
    layers first and builds the stack once; everything else is ``keras.Sequential``.

    >>> import keras
    >>> model = BlockSequential([keras.Input((4,)), keras.layers.Dense(2, name="d")], name="tiny")
    >>> type(keras.models.model_from_json(model.to_json())).__name__, model.output_shape
    ('BlockSequential', (None, 2))
    """

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "BlockSequential":
        if any("module" not in layer for layer in config["layers"]):  # a legacy .h5 config: Keras' own path
            return super().from_config(config, custom_objects=custom_objects)
        layers = [keras.saving.deserialize_keras_object(layer, custom_objects=custom_objects)
                  for layer in config["layers"]]
        model = cls(layers=layers, name=config["name"])  # as keras.Sequential.from_config: name only
        if not model.built and config.get("build_input_shape"):
            model.build(config["build_input_shape"])
        return model


# Legacy ``.h5`` files name a model class without its package ("BlockSequential").
keras.saving.get_custom_objects().setdefault("BlockSequential", BlockSequential)


def build_sequential(
    blocks: Sequence[keras.layers.Layer], input_shape: tuple, name: str | None
) -> BlockSequential:
    """A ``keras.Sequential`` (:class:`BlockSequential`) whose layers are the blocks themselves (stem, blocks, head).

    The blocks are built first, outside the model: a Sequential builds its layers inside
    its own name scope, so their variable paths would start with the model name, and
    keras.applications' names hold dots (``mobilenetv2_1.00_224``), which torch refuses in
    parameter names. Built outside, the paths are the blocks' own (``stem/Conv1/kernel``).
    """
    x = keras.Input(shape=input_shape)
    for block in blocks:
        x = block(x)
    return BlockSequential([keras.Input(shape=input_shape), *blocks], name=name)
