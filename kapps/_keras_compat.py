"""The one door to Keras internals: every use of ``keras.src`` or of an underscore attribute.

Public Keras API is used everywhere else in kapps. What public API cannot do yet is done
here, one small function per need, each with its own test in ``tests/test_keras_compat.py``
so that a Keras upgrade that breaks a shim fails one named test. The tested Keras versions
are the ones ``setup.cfg`` accepts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["child_layers", "snake_case", "is_functional", "call_graph", "tensor_graph", "in_multi_worker_mode", "fit_on_multi_worker",
           "fixed_seed", "keras_layer_scale", "keras_custom_scale_layer"]

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


def tensor_graph(outputs: Any) -> list[tuple[Any, Any, list]]:
    """Every symbolic tensor ``outputs`` depend on, in topological order (inputs first), each as
    ``(tensor, operation that made it, its input tensors)``.

    Keras keeps a tensor's history (``_keras_history``) and an operation's call records
    (``_inbound_nodes``) private; ``Functional`` models expose the graph only per layer
    (``layer.output``), which fails for a layer called in more than one graph.
    """
    from keras import tree

    order: list[tuple[Any, Any, list]] = []
    done: set[int] = set()
    stack = [(tensor, False) for tensor in reversed(tree.flatten(outputs))]
    while stack:
        tensor, expanded = stack.pop()
        if id(tensor) in done:
            continue
        operation, node_index, _ = tensor._keras_history
        parents = list(operation._inbound_nodes[node_index].arguments.keras_tensors)
        if expanded:
            done.add(id(tensor))
            order.append((tensor, operation, parents))
            continue
        stack.append((tensor, True))
        stack.extend((parent, False) for parent in reversed(parents) if id(parent) not in done)
    return order



# -- training (fine_tune) -----------------------------------------------------------------
def in_multi_worker_mode(strategy: Any) -> bool:
    """Whether ``strategy`` is a MultiWorkerMirroredStrategy that really spans several workers."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: True)())


def fit_on_multi_worker(model: Any, strategy: Any) -> None:
    """Let ``model.fit`` run under a multi-worker MultiWorkerMirroredStrategy (Keras 3, seen in 3.15).

    Two spots of Keras' TF trainer fail across workers: its symbolic build reduces a
    whole per-replica batch with ``strategy.reduce(..., axis=None)``, and it reduces
    each step's logs with ``strategy.reduce("MEAN", v, axis=0)``, which fails on
    scalars. Here the symbolic build uses the local replica's batch (only shapes
    matter) and the steps return their logs as vectors of one value, which that
    reduction averages over the replicas. Only this instance is changed, and only
    its training methods: the model (and its ``.keras`` file) stays a plain Functional.
    """
    import keras
    import tensorflow as tf

    def local(value: Any) -> Any:
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def symbolic_build(iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def as_vectors(step: Any) -> Any:
        def vector_step(data: Any) -> dict[str, Any]:
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}
        return vector_step

    model._maybe_symbolic_build = symbolic_build
    model.train_step = as_vectors(type(model).train_step.__get__(model))
    model.test_step = as_vectors(type(model).test_step.__get__(model))


def fixed_seed(seed: Any) -> Any:
    """A ``keras.random.SeedGenerator`` that hands out ``seed`` (an int pair tensor) on every draw.

    Public Keras accepts only an int or a SeedGenerator (which owns a variable) as the
    seed of a preprocessing layer's ``get_random_transformation``; a per-image seed
    computed inside a ``tf.data`` map needs this variable-free one.
    """
    return _fixed_seed_class()(seed)


_FIXED_SEED_CLASS: list[type] = []  # made on first use, so that importing this module imports no Keras


def _fixed_seed_class() -> type:
    if not _FIXED_SEED_CLASS:
        import keras

        class FixedSeed(keras.random.SeedGenerator):
            def __init__(self, seed: Any):  # skips SeedGenerator's variable: nothing to track or restore
                self.fixed = seed

            def next(self, ordered: bool = True) -> Any:
                return self.fixed

        _FIXED_SEED_CLASS.append(FixedSeed)
    return _FIXED_SEED_CLASS[0]



# -- saving and serialization ----------------------------------------------------------
def keras_layer_scale() -> type:
    """keras.applications' ConvNeXt ``LayerScale`` (``x * gamma``), a class Keras exports nowhere public.

    kapps' ConvNeXt graphs hold this very class, so that a saved kapps ConvNeXt reloads in
    plain Keras (no kapps import), as keras.applications' own ConvNeXt does.
    """
    from keras.src.applications.convnext import LayerScale

    return LayerScale


def keras_custom_scale_layer() -> type:
    """keras.applications' Inception-ResNet ``CustomScaleLayer`` (``inputs[0] + inputs[1] * scale``).

    Used by kapps' Inception-ResNet graphs for the same reason as :func:`keras_layer_scale`.
    """
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    return CustomScaleLayer



# -- backends ---------------------------------------------------------------------------
