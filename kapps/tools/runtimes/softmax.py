"""A classifier's final softmax, split off so that it runs in float32 after an int8 graph.

Quantized to int8, a 1000-way softmax keeps probabilities in steps of 1/256: the top
classes of a photo often tie at one level and the arg-max is lost. The int8 runtime
therefore quantizes the model up to its logits and applies the softmax on the
dequantized logits in float32 (:func:`softmax`), as int8 deployments usually do.

>>> import keras
>>> inputs = keras.Input((4,))
>>> model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
>>> logits, split = without_final_softmax(model)
>>> split, logits.layers[-1].get_config()["activation"]
(True, 'linear')
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["softmax", "without_final_softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float32."""
    shifted = np.asarray(logits, "float32") - np.max(logits, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def _is_softmax(activation: Any) -> bool:
    return getattr(activation, "__name__", activation) == "softmax"


def without_final_softmax(model: keras.Model) -> tuple[keras.Model, bool]:
    """``(model up to its logits, True)`` when a flat model ends in a softmax, else ``(model, False)``.

    The softmax can be an ``Activation``/``Softmax`` layer or the activation of the last
    ``Dense``/convolution (a copy with a linear activation and the same weights replaces it).
    """
    from kapps.tools.graph import flatten, trace

    if len(model.outputs) != 1:
        return model, False
    graph = trace(flatten(model))
    last = graph.calls[-1]
    layer, features, inputs = last.operation, last.inputs[0], list(graph.inputs)
    if isinstance(layer, keras.layers.Softmax) or (
            isinstance(layer, keras.layers.Activation) and _is_softmax(layer.activation)):
        return keras.Model(inputs, features, name=model.name), True
    if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)) and _is_softmax(layer.activation):
        linear = type(layer).from_config({**layer.get_config(), "activation": None, "name": f"{layer.name}_logits"})
        logits = linear(features)
        linear.set_weights(layer.get_weights())
        return keras.Model(inputs, logits, name=model.name), True
    return model, False
