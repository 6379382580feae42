"""The one door to Keras internals: every use of ``keras.src`` or of an underscore attribute.

Public Keras API is used everywhere else in kapps. What public API cannot do yet is done
here, one small function per need, each with its own test in ``tests/test_keras_compat.py``
so that a Keras upgrade that breaks a shim fails one named test. The tested Keras versions
are the ones ``setup.cfg`` accepts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["child_layers", "snake_case"]

# -- layers and naming -----------------------------------------------------------------
def child_layers(layer: Any) -> list:
    """The layers ``layer`` tracks directly (one level down); public API lists them for Models only."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def snake_case(name: str) -> str:
    """Keras' own CamelCase-to-snake_case rule for automatic layer names (``Conv2D`` -> ``conv2d``)."""
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(name)



# -- functional graphs (optimize, flops) -----------------------------------------------


# -- training (fine_tune) -----------------------------------------------------------------


# -- saving and serialization ----------------------------------------------------------


# -- backends ---------------------------------------------------------------------------
