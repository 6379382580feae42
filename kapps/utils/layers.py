"""Walking a model's layers at any depth (blocks and nested models are looked into)."""

from __future__ import annotations

from typing import Any, Iterator

from kapps import _keras_compat as compat

__all__ = ["leaf_layers", "set_layer_weights", "refresh_statistics", "has_linear_activation", "has_plain_weights"]


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


def set_layer_weights(layer: Any, arrays: list) -> None:
    """``layer.set_weights(arrays)``, then :func:`refresh_statistics` of ``layer``.

    >>> import keras, numpy as np
    >>> norm = keras.layers.Normalization(name="normalization")
    >>> norm.build((None, 1, 1, 3))
    >>> set_layer_weights(norm, [np.full(3, 1.0), np.full(3, 4.0), np.array(1)])
    >>> np.asarray(norm(np.full((1, 1, 1, 3), 5.0, "float32"))).ravel().tolist()
    [2.0, 2.0, 2.0]
    """
    layer.set_weights(arrays)
    refresh_statistics(layer)


def refresh_statistics(model: Any) -> None:
    """Make every ``keras.layers.Normalization`` in ``model`` use the mean and variance it holds now.

    Keras' Normalization caches its statistics when it is built and refreshes them only when
    a Keras weights file is loaded; after ``set_weights`` (how kapps loads files by layer
    name) it would keep computing with the old ones.
    """
    import keras

    layers = [model] if not compat.child_layers(model) else list(leaf_layers(model))
    for layer in layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()


def has_linear_activation(layer: Any) -> bool:
    """The layer applies no activation after its affine map (none, or ``"linear"``)."""
    import keras

    activation = getattr(layer, "activation", None)
    return activation is None or activation is keras.activations.linear or \
        getattr(activation, "__name__", "") == "linear"


def has_plain_weights(layer: Any) -> bool:
    """Plain float kernels that can be rewritten (no LoRA, no quantized kernels)."""
    return not getattr(layer, "lora_enabled", False) and getattr(layer, "quantization_mode", None) is None
