"""The one door to Keras internals: every use of ``keras.src`` or of an underscore attribute.

Public Keras API is used everywhere else in kapps. What public API cannot do yet is done
here, one small function per need, each with its own test in ``tests/test_keras_compat.py``
so that a Keras upgrade that breaks a shim fails one named test. The tested Keras versions
are the ones ``setup.cfg`` accepts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["child_layers", "snake_case", "is_functional", "call_graph"]

# -- layers and naming -----------------------------------------------------------------
def child_layers(layer: Any) -> list:
    """The layers ``layer`` tracks directly (one level down); public API lists them for Models only."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def snake_case(name: str) -> str:
    """Keras' own CamelCase-to-snake_case rule for automatic layer names (``Conv2D`` -> ``conv2d``)."""
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(name)



# -- functional graphs (optimize, flops) -----------------------------------------------
def is_functional(model: Any) -> bool:
    """True for a graph model (``keras.Model(inputs, outputs)``), False for Sequential and subclassed ones.

    Keras exports no public name for its Functional class.
    """
    from keras.src.models.functional import Functional
    from keras.src.models.sequential import Sequential

    return isinstance(model, Functional) and not isinstance(model, Sequential)


def call_graph(model: Any, inputs: Any, call: Any) -> Any:
    """Apply the graph of Functional ``model`` to the symbolic ``inputs``, calling
    ``call(operation, *args, **kwargs)`` for each operation; no node for ``model`` itself.

    Public ``keras.models.clone_model(..., call_function=...)`` does this for a whole model
    but rebuilds the result on fresh inputs, so it cannot splice a nested model's
    operations into an outer graph.
    """
    return model._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=call)



# -- training (fine_tune) -----------------------------------------------------------------


# -- saving and serialization ----------------------------------------------------------


# -- backends ---------------------------------------------------------------------------
