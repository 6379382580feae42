"""Walking a model's layers at any depth (blocks and nested models are looked into)."""

from __future__ import annotations

from typing import Any, Iterator

from kapps import _keras_compat as compat

__all__ = ["leaf_layers"]


def leaf_layers(model: Any) -> Iterator[Any]:
    """Every layer that owns weights itself, at any depth, each once, in tracking order.

    >>> import keras
    >>> from kapps.utils.layers import leaf_layers
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="fc")])
    >>> [layer.name for layer in leaf_layers(m)]
    ['fc']
    """
    seen: set[int] = set()

    def walk(layer: Any) -> Iterator[Any]:
        children = compat.child_layers(layer)
        if not children and layer.weights and id(layer) not in seen:
            seen.add(id(layer))
            yield layer
        for child in children:
            yield from walk(child)

    yield from walk(model)
