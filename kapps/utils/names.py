"""Model-name lookup shared by the registry and the Keras-free model index (one message, one rule)."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["resolve_model_name"]


def resolve_model_name(name: Any, keras_names: Mapping[str, str]) -> str:
    """The registry name for a registry name or a Keras name (any case); else a clear ValueError.

    ``keras_names`` maps each registry name to its Keras name.

    >>> resolve_model_name("MobileNetV2", {"mobilenet_v2": "MobileNetV2"})
    'mobilenet_v2'
    >>> resolve_model_name("mobilenet", {"mobilenet_v2": "MobileNetV2"})
    Traceback (most recent call last):
    ...
    ValueError: `name` must be a registered model (see kapps.list_models()). Received: name='mobilenet'. Did you mean 'mobilenet_v2'?
    """
    if name in keras_names:
        return name
    lowered = name.lower() if isinstance(name, str) else None
    by_keras = {keras_name.lower(): registry_name for registry_name, keras_name in keras_names.items()}
    if lowered in by_keras:
        return by_keras[lowered]
    close = [n for n in sorted(keras_names) if lowered is not None and (lowered in n or n in lowered)]
    hint = f" Did you mean {', '.join(map(repr, close[:5]))}?" if close else ""
    raise ValueError(f"`name` must be a registered model (see kapps.list_models()). Received: name={name!r}.{hint}")
